package testdaemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/peapod/peapod/internal/procfs"
)

// ContainerdOptions describe a reference containerd started by the
// conformance kit's containerd-up.sh (../shared/conformance).
type ContainerdOptions struct {
	// Kit holds containerd-up.sh and containerd-down.sh.
	Kit string
	// BinDir holds containerd, its shim and crictl.
	BinDir string
	// Crictl is the crictl the kit's scripts use; BinDir/crictl if empty.
	Crictl string
	// Root and Etc are the daemon's root and configuration directories;
	// a caller may put certs.d/HOST/hosts.toml into Etc beforehand.
	Root, Etc string
	// State defaults to a new directory under /run (short: containerd
	// refuses a shim socket directory longer than 42 bytes), which Close
	// removes.
	State string
	// Registry is the local registry the kit mirrors the public names to.
	Registry string
	// Bridge and Subnet are the CNI network's; defaults as for Options.
	Bridge, Subnet string
	// LogLevel is containerd's; "warn" if empty.
	LogLevel string
	// StartTimeout bounds the wait for the CRI to answer (30 s).
	StartTimeout time.Duration
}

// Containerd is a running reference containerd.
type Containerd struct {
	Endpoint string // unix:///... CRI endpoint
	Pid      int
	Root     string
	State    string
	Bridge   string
	Subnet   string

	opts     ContainerdOptions
	env      []string
	ownState bool
}

// StartContainerd runs containerd-up.sh and waits until the CRI answers.
func StartContainerd(ctx context.Context, opts ContainerdOptions) (*Containerd, error) {
	if _, err := os.Stat(filepath.Join(opts.BinDir, "containerd")); err != nil {
		return nil, fmt.Errorf("start containerd: %w (build containerd 2.4.2 with `REF=1 %s/tools.sh`)", err, opts.Kit)
	}
	d := &Containerd{opts: opts, Root: opts.Root, State: opts.State, Bridge: opts.Bridge, Subnet: opts.Subnet}
	if d.State == "" {
		state, err := os.MkdirTemp("/run", "pdctrd-")
		if err != nil {
			return nil, fmt.Errorf("start containerd: %w", err)
		}
		d.State, d.ownState = state, true
	}
	if d.Bridge == "" {
		d.Bridge = fmt.Sprintf("ppc%08x", randUint32())
	}
	if d.Subnet == "" {
		d.Subnet = freeSubnet()
	}
	level := opts.LogLevel
	if level == "" {
		level = "warn"
	}
	crictl := opts.Crictl
	if crictl == "" {
		crictl = filepath.Join(opts.BinDir, "crictl")
	}
	d.env = append(os.Environ(),
		"CONTAINERD_BIN_DIR="+opts.BinDir,
		"CRICTL="+crictl,
		"REF_ROOT="+d.Root,
		"REF_STATE="+d.State,
		"REF_ETC="+opts.Etc,
		"REGISTRY="+opts.Registry,
		"BRIDGE="+d.Bridge,
		"SUBNET="+d.Subnet,
		"LOG_LEVEL="+level,
	)
	up := exec.CommandContext(ctx, filepath.Join(opts.Kit, "containerd-up.sh"))
	up.Env = d.env
	var stderr strings.Builder
	up.Stderr = &stderr
	out, err := up.Output()
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("containerd-up.sh: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	d.Endpoint = lines[len(lines)-1]
	if d.Pid, err = readPid(filepath.Join(d.State, "containerd.pid")); err != nil {
		d.Close()
		return nil, fmt.Errorf("start containerd: %w", err)
	}
	timeout := opts.StartTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	// containerd-up.sh returns when the socket exists; the CRI plugin may
	// still be loading.
	if err := waitCRI(ctx, d.Endpoint, nil, timeout); err != nil {
		d.Close()
		return nil, fmt.Errorf("containerd: %w\n%s", err, Tail(filepath.Join(d.Root, "containerd.log"), 20))
	}
	return d, nil
}

// Version is `containerd --version`.
func (d *Containerd) Version(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, filepath.Join(d.opts.BinDir, "containerd"), "--version").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// Close stops containerd with containerd-down.sh, then by its pid if it is
// still there, reaps what its pods left (see Reap) and removes the state
// directory StartContainerd made. The root stays: it is the caller's.
func (d *Containerd) Close() error {
	// Cleanup must run even when the caller's context is cancelled.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pid := d.Pid
	if pid == 0 {
		pid, _ = readPid(filepath.Join(d.State, "containerd.pid"))
	}
	down := exec.CommandContext(ctx, filepath.Join(d.opts.Kit, "containerd-down.sh"))
	down.Env = d.env
	downErr := down.Run()
	var err error
	if pid > 0 && !waitExit(ctx, pid, 10*time.Second) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		waitExit(ctx, pid, 5*time.Second)
		err = fmt.Errorf("stop containerd %d: killed (containerd-down.sh: %v)", pid, downErr)
	}
	Reap([]string{d.Root, d.State}, d.Bridge, d.Subnet)
	if d.ownState {
		os.RemoveAll(d.State)
	}
	return err
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

// waitExit waits up to d for a process that is not our child to go away;
// a zombie counts as gone.
func waitExit(ctx context.Context, pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return true
		}
		if st, err := procfs.ReadStat(pid); err == nil && st.Exited() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
	return false
}
