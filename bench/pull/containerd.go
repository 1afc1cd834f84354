package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// containerdRunner pulls with a fresh reference containerd per run, started
// by the conformance kit's containerd-up.sh with its own root, state and
// config under the bench's work directory, and `crictl pull` through the
// CRI, as kubelet would.
type containerdRunner struct {
	kit     string // the conformance kit: containerd-up.sh, containerd-down.sh
	binDir  string // holds containerd and containerd-shim-runc-v2
	crictl  string
	host    string // the local registry, 127.0.0.1:PORT
	workDir string
}

func (r *containerdRunner) name() string { return "containerd" }

func (r *containerdRunner) version(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, filepath.Join(r.binDir, "containerd"), "--version").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

func (r *containerdRunner) env(dir, state string) []string {
	return append(os.Environ(),
		"CONTAINERD_BIN_DIR="+r.binDir,
		"CRICTL="+r.crictl,
		"REF_ROOT="+filepath.Join(dir, "root"),
		"REF_STATE="+state,
		"REF_ETC="+filepath.Join(dir, "etc"),
		"REGISTRY="+r.host,
		// No pod runs, so no bridge is ever created; still, a name and
		// subnet of our own keep clear of the conformance runs.
		"BRIDGE=pdbench0",
		"SUBNET=10.79.0.0/24",
		"LOG_LEVEL=warn",
	)
}

func (r *containerdRunner) pull(ctx context.Context, run int, image string) (result, error) {
	res := result{Runtime: r.name(), Run: run}
	dir := filepath.Join(r.workDir, fmt.Sprintf("containerd-%d", run))
	// The registry is plain HTTP under its own name (not a mirror of a
	// public one): tell containerd, the same way registries.conf's
	// insecure = true tells peapod.
	hosts := filepath.Join(dir, "etc", "certs.d", r.host)
	if err := os.MkdirAll(hosts, 0o755); err != nil {
		return res, err
	}
	hostsToml := fmt.Sprintf("server = \"http://%s\"\n\n[host.\"http://%s\"]\n  capabilities = [\"pull\", \"resolve\"]\n  skip_verify = true\n", r.host, r.host)
	if err := os.WriteFile(filepath.Join(hosts, "hosts.toml"), []byte(hostsToml), 0o644); err != nil {
		return res, err
	}
	// The state directory is under /run, as in production, and short:
	// containerd refuses a shim socket directory longer than 42 bytes.
	state, err := os.MkdirTemp("/run", "pdbench-")
	if err != nil {
		return res, err
	}
	env := r.env(dir, state)
	defer func() {
		r.down(env, state)
		unmountUnder(state)
		os.RemoveAll(state)
		unmountUnder(dir) // the root stays until the bench ends (see run)
	}()

	up := exec.CommandContext(ctx, filepath.Join(r.kit, "containerd-up.sh"))
	up.Env = env
	var stderr strings.Builder
	up.Stderr = &stderr
	out, err := up.Output()
	if err != nil {
		return res, fmt.Errorf("containerd-up.sh: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	endpoint := lines[len(lines)-1]
	pid, err := readPid(filepath.Join(state, "containerd.pid"))
	if err != nil {
		return res, err
	}
	// containerd-up.sh returns when the socket exists; the CRI plugin may
	// still be loading. Wait until crictl gets an answer, then measure.
	crictlConf := filepath.Join(dir, "crictl.yaml")
	if err := os.WriteFile(crictlConf, fmt.Appendf(nil, "runtime-endpoint: %s\nimage-endpoint: %s\ntimeout: 30\n", endpoint, endpoint), 0o644); err != nil {
		return res, err
	}
	if err := r.waitCRI(ctx, crictlConf); err != nil {
		return res, fmt.Errorf("%w; containerd log:\n%s", err, tail(filepath.Join(dir, "root", "containerd.log"), 20))
	}
	if res.IdleRSSKiB, err = procMemKiB(pid, "VmRSS"); err != nil {
		return res, err
	}
	cpu0, err := procCPU(pid)
	if err != nil {
		return res, err
	}

	cli := exec.CommandContext(ctx, r.crictl, "--config", crictlConf, "pull", image)
	start := time.Now()
	cout, err := cli.CombinedOutput()
	res.Wall = time.Since(start)
	if err != nil {
		return res, fmt.Errorf("crictl pull %s: %w: %s", image, err, strings.TrimSpace(string(cout)))
	}
	if res.PeakRSSKiB, err = procMemKiB(pid, "VmHWM"); err != nil {
		return res, err
	}
	cpu1, err := procCPU(pid)
	if err != nil {
		return res, err
	}
	res.CPU = cpu1 - cpu0
	if res.DiskBytes, err = diskUsage(filepath.Join(dir, "root")); err != nil {
		return res, err
	}
	return res, nil
}

func (r *containerdRunner) waitCRI(ctx context.Context, crictlConf string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		cmd := exec.CommandContext(ctx, r.crictl, "--config", crictlConf, "images", "-q")
		out, err := cmd.CombinedOutput()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("containerd CRI not ready: %v: %s", err, strings.TrimSpace(string(out)))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// down stops the containerd of one run, with the kit's script first, then
// by its pid if it is still there. It runs during cleanup, so it does not
// take the (possibly cancelled) run context.
func (r *containerdRunner) down(env []string, state string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pidFile := filepath.Join(state, "containerd.pid")
	pid, pidErr := readPid(pidFile)
	cmd := exec.CommandContext(ctx, filepath.Join(r.kit, "containerd-down.sh"))
	cmd.Env = env
	_ = cmd.Run()
	if pidErr == nil && !waitExit(ctx, pid, 10*time.Second) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		waitExit(ctx, pid, 5*time.Second)
	}
}

func readPid(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return pid, nil
}

// tail returns the last n lines of a file, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
