// Command pod measures starting pods and the memory they cost, with peapod
// and with the reference containerd 2.4.2, in one run and through the same
// clients: time from RunPodSandbox to a running container for a
// 1-container pod whose image is present, and the memory of every process a
// runtime adds per running pod.
//
// Both daemons run side by side with configurations of their own (roots on
// a fresh loop-mounted ext4, state under /run, own CNI conf dir, bridge and
// subnet) and pull from one local docker-registry that serves the test
// busybox and a pause image under the public names the conformance kit
// uses (registry.k8s.io is mirrored to it).
//
// Measured for each runtime:
//
//   - grpc: RunPodSandbox + CreateContainer + StartContainer timed by one Go
//     CRI client (this program), p50/p99 over -pods pods, in three seccomp
//     modes: no profile in the request (what crictl and critest send),
//     explicit Unconfined (kubelet's default, seccompDefault=false) and
//     explicit RuntimeDefault (kubelet with seccompDefault=true).
//
//   - the conformance kit's measure-crictl.sh (crictl runp+create+start
//     wall time), pod-overhead.sh (memory of every process added per pod,
//     name-blind, plus the daemon's growth) and run-bench.sh (critest
//     -benchmark per-operation latencies).
//
//     go run ./bench/pod            # from the repository root, as root
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
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/peapod/peapod/bench/internal/machine"
	"github.com/peapod/peapod/internal/imagetest"
	"github.com/peapod/peapod/internal/registrytest"
	"github.com/peapod/peapod/internal/testdaemon"
)

// Image names, as the conformance kit's scripts use them; the local
// registry serves them through the runtimes' mirror configuration.
const (
	busyboxPath  = "e2e-test-images/busybox:1.29-2"
	busyboxImage = "registry.k8s.io/" + busyboxPath
	pausePath    = "pause:3.10.1" // containerd-up.sh's SANDBOX_IMAGE
)

// daemon is one runtime under test, serving the CRI.
type daemon interface {
	name() string
	endpoint() string // unix:///...
	pid() int
	dirs() []string // its root and state directories
	version() string
	stop()
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/pod:", err)
		os.Exit(1)
	}
}

type flags struct {
	pods, memPods, benchN, warmup int
	only, peapodBin, ctrdDir      string
	kit, out, tmp, fsMode         string
	steps, modes                  string
}

