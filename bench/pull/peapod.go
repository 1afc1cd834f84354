package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
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
	root, state := filepath.Join(dir, "root"), filepath.Join(dir, "state")
	for _, d := range []string{root, state} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return res, err
		}
	}
	// The root stays until the bench ends (see run).
	defer unmountUnder(dir)
	conf := filepath.Join(dir, "peapod.toml")
	toml := fmt.Sprintf("[image]\nregistries_config = %q\ncerts_dir = %q\nauth_files = []\n",
		r.registries, filepath.Join(dir, "certs.d"))
	if err := os.WriteFile(conf, []byte(toml), 0o600); err != nil {
		return res, err
	}
	logPath := filepath.Join(r.logDir, fmt.Sprintf("peapod-daemon-%d.log", run))
	logf, err := os.Create(logPath)
	if err != nil {
		return res, err
	}
	defer logf.Close()

	// Not CommandContext: the daemon is stopped with SIGTERM below, so that
	// it can shut down as in production, whatever ends the run.
	d := exec.Command(r.bin, "daemon", "--root", root, "--state", state, "--config", conf, "--log-level", "warn")
	d.Stdout, d.Stderr = logf, logf
	// Its own process group: a Ctrl-C in the terminal reaches only us, and
	// we stop the daemon in order.
	d.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := d.Start(); err != nil {
		return res, fmt.Errorf("start peapod daemon: %w", err)
	}
	exited := make(chan struct{})
	go func() { d.Wait(); close(exited) }()
	defer func() {
		d.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			d.Process.Kill()
			<-exited
		}
	}()
	sock := filepath.Join(state, "api.sock")
	if err := waitSocket(ctx, sock, exited, 30*time.Second); err != nil {
		return res, fmt.Errorf("peapod daemon (log %s): %w", logPath, err)
	}
	pid := d.Process.Pid
	if res.IdleRSSKiB, err = procMemKiB(pid, "VmRSS"); err != nil {
		return res, err
	}
	cpu0, err := procCPU(pid)
	if err != nil {
		return res, err
	}

	cli := exec.CommandContext(ctx, r.bin, "--host", "unix://"+sock, "pull", "--authfile", filepath.Join(dir, "no-auth.json"), image)
	start := time.Now()
	out, err := cli.CombinedOutput()
	res.Wall = time.Since(start)
	if err != nil {
		return res, fmt.Errorf("peapod pull %s: %w: %s", image, err, strings.TrimSpace(string(out)))
	}
	if res.PeakRSSKiB, err = procMemKiB(pid, "VmHWM"); err != nil {
		return res, err
	}
	cpu1, err := procCPU(pid)
	if err != nil {
		return res, err
	}
	res.CPU = cpu1 - cpu0
	if res.DiskBytes, err = diskUsage(root); err != nil {
		return res, err
	}
	return res, nil
}

// waitSocket waits until something accepts connections on a unix socket.
func waitSocket(ctx context.Context, sock string, exited <-chan struct{}, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no socket %s after %s", sock, d)
		}
		select {
		case <-exited:
			return errors.New("exited before serving")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
