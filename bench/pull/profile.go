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
// this process, under the CPU profiler, and writes cpu.pprof and heap.pprof
// (in use at the end of the pull, and allocations) into outDir. Read them
// with `go tool pprof -top bench/out/pull-cpu.pprof`.
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
	heapF, err := os.Create(filepath.Join(outDir, "pull-heap.pprof"))
	if err != nil {
		return err
	}
	defer heapF.Close()
	if err := pprof.Lookup("allocs").WriteTo(heapF, 0); err != nil {
		return err
	}
	log.Info("in-process pull profiled", "wall", wall.Round(time.Millisecond), "cpu_profile", cpuF.Name(), "heap_profile", heapF.Name())
	return nil
}
