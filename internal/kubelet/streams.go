package kubelet

// Streams behind `peapod exec`, `attach` and `port-forward`: the kubelet
// finds the pod's container or sandbox by name and works on the runtime's
// lower-level pieces the CRI's verbose status points at (the container's
// bundle with conmon's handle, runc exec, the sandbox's pinned network
// namespace), as the CRI streaming server does for a real kubelet.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/peapod/peapod/internal/container/conmon"
	"github.com/peapod/peapod/internal/sandbox/netns"
)

// TerminalSize is a terminal's size in characters.
type TerminalSize struct{ Width, Height uint16 }

// Streams are the client's ends of an exec or attach session.
type Streams struct {
	// Stdin is nil when the client sends no input.
	Stdin io.Reader
	// Stdout and Stderr may be nil (output discarded). With TTY there is
	// one output stream, Stdout.
	Stdout, Stderr io.Writer
	TTY            bool
	// Resize carries the client's terminal size changes; may be nil.
	Resize <-chan TerminalSize
}

// containerBundle reads the bundle directory from a container's verbose
// status, and refuses a container that does not run.
func (k *Kubelet) containerBundle(ctx context.Context, id string) (string, error) {
	resp, err := k.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id, Verbose: true})
	if err != nil {
		return "", err
	}
	if resp.GetStatus().GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return "", fmt.Errorf("container %s is not running: %w", resp.GetStatus().GetMetadata().GetName(), ErrBadRequest)
	}
	var info struct {
		Bundle string `json:"bundle"`
	}
	if raw := resp.GetInfo()["info"]; raw != "" {
		if err := json.Unmarshal([]byte(raw), &info); err != nil {
			return "", fmt.Errorf("container %s: verbose info: %w", id, err)
		}
	}
	if info.Bundle == "" {
		return "", fmt.Errorf("container %s: the runtime does not say where its bundle is", id)
	}
	return info.Bundle, nil
}

// Exec runs cmd in a pod's running container with the container's own
// process settings (user, environment, working directory, capabilities,
// seccomp) and returns its exit code. Resizes are not applied to an exec's
// terminal: runc relays the terminal itself.
func (k *Kubelet) Exec(ctx context.Context, ns, name, container string, cmd []string, s Streams) (int, error) {
	if len(cmd) == 0 {
		return -1, fmt.Errorf("you must specify at least one command for the container: %w", ErrBadRequest)
	}
	id, err := k.ContainerID(ctx, ns, name, container)
	if err != nil {
		return -1, err
	}
	bundle, err := k.containerBundle(ctx, id)
	if err != nil {
		return -1, err
	}
	h, err := conmon.Load(bundle)
	if err != nil {
		return -1, fmt.Errorf("exec in pod %s: %w", name, err)
	}
	proc, err := bundleProcess(bundle)
	if err != nil {
		return -1, fmt.Errorf("exec in pod %s: %w", name, err)
	}
	proc.Args = cmd
	proc.ConsoleSize = nil
	if s.Resize != nil {
		go func() {
			for range s.Resize {
			}
		}()
	}
	var out, errw io.Writer = io.Discard, io.Discard
	if s.Stdout != nil {
		out = s.Stdout
	}
	if s.Stderr != nil {
		errw = s.Stderr
	}
	// runc gets a real pipe as stdin: with any other reader os/exec would
	// wait, after the command ended, for the client's input to end too (a
	// terminal's never does).
	var stdin io.Reader
	if s.Stdin != nil {
		pr, pw, err := os.Pipe()
		if err != nil {
			return -1, fmt.Errorf("exec in pod %s: %w", name, err)
		}
		defer pr.Close()
		defer pw.Close()
		go func() {
			_, _ = io.Copy(pw, s.Stdin)
			pw.Close()
		}()
		stdin = pr
	}
	code, err := h.Runc().Exec(ctx, h.ID, proc, stdin, out, errw, s.TTY)
	if err != nil {
		return -1, fmt.Errorf("exec in pod %s: %w", name, err)
	}
	return code, nil
}

