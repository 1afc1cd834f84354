// Command pull measures pulling and unpacking one generated image (~200 MB,
// 8 gzip layers, thousands of files) from a local registry, with peapod and
// with the reference containerd, in one run: wall time of the client's pull
// command, and the daemon's peak resident set (VmHWM), CPU time and disk use.
//
// Every run gets a fresh daemon with an empty root, so each pull downloads
// and unpacks everything and VmHWM is the peak of that pull (and of the
// daemon's start, which is far below it). Runs alternate which runtime goes
// first, so that neither always pulls right after the other one's writes.
//
//	go run ./bench/pull            # from the repository root, as root
//
// See bench/README.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/peapod/peapod/bench/internal/machine"
	"github.com/peapod/peapod/internal/testdaemon"
)

// runner pulls the image once with one runtime and measures it.
type runner interface {
	name() string
	version(ctx context.Context) string
	pull(ctx context.Context, run int, image string) (result, error)
}

// result is one measured pull.
type result struct {
	Runtime    string
	Run        int
	Wall       time.Duration // the client command, start to exit
	PeakRSSKiB int64         // daemon VmHWM after the pull
	IdleRSSKiB int64         // daemon VmRSS before the pull
	CPU        time.Duration // daemon user+system CPU during the pull
	DiskBytes  int64         // daemon root after the pull
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/pull:", err)
		os.Exit(1)
	}
}

