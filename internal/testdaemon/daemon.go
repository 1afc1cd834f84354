// Package testdaemon starts the daemons that tests and benchmarks run
// against, `peapod daemon` and the reference containerd, each with
// directories, a CNI configuration directory, a bridge and a subnet of its
// own, and removes everything they and their pods leave behind.
//
// Pods outlive a stopped peapod daemon by design (as containers outlive a
// restarted containerd), so stopping the process is not enough: Reap kills
// the pods' containers and monitors, detaches their mounts and network
// namespaces and removes the bridge and the NAT rules the CNI plugins added
// for the daemon's subnet. Tests use StartTB, which ties all of that to
// t.Cleanup; benchmarks, which have no testing.TB, use Start and Close.
package testdaemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Options describe a peapod daemon. Only Bin is required; every directory,
// the bridge and the subnet default to ones no other daemon uses.
type Options struct {
	// Bin is the peapod binary.
	Bin string
	// Dir holds the configuration, and Root and State unless they are
	// given. Empty: a new temporary directory named after Prefix, which
	// Close removes. A Dir given here is the caller's to remove.
	Dir    string
	Prefix string // os.MkdirTemp pattern for Dir; "peapod-daemon-" if empty
	// Root and State default to Dir/root and Dir/state. A State given
	// here (e.g. a short one under /run for attach sockets) is the
	// caller's to remove.
	Root, State string

	// Image is the body of the [image] table (keys only). registries_config,
	// certs_dir and auth_files default to Dir/registries.conf, Dir/certs.d
	// and ["ROOT/config.json"] unless the body sets them.
	Image string
	// Registries, when not empty, is written to Dir/registries.conf.
	Registries string
	// Network is more of the [network] table's body; cni_conf_dir
	// (Dir/cni), bridge and subnet are always set.
	Network string
	// Bridge and Subnet default to a random bridge name and a random /24
	// in 10.200.0.0/13 that no route of the machine covers.
	Bridge, Subnet string
	// Extra is appended to the configuration: whole tables, e.g. [runtime].
	Extra string

	// Env is added to the daemon's environment ("KEY=value").
	Env []string
	// LogLevel is --log-level; "debug" if empty.
	LogLevel string
	// LogFile receives the daemon's output; empty keeps it in memory.
	// Either way Log returns it.
	LogFile string
	// Detach runs the daemon in a process group of its own (a Ctrl-C in
	// a terminal reaches only the caller, which stops it in order) and
	// kills it if the caller dies.
	Detach bool
	// WaitCRI makes Start also wait for an answer on the CRI socket, not
	// only for the API socket to accept connections.
	WaitCRI bool
	// RemovePods makes Close remove every CRI pod through the daemon
	// before stopping it, so that the pods' teardown (CNI DEL, unmounts)
	// runs as in production; Reap still sweeps what is left.
	RemovePods bool
	// StartTimeout bounds the wait for the sockets (30 s); StopTimeout
	// the wait after SIGTERM before SIGKILL (15 s).
	StartTimeout, StopTimeout time.Duration
}

// Daemon is a peapod daemon process and everything it owns on the machine.
// Its directories, bridge and subnet stay the same across Stop and Start,
// so a test can restart it over its pods.
type Daemon struct {
	Dir, Root, State string
	Config           string // peapod.toml
	Bridge, Subnet   string
	// CgroupRoot is the daemon's own [kubelet] cgroup_root: its pod
	// cgroups are made below it, and Close removes it.
	CgroupRoot string

	opts   Options
	ownDir bool

	mu   sync.Mutex
	log  bytes.Buffer
	cmd  *exec.Cmd
	done chan struct{}
}

