package cri

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
)

// ExecSync runs a command to completion and returns its output and exit
// code; a non-zero exit code is a result, not an error.
func (s *Server) ExecSync(ctx context.Context, req *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
	if req.GetContainerId() == "" {
		return nil, invalid("ExecSync: no container_id")
	}
	if len(req.GetCmd()) == 0 {
		return nil, invalid("ExecSync: no command")
	}
	resp, err := s.rt.ExecSync(ctx, req)
	if err != nil {
		return nil, s.fail("ExecSync", err)
	}
	return resp, nil
}

// Exec hands out a URL on the streaming server where the client runs the
// command with its streams (SPDY or WebSocket).
func (s *Server) Exec(ctx context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	if len(req.GetCmd()) == 0 {
		return nil, invalid("Exec: no command")
	}
	if err := checkStreams("Exec", req.GetTty(), req.GetStdin(), req.GetStdout(), req.GetStderr()); err != nil {
		return nil, err
	}
	if err := s.requireRunning(ctx, "Exec", req.GetContainerId()); err != nil {
		return nil, err
	}
	resp, err := s.streamServer().GetExec(req)
	if err != nil {
		return nil, s.fail("Exec", err)
	}
	return resp, nil
}

// Attach hands out a URL where the client attaches to the container's
// main process.
func (s *Server) Attach(ctx context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	if err := checkStreams("Attach", req.GetTty(), req.GetStdin(), req.GetStdout(), req.GetStderr()); err != nil {
		return nil, err
	}
	if err := s.requireRunning(ctx, "Attach", req.GetContainerId()); err != nil {
		return nil, err
	}
	resp, err := s.streamServer().GetAttach(req)
	if err != nil {
		return nil, s.fail("Attach", err)
	}
	return resp, nil
}

// PortForward hands out a URL where the client forwards ports into the
// sandbox's network namespace.
func (s *Server) PortForward(ctx context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	id := req.GetPodSandboxId()
	if id == "" {
		return nil, invalid("PortForward: no pod_sandbox_id")
	}
	st, err := s.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id})
	if err != nil {
		return nil, s.fail("PortForward", err)
	}
	if st.GetStatus().GetState() != runtimeapi.PodSandboxState_SANDBOX_READY {
		return nil, status.Errorf(codes.FailedPrecondition, "PortForward: pod sandbox %s is not ready", id)
	}
	// Forward to the full ID even when the client gave a prefix.
	req = &runtimeapi.PortForwardRequest{PodSandboxId: st.GetStatus().GetId(), Port: req.GetPort()}
	resp, err := s.streamServer().GetPortForward(req)
	if err != nil {
		return nil, s.fail("PortForward", err)
	}
	return resp, nil
}

func (s *Server) streamServer() interface {
	GetExec(*runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error)
	GetAttach(*runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error)
	GetPortForward(*runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error)
} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.streams == nil {
		return notServing{}
	}
	return s.streams
}

type notServing struct{}

func (notServing) GetExec(*runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	return nil, status.Error(codes.Unavailable, "streaming server is not running")
}
func (notServing) GetAttach(*runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	return nil, status.Error(codes.Unavailable, "streaming server is not running")
}
func (notServing) GetPortForward(*runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	return nil, status.Error(codes.Unavailable, "streaming server is not running")
}

// checkStreams applies the streaming server's rules before anything else,
// so a bad request is InvalidArgument whatever the container's state.
func checkStreams(op string, tty, stdin, stdout, stderr bool) error {
	if tty && stderr {
		return invalid("%s: tty and stderr cannot both be set: a terminal has one output stream", op)
	}
	if !stdin && !stdout && !stderr {
		return invalid("%s: none of stdin, stdout and stderr is set", op)
	}
	return nil
}

// requireRunning refuses a stream to a container that does not run, before
// the client is sent to the streaming server, so the error arrives as a
// gRPC status rather than a broken stream.
func (s *Server) requireRunning(ctx context.Context, op, id string) error {
	if id == "" {
		return invalid("%s: no container_id", op)
	}
	st, err := s.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		return s.fail(op, err)
	}
	if state := st.GetStatus().GetState(); state != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return status.Errorf(codes.FailedPrecondition, "%s: container %s is not running (state %s)", op, id, state)
	}
	return nil
}

// streamRuntime is what the streaming server calls once a client connects.
type streamRuntime struct{ s *Server }

func (r streamRuntime) Exec(ctx context.Context, id string, cmd []string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	st, ok := r.s.rt.(Streamer)
	if !ok {
		return errNoStreams
	}
	code, err := st.Exec(ctx, id, cmd, streams(in, out, errw, tty, resize))
	if err != nil {
		r.s.log.Warn("exec stream failed", "container", id, "error", err)
		return err
	}
	if code != 0 {
		// The streaming server reports this to the client as the
		// command's exit code rather than as a failure.
		return exitError{code: code}
	}
	return nil
}

func (r streamRuntime) Attach(ctx context.Context, id string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	st, ok := r.s.rt.(Streamer)
	if !ok {
		return errNoStreams
	}
	err := st.Attach(ctx, id, streams(in, out, errw, tty, resize))
	if err != nil {
		r.s.log.Warn("attach stream failed", "container", id, "error", err)
	}
	return err
}

func (r streamRuntime) PortForward(ctx context.Context, sandboxID string, port int32, stream io.ReadWriteCloser) error {
	st, ok := r.s.rt.(Streamer)
	if !ok {
		stream.Close()
		return errNoStreams
	}
	err := st.PortForward(ctx, sandboxID, port, stream)
	if err != nil {
		r.s.log.Warn("port-forward stream failed", "sandbox", sandboxID, "port", port, "error", err)
	}
	return err
}

// errNoStreams: the Runtime given to the server serves no streams.
var errNoStreams = errors.New("the runtime serves no exec, attach or port-forward streams")

// exitError is the shape of k8s.io/utils/exec.ExitError, which the
// streaming server recognises to pass an exit code on.
type exitError struct{ code int }

func (e exitError) Error() string   { return fmt.Sprintf("command terminated with exit code %d", e.code) }
func (e exitError) String() string  { return e.Error() }
func (e exitError) Exited() bool    { return true }
func (e exitError) ExitStatus() int { return e.code }
