package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/peapod/peapod/internal/testdaemon"
)

// Networks of the two daemons: their own bridges and subnets, clear of the
// conformance kit's (refctrd0, 10.77.0.0/24), bench/pull's and the tests'
// (10.200.0.0/13).
const (
	peapodBridge     = "pdpodp0"
	peapodSubnet     = "10.74.0.0/24"
	containerdBridge = "pdpodc0"
	containerdSubnet = "10.75.0.0/24"
)

// peapodDaemon is `peapod daemon` with a configuration of its own.
type peapodDaemon struct {
	*testdaemon.Daemon
	bin string
}

// startPeapod starts the daemon with registry.k8s.io, gcr.io, k8s.gcr.io
// and docker.io mirrored to the local registry (as the conformance kit
// expects), its root under roots and its state under /run (short: attach
// socket paths must fit in 108 bytes).
func startPeapod(ctx context.Context, bin, registry, work, roots string) (*peapodDaemon, error) {
	state, err := os.MkdirTemp("/run", "pdpod-")
	if err != nil {
		return nil, err
	}
	var rc strings.Builder
	fmt.Fprintf(&rc, "[[registry]]\nlocation = %q\ninsecure = true\n", registry)
	for _, h := range []string{"registry.k8s.io", "gcr.io", "k8s.gcr.io", "docker.io"} {
		fmt.Fprintf(&rc, "\n[[registry]]\nprefix = %q\nlocation = %q\n[[registry.mirror]]\nlocation = %q\ninsecure = true\n", h, h, registry)
	}
	logPath := filepath.Join(work, "peapod-daemon.log")
	d, err := testdaemon.Start(ctx, testdaemon.Options{
		Bin:        bin,
		Dir:        filepath.Join(work, "peapod"),
		Root:       filepath.Join(roots, "peapod-root"),
		State:      state,
		Registries: rc.String(),
		Image:      "auth_files = []",
		Network:    `cni_bin_dirs = ["/usr/lib/cni"]`,
		Bridge:     peapodBridge,
		Subnet:     peapodSubnet,
		Extra:      "[runtime]\nrunc = \"/usr/sbin/runc\"\nconmon = \"/usr/bin/conmon\"\n",
		LogLevel:   "warn",
		LogFile:    logPath,
		Detach:     true,
		WaitCRI:    true,
		RemovePods: true,
	})
	if err != nil {
		os.RemoveAll(state)
		return nil, fmt.Errorf("%w (log %s)", err, logPath)
	}
	return &peapodDaemon{Daemon: d, bin: bin}, nil
}

func (d *peapodDaemon) name() string     { return "peapod" }
func (d *peapodDaemon) endpoint() string { return d.CRIEndpoint() }
func (d *peapodDaemon) pid() int         { return d.Pid() }
func (d *peapodDaemon) dirs() []string   { return []string{d.Root, d.State} }
func (d *peapodDaemon) version() string {
	return firstLine(d.bin, "version", "--host", "unix:///nonexistent")
}

// stop removes every pod the benchmark left (pods outlive the daemon),
// stops the daemon, reaps what is left and removes its state.
func (d *peapodDaemon) stop() {
	if err := d.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/pod: stop peapod:", err)
	}
	os.RemoveAll(d.State)
}

// containerdDaemon is the conformance kit's containerd (containerd-up.sh).
type containerdDaemon struct {
	*testdaemon.Containerd
}

func startContainerd(ctx context.Context, kit, binDir, registry, work, roots string) (*containerdDaemon, error) {
	d, err := testdaemon.StartContainerd(ctx, testdaemon.ContainerdOptions{
		Kit:      kit,
		BinDir:   binDir,
		Root:     filepath.Join(roots, "containerd-root"),
		Etc:      filepath.Join(work, "containerd-etc"),
		Registry: registry,
		Bridge:   containerdBridge,
		Subnet:   containerdSubnet,
	})
	if err != nil {
		return nil, err
	}
	return &containerdDaemon{Containerd: d}, nil
}

func (d *containerdDaemon) name() string     { return "containerd" }
func (d *containerdDaemon) endpoint() string { return d.Endpoint }
func (d *containerdDaemon) pid() int         { return d.Pid }
func (d *containerdDaemon) dirs() []string   { return []string{d.Root, d.State} }
func (d *containerdDaemon) version() string  { return d.Version(context.Background()) }

func (d *containerdDaemon) stop() {
	if err := d.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/pod: stop containerd:", err)
	}
}
