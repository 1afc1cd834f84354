// Package e2e runs the built peapod binary as a user would: a real daemon
// with its own root, state and configuration in a temporary directory, and
// the CLI against it.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// peapodBin is the binary under test: $PEAPOD_BIN (set by `make test`), or
// one built from this tree in TestMain.
var peapodBin string

func TestMain(m *testing.M) {
	peapodBin = os.Getenv("PEAPOD_BIN")
	var tmp string
	if peapodBin == "" {
		var err error
		tmp, err = os.MkdirTemp("", "peapod-e2e-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		peapodBin = filepath.Join(tmp, "peapod")
		cmd := exec.Command("go", "build", "-o", peapodBin, "github.com/peapod/peapod/cmd/peapod")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build peapod:", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	if tmp != "" {
		os.RemoveAll(tmp)
	}
	os.Exit(code)
}

// Daemon is a running `peapod daemon` with its own directories.
type Daemon struct {
	t      testing.TB
	Dir    string // holds root/, state/, peapod.toml, the log
	Root   string
	State  string
	Config string
	Host   string // unix:///.../state/api.sock
	cmd    *exec.Cmd
	env    []string
	log    *bytes.Buffer
	done   chan error
}

// DaemonOptions adjust a test daemon. The TOML text is appended to a
// configuration that already isolates the daemon (its own CNI conf dir,
// bridge and auth files); keys given here must not repeat those tables'
// keys, so pass whole [image] etc. contents through the fields instead.
type DaemonOptions struct {
	// Image is the body of the [image] table (keys only).
	Image string
	// Env is added to the daemon's environment ("KEY=value"), e.g. the
	// pod manager's test setting PEAPOD_TEST_BACKOFF.
	Env []string
}

// StartDaemon starts a daemon and waits until its API answers. It is
// stopped, and its directories removed, when the test ends.
func StartDaemon(t testing.TB, opts DaemonOptions) *Daemon {
	t.Helper()
	dir, err := os.MkdirTemp("", "peapod-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{
		t:      t,
		Dir:    dir,
		Root:   filepath.Join(dir, "root"),
		State:  filepath.Join(dir, "state"),
		Config: filepath.Join(dir, "peapod.toml"),
		log:    &bytes.Buffer{},
		done:   make(chan error, 1),
		env:    opts.Env,
	}
	d.Host = "unix://" + filepath.Join(d.State, "api.sock")
	image := opts.Image
	if !strings.Contains(image, "registries_config") {
		image += fmt.Sprintf("\nregistries_config = %q", filepath.Join(dir, "registries.conf"))
	}
	if !strings.Contains(image, "certs_dir") {
		image += fmt.Sprintf("\ncerts_dir = %q", filepath.Join(dir, "certs.d"))
	}
	if !strings.Contains(image, "auth_files") {
		image += "\nauth_files = [\"ROOT/config.json\"]"
	}
	bridge := uniqueBridge()
	cfg := fmt.Sprintf("[image]\n%s\n[network]\ncni_conf_dir = %q\nbridge = %q\nsubnet = %q\n",
		image, filepath.Join(dir, "cni"), bridge, "10.201.0.0/24")
	if err := os.WriteFile(d.Config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.Stop()
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.log.String())
		}
		reapPods(dir, bridge)
		os.RemoveAll(dir)
	})
	d.start()
	return d
}

func (d *Daemon) start() {
	d.t.Helper()
	d.cmd = exec.Command(peapodBin, "daemon", "--root", d.Root, "--state", d.State, "--config", d.Config, "--log-level", "debug")
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if len(d.env) > 0 {
		d.cmd.Env = append(os.Environ(), d.env...)
	}
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.done = make(chan error, 1)
	go func(cmd *exec.Cmd, done chan error) { done <- cmd.Wait() }(d.cmd, d.done)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, _, err := d.Run("version"); err == nil {
			return
		}
		select {
		case err := <-d.done:
			d.t.Fatalf("daemon exited: %v\n%s", err, d.log.String())
		default:
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("daemon did not answer within 30s:\n%s", d.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop ends the daemon with SIGTERM (SIGKILL after 10 s).
func (d *Daemon) Stop() {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	_ = d.cmd.Process.Signal(os.Interrupt)
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
	}
	d.cmd = nil
}

// Log returns what the daemon printed so far.
func (d *Daemon) Log() string { return d.log.String() }

// Run runs the CLI against this daemon and returns stdout, stderr and the
// error (an *exec.ExitError for a non-zero exit).
func (d *Daemon) Run(args ...string) (string, string, error) {
	return d.RunInput("", args...)
}

// RunInput is Run with standard input.
func (d *Daemon) RunInput(stdin string, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, peapodBin, args...)
	cmd.Env = append(os.Environ(), "PEAPOD_HOST="+d.Host, "HOME="+filepath.Join(d.Dir, "home"))
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// MustRun is Run that fails the test on a non-zero exit.
func (d *Daemon) MustRun(args ...string) string {
	d.t.Helper()
	out, errOut, err := d.Run(args...)
	if err != nil {
		d.t.Fatalf("peapod %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// uniqueBridge names a bridge no other test daemon uses (at most 15
// characters, the kernel's limit).
func uniqueBridge() string {
	return fmt.Sprintf("ppe%08x", rand.Uint32())
}

// reapPods removes what a test daemon's pods leave behind once the daemon has
// stopped (pods outlive the daemon by design): their containers and
// monitors, every mount under dir (rootfs overlays, shm and volume tmpfs,
// pinned network namespaces, whose veths go with them) and the bridge.
func reapPods(dir, bridge string) {
	runcRoot := filepath.Join(dir, "state", "runtime", "runc")
	if ents, err := os.ReadDir(runcRoot); err == nil {
		for _, e := range ents {
			_ = exec.Command("runc", "--root", runcRoot, "kill", "--all", e.Name(), "KILL").Run()
			_ = exec.Command("runc", "--root", runcRoot, "delete", "--force", e.Name()).Run()
		}
	}
	_ = exec.Command("pkill", "-KILL", "-f", "conmon .*"+regexp.QuoteMeta(dir)).Run()
	if data, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		var mounts []string
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
				mounts = append(mounts, f[4])
			}
		}
		for i := len(mounts) - 1; i >= 0; i-- {
			_ = syscall.Unmount(mounts[i], syscall.MNT_DETACH)
		}
	}
	_ = exec.Command("ip", "link", "del", bridge).Run()
}
