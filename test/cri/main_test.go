// Package cri drives a real `peapod daemon` through its CRI socket, as a
// kubelet would, with a gRPC client and with crictl v1.37.0 (built from the
// Go module proxy by tools.sh in TestMain): a real registry on loopback,
// runc, conmon and CNI underneath.
package cri

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

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/peapod/peapod/internal/testdaemon"
)

var (
	// peapodBin is $PEAPOD_BIN (set by `make test`) or built in TestMain.
	peapodBin string
	// crictlBin is crictl v1.37.0, built by tools.sh when missing.
	crictlBin string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	// Pods of an earlier run that died without its cleanups (a -timeout
	// panic, a kill) are removed before this one starts.
	for _, dir := range testdaemon.ReapStale("peapod-cri-") {
		fmt.Fprintln(os.Stderr, "reaped what a dead earlier run left in", dir)
	}
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	peapodBin = os.Getenv("PEAPOD_BIN")
	if peapodBin == "" {
		tmp, err := os.MkdirTemp("", "peapod-cri-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(tmp)
		peapodBin = filepath.Join(tmp, "peapod")
		cmd := exec.Command("go", "build", "-o", peapodBin, "github.com/peapod/peapod/cmd/peapod")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build peapod:", err)
			return 1
		}
	}
	bin := filepath.Join(root, "_output", "bin")
	cmd := exec.Command(filepath.Join(root, "test", "cri", "tools.sh"), bin)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build crictl with test/cri/tools.sh:", err)
		return 1
	}
	crictlBin = filepath.Join(bin, "crictl")
	return m.Run()
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside the peapod module")
	}
	return filepath.Dir(gomod), nil
}

// Daemon is a running `peapod daemon` with its own directories, CNI
// configuration directory, bridge and /24 subnet (see internal/testdaemon),
// and a CRI client connected to it.
type Daemon struct {
	*testdaemon.Daemon
	t        testing.TB
	Socket   string // the CRI socket
	Endpoint string // unix://Socket

	RT  runtimeapi.RuntimeServiceClient
	IMG runtimeapi.ImageServiceClient
}

// DaemonOptions adjust a test daemon.
type DaemonOptions struct {
	// Registries is the registries.conf text.
	Registries string
	// CertsDir fills certs_dir (per-registry CAs); empty means an empty
	// directory of the daemon's own.
	CertsDir string
}

// StartDaemon starts a daemon and waits until its CRI socket answers. When
// the test ends its pods are removed through the CRI (a daemon that stops
// leaves its pods running, as it should), it is stopped, what is left is
// reaped and its directories are removed.
func StartDaemon(t testing.TB, opts DaemonOptions) *Daemon {
	t.Helper()
	image := ""
	if opts.CertsDir != "" {
		image = fmt.Sprintf("certs_dir = %q", opts.CertsDir)
	}
	td := testdaemon.StartTB(t, testdaemon.Options{
		Bin:        peapodBin,
		Prefix:     "peapod-cri-",
		Image:      image,
		Registries: opts.Registries,
		WaitCRI:    true,
		RemovePods: true,
	})
	d := &Daemon{Daemon: td, t: t, Socket: td.CRISocket(), Endpoint: td.CRIEndpoint()}
	conn, err := grpc.NewClient(d.Endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	// Registered after the daemon's cleanup, so it runs before it.
	t.Cleanup(func() { conn.Close() })
	d.RT = runtimeapi.NewRuntimeServiceClient(conn)
	d.IMG = runtimeapi.NewImageServiceClient(conn)
	return d
}

// RemoveAllPods stops and removes every CRI sandbox of the daemon.
func (d *Daemon) RemoveAllPods() {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := testdaemon.RemovePods(ctx, d.Endpoint); err != nil {
		d.t.Errorf("remove all pods: %v", err)
	}
}

// Crictl runs crictl against this daemon and returns stdout, stderr and
// the error.
func (d *Daemon) Crictl(args ...string) (string, string, error) {
	return d.CrictlInput("", args...)
}

// CrictlInput is Crictl with standard input.
func (d *Daemon) CrictlInput(stdin string, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, crictlBin, append(d.CrictlArgs(), args...)...)
	cmd.Env = append(os.Environ(), "HOME="+d.Dir)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// CrictlArgs are crictl's global flags for this daemon: its own config
// file (so no crictl.yaml of the machine's changes the endpoints) and the
// CRI socket.
func (d *Daemon) CrictlArgs() []string {
	cfg := filepath.Join(d.Dir, "crictl.yaml")
	if _, err := os.Stat(cfg); err != nil {
		yaml := fmt.Sprintf("runtime-endpoint: %s\nimage-endpoint: %s\ntimeout: 60\n", d.Endpoint, d.Endpoint)
		if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
			d.t.Fatal(err)
		}
	}
	return []string{"--config", cfg, "--runtime-endpoint", d.Endpoint, "--image-endpoint", d.Endpoint, "--timeout", "60s"}
}

// MustCrictl is Crictl that fails the test on a non-zero exit and returns
// stdout without surrounding space.
func (d *Daemon) MustCrictl(args ...string) string {
	d.t.Helper()
	out, errOut, err := d.Crictl(args...)
	if err != nil {
		d.t.Fatalf("crictl %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return strings.TrimSpace(out)
}

// WriteFile writes a file into the daemon's directory and returns its path.
func (d *Daemon) WriteFile(name, content string) string {
	d.t.Helper()
	p := filepath.Join(d.Dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		d.t.Fatal(err)
	}
	return p
}
