package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/peapod/peapod/internal/procfs"
	"github.com/peapod/peapod/internal/testdaemon"
)

// peapodRunner pulls with a fresh `peapod daemon` per run, through the CLI,
// as a user would.
type peapodRunner struct {
	bin        string // bin/peapod
	registries string // registries.conf naming the local registry insecure
	workDir    string // roots go here
	logDir     string // daemon logs go here
}

func (r *peapodRunner) name() string { return "peapod" }

func (r *peapodRunner) version(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, r.bin, "version", "--host", "unix:///nonexistent").CombinedOutput()
	if err != nil && len(out) == 0 {
		return "unknown"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

func (r *peapodRunner) pull(ctx context.Context, run int, image string) (result, error) {
	res := result{Runtime: r.name(), Run: run}
	dir := filepath.Join(r.workDir, fmt.Sprintf("peapod-%d", run))
	logPath := filepath.Join(r.logDir, fmt.Sprintf("peapod-daemon-%d.log", run))
	// The directory is ours, so Close leaves it: the root stays until the
	// bench ends (see run).
	d, err := testdaemon.Start(ctx, testdaemon.Options{
		Bin:      r.bin,
		Dir:      dir,
		Image:    fmt.Sprintf("registries_config = %q\nauth_files = []", r.registries),
		LogLevel: "warn",
		LogFile:  logPath,
		Detach:   true,
	})
	if err != nil {
		return res, fmt.Errorf("%w (log %s)", err, logPath)
	}
	defer d.Close()
	pid := d.Pid()
	if res.IdleRSSKiB, err = procfs.StatusKiB(pid, "VmRSS"); err != nil {
		return res, err
	}
	cpu0, err := procCPU(pid)
	if err != nil {
		return res, err
	}

	cli := exec.CommandContext(ctx, r.bin, "--host", "unix://"+d.APISocket(), "pull", "--authfile", filepath.Join(dir, "no-auth.json"), image)
	start := time.Now()
	out, err := cli.CombinedOutput()
	res.Wall = time.Since(start)
	if err != nil {
		return res, fmt.Errorf("peapod pull %s: %w: %s", image, err, strings.TrimSpace(string(out)))
	}
	if res.PeakRSSKiB, err = procfs.StatusKiB(pid, "VmHWM"); err != nil {
		return res, err
	}
	cpu1, err := procCPU(pid)
	if err != nil {
		return res, err
	}
	res.CPU = cpu1 - cpu0
	if res.DiskBytes, err = diskUsage(d.Root); err != nil {
		return res, err
	}
	return res, nil
}
