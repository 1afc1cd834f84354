package runtime

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/peapod/peapod/internal/container/runc"
)

// TerminalSize is a terminal's size in characters.
type TerminalSize struct{ Width, Height uint16 }

// Streams are the client's ends of an exec or attach session, the same
// for the CRI streaming server and the pod manager's `peapod exec`.
type Streams struct {
	// Stdin is nil when the client sends no input.
	Stdin io.Reader
	// Stdout and Stderr may be nil (output discarded). With TTY there is
	// one output stream, Stdout.
	Stdout, Stderr io.Writer
	TTY            bool
	// Resize carries the client's terminal size, first its initial size
	// and then every change; may be nil. It is read until it closes or
	// the session ends, so a sender never blocks on it.
	Resize <-chan TerminalSize
}

// Exec runs cmd in a running container with the container's own process
// settings (user, environment, working directory, capabilities,
// no_new_privs, seccomp, as containerd does) and returns its exit code.
// With TTY the command gets a terminal that follows s.Resize.
func (v *View) Exec(ctx context.Context, containerID string, cmd []string, s Streams) (int, error) {
	defer drainResize(s.Resize)
	// Ends the relay of sizes to runc when the exec does.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c, _, err := v.r.running(v.owner, containerID, "exec in container")
	if err != nil {
		return -1, err
	}
	if len(cmd) == 0 {
		return -1, fmt.Errorf("exec in container %s: no command: %w", c.id, ErrInvalidArgument)
	}
	proc, err := execProcess(c.rec.Bundle, cmd, s.TTY)
	if err != nil {
		return -1, fmt.Errorf("exec in container %s: %w", c.id, err)
	}
	// runc gets a real pipe as stdin: with any other reader os/exec would
	// wait, after the command ended, for the client's input to end too (a
	// terminal's never does). Closing the pipe ends the copy.
	var stdin io.Reader
	if s.Stdin != nil {
		pr, pw, err := os.Pipe()
		if err != nil {
			return -1, fmt.Errorf("exec in container %s: %w", c.id, err)
		}
		defer pr.Close()
		defer pw.Close()
		go func() {
			_, _ = io.Copy(pw, s.Stdin)
			pw.Close()
		}()
		stdin = pr
	}
	out, errw := orDiscard(s.Stdout), orDiscard(s.Stderr)
	var code int
	if s.TTY {
		code, err = v.r.runc.ExecTerminal(ctx, c.id, proc, stdin, out, winsizes(ctx, s.Resize))
	} else {
		code, err = v.r.runc.Exec(ctx, c.id, proc, stdin, out, errw, false)
	}
	if err != nil {
		return -1, fmt.Errorf("exec in container %s: %w", c.id, err)
	}
	return code, nil
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// winsizes passes the sizes on in runc's type until in closes or ctx ends.
func winsizes(ctx context.Context, in <-chan TerminalSize) <-chan runc.Winsize {
	if in == nil {
		return nil
	}
	out := make(chan runc.Winsize)
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case ts, ok := <-in:
				if !ok {
					return
				}
				select {
				case out <- runc.Winsize{Width: ts.Width, Height: ts.Height}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}

// drainResize reads what is left of a session's resize channel so that
// its sender never blocks once the session is over.
func drainResize(c <-chan TerminalSize) {
	if c == nil {
		return
	}
	go func() {
		for range c {
		}
	}()
}
