package cri

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"

	"github.com/peapod/peapod/internal/container/conmon"
	"github.com/peapod/peapod/internal/sandbox/netns"
)

// Streamer runs the streams behind Exec, Attach and PortForward. A Runtime
// that implements it is used; otherwise the server does the work itself on
// top of the container packages (conmon's handle in the container's
// bundle, runc exec, the sandbox's pinned network namespace).
type Streamer interface {
	Exec(ctx context.Context, containerID string, cmd []string, stdin io.Reader, stdout, stderr io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error
	Attach(ctx context.Context, containerID string, stdin io.Reader, stdout, stderr io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error
	PortForward(ctx context.Context, sandboxID string, port int32, stream io.ReadWriteCloser) error
}

// containerInfo is what the server reads from a container's verbose
// status "info" JSON.
type containerInfo struct {
	Pid       int    `json:"pid"`
	Bundle    string `json:"bundle"`
	SandboxID string `json:"sandboxID"`
}

// sandboxInfo is what the server reads from a sandbox's verbose status.
type sandboxInfo struct {
	Pid   int    `json:"pid"`
	NetNS string `json:"netns"`
}

// container finds a container's status and bundle directory: from the
// verbose info's "bundle", else Options.ContainersDir/ID.
func (s *Server) container(ctx context.Context, id string) (*runtimeapi.ContainerStatus, containerInfo, error) {
	resp, err := s.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id, Verbose: true})
	if err != nil {
		return nil, containerInfo{}, err
	}
	var info containerInfo
	if raw := resp.GetInfo()["info"]; raw != "" {
		if err := json.Unmarshal([]byte(raw), &info); err != nil {
			return nil, info, fmt.Errorf("container %s: verbose info: %w", id, err)
		}
	}
	if info.Bundle == "" && s.opts.ContainersDir != "" {
		info.Bundle = filepath.Join(s.opts.ContainersDir, resp.GetStatus().GetId())
	}
	if info.Bundle == "" {
		return nil, info, fmt.Errorf("container %s: the runtime does not say where its bundle is", id)
	}
	return resp.GetStatus(), info, nil
}

func (s *Server) sandbox(ctx context.Context, id string) (*runtimeapi.PodSandboxStatus, sandboxInfo, error) {
	resp, err := s.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id, Verbose: true})
	if err != nil {
		return nil, sandboxInfo{}, err
	}
	var info sandboxInfo
	if raw := resp.GetInfo()["info"]; raw != "" {
		if err := json.Unmarshal([]byte(raw), &info); err != nil {
			return nil, info, fmt.Errorf("pod sandbox %s: verbose info: %w", id, err)
		}
	}
	return resp.GetStatus(), info, nil
}

// execExit is an exec's non-zero exit code.
type execExit int

func (e execExit) Error() string { return fmt.Sprintf("command terminated with exit code %d", int(e)) }
func (e execExit) ExitCode() int { return int(e) }

// ownExec runs cmd in the container with runc exec, with the process
// settings of the container's own process (user, environment, working
// directory, capabilities, no_new_privs, seccomp) as containerd does.
func (s *Server) ownExec(ctx context.Context, id string, cmd []string, stdin io.Reader, stdout, stderr io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	st, info, err := s.container(ctx, id)
	if err != nil {
		return err
	}
	if st.GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return fmt.Errorf("exec in container %s: it is not running", id)
	}
	h, err := conmon.Load(info.Bundle)
	if err != nil {
		return fmt.Errorf("exec in container %s: %w", id, err)
	}
	proc, err := processSpec(info.Bundle)
	if err != nil {
		return fmt.Errorf("exec in container %s: %w", id, err)
	}
	proc.Args = cmd
	proc.Terminal = tty
	proc.ConsoleSize = nil
	// runc's foreground exec relays its own terminal and reads no resize
	// requests; drain them so the stream never blocks on the channel.
	go func() {
		for range resize {
		}
	}()
	// exec.Cmd waits for the copy of a non-file stdin to end, which a
	// terminal never does; a pipe of our own lets the exec end with its
	// process, and closing it ends the copy.
	var in io.Reader
	if stdin != nil {
		pr, pw, err := os.Pipe()
		if err != nil {
			return fmt.Errorf("exec in container %s: %w", id, err)
		}
		defer pr.Close()
		defer pw.Close()
		go func() {
			_, _ = io.Copy(pw, stdin)
			pw.Close()
		}()
		in = pr
	}
	var out, errw io.Writer = io.Discard, io.Discard
	if stdout != nil {
		out = stdout
	}
	if stderr != nil {
		errw = stderr
	}
	code, err := h.Runc().Exec(ctx, h.ID, proc, in, out, errw, tty)
	if err != nil {
		return err
	}
	if code != 0 {
		return execExit(code)
	}
	return nil
}