func run() error {
	gopathBin := filepath.Join(machine.GoEnv("GOPATH"), "bin")
	var f flags
	flag.IntVar(&f.pods, "pods", 50, "measured pods per runtime and mode (grpc, crictl)")
	flag.IntVar(&f.warmup, "warmup", 3, "unmeasured pods first (grpc)")
	flag.IntVar(&f.memPods, "mem-pods", 10, "running pods for pod-overhead.sh")
	flag.IntVar(&f.benchN, "bench-n", 50, "samples per critest benchmark (run-bench.sh N)")
	flag.StringVar(&f.only, "only", "peapod,containerd", "runtimes to measure, comma-separated")
	flag.StringVar(&f.peapodBin, "peapod", "", "peapod binary (default: go build ./cmd/peapod into the work directory)")
	flag.StringVar(&f.ctrdDir, "containerd-dir", gopathBin, "directory with containerd 2.4.2, containerd-shim-runc-v2, crictl and critest (REF=1 tools.sh)")
	flag.StringVar(&f.kit, "kit", "../shared/conformance", "conformance kit (containerd-up.sh, measure-crictl.sh, pod-overhead.sh, run-bench.sh)")
	flag.StringVar(&f.out, "out", "bench/out", "directory for raw results")
	flag.StringVar(&f.tmp, "tmp", "", "where the work directory goes (default $TMPDIR or /tmp)")
	flag.StringVar(&f.fsMode, "fs", "loop", "where the runtimes' roots go: loop (a fresh ext4 in a sparse file) or dir")
	flag.StringVar(&f.steps, "steps", "grpc,crictl,overhead,scoped,critest", "measurements to run, comma-separated")
	flag.StringVar(&f.modes, "seccomp", "none,unconfined,runtime-default", "seccomp modes of the grpc measurement")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if os.Geteuid() != 0 {
		return errors.New("run as root: the runtimes create namespaces, mounts and cgroups")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	kit, err := filepath.Abs(f.kit)
	if err != nil {
		return err
	}
	outDir, err := filepath.Abs(f.out)
	if err != nil {
		return err
	}
	for _, p := range []string{filepath.Join(f.ctrdDir, "crictl"), filepath.Join(kit, "measure-crictl.sh")} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("%w (build the tools with `REF=1 %s/tools.sh`)", err, kit)
		}
	}
	// The kit's scripts call crictl and critest by name.
	os.Setenv("PATH", f.ctrdDir+":"+os.Getenv("PATH"))

	work, err := os.MkdirTemp(f.tmp, "peapod-bench-pod-")
	if err != nil {
		return err
	}
	defer func() {
		testdaemon.Unmount(work)
		os.RemoveAll(work)
	}()
	stamp := time.Now().UTC().Format("20060102T150405Z")
	raw := filepath.Join(outDir, "pod-"+stamp)
	if err := os.MkdirAll(raw, 0o755); err != nil {
		return err
	}

	reg, err := registrytest.Launch(ctx, filepath.Join(work, "registry"), registrytest.Options{})
	if err != nil {
		return fmt.Errorf("start registry: %w", err)
	}
	defer reg.Close()
	bb, err := imagetest.BusyboxImage(ctx, imagetest.ImageOptions{})
	if err != nil {
		return err
	}
	pause, err := imagetest.Pause(imagetest.Docker)
	if err != nil {
		return err
	}
	if err := reg.Push(ctx, busyboxPath, bb); err != nil {
		return err
	}
	if err := reg.Push(ctx, pausePath, pause); err != nil {
		return err
	}
	log.Info("registry up", "host", reg.Host)

	roots := work
	switch f.fsMode {
	case "loop":
		mnt, umount, err := testdaemon.ScratchFS(ctx, work, 4<<30)
		if err != nil {
			return err
		}
		defer umount()
		roots = mnt
	case "dir":
	default:
		return fmt.Errorf("-fs: %q is neither loop nor dir", f.fsMode)
	}

	rep := &report{
		Date: time.Now().UTC().Format(time.RFC3339), Command: strings.TrimSpace("go run ./bench/pod " + strings.Join(os.Args[1:], " ")),
		Commit: machine.GitCommit(), Machine: machine.Facts(roots), Pods: f.pods, MemPods: f.memPods,
		Versions: map[string]string{"runc": firstLine("runc", "--version"), "conmon": firstLine("conmon", "--version")},
		Raw:      raw,
	}
	rep.Machine["roots_fs"] = roots
	var daemons []daemon
	defer func() {
		for _, d := range daemons {
			d.stop()
		}
	}()
	for _, name := range strings.Split(f.only, ",") {
		var d daemon
		switch strings.TrimSpace(name) {
		case "peapod":
			bin := f.peapodBin
			if bin == "" {
				bin = filepath.Join(work, "peapod-bin")
				log.Info("building peapod", "out", bin)
				if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/peapod").CombinedOutput(); err != nil {
					return fmt.Errorf("go build ./cmd/peapod: %w: %s", err, out)
				}
			}
			d, err = startPeapod(ctx, bin, reg.Host, work, roots)
		case "containerd":
			d, err = startContainerd(ctx, kit, f.ctrdDir, reg.Host, work, roots)
		case "":
			continue
		default:
			err = fmt.Errorf("-only: unknown runtime %q", name)
		}
		if err != nil {
			return err
		}
		daemons = append(daemons, d)
		rep.Versions[d.name()] = d.version()
		rep.Order = append(rep.Order, d.name())
		log.Info("daemon up", "runtime", d.name(), "endpoint", d.endpoint(), "pid", d.pid())
	}
	steps := map[string]bool{}
	for _, s := range strings.Split(f.steps, ",") {
		steps[strings.TrimSpace(s)] = true
	}

	// Every measurement runs for each runtime in turn; the order flips from
	// one measurement to the next, so neither always goes first.
	turn := 0
	each := func(fn func(d daemon) error) error {
		order := daemons
		if turn%2 == 1 {
			order = reversed(daemons)
		}
		turn++
		for _, d := range order {
			if err := ctx.Err(); err != nil {
				return err
			}
			syscall.Sync()
			if err := fn(d); err != nil {
				return fmt.Errorf("%s: %w", d.name(), err)
			}
		}
		return nil
	}
	if steps["grpc"] {
		for _, mode := range strings.Split(f.modes, ",") {
			log.Info("grpc pod start", "seccomp", mode, "pods", f.pods)
			syscall.Sync()
			res, err := grpcPodStart(ctx, daemons, mode, f.warmup, f.pods, filepath.Join(work, "logs"))
			if err != nil {
				return err
			}
			rep.GRPC = append(rep.GRPC, res...)
		}
	}
	if steps["crictl"] {
		if err := each(func(d daemon) error {
			log.Info("measure-crictl.sh", "runtime", d.name())
			res, err := measureCrictl(ctx, kit, d, f.pods, f.memPods, filepath.Join(raw, d.name()+"-crictl"))
			rep.Crictl = append(rep.Crictl, res)
			return err
		}); err != nil {
			return err
		}
	}
	if steps["overhead"] {
		if err := each(func(d daemon) error {
			log.Info("pod-overhead.sh", "runtime", d.name(), "pods", f.memPods)
			res, err := podOverhead(ctx, kit, d, f.memPods, filepath.Join(raw, d.name()+"-overhead.txt"))
			rep.Overhead = append(rep.Overhead, res)
			return err
		}); err != nil {
			return err
		}
	}
	if steps["scoped"] {
		if err := each(func(d daemon) error {
			log.Info("scoped overhead", "runtime", d.name(), "pods", f.memPods)
			res, err := scopedOverhead(ctx, d, f.memPods, filepath.Join(work, "logs"))
			rep.Scoped = append(rep.Scoped, res)
			return err
		}); err != nil {
			return err
		}
	}
	if steps["critest"] {
		if err := each(func(d daemon) error {
			log.Info("run-bench.sh (critest -benchmark)", "runtime", d.name(), "n", f.benchN)
			res := critestBench(ctx, kit, d, f.benchN, filepath.Join(raw, d.name()+"-critest"))
			rep.Critest = append(rep.Critest, res)
			return nil
		}); err != nil {
			return err
		}
	}
	rep.Machine["loadavg_end"] = machine.Loadavg()

	md := rep.markdown()
	fmt.Print(md)
	if err := os.WriteFile(filepath.Join(outDir, "pod-"+stamp+".md"), []byte(md), 0o644); err != nil {
		return err
	}
	js, _ := json.MarshalIndent(rep, "", "  ")
	return os.WriteFile(filepath.Join(outDir, "pod-"+stamp+".json"), js, 0o644)
}

func reversed(ds []daemon) []daemon {
	out := make([]daemon, len(ds))
	for i, d := range ds {
		out[len(ds)-1-i] = d
	}
	return out
}

func firstLine(name string, args ...string) string {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil && len(out) == 0 {
		return "unknown"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}
