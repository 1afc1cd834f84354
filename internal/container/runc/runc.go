// Package runc drives the runc binary, the OCI runtime that creates, signals
// and deletes containers. Each daemon gives runc its own state directory
// (--root) so that two daemons on one host never see each other's containers.
//
// runc reports failures in its log; every call here asks for a JSON log
// (--log-format json) and puts the last error runc logged into the Go error,
// because runc's exit status alone ("exit status 1") tells a user nothing.
package runc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Container status values as runc reports them.
const (
	StatusCreating = "creating"
	StatusCreated  = "created"
	StatusRunning  = "running"
	StatusPaused   = "paused"
	StatusStopped  = "stopped"
)

// ErrNotExist is returned (wrapped) when runc does not know the container.
var ErrNotExist = errors.New("container does not exist")

// ErrNotRunning is returned (wrapped) when a signal is sent to a container
// whose processes have all exited.
var ErrNotRunning = errors.New("container not running")

// Runc runs one runc binary against one state directory. The zero value is
// not usable; create it with New. A Runc is safe for concurrent use.
type Runc struct {
	binary string
	root   string
}

// New returns a driver for the runc binary (a path, or a name looked up in
// $PATH when run) keeping its state under root.
func New(binary, root string) *Runc {
	return &Runc{binary: binary, root: root}
}

// Binary is the runc binary this driver runs.
func (r *Runc) Binary() string { return r.binary }

// Root is runc's state directory (--root).
func (r *Runc) Root() string { return r.root }

// GlobalArgs are the arguments that select runc's state directory; a monitor
// that runs runc itself (conmon) must pass them too.
func (r *Runc) GlobalArgs() []string { return []string{"--root=" + r.root} }

// State is what runc reports about one container.
type State struct {
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Error is a failed runc command with the message runc gave for it.
type Error struct {
	Command string // e.g. "kill"
	ID      string
	Message string // runc's last logged error, or its stderr
	Err     error  // the process error (exit status)
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = e.Err.Error()
	}
	if e.ID == "" {
		return fmt.Sprintf("runc %s: %s", e.Command, msg)
	}
	return fmt.Sprintf("runc %s %s: %s", e.Command, e.ID, msg)
}

// Is lets errors.Is match ErrNotExist and ErrNotRunning on runc's message.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNotExist:
		return strings.Contains(e.Message, "does not exist")
	case ErrNotRunning:
		return strings.Contains(e.Message, "not running") || strings.Contains(e.Message, "process already finished")
	}
	return false
}

func (e *Error) Unwrap() error { return e.Err }

// command prepares a runc invocation with a private JSON log file; runc is
// killed when ctx ends if killOnCancel. The caller must call done (which
// removes the log) after the process ends.
func (r *Runc) command(ctx context.Context, killOnCancel bool, args ...string) (cmd *exec.Cmd, logPath string, done func(), err error) {
	if err := os.MkdirAll(r.root, 0o700); err != nil {
		return nil, "", nil, fmt.Errorf("runc root %s: %w", r.root, err)
	}
	f, err := os.CreateTemp("", "runc-log-*.json")
	if err != nil {
		return nil, "", nil, fmt.Errorf("runc log file: %w", err)
	}
	logPath = f.Name()
	f.Close()
	full := append([]string{"--root", r.root, "--log", logPath, "--log-format", "json"}, args...)
	if killOnCancel {
		cmd = exec.CommandContext(ctx, r.binary, full...)
	} else {
		cmd = exec.Command(r.binary, full...)
	}
	cmd.WaitDelay = 5 * time.Second
	return cmd, logPath, func() { os.Remove(logPath) }, nil
}

// run runs a runc command to completion and returns its stdout.
func (r *Runc) run(ctx context.Context, id string, stdin io.Reader, args ...string) ([]byte, error) {
	cmd, logPath, done, err := r.command(ctx, true, args...)
	if err != nil {
		return nil, err
	}
	defer done()
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		return nil, &Error{Command: args[0], ID: id, Message: lastError(logPath, stderr.String()), Err: err}
	}
	return stdout.Bytes(), nil
}

// lastError returns the last error runc logged, else its trimmed stderr.
func lastError(logPath, stderr string) string {
	msg := ""
	if f, err := os.Open(logPath); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			var entry struct {
				Level string `json:"level"`
				Msg   string `json:"msg"`
			}
			if json.Unmarshal(sc.Bytes(), &entry) == nil && (entry.Level == "error" || entry.Level == "fatal") {
				msg = entry.Msg
			}
		}
	}
	if msg == "" {
		msg = strings.TrimSpace(stderr)
	}
	return msg
}

// State returns runc's view of container id; the error wraps ErrNotExist
// when runc does not know it.
func (r *Runc) State(ctx context.Context, id string) (State, error) {
	out, err := r.run(ctx, id, nil, "state", id)
	if err != nil {
		return State{}, err
	}
	var st State
	if err := json.Unmarshal(out, &st); err != nil {
		return State{}, fmt.Errorf("runc state %s: decode %q: %w", id, out, err)
	}
	return st, nil
}

// List returns every container in this driver's state directory.
func (r *Runc) List(ctx context.Context) ([]State, error) {
	out, err := r.run(ctx, "", nil, "list", "--format", "json")
	if err != nil {
		return nil, err
	}
	var list []State
	if len(bytes.TrimSpace(out)) == 0 || bytes.Equal(bytes.TrimSpace(out), []byte("null")) {
		return nil, nil
	}
	if err := json.Unmarshal(out, &list); err != nil {
		return nil, fmt.Errorf("runc list: decode: %w", err)
	}
	return list, nil
}