func bundleProcess(bundle string) (specs.Process, error) {
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return specs.Process{}, err
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return specs.Process{}, fmt.Errorf("%s/config.json: %w", bundle, err)
	}
	if spec.Process == nil {
		return specs.Process{}, fmt.Errorf("%s/config.json has no process", bundle)
	}
	return *spec.Process, nil
}

// conmon's attach socket sends output in SOCK_SEQPACKET messages whose
// first byte names the stream.
const (
	attachStdout  = 2
	attachStderr  = 3
	attachBufSize = 8192 + 1
)

// Attach connects the streams to a running container's main process
// through conmon's attach socket. It returns when the container's output
// ends (it exited), the client's output fails, or ctx ends.
func (k *Kubelet) Attach(ctx context.Context, ns, name, container string, s Streams) error {
	id, err := k.ContainerID(ctx, ns, name, container)
	if err != nil {
		return err
	}
	bundle, err := k.containerBundle(ctx, id)
	if err != nil {
		return err
	}
	h, err := conmon.Load(bundle)
	if err != nil {
		return fmt.Errorf("attach to pod %s: %w", name, err)
	}
	// conmon binds the socket in the bundle (through a short symlink it
	// may remove once bound).
	conn, err := dialAttach(filepath.Join(bundle, "attach"))
	if err != nil {
		conn, err = dialAttach(h.AttachSocket())
	}
	if err != nil {
		return fmt.Errorf("attach to pod %s: %w", name, err)
	}
	defer conn.Close()
	if s.Resize != nil {
		go func() {
			for size := range s.Resize {
				if size.Width > 0 && size.Height > 0 {
					_ = h.Resize(size.Width, size.Height)
				}
			}
		}()
	}
	if s.Stdin != nil {
		go func() {
			_, _ = io.Copy(conn, s.Stdin)
			// Without a terminal, end of input is the end of the stream
			// (the container sees it with stdinOnce).
			if !s.TTY {
				_ = conn.CloseWrite()
			}
		}()
	}
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, attachBufSize)
		for {
			n, err := conn.Read(buf)
			if n > 0 {
				var w io.Writer
				switch buf[0] {
				case attachStdout:
					w = s.Stdout
				case attachStderr:
					w = s.Stderr
				}
				if w != nil {
					if _, werr := w.Write(buf[1:n]); werr != nil {
						done <- werr
						return
					}
				}
			}
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				done <- err
				return
			}
		}
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return nil
	}
}

// dialAttach connects to conmon's attach socket. Its path can be longer
// than a socket address may be (108 bytes), so it is reached through an
// open descriptor of its directory, as conmon itself binds it.
func dialAttach(path string) (*net.UnixConn, error) {
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	short := fmt.Sprintf("/proc/self/fd/%d/%s", dir.Fd(), filepath.Base(path))
	return net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: short, Net: "unixpacket"})
}

// DialPod connects to port on the pod's loopback from inside its network
// namespace (the host's for a hostNetwork pod), as kubectl port-forward
// reaches a pod.
func (k *Kubelet) DialPod(ctx context.Context, ns, name string, port int32) (net.Conn, error) {
	if port <= 0 || port > 65535 {
		return nil, fmt.Errorf("invalid port %d: %w", port, ErrBadRequest)
	}
	id, err := k.SandboxID(ctx, ns, name)
	if err != nil {
		return nil, err
	}
	resp, err := k.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id, Verbose: true})
	if err != nil {
		return nil, err
	}
	var info struct {
		NetNS string `json:"netns"`
	}
	if raw := resp.GetInfo()["info"]; raw != "" {
		if err := json.Unmarshal([]byte(raw), &info); err != nil {
			return nil, fmt.Errorf("pod sandbox %s: verbose info: %w", id, err)
		}
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port)))
	var conn net.Conn
	dial := func() error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp4", addr)
		conn = c
		return err
	}
	if info.NetNS != "" {
		n, lerr := netns.Load(info.NetNS)
		if lerr != nil {
			return nil, fmt.Errorf("forward port %d of pod %s: %w", port, name, lerr)
		}
		err = n.Do(dial)
	} else {
		err = dial()
	}
	if err != nil {
		return nil, fmt.Errorf("forward port %d of pod %s: %w", port, name, err)
	}
	return conn, nil
}
