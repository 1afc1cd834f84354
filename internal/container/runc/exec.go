package runc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Exec runs proc inside the running container id and waits for it, copying
// stdin to it (nil means /dev/null) and its output to stdout and stderr
// (with tty both arrive on stdout, as from a terminal). It returns the
// process's exit code (128+signal when a signal ended it).
//
// When ctx ends first the exec'd process is killed with SIGKILL: killing
// runc alone would leave the process running in the container. Exec then
// returns -1 and an error wrapping ctx.Err().
func (r *Runc) Exec(ctx context.Context, id string, proc specs.Process, stdin io.Reader, stdout, stderr io.Writer, tty bool) (int, error) {
	return r.exec(ctx, id, proc, stdin, stdout, stderr, tty, nil)
}

// Winsize is a terminal's size in characters.
type Winsize struct{ Width, Height uint16 }

// ExecTerminal is Exec with a terminal whose window follows resize: the
// process starts with the first size received (a client sends its size
// first; see initialSizeWait), and every later size is applied while it
// runs. resize may be nil (a 24x80 window).
//
// runc's --console-socket hands the pty master to the caller only with
// --detach, and a detached exec's exit status goes to runc's parent's
// subreaper, not to us. So runc stays in the foreground, relaying a pty of
// ours: it copies the size of that pty to the container's on start and on
// every SIGWINCH, which is what a resize sends it after setting our pty's
// size. The first size also goes into the process's consoleSize, which
// runc applies before the process starts.
func (r *Runc) ExecTerminal(ctx context.Context, id string, proc specs.Process, stdin io.Reader, stdout io.Writer, resize <-chan Winsize) (int, error) {
	return r.exec(ctx, id, proc, stdin, stdout, nil, true, resize)
}

// initialSizeWait bounds how long a terminal exec waits for the client's
// first size before it starts the process with 24x80.
const initialSizeWait = 250 * time.Millisecond

func (r *Runc) exec(ctx context.Context, id string, proc specs.Process, stdin io.Reader, stdout, stderr io.Writer, tty bool, resize <-chan Winsize) (int, error) {
	dir, err := os.MkdirTemp("", "runc-exec-")
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	defer os.RemoveAll(dir)
	proc.Terminal = tty
	size := Winsize{Width: 80, Height: 24}
	if tty {
		if resize != nil {
			select {
			case ws, ok := <-resize:
				if !ok {
					resize = nil
				} else if ws.Width > 0 && ws.Height > 0 {
					size = ws
				}
			case <-time.After(initialSizeWait):
			case <-ctx.Done():
				return -1, fmt.Errorf("exec in %s: %w", id, ctx.Err())
			}
		}
		// runc sizes the container's terminal before the process starts
		// only from the spec; its own copy of the size comes later, and a
		// quick `stty size` would see 0 0.
		proc.ConsoleSize = &specs.Box{Height: uint(size.Height), Width: uint(size.Width)}
	}
	data, err := json.Marshal(proc)
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	procPath, pidPath := filepath.Join(dir, "process.json"), filepath.Join(dir, "pid")
	if err := os.WriteFile(procPath, data, 0o600); err != nil {
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	args := []string{"exec", "--process", procPath, "--pid-file", pidPath}
	if tty {
		args = append(args, "--tty")
	}
	// No CommandContext: cancelling must kill the exec'd process, not runc.
	cmd, logPath, done, err := r.command(ctx, false, append(args, id)...)
	if err != nil {
		return -1, err
	}
	defer done()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	var pty ptyPair
	if tty {
		// runc relays a terminal only from a terminal of its own: it finds
		// one on its stdio and copies the container's pty to its stdout.
		// Give it a pty as stderr; stdin and stdout stay the caller's.
		pty, err = newPty()
		if err != nil {
			return -1, fmt.Errorf("exec in %s: %w", id, err)
		}
		defer pty.master.Close()
		defer pty.slave.Close()
		cmd.Stderr = pty.slave
		// runc copies our pty's size to the container's once the process
		// runs; keep them the same.
		pty.setSize(size)
	}
	if err := cmd.Start(); err != nil {
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	if tty && resize != nil {
		stop := make(chan struct{})
		defer close(stop)
		go relayResize(resize, stop, pty.slave, cmd.Process)
	}
	var werr error
	waited := make(chan struct{})
	go func() { werr = cmd.Wait(); close(waited) }()

	select {
	case <-waited:
	case <-ctx.Done():
		killExec(pidPath, cmd.Process, waited)
		<-waited
		return -1, fmt.Errorf("exec in %s: %w", id, ctx.Err())
	}
	if werr == nil {
		return 0, nil
	}
	var exitErr *exec.ExitError
	if !errors.As(werr, &exitErr) {
		return -1, fmt.Errorf("exec in %s: %w", id, werr)
	}
	// runc exits with the process's status, or logs an error and exits 255
	// when it could not run the process at all.
	if msg := lastError(logPath, ""); msg != "" {
		return -1, &Error{Command: "exec", ID: id, Message: msg, Err: werr}
	}
	return exitErr.ExitCode(), nil
}

// killExec kills the exec'd process, found through runc's pid file. The pid
// file appears only once the process runs, so wait briefly for it; if it
// never comes, runc itself is killed, which aborts the exec before it starts.
func killExec(pidPath string, runcProc *os.Process, waited <-chan struct{}) {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(pidPath); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
				if fd, err := unix.PidfdOpen(pid, 0); err == nil {
					_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
					unix.Close(fd)
				}
				return
			}
		}
		select {
		case <-waited:
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
	_ = runcProc.Kill()
}

type ptyPair struct{ master, slave *os.File }

// newPty opens a new pseudo-terminal pair with a 24x80 window.
func newPty() (ptyPair, error) {
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return ptyPair{}, fmt.Errorf("open pty: %w", err)
	}
	fd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		master.Close()
		return ptyPair{}, fmt.Errorf("unlock pty: %w", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		master.Close()
		return ptyPair{}, fmt.Errorf("pty number: %w", err)
	}
	slave, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		master.Close()
		return ptyPair{}, fmt.Errorf("open pty slave: %w", err)
	}
	_ = unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 80})
	return ptyPair{master: master, slave: slave}, nil
}

// setSize sets the pty's window; a zero width or height is ignored.
func (p ptyPair) setSize(ws Winsize) {
	if ws.Width == 0 || ws.Height == 0 {
		return
	}
	_ = unix.IoctlSetWinsize(int(p.slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: ws.Height, Col: ws.Width})
}

// relayResize applies each size to the pty runc relays and tells runc with
// SIGWINCH (the pty is not runc's controlling terminal, so the kernel does
// not), until stop closes or resize ends.
func relayResize(resize <-chan Winsize, stop <-chan struct{}, slave *os.File, runc *os.Process) {
	p := ptyPair{slave: slave}
	for {
		select {
		case <-stop:
			return
		case ws, ok := <-resize:
			if !ok {
				return
			}
			p.setSize(ws)
			_ = runc.Signal(unix.SIGWINCH)
		}
	}
}
