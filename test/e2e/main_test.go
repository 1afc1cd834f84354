// Package e2e runs the built peapod binary as a user would: a real daemon
// with its own root, state and configuration in a temporary directory, and
// the CLI against it.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/peapod/peapod/internal/testdaemon"
)

// peapodBin is the binary under test: $PEAPOD_BIN (set by `make test`), or
// one built from this tree in TestMain.
var peapodBin string

func TestMain(m *testing.M) {
	// Pods of an earlier run that died without its cleanups (a -timeout
	// panic, a kill) are removed before this one starts.
	for _, dir := range testdaemon.ReapStale("peapod-e2e-") {
		fmt.Fprintln(os.Stderr, "reaped what a dead earlier run left in", dir)
	}
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

// Daemon is a running `peapod daemon` with its own directories, CNI
// configuration directory, bridge and subnet (see internal/testdaemon),
// and the CLI pointed at it.
type Daemon struct {
	t      testing.TB
	Dir    string // holds root/, state/, peapod.toml, registries.conf, certs.d/
	Root   string
	State  string
	Config string
	Host   string // unix:///.../state/api.sock
	// CgroupRoot is the daemon's own [kubelet] cgroup_root.
	CgroupRoot string
	td         *testdaemon.Daemon
}

// DaemonOptions adjust a test daemon.
type DaemonOptions struct {
	// Image is the body of the [image] table (keys only); the daemon's
	// own registries.conf, certs.d and auth file are filled in for the
	// keys it does not set.
	Image string
	// Env is added to the daemon's environment ("KEY=value"), e.g. the
	// pod manager's test setting PEAPOD_TEST_BACKOFF.
	Env []string
}

// StartDaemon starts a daemon and waits until its API answers. It is
// stopped, what its pods left is reaped and its directories are removed
// when the test ends.
func StartDaemon(t testing.TB, opts DaemonOptions) *Daemon {
	t.Helper()
	td := testdaemon.StartTB(t, testdaemon.Options{
		Bin:         peapodBin,
		Prefix:      "peapod-e2e-",
		Image:       opts.Image,
		Env:         opts.Env,
		StopTimeout: 10 * time.Second,
	})
	return &Daemon{t: t, Dir: td.Dir, Root: td.Root, State: td.State, Config: td.Config, Host: "unix://" + td.APISocket(), CgroupRoot: td.CgroupRoot, td: td}
}

// start starts the stopped daemon again on the same directories.
func (d *Daemon) start() {
	d.t.Helper()
	if err := d.td.Start(context.Background()); err != nil {
		d.t.Fatal(err)
	}
}

// Stop ends the daemon with SIGTERM (SIGKILL after 10 s); its pods keep
// running.
func (d *Daemon) Stop() {
	if err := d.td.Stop(); err != nil {
		d.t.Log(err)
	}
}

// Log returns what the daemon printed so far.
func (d *Daemon) Log() string { return d.td.Log() }

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