func run() error {
	gopathBin := filepath.Join(machine.GoEnv("GOPATH"), "bin")
	var (
		runs      = flag.Int("runs", 5, "measured pulls per runtime")
		warmup    = flag.Int("warmup", 1, "unmeasured pulls per runtime first (binaries and registry blobs into the page cache)")
		sizeMiB   = flag.Int("size", 200, "image size in MiB (file data over all layers)")
		layers    = flag.Int("layers", 8, "number of layers")
		seed      = flag.Uint64("seed", 1, "seed of the generated image (same seed, same digests)")
		only      = flag.String("only", "peapod,containerd", "runtimes to measure, comma-separated")
		peapodBin = flag.String("peapod", "bin/peapod", "peapod binary (make build)")
		ctrdDir   = flag.String("containerd-dir", gopathBin, "directory with containerd 2.4.2 and containerd-shim-runc-v2 (REF=1 tools.sh)")
		crictl    = flag.String("crictl", filepath.Join(gopathBin, "crictl"), "crictl binary")
		kit       = flag.String("kit", "../shared/conformance", "conformance kit with containerd-up.sh and containerd-down.sh")
		outDir    = flag.String("out", "bench/out", "directory for raw results")
		tmpBase   = flag.String("tmp", "", "where the work directory goes (default $TMPDIR or /tmp)")
		fsMode    = flag.String("fs", "loop", "where the runtimes' roots go: loop (a fresh ext4 filesystem in a sparse file under -tmp) or dir (the -tmp directory itself)")
		profile   = flag.Bool("profile", false, "also pull once in-process with peapod's image service under pprof (CPU and heap profiles into -out)")
	)
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))

	if os.Geteuid() != 0 {
		return errors.New("run as root: the daemons unpack files with their owners")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	work, err := os.MkdirTemp(*tmpBase, "peapod-bench-pull-")
	if err != nil {
		return err
	}
	defer func() {
		testdaemon.Unmount(work)
		os.RemoveAll(work)
	}()
	if err := os.MkdirAll(*outDir, 0o755); err != nil {
		return err
	}

	reg, err := startRegistry(ctx, filepath.Join(work, "registry"))
	if err != nil {
		return err
	}
	defer reg.Close()
	const repoTag = "bench/pull:v1"
	image := reg.Ref(repoTag)

	log.Info("generating image", "size_mib", *sizeMiB, "layers", *layers, "seed", *seed)
	genDir := filepath.Join(work, "gen")
	if err := os.MkdirAll(genDir, 0o755); err != nil {
		return err
	}
	img, facts, err := buildImage(genDir, imageSpec{Layers: *layers, SizeMiB: *sizeMiB, Seed: *seed})
	if err != nil {
		return fmt.Errorf("generate image: %w", err)
	}
	log.Info("pushing image", "image", image, "compressed_bytes", facts.CompressedBytes, "files", facts.Files)
	if err := reg.Push(ctx, repoTag, img); err != nil {
		return fmt.Errorf("push %s: %w", image, err)
	}
	os.RemoveAll(genDir) // the registry has its own copy

	// The runs' roots are removed only when the bench ends, and live on a
	// filesystem of their own (see testdaemon.ScratchFS): deleting a run's thousands
	// of files would make the next run's file creation slow on some
	// filesystems, and that would be the harness's cost, not the runtime's.
	roots := work
	switch *fsMode {
	case "loop":
		size := max(int64(2)<<30, int64(*warmup+*runs+1)*int64(*sizeMiB)<<20*4+1<<30)
		mnt, umount, err := testdaemon.ScratchFS(ctx, work, size)
		if err != nil {
			return err
		}
		defer umount()
		roots = mnt
	case "dir":
	default:
		return fmt.Errorf("-fs: %q is neither loop nor dir", *fsMode)
	}

	regConf := filepath.Join(work, "registries.conf")
	if err := os.WriteFile(regConf, fmt.Appendf(nil, "[[registry]]\nlocation = %q\ninsecure = true\n", reg.Host), 0o644); err != nil {
		return err
	}
	var runners []runner
	for _, name := range strings.Split(*only, ",") {
		switch strings.TrimSpace(name) {
		case "peapod":
			bin, err := filepath.Abs(*peapodBin)
			if err != nil {
				return err
			}
			if _, err := os.Stat(bin); err != nil {
				return fmt.Errorf("peapod binary: %w (build it with `make build`)", err)
			}
			runners = append(runners, &peapodRunner{bin: bin, registries: regConf, workDir: roots, logDir: work})
		case "containerd":
			kitDir, err := filepath.Abs(*kit)
			if err != nil {
				return err
			}
			for _, p := range []string{filepath.Join(*ctrdDir, "containerd"), *crictl, filepath.Join(kitDir, "containerd-up.sh")} {
				if _, err := os.Stat(p); err != nil {
					return fmt.Errorf("containerd side: %w (build containerd 2.4.2 and crictl with `REF=1 %s/tools.sh`)", err, kitDir)
				}
			}
			runners = append(runners, &containerdRunner{kit: kitDir, binDir: *ctrdDir, crictl: *crictl, host: reg.Host, workDir: roots})
		case "":
		default:
			return fmt.Errorf("-only: unknown runtime %q (peapod, containerd)", name)
		}
	}

	rep := report{
		Date:     time.Now().UTC().Format(time.RFC3339),
		Machine:  machine.Facts(roots),
		Image:    facts,
		Command:  strings.Join(os.Args, " "),
		Versions: map[string]string{},
		Commit:   machine.GitCommit(),
	}
	for _, r := range runners {
		rep.Versions[r.name()] = r.version(ctx)
		rep.Order = append(rep.Order, r.name())
	}
	total := *warmup + *runs
	for i := range total {
		order := runners
		if i%2 == 1 {
			order = reversed(runners)
		}
		for _, r := range order {
			if err := ctx.Err(); err != nil {
				return err
			}
			syncDisks()
			res, err := r.pull(ctx, i, image)
			if err != nil {
				return fmt.Errorf("%s run %d: %w", r.name(), i, err)
			}
			measured := i >= *warmup
			res.Run = i - *warmup
			log.Info("pull", "runtime", res.Runtime, "measured", measured, "run", res.Run, "wall", res.Wall.Round(time.Millisecond),
				"peak_rss_mib", res.PeakRSSKiB/1024, "cpu", res.CPU, "disk_mib", res.DiskBytes>>20)
			if measured {
				rep.Results = append(rep.Results, res)
			}
		}
	}

	rep.Machine["loadavg_end"] = machine.Loadavg()
	if *profile {
		if err := profilePull(ctx, roots, regConf, image, *outDir, log); err != nil {
			return fmt.Errorf("profile: %w", err)
		}
	}

	md := rep.markdown()
	fmt.Print(md)
	stamp := time.Now().UTC().Format("20060102T150405Z")
	raw, err := json.MarshalIndent(rep.raw(), "", "  ")
	if err != nil {
		return err
	}
	for name, data := range map[string][]byte{
		"pull-" + stamp + ".json": raw,
		"pull-" + stamp + ".md":   []byte(md),
	} {
		if err := os.WriteFile(filepath.Join(*outDir, name), data, 0o644); err != nil {
			return err
		}
	}
	log.Info("raw results written", "dir", *outDir, "stamp", stamp)
	return nil
}

func reversed(rs []runner) []runner {
	out := make([]runner, len(rs))
	for i, r := range rs {
		out[len(rs)-1-i] = r
	}
	return out
}

// syncDisks writes back what the previous run left dirty, so that a pull
// does not pay for the one before it.
func syncDisks() {
	syscall.Sync()
	time.Sleep(500 * time.Millisecond)
}
