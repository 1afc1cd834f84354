package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/peapod/peapod/internal/image"
)

// profilePull pulls the image once more with peapod's image service in
// this process, under the CPU profiler, and writes pull-cpu.pprof and the
// allocation profiles pull-allocs-before.pprof and pull-allocs.pprof into
// outDir. Read them with `go tool pprof -top bench/out/pull-cpu.pprof` and
// `go tool pprof -sample_index=alloc_space -diff_base
// bench/out/pull-allocs-before.pprof -top bench/out/pull-allocs.pprof`.
func profilePull(ctx context.Context, work, regConf, ref, outDir string, log *slog.Logger) error {
	root := filepath.Join(work, "profile-root")
	defer os.RemoveAll(root)
	svc, err := image.New(ctx, image.Options{Root: root, RegistriesConfig: regConf, CertsDir: filepath.Join(work, "no-certs.d")})
	if err != nil {
		return err
	}
	defer svc.Close()
	cpuF, err := os.Create(filepath.Join(outDir, "pull-cpu.pprof"))
	if err != nil {
		return err
	}
	defer cpuF.Close()
	runtime.GC()
	// Allocations are counted from the process start; the profile taken
	// now is the base to subtract (-diff_base) to see the pull's own.
	if err := writeAllocs(filepath.Join(outDir, "pull-allocs-before.pprof")); err != nil {
		return err
	}
	if err := pprof.StartCPUProfile(cpuF); err != nil {
		return err
	}
	start := time.Now()
	_, err = svc.Pull(ctx, ref, nil, image.PullOptions{})
	wall := time.Since(start)
	pprof.StopCPUProfile()
	if err != nil {
		return fmt.Errorf("in-process pull: %w", err)
	}
	if err := writeAllocs(filepath.Join(outDir, "pull-allocs.pprof")); err != nil {
		return err
	}
	log.Info("in-process pull profiled", "wall", wall.Round(time.Millisecond), "cpu_profile", cpuF.Name(), "allocs_profile", filepath.Join(outDir, "pull-allocs.pprof"))
	return nil
}

func writeAllocs(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