// processSpec reads the container's process from its bundle's config.json.
func processSpec(bundle string) (specs.Process, error) {
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

// conmon's attach socket frames output with one leading byte naming the
// stream; a read is at most this big.
const (
	attachStdout  = 2
	attachStderr  = 3
	attachBufSize = 8192 + 1
)

// ownAttach connects the streams to conmon's attach socket: input is
// written as is, output arrives in SOCK_SEQPACKET messages whose first byte
// names the stream. It returns when the container's output ends (it
// exited) or ctx ends.
func (s *Server) ownAttach(ctx context.Context, id string, stdin io.Reader, stdout, stderr io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	st, info, err := s.container(ctx, id)
	if err != nil {
		return err
	}
	if st.GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return fmt.Errorf("attach to container %s: it is not running", id)
	}
	h, err := conmon.Load(info.Bundle)
	if err != nil {
		return fmt.Errorf("attach to container %s: %w", id, err)
	}
	// conmon binds the socket through the short symlink of SocketDir and
	// then removes the link: the socket itself is in the bundle.
	conn, err := dialAttach(filepath.Join(info.Bundle, "attach"))
	if err != nil {
		conn, err = dialAttach(h.AttachSocket())
	}
	if err != nil {
		return fmt.Errorf("attach to container %s: %w", id, err)
	}
	defer conn.Close()

	go func() {
		for size := range resize {
			if size.Width > 0 && size.Height > 0 {
				if err := h.Resize(size.Width, size.Height); err != nil {
					s.log.Debug("attach resize", "container", id, "error", err)
				}
			}
		}
	}()
	stdinDone := make(chan error, 1)
	if stdin != nil {
		go func() {
			_, err := io.Copy(conn, stdin)
			// With stdin_once (and no terminal, where EOF is a character)
			// the container sees end of input when the client's ends.
			if !tty {
				_ = conn.CloseWrite()
			}
			stdinDone <- err
		}()
	}
	outDone := make(chan error, 1)
	go func() {
		buf := make([]byte, attachBufSize)
		for {
			n, err := conn.Read(buf)
			if n > 0 {
				var w io.Writer
				switch buf[0] {
				case attachStdout:
					w = stdout
				case attachStderr:
					w = stderr
				}
				if w != nil {
					if _, werr := w.Write(buf[1:n]); werr != nil {
						outDone <- werr
						return
					}
				}
			}
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				outDone <- err
				return
			}
		}
	}()
	select {
	case err := <-outDone:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// dialAttach connects to conmon's attach socket through an O_PATH handle
// on its directory, so that a path longer than a sockaddr_un holds (108
// bytes) still works.
func dialAttach(path string) (*net.UnixConn, error) {
	dir, err := unix.Open(filepath.Dir(path), unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", filepath.Dir(path), err)
	}
	defer unix.Close(dir)
	short := fmt.Sprintf("/proc/self/fd/%d/%s", dir, filepath.Base(path))
	return net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: short, Net: "unixpacket"})
}

// ownPortForward dials port on the sandbox's loopback from inside its
// network namespace (the host's with host networking) and copies both
// ways until either side ends.
func (s *Server) ownPortForward(ctx context.Context, sandboxID string, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	_, info, err := s.sandbox(ctx, sandboxID)
	if err != nil {
		return err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	var conn net.Conn
	dial := func() error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp4", addr)
		conn = c
		return err
	}
	if info.NetNS != "" {
		ns, lerr := netns.Load(info.NetNS)
		if lerr != nil {
			return fmt.Errorf("port-forward to pod sandbox %s: %w", sandboxID, lerr)
		}
		err = ns.Do(dial)
	} else {
		err = dial()
	}
	if err != nil {
		return fmt.Errorf("port-forward to port %d of pod sandbox %s: %w", port, sandboxID, err)
	}
	defer conn.Close()
	go func() {
		_, _ = io.Copy(conn, stream)
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}()
	// The pod's side closing ends the forward; closing conn (deferred)
	// ends the copy the other way.
	_, err = io.Copy(stream, conn)
	return err
}
