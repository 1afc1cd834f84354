package runtime

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"

	"github.com/peapod/peapod/internal/sandbox/netns"
)

// DialInPod connects to port on a sandbox's loopback from inside its
// network namespace (the host's with host networking), as kubectl
// port-forward reaches a pod.
func (v *View) DialInPod(ctx context.Context, sandboxID string, port int32) (net.Conn, error) {
	if port <= 0 || port > 65535 {
		return nil, fmt.Errorf("forward port %d of pod sandbox %s: invalid port: %w", port, sandboxID, ErrInvalidArgument)
	}
	sb, err := v.r.lookupSandbox(v.owner, sandboxID)
	if err != nil {
		return nil, fmt.Errorf("forward port %d: %w", port, err)
	}
	sb.mu.Lock()
	nsPath := sb.rec.NetNS
	sb.mu.Unlock()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port)))
	var conn net.Conn
	dial := func() error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp4", addr)
		conn = c
		return err
	}
	if nsPath != "" {
		ns, lerr := netns.Load(nsPath)
		if lerr != nil {
			return nil, fmt.Errorf("forward port %d of pod sandbox %s: %w", port, sb.id, lerr)
		}
		err = ns.Do(dial)
	} else {
		err = dial()
	}
	if err != nil {
		return nil, fmt.Errorf("forward port %d of pod sandbox %s: %w", port, sb.id, err)
	}
	return conn, nil
}

// PortForward copies stream to and from port in the sandbox until either
// side ends, then closes stream.
func (v *View) PortForward(ctx context.Context, sandboxID string, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	conn, err := v.DialInPod(ctx, sandboxID, port)
	if err != nil {
		return err
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