// New writes the daemon's configuration and creates its directories but
// does not start it.
func New(opts Options) (*Daemon, error) {
	if opts.Bin == "" {
		return nil, errors.New("test daemon: no peapod binary")
	}
	d := &Daemon{opts: opts, Dir: opts.Dir, Root: opts.Root, State: opts.State, Bridge: opts.Bridge, Subnet: opts.Subnet}
	if d.Dir == "" {
		prefix := opts.Prefix
		if prefix == "" {
			prefix = "peapod-daemon-"
		}
		dir, err := os.MkdirTemp("", prefix)
		if err != nil {
			return nil, fmt.Errorf("test daemon: %w", err)
		}
		d.Dir, d.ownDir = dir, true
		if err := writeOwner(dir); err != nil {
			d.removeDirs()
			return nil, fmt.Errorf("test daemon: %w", err)
		}
	} else if err := os.MkdirAll(d.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("test daemon: %w", err)
	}
	if d.Root == "" {
		d.Root = filepath.Join(d.Dir, "root")
	}
	if d.State == "" {
		d.State = filepath.Join(d.Dir, "state")
	}
	if d.Bridge == "" {
		d.Bridge = fmt.Sprintf("ppd%08x", randUint32())
	}
	if d.Subnet == "" {
		d.Subnet = freeSubnet()
	}
	d.CgroupRoot = fmt.Sprintf("/peapod-test-%08x", randUint32())
	d.Config = filepath.Join(d.Dir, "peapod.toml")
	if opts.Registries != "" {
		if err := os.WriteFile(filepath.Join(d.Dir, "registries.conf"), []byte(opts.Registries), 0o644); err != nil {
			d.removeDirs()
			return nil, fmt.Errorf("test daemon: %w", err)
		}
	}
	if err := os.WriteFile(d.Config, []byte(d.configText()), 0o644); err != nil {
		d.removeDirs()
		return nil, fmt.Errorf("test daemon: %w", err)
	}
	return d, nil
}

// configText isolates the daemon: registries, certificates, credentials
// and CNI configuration of its own, and its own bridge and subnet.
func (d *Daemon) configText() string {
	image := d.opts.Image
	if !strings.Contains(image, "registries_config") {
		image += fmt.Sprintf("\nregistries_config = %q", filepath.Join(d.Dir, "registries.conf"))
	}
	if !strings.Contains(image, "certs_dir") {
		image += fmt.Sprintf("\ncerts_dir = %q", filepath.Join(d.Dir, "certs.d"))
	}
	if !strings.Contains(image, "auth_files") {
		image += "\nauth_files = [\"ROOT/config.json\"]"
	}
	// The pod cgroups go below a root of this daemon's own (Close removes
	// it): in the [kubelet] table Extra brings, or in one of its own.
	extra, kubelet := d.opts.Extra, fmt.Sprintf("cgroup_root = %q\n", d.CgroupRoot)
	if strings.Contains(extra, "[kubelet]\n") {
		extra = strings.Replace(extra, "[kubelet]\n", "[kubelet]\n"+kubelet, 1)
	} else {
		extra += "\n[kubelet]\n" + kubelet
	}
	return fmt.Sprintf("[image]\n%s\n\n[network]\ncni_conf_dir = %q\nbridge = %q\nsubnet = %q\n%s\n%s",
		strings.TrimSpace(image), filepath.Join(d.Dir, "cni"), d.Bridge, d.Subnet, d.opts.Network, extra)
}

// Start creates a daemon with New and starts it.
func Start(ctx context.Context, opts Options) (*Daemon, error) {
	d, err := New(opts)
	if err != nil {
		return nil, err
	}
	if err := d.Start(ctx); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// TB is the part of testing.TB that StartTB uses.
type TB interface {
	Helper()
	Cleanup(func())
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	Failed() bool
}

// StartTB starts a daemon for a test and closes it when the test ends,
// printing its log if the test failed.
func StartTB(t TB, opts Options) *Daemon {
	t.Helper()
	d, err := New(opts)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.Log())
		}
	})
	if err := d.Start(context.Background()); err != nil {
		t.Fatalf("%v", err)
	}
	return d
}

// APISocket is the path of the daemon's API socket (PEAPOD_HOST).
func (d *Daemon) APISocket() string { return filepath.Join(d.State, "api.sock") }

// CRISocket is the path of the daemon's CRI socket.
func (d *Daemon) CRISocket() string { return filepath.Join(d.State, "peapod.sock") }

