package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/peapod/peapod/internal/procfs"
	"github.com/peapod/peapod/internal/testdaemon"
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
	// Close leaves the root: it stays until the bench ends (see run).
	d, err := testdaemon.StartContainerd(ctx, testdaemon.ContainerdOptions{
		Kit:      r.kit,
		BinDir:   r.binDir,
		Crictl:   r.crictl,
		Root:     filepath.Join(dir, "root"),
		Etc:      filepath.Join(dir, "etc"),
		Registry: r.host,
		// No pod runs, so no bridge is ever created; still, a name and
		// subnet of our own keep clear of the conformance runs.
		Bridge:   "pdbench0",
		Subnet:   "10.79.0.0/24",
		LogLevel: "warn",
	})
	if err != nil {
		return res, err
	}
	defer d.Close()
	crictlConf := filepath.Join(dir, "crictl.yaml")
	if err := os.WriteFile(crictlConf, fmt.Appendf(nil, "runtime-endpoint: %s\nimage-endpoint: %s\ntimeout: 30\n", d.Endpoint, d.Endpoint), 0o644); err != nil {
		return res, err
	}
	if res.IdleRSSKiB, err = procfs.StatusKiB(d.Pid, "VmRSS"); err != nil {
		return res, err
	}
	cpu0, err := procCPU(d.Pid)
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
	if res.PeakRSSKiB, err = procfs.StatusKiB(d.Pid, "VmHWM"); err != nil {
		return res, err
	}
	cpu1, err := procCPU(d.Pid)
	if err != nil {
		return res, err
	}
	res.CPU = cpu1 - cpu0
	if res.DiskBytes, err = diskUsage(d.Root); err != nil {
		return res, err
	}
	return res, nil
}
