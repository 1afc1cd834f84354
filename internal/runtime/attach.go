package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// conmon's attach socket frames output in SOCK_SEQPACKET messages whose
// first byte names the stream; a read is at most attachBufSize.
const (
	attachStdout  = 2
	attachStderr  = 3
	attachBufSize = 8192 + 1
)

// Attach connects the streams to a running container's main process
// through conmon's attach socket: input is written as is, and with a
// terminal (a container created with tty) each size on s.Resize goes to
// conmon's control fifo. It returns when the container's output ends (it
// exited), the client's output fails, or ctx ends.
func (v *View) Attach(ctx context.Context, containerID string, s Streams) error {
	defer drainResize(s.Resize)
	c, h, err := v.r.running(v.owner, containerID, "attach to container")
	if err != nil {
		return err
	}
	// conmon binds the socket in the bundle (through a short symlink it
	// removes once bound).
	conn, err := dialAttach(filepath.Join(c.rec.Bundle, "attach"))
	if err != nil {
		conn, err = dialAttach(h.AttachSocket())
	}
	if err != nil {
		return fmt.Errorf("attach to container %s: %w", c.id, err)
	}
	defer conn.Close()

	if s.Resize != nil {
		resize := s.Resize
		s.Resize = nil // this goroutine drains it now
		go func() {
			for size := range resize {
				if size.Width > 0 && size.Height > 0 {
					if err := h.Resize(size.Width, size.Height); err != nil {
						slog.Debug("attach resize", "container", c.id, "error", err)
					}
				}
			}
		}()
	}
	if s.Stdin != nil {
		go func() {
			_, _ = io.Copy(conn, s.Stdin)
			// Without a terminal, end of input is the end of the stream
			// (the container sees it with stdinOnce); with one, EOF is a
			// character the client sends.
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
		return ctx.Err()
	}
}

// dialAttach connects to conmon's attach socket through an O_PATH handle
// on its directory, so that a path longer than a socket address holds (108
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
