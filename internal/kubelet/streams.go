package kubelet

// Streams behind `peapod exec`, `attach` and `port-forward`: the kubelet
// finds the pod's container or sandbox by name and hands the session to
// the runtime (runtime.View's Exec, Attach and DialInPod), the same code
// that serves the CRI streaming server.

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/peapod/peapod/internal/runtime"
)

// TerminalSize is a terminal's size in characters.
type TerminalSize = runtime.TerminalSize

// Streams are the client's ends of an exec or attach session.
type Streams = runtime.Streams

// Streamer is what the kubelet's Runtime needs for pod I/O
// (*runtime.View implements it).
type Streamer interface {
	Exec(ctx context.Context, containerID string, cmd []string, s runtime.Streams) (int, error)
	Attach(ctx context.Context, containerID string, s runtime.Streams) error
	DialInPod(ctx context.Context, sandboxID string, port int32) (net.Conn, error)
}

var _ Streamer = (*runtime.View)(nil)

// errNoStreams: the Runtime the kubelet was given serves no streams.
var errNoStreams = errors.New("the runtime serves no exec, attach or port-forward streams")

func (k *Kubelet) streamer() (Streamer, error) {
	st, ok := k.rt.(Streamer)
	if !ok {
		return nil, errNoStreams
	}
	return st, nil
}

// notRunning makes the runtime's "not running" a bad request, as the
// kubelet answers for a container that stopped meanwhile.
func notRunning(err error) error {
	if errors.Is(err, runtime.ErrNotReady) {
		return fmt.Errorf("%w: %w", err, ErrBadRequest)
	}
	return err
}

// Exec runs cmd in a pod's running container with the container's own
// process settings (user, environment, working directory, capabilities,
// seccomp) and returns its exit code. With s.TTY the command's terminal
// follows s.Resize.
func (k *Kubelet) Exec(ctx context.Context, ns, name, container string, cmd []string, s Streams) (int, error) {
	if len(cmd) == 0 {
		return -1, fmt.Errorf("you must specify at least one command for the container: %w", ErrBadRequest)
	}
	st, err := k.streamer()
	if err != nil {
		return -1, err
	}
	id, err := k.ContainerID(ctx, ns, name, container)
	if err != nil {
		return -1, err
	}
	code, err := st.Exec(ctx, id, cmd, s)
	if err != nil {
		return -1, fmt.Errorf("exec in pod %s: %w", name, notRunning(err))
	}
	return code, nil
}

// Attach connects the streams to a running container's main process. It
// returns when the container's output ends (it exited), the client's
// output fails, or ctx ends (nil then: the client went away).
func (k *Kubelet) Attach(ctx context.Context, ns, name, container string, s Streams) error {
	st, err := k.streamer()
	if err != nil {
		return err
	}
	id, err := k.ContainerID(ctx, ns, name, container)
	if err != nil {
		return err
	}
	err = st.Attach(ctx, id, s)
	if err != nil && ctx.Err() != nil {
		return nil
	}
	if err != nil {
		return fmt.Errorf("attach to pod %s: %w", name, notRunning(err))
	}
	return nil
}

// DialPod connects to port on the pod's loopback from inside its network
// namespace (the host's for a hostNetwork pod), as kubectl port-forward
// reaches a pod.
func (k *Kubelet) DialPod(ctx context.Context, ns, name string, port int32) (net.Conn, error) {
	if port <= 0 || port > 65535 {
		return nil, fmt.Errorf("invalid port %d: %w", port, ErrBadRequest)
	}
	st, err := k.streamer()
	if err != nil {
		return nil, err
	}
	id, err := k.SandboxID(ctx, ns, name)
	if err != nil {
		return nil, err
	}
	conn, err := st.DialInPod(ctx, id, port)
	if err != nil {
		return nil, fmt.Errorf("forward port %d of pod %s: %w", port, name, err)
	}
	return conn, nil
}