// CRIEndpoint is CRISocket as a CRI client names it.
func (d *Daemon) CRIEndpoint() string { return "unix://" + d.CRISocket() }

// Pid is the daemon's process id, 0 when it is not running.
func (d *Daemon) Pid() int {
	if d.cmd == nil || d.cmd.Process == nil {
		return 0
	}
	return d.cmd.Process.Pid
}

// Exited is closed when the running daemon's process has exited.
func (d *Daemon) Exited() <-chan struct{} { return d.done }

// Write collects the daemon's output when it has no LogFile.
func (d *Daemon) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log.Write(p)
}

// Log is what the daemon printed so far, over all its starts.
func (d *Daemon) Log() string {
	if d.opts.LogFile != "" {
		b, err := os.ReadFile(d.opts.LogFile)
		if err != nil {
			return err.Error()
		}
		return string(b)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log.String()
}

// Start starts the daemon process (again, after Stop) and waits until its
// API socket accepts connections and, with WaitCRI, its CRI socket answers.
func (d *Daemon) Start(ctx context.Context) error {
	level := d.opts.LogLevel
	if level == "" {
		level = "debug"
	}
	// Not CommandContext: the daemon is stopped with SIGTERM by Stop, so
	// that it shuts down as in production, whatever ends the caller's run.
	cmd := exec.Command(d.opts.Bin, "daemon", "--root", d.Root, "--state", d.State, "--config", d.Config, "--log-level", level)
	if d.opts.LogFile != "" {
		f, err := os.OpenFile(d.opts.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("start peapod daemon: %w", err)
		}
		defer f.Close()
		cmd.Stdout, cmd.Stderr = f, f
	} else {
		cmd.Stdout, cmd.Stderr = d, d
	}
	if len(d.opts.Env) > 0 {
		cmd.Env = append(os.Environ(), d.opts.Env...)
	}
	if d.opts.Detach {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start peapod daemon: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	d.cmd, d.done = cmd, done
	timeout := d.opts.StartTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	err := waitSocket(ctx, d.APISocket(), done, timeout)
	if err == nil && d.opts.WaitCRI {
		err = waitCRI(ctx, d.CRIEndpoint(), done, timeout)
	}
	if err != nil {
		_ = d.Stop()
		return fmt.Errorf("peapod daemon in %s: %w\n%s", d.Dir, err, lastLines(d.Log(), 40))
	}
	return nil
}

// Stop ends the daemon with SIGTERM, and SIGKILL after StopTimeout. Its
// pods keep running; see Reap.
func (d *Daemon) Stop() error {
	if d.cmd == nil || d.cmd.Process == nil {
		return nil
	}
	defer func() { d.cmd = nil }()
	timeout := d.opts.StopTimeout
	if timeout == 0 {
		timeout = 15 * time.Second
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		return nil
	case <-time.After(timeout):
		_ = d.cmd.Process.Kill()
		<-d.done
		return fmt.Errorf("stop peapod daemon in %s: killed, no exit %s after SIGTERM", d.Dir, timeout)
	}
}

// Close removes the pods (with RemovePods), stops the daemon, reaps what
// its pods left and removes the directories New made.
func (d *Daemon) Close() error {
	var errs []error
	if d.opts.RemovePods && d.cmd != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		errs = append(errs, RemovePods(ctx, d.CRIEndpoint()))
		cancel()
	}
	errs = append(errs, d.Stop())
	Reap(d.Dirs(), d.Bridge, d.Subnet)
	RemoveCgroups(d.CgroupRoot)
	d.removeDirs()
	return errors.Join(errs...)
}

// Dirs are the directories the daemon and its pods use.
func (d *Daemon) Dirs() []string {
	return []string{d.Dir, d.Root, d.State}
}

func (d *Daemon) removeDirs() {
	if d.ownDir {
		Unmount(d.Dir)
		os.RemoveAll(d.Dir)
	}
}

// lastLines is the end of a log, for an error message.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// Tail is the last n lines of a file, or the error reading it, for an
// error message.
func Tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return lastLines(string(b), n)
}