// Start runs the user process of a created container.
func (r *Runc) Start(ctx context.Context, id string) error {
	_, err := r.run(ctx, id, nil, "start", id)
	return err
}

// Kill sends sig to the container's init process, or with all to every
// process in its cgroup (needed when it shares a pod's PID namespace, where
// the init's death does not take the other processes with it).
func (r *Runc) Kill(ctx context.Context, id string, sig syscall.Signal, all bool) error {
	args := []string{"kill"}
	if all {
		args = append(args, "--all")
	}
	_, err := r.run(ctx, id, nil, append(args, id, fmt.Sprint(int(sig)))...)
	return err
}

// Delete removes the container's runc state and cgroup. force kills a
// running container first. A container runc does not know is already
// deleted: Delete is idempotent.
func (r *Runc) Delete(ctx context.Context, id string, force bool) error {
	args := []string{"delete"}
	if force {
		args = append(args, "--force")
	}
	_, err := r.run(ctx, id, nil, append(args, id)...)
	if errors.Is(err, ErrNotExist) {
		// runc leaves a directory behind when a create was aborted before
		// it wrote state.json; without --force it also refuses to clean it.
		if rerr := os.RemoveAll(filepath.Join(r.root, id)); rerr != nil {
			return fmt.Errorf("runc delete %s: %w", id, rerr)
		}
		return nil
	}
	return err
}

// Pause freezes every process of the container.
func (r *Runc) Pause(ctx context.Context, id string) error {
	_, err := r.run(ctx, id, nil, "pause", id)
	return err
}

// Resume thaws a paused container.
func (r *Runc) Resume(ctx context.Context, id string) error {
	_, err := r.run(ctx, id, nil, "resume", id)
	return err
}

// Update changes the cgroup limits of a created or running container.
func (r *Runc) Update(ctx context.Context, id string, res *specs.LinuxResources) error {
	if res == nil {
		return nil
	}
	data, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("runc update %s: %w", id, err)
	}
	_, err = r.run(ctx, id, bytes.NewReader(data), "update", "--resources", "-", id)
	return err
}

// Stop asks the container to stop the way Kubernetes does: SIGTERM to its
// init, then after grace SIGKILL to every process in it. It returns once the
// init process has exited, or with ctx's error. A container that is already
// stopped, or unknown, is success.
func (r *Runc) Stop(ctx context.Context, id string, grace time.Duration) error {
	st, err := r.State(ctx, id)
	if errors.Is(err, ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stop %s: %w", id, err)
	}
	if st.Status == StatusStopped || st.Pid <= 0 {
		return nil
	}
	pidfd, err := unix.PidfdOpen(st.Pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stop %s: pidfd_open %d: %w", id, st.Pid, err)
	}
	defer unix.Close(pidfd)
	if st.Status == StatusPaused {
		// A frozen process cannot act on SIGTERM.
		if err := r.Resume(ctx, id); err != nil {
			return fmt.Errorf("stop %s: %w", id, err)
		}
	}
	if grace > 0 {
		if err := r.Kill(ctx, id, unix.SIGTERM, false); err != nil && !errors.Is(err, ErrNotRunning) {
			return fmt.Errorf("stop %s: %w", id, err)
		}
		exited, err := waitPidfd(ctx, pidfd, grace)
		if err != nil || exited {
			return err
		}
	}
	if err := r.Kill(ctx, id, unix.SIGKILL, true); err != nil && !errors.Is(err, ErrNotRunning) {
		return fmt.Errorf("stop %s: %w", id, err)
	}
	if _, err := waitPidfd(ctx, pidfd, -1); err != nil {
		return fmt.Errorf("stop %s: wait for exit: %w", id, err)
	}
	return nil
}

// waitPidfd waits up to d (forever when d < 0) for the process behind pidfd
// to exit and reports whether it did.
func waitPidfd(ctx context.Context, pidfd int, d time.Duration) (bool, error) {
	var deadline time.Time
	if d >= 0 {
		deadline = time.Now().Add(d)
	}
	for {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		slice := 100 * time.Millisecond
		if !deadline.IsZero() {
			left := time.Until(deadline)
			if left <= 0 {
				return false, nil
			}
			slice = min(slice, left)
		}
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(slice.Milliseconds())+1)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return false, fmt.Errorf("poll pidfd: %w", err)
		}
		if n > 0 {
			return true, nil
		}
	}
}

// Create creates container id from the bundle directory (holding
// config.json) without starting its process, writing the init's host PID to
// pidFile when it is not empty. The process's stdio is /dev/null: a container
// whose output matters runs under a monitor (package conmon) instead.
func (r *Runc) Create(ctx context.Context, id, bundle, pidFile string) error {
	args := []string{"create", "--bundle", bundle}
	if pidFile != "" {
		args = append(args, "--pid-file", pidFile)
	}
	cmd, logPath, done, err := r.command(ctx, true, append(args, id)...)
	if err != nil {
		return err
	}
	defer done()
	// Files, not pipes: the container keeps its stdio open after runc exits,
	// and a pipe would make Wait block until the container ends.
	devNull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("runc create %s: %w", id, err)
	}
	defer devNull.Close()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devNull, devNull, devNull
	if err := cmd.Run(); err != nil {
		return &Error{Command: "create", ID: id, Message: lastError(logPath, ""), Err: err}
	}
	return nil
}
