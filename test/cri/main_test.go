// Package cri drives a real `peapod daemon` through its CRI socket, as a
// kubelet would, with a gRPC client and with crictl v1.37.0 (built from the
// Go module proxy by tools.sh in TestMain): a real registry on loopback,
// runc, conmon and CNI underneath.
package cri

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
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
// configuration directory, bridge and /24 subnet.
type Daemon struct {
	t        testing.TB
	Dir      string
	Root     string
	State    string
	Config   string
	Socket   string // the CRI socket
	Endpoint string // unix://Socket
	Subnet   string
	Bridge   string

	mu   sync.Mutex
	log  bytes.Buffer
	cmd  *exec.Cmd
	done chan error

	conn *grpc.ClientConn
	RT   runtimeapi.RuntimeServiceClient
	IMG  runtimeapi.ImageServiceClient
}

// DaemonOptions adjust a test daemon.
type DaemonOptions struct {
	// Registries is the registries.conf text.
	Registries string
	// CertsDir fills certs_dir (per-registry CAs); empty means an empty
	// directory of the daemon's own.
	CertsDir string
}

func (d *Daemon) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log.Write(p)
}

// Log is what the daemon printed so far.
func (d *Daemon) Log() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log.String()
}

// StartDaemon starts a daemon and waits until its CRI socket answers. It
// is stopped, and its directories removed, when the test ends.
func StartDaemon(t testing.TB, opts DaemonOptions) *Daemon {
	t.Helper()
	dir, err := os.MkdirTemp("", "peapod-cri-")
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{
		t:      t,
		Dir:    dir,
		Root:   filepath.Join(dir, "root"),
		State:  filepath.Join(dir, "state"),
		Config: filepath.Join(dir, "peapod.toml"),
		Bridge: fmt.Sprintf("ppc%08x", rand.Uint32()),
		Subnet: fmt.Sprintf("10.%d.%d.0/24", 203+rand.IntN(20), rand.IntN(256)),
	}
	d.Socket = filepath.Join(d.State, "peapod.sock")
	d.Endpoint = "unix://" + d.Socket
	regs := filepath.Join(dir, "registries.conf")
	if err := os.WriteFile(regs, []byte(opts.Registries), 0o644); err != nil {
		t.Fatal(err)
	}
	certs := opts.CertsDir
	if certs == "" {
		certs = filepath.Join(dir, "certs.d")
	}
	cfg := fmt.Sprintf(`[image]
registries_config = %q
certs_dir = %q
auth_files = ["ROOT/config.json"]
[network]
cni_conf_dir = %q
bridge = %q
subnet = %q
`, regs, certs, filepath.Join(dir, "cni"), d.Bridge, d.Subnet)
	if err := os.WriteFile(d.Config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// A daemon that stops leaves its pods running (as it should);
		// the test's pods must go with the test.
		d.RemoveAllPods()
		d.Stop()
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.Log())
		}
		// The bridge is the daemon's, made by the CNI plugin on the
		// first pod; nothing else removes it.
		_ = exec.Command("ip", "link", "del", d.Bridge).Run()
		os.RemoveAll(dir)
	})
	d.start()
	return d
}

func (d *Daemon) start() {
	d.t.Helper()
	d.cmd = exec.Command(peapodBin, "daemon", "--root", d.Root, "--state", d.State, "--config", d.Config, "--log-level", "debug")
	d.cmd.Stdout, d.cmd.Stderr = d, d
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.done = make(chan error, 1)
	go func(cmd *exec.Cmd, done chan error) { done <- cmd.Wait() }(d.cmd, d.done)
	conn, err := grpc.NewClient(d.Endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		d.t.Fatal(err)
	}
	d.conn = conn
	d.RT = runtimeapi.NewRuntimeServiceClient(conn)
	d.IMG = runtimeapi.NewImageServiceClient(conn)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := d.RT.Version(ctx, &runtimeapi.VersionRequest{})
		cancel()
		if err == nil {
			return
		}
		select {
		case err := <-d.done:
			d.t.Fatalf("daemon exited: %v\n%s", err, d.Log())
		default:
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("CRI socket did not answer within 30s: %v\n%s", err, d.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// RemoveAllPods stops and removes every CRI sandbox of the daemon.
func (d *Daemon) RemoveAllPods() {
	if d.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list, err := d.RT.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		d.t.Errorf("cleanup: list pods: %v", err)
		return
	}
	for _, p := range list.Items {
		if _, err := d.RT.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.Id}); err != nil {
			d.t.Errorf("cleanup: stop pod %s: %v", p.Id, err)
		}
		if _, err := d.RT.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.Id}); err != nil {
			d.t.Errorf("cleanup: remove pod %s: %v", p.Id, err)
		}
	}
}

// Stop ends the daemon with SIGTERM (SIGKILL after 20 s).
func (d *Daemon) Stop() {
	if d.conn != nil {
		d.conn.Close()
		d.conn = nil
	}
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	_ = d.cmd.Process.Signal(os.Interrupt)
	select {
	case <-d.done:
	case <-time.After(20 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
	}
	d.cmd = nil
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
