package runc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/internal/procfs"
)

// execFifo is the named pipe in runc's state directory (ROOT/ID/exec.fifo)
// on which the init process of a created container waits. Starting a
// container is nothing more than opening it for reading, reading the byte
// runc init writes, and removing it: the init process then execs the
// workload, and runc from then on reports the container as running (a
// created container is one whose fifo still exists). runc has kept this
// layout since 1.0.
const execFifo = "exec.fifo"

// StartCreated starts the created container id whose init process is pid by
// releasing runc init through the exec fifo, as `runc start` does, without
// running runc: that saves a process start (~8 ms of a pod start on a
// 2-core machine, docs/benchmarks.md). When the fifo is not where runc 1.x
// keeps it, it falls back to `runc start`, which also produces runc's own
// error for a container that is not in the created state.
//
// If the init process dies before it writes to the fifo, StartCreated fails
// with "container process is already dead", as runc start does.
func (r *Runc) StartCreated(ctx context.Context, id string, pid int) error {
	path := filepath.Join(r.root, id, execFifo)
	if st, err := os.Lstat(path); err != nil || st.Mode().Type() != os.ModeNamedPipe || pid <= 0 {
		return r.Start(ctx, id)
	}
	if err := releaseInit(ctx, path, pid); err != nil {
		return &Error{Command: "start", ID: id, Message: err.Error(), Err: err}
	}
	return nil
}

// releaseInit opens the exec fifo without blocking, waits until runc init
// has written its byte (poll reports no hang-up to a reader that opened
// before any writer, so an init that has not yet opened its end is simply
// waited for), then removes the fifo.
func releaseInit(ctx context.Context, path string, pid int) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo: %w", err)
	}
	defer unix.Close(fd)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 100)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("poll exec fifo: %w", err)
		}
		if n > 0 && fds[0].Revents&unix.POLLIN != 0 {
			var b [1]byte
			if m, err := unix.Read(fd, b[:]); err != nil || m != 1 {
				return errors.New("container process is already dead")
			}
			if err := os.Remove(path); err != nil {
				return fmt.Errorf("remove exec fifo: %w", err)
			}
			return nil
		}
		if n > 0 && fds[0].Revents&(unix.POLLHUP|unix.POLLERR) != 0 {
			return errors.New("container process is already dead")
		}
		if !procfs.Alive(pid) {
			return errors.New("container process is already dead")
		}
	}
}
