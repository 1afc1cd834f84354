// Package conmon runs containers under conmon, the small C monitor CRI-O and
// podman use. conmon daemonises, so a container outlives the daemon that
// created it; it writes the container's output to a log file in the CRI
// format ("<RFC3339Nano> stdout|stderr F|P <text>"), serves an attach socket,
// records the exit code in an exit file whose mtime is the finish time, and
// writes an "oom" file when the kernel's OOM killer hit the container.
//
// Everything a restarted daemon needs to find the container again lives in
// the bundle directory, beside config.json:
//
//	conmon.json   the Options the container was created with (see Load)
//	conmon.pid    conmon's PID
//	pidfile       the container init's host PID (written by runc)
//	ctl, winsz    conmon's control fifos (log reopen, terminal resize)
//	attach        the attach socket (unless SocketDir shortens its path)
//	exit, oom     conmon's persistent exit code and OOM marker
//	runc.log      runc's JSON log of the create
package conmon

import (
	"bytes"
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

	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/internal/container/runc"
)

// Files conmon and runc keep in the bundle directory.
const (
	stateFile      = "conmon.json"
	conmonPidFile  = "conmon.pid"
	containerPidFl = "pidfile"
	ctlFifo        = "ctl"
	winszFifo      = "winsz"
	attachSocket   = "attach"
	persistExit    = "exit"
	oomFile        = "oom"
	runcLog        = "runc.log"
)

// Options describe one container to create under conmon.
type Options struct {
	ID     string `json:"id"`
	Bundle string `json:"bundle"` // absolute directory holding config.json

	Conmon     string `json:"conmon"`     // conmon binary, e.g. /usr/bin/conmon
	RuncBinary string `json:"runcBinary"` // runc binary
	RuncRoot   string `json:"runcRoot"`   // runc --root: the daemon's own state dir

	// LogPath is the container's CRI log file (kubelet chooses it).
	LogPath string `json:"logPath"`
	// LogSizeMax, when > 0, makes conmon truncate the log beyond this size.
	LogSizeMax int64 `json:"logSizeMax,omitempty"`
	// ExitDir receives one file per exited container, named by its ID.
	ExitDir string `json:"exitDir"`
	// SocketDir, when set, holds a short symlink SocketDir/ID → Bundle so
	// the attach socket path fits a sockaddr_un; otherwise the socket is
	// Bundle/attach and clients must keep that path under 108 bytes.
	SocketDir string `json:"socketDir,omitempty"`

	Terminal  bool `json:"terminal,omitempty"`
	Stdin     bool `json:"stdin,omitempty"`
	StdinOnce bool `json:"stdinOnce,omitempty"` // close stdin when the first attach ends
}

// Handle is a container running under conmon.
type Handle struct {
	Options
	ConmonPID    int
	ContainerPID int
}

// Exit is how a container ended.
type Exit struct {
	Code       int
	FinishedAt time.Time
	OOMKilled  bool
}

// syncMessage is what conmon writes on _OCI_SYNCPIPE with --api-version 1:
// the container PID, or a negative number and runc's error output.
type syncMessage struct {
	Data    int    `json:"data"`
	Message string `json:"message,omitempty"`
}

// Create starts conmon, which runs `runc create` and then monitors the
// container. It returns once the container exists (not yet started; see
// Start), or with runc's own error when the create failed.
func Create(ctx context.Context, o Options) (*Handle, error) {
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("create %s: %w", o.ID, err)
	}
	for _, d := range []string{o.ExitDir, o.SocketDir, filepath.Dir(o.LogPath)} {
		if d == "" {
			continue
		}
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("create %s: %w", o.ID, err)
		}
	}
	// Leftovers of an earlier container with this ID would be mistaken for
	// this one's exit.
	for _, p := range []string{filepath.Join(o.ExitDir, o.ID), o.path(persistExit), o.path(oomFile), o.path(conmonPidFile), o.path(containerPidFl)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("create %s: %w", o.ID, err)
		}
	}
	state, err := json.MarshalIndent(o, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", o.ID, err)
	}
	if err := writeFileAtomic(o.path(stateFile), state); err != nil {
		return nil, fmt.Errorf("create %s: %w", o.ID, err)
	}

	syncR, syncW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("create %s: sync pipe: %w", o.ID, err)
	}
	defer syncR.Close()
	cmd := exec.Command(o.Conmon, o.args()...)
	cmd.Dir = o.Bundle // conmon also drops its "oom" marker in its cwd
	cmd.ExtraFiles = []*os.File{syncW}
	cmd.Env = append(os.Environ(), "_OCI_SYNCPIPE=3")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		syncW.Close()
		return nil, fmt.Errorf("create %s: start conmon: %w", o.ID, err)
	}
	syncW.Close()
	// conmon's first process forks the monitor and exits at once.
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("create %s: conmon: %w: %s", o.ID, err, strings.TrimSpace(stderr.String()))
	}

	msg, err := readSync(ctx, syncR)
	if err == nil && msg.Data <= 0 {
		err = errors.New(o.runcError(msg.Message))
	}
	if err != nil {
		o.cleanupFailedCreate()
		return nil, fmt.Errorf("create %s: %w", o.ID, err)
	}
	conmonPID, err := readPid(o.path(conmonPidFile))
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", o.ID, err)
	}
	return &Handle{Options: o, ConmonPID: conmonPID, ContainerPID: msg.Data}, nil
}

func (o *Options) validate() error {
	switch {
	case o.ID == "" || strings.ContainsAny(o.ID, "/\x00") || o.ID == "." || o.ID == "..":
		return fmt.Errorf("invalid container ID %q", o.ID)
	case !filepath.IsAbs(o.Bundle):
		return fmt.Errorf("bundle %q is not an absolute path", o.Bundle)
	case o.Conmon == "" || o.RuncBinary == "" || o.RuncRoot == "":
		return errors.New("conmon, runc binary and runc root are required")
	case o.LogPath == "" || o.ExitDir == "":
		return errors.New("log path and exit dir are required")
	}
	return nil
}

func (o *Options) path(name string) string { return filepath.Join(o.Bundle, name) }

func (o *Options) args() []string {
	a := []string{
		"--api-version", "1",
		"--cid", o.ID, "--cuuid", o.ID, "--name", o.ID,
		"--runtime", o.RuncBinary,
		"--runtime-arg", "--root=" + o.RuncRoot,
		"--runtime-arg", "--log=" + o.path(runcLog),
		"--runtime-arg", "--log-format=json",
		"--bundle", o.Bundle,
		"--container-pidfile", o.path(containerPidFl),
		"--conmon-pidfile", o.path(conmonPidFile),
		"--log-path", "k8s-file:" + o.LogPath,
		"--exit-dir", o.ExitDir,
		"--persist-dir", o.Bundle,
		"--log-level", "error",
	}
	if o.SocketDir != "" {
		a = append(a, "--socket-dir-path", o.SocketDir)
	} else {
		a = append(a, "--full-attach")
	}
	if o.LogSizeMax > 0 {
		a = append(a, "--log-size-max", strconv.FormatInt(o.LogSizeMax, 10))
	}
	if o.Terminal {
		a = append(a, "--terminal")
	}
	if o.Stdin {
		a = append(a, "--stdin")
		if !o.StdinOnce {
			a = append(a, "--leave-stdin-open")
		}
	}
	return a
}

// readSync reads conmon's one message, or fails when ctx ends first.
func readSync(ctx context.Context, r *os.File) (syncMessage, error) {
	if dl, ok := ctx.Deadline(); ok {
		_ = r.SetReadDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = r.SetReadDeadline(time.Now()) })
	defer stop()
	var msg syncMessage
	err := json.NewDecoder(r).Decode(&msg)
	switch {
	case err == nil:
		return msg, nil
	case ctx.Err() != nil:
		return msg, fmt.Errorf("wait for conmon: %w", ctx.Err())
	case errors.Is(err, io.EOF):
		return msg, errors.New("conmon exited without reporting the container")
	default:
		return msg, fmt.Errorf("read conmon sync pipe: %w", err)
	}
}

// runcError picks the most useful explanation of a failed create: runc's
// last logged error, else what conmon relayed from runc's stderr.
func (o *Options) runcError(relayed string) string {
	data, _ := os.ReadFile(o.path(runcLog))
	var last string
	for _, line := range bytes.Split(data, []byte("\n")) {
		var e struct{ Level, Msg string }
		if json.Unmarshal(line, &e) == nil && (e.Level == "error" || e.Level == "fatal") {
			last = e.Msg
		}
	}
	if last == "" {
		last = strings.TrimSpace(relayed)
	}
	if last == "" {
		last = "runc create failed without a message"
	}
	return "runc create: " + last
}

// cleanupFailedCreate removes what a failed create left, so that the caller
// has nothing to remove.
func (o *Options) cleanupFailedCreate() {
	_ = runc.New(o.RuncBinary, o.RuncRoot).Delete(context.Background(), o.ID, true)
	_ = o.removeFiles()
}

// removeFiles removes the files conmon and runc keep for the container.
func (o *Options) removeFiles() error {
	var errs []error
	paths := []string{filepath.Join(o.ExitDir, o.ID)}
	if o.SocketDir != "" {
		paths = append(paths, filepath.Join(o.SocketDir, o.ID))
	}
	for _, f := range []string{conmonPidFile, containerPidFl, ctlFifo, winszFifo, attachSocket, persistExit, oomFile, runcLog, stateFile} {
		paths = append(paths, o.path(f))
	}
	for _, p := range paths {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Load finds the container created in bundle again, for a daemon that
// restarted. ConmonPID is 0 when conmon is no longer running (the container
// has exited; see ExitStatus).
func Load(bundle string) (*Handle, error) {
	data, err := os.ReadFile(filepath.Join(bundle, stateFile))
	if err != nil {
		return nil, fmt.Errorf("load container in %s: %w", bundle, err)
	}
	h := &Handle{}
	if err := json.Unmarshal(data, &h.Options); err != nil {
		return nil, fmt.Errorf("load container in %s: %w", bundle, err)
	}
	h.ContainerPID, _ = readPid(h.path(containerPidFl))
	if pid, err := readPid(h.path(conmonPidFile)); err == nil && h.isConmon(pid) {
		h.ConmonPID = pid
	}
	return h, nil
}

// isConmon reports whether pid is conmon monitoring this container, so that
// a recycled PID is never taken for it.
func (h *Handle) isConmon(pid int) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(string(cmdline), "\x00")
	for i, a := range args {
		if a == "--cid" && i+1 < len(args) && args[i+1] == h.ID {
			return true
		}
	}
	return false
}

// Runc returns a runc driver for this container's state directory.
func (h *Handle) Runc() *runc.Runc { return runc.New(h.RuncBinary, h.RuncRoot) }

// Start starts the container's process.
func (h *Handle) Start(ctx context.Context) error {
	if err := h.Runc().StartCreated(ctx, h.ID, h.ContainerPID); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	return nil
}

// MonitorRunning reports whether conmon still monitors the container.
func (h *Handle) MonitorRunning() bool {
	return h.ConmonPID > 0 && h.isConmon(h.ConmonPID)
}

// AttachSocket is the path of conmon's attach socket (SOCK_SEQPACKET).
func (h *Handle) AttachSocket() string {
	if h.SocketDir != "" {
		return filepath.Join(h.SocketDir, h.ID, attachSocket)
	}
	return h.path(attachSocket)
}

// ExitStatus reads the exit file conmon wrote for container id in exitDir:
// its exit code (128+signal for a signal) and when it finished. ok is false
// while the container has not exited.
func ExitStatus(exitDir, id string) (code int, finished time.Time, ok bool, err error) {
	p := filepath.Join(exitDir, id)
	data, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return 0, time.Time{}, false, nil
	}
	if err != nil {
		return 0, time.Time{}, false, fmt.Errorf("read exit file: %w", err)
	}
	st, err := os.Stat(p)
	if err != nil {
		return 0, time.Time{}, false, fmt.Errorf("read exit file: %w", err)
	}
	code, err = strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 0, time.Time{}, false, fmt.Errorf("exit file %s: %q: %w", p, data, err)
	}
	return code, st.ModTime(), true, nil
}

// Exited returns how the container ended, with ok false while it runs.
func (h *Handle) Exited() (Exit, bool, error) {
	code, finished, ok, err := ExitStatus(h.ExitDir, h.ID)
	if !ok || err != nil {
		return Exit{}, false, err
	}
	return Exit{Code: code, FinishedAt: finished, OOMKilled: h.OOMKilled()}, true, nil
}

// OOMKilled reports whether the kernel's OOM killer acted in the container's
// memory cgroup. conmon records it in its persistent "oom" file; as a second
// source, while the cgroup still exists (before Remove), its oom_kill counter
// is read, and a positive count is written to the same file so the answer
// survives the cgroup.
func (h *Handle) OOMKilled() bool {
	if _, err := os.Stat(h.path(oomFile)); err == nil {
		return true
	}
	if h.cgroupOOMKills() > 0 {
		_ = os.WriteFile(h.path(oomFile), nil, 0o644)
		return true
	}
	return false
}

// cgroupOOMKills reads the oom_kill counter of the container's memory
// cgroup (v1 memory.oom_control or v2 memory.events), or returns 0.
func (h *Handle) cgroupOOMKills() int {
	data, err := os.ReadFile(h.path("config.json"))
	if err != nil {
		return 0
	}
	var spec struct {
		Linux struct {
			CgroupsPath string `json:"cgroupsPath"`
		} `json:"linux"`
	}
	// Only cgroupfs paths name a directory; systemd's "slice:prefix:name"
	// form does not.
	if json.Unmarshal(data, &spec) != nil || !filepath.IsAbs(spec.Linux.CgroupsPath) {
		return 0
	}
	cg := filepath.Clean(spec.Linux.CgroupsPath)
	for _, f := range []string{
		filepath.Join("/sys/fs/cgroup/memory", cg, "memory.oom_control"),
		filepath.Join("/sys/fs/cgroup", cg, "memory.events"),
	} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if n, ok := strings.CutPrefix(line, "oom_kill "); ok {
				if v, err := strconv.Atoi(strings.TrimSpace(n)); err == nil && v > 0 {
					return v
				}
			}
		}
	}
	return 0
}

// Wait waits for the container to exit. It polls the exit file (conmon
// writes it atomically), which also works for a container this process
// did not create.
func (h *Handle) Wait(ctx context.Context) (Exit, error) {
	t := time.NewTicker(25 * time.Millisecond)
	defer t.Stop()
	for {
		e, ok, err := h.Exited()
		if err != nil || ok {
			return e, err
		}
		if !h.MonitorRunning() {
			// conmon writes the exit file before it exits: read once more.
			if e, ok, err := h.Exited(); err != nil || ok {
				return e, err
			}
			return Exit{}, fmt.Errorf("wait %s: conmon is gone and left no exit file", h.ID)
		}
		select {
		case <-ctx.Done():
			return Exit{}, fmt.Errorf("wait %s: %w", h.ID, ctx.Err())
		case <-t.C:
		}
	}
}

// ReopenLog asks conmon to reopen the log file, after kubelet rotated it by
// renaming: conmon's control fifo takes "2 0 0\n" (message type 2, reopen
// logs). It returns once the new file exists.
func (h *Handle) ReopenLog(ctx context.Context) error {
	if err := h.control("2 0 0\n"); err != nil {
		return fmt.Errorf("reopen log of %s: %w", h.ID, err)
	}
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if _, err := os.Stat(h.LogPath); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("reopen log of %s: %w", h.ID, ctx.Err())
		case <-t.C:
		}
	}
}

// Resize sets the terminal size of a container created with Terminal.
func (h *Handle) Resize(width, height uint16) error {
	if err := h.control(fmt.Sprintf("1 %d %d\n", height, width)); err != nil {
		return fmt.Errorf("resize terminal of %s: %w", h.ID, err)
	}
	return nil
}

// control writes one message to conmon's control fifo. O_NONBLOCK makes the
// open fail (ENXIO) instead of hanging when conmon is gone.
func (h *Handle) control(msg string) error {
	f, err := os.OpenFile(h.path(ctlFifo), os.O_WRONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, unix.ENXIO) || errors.Is(err, os.ErrNotExist) {
			return errors.New("conmon is not running")
		}
		return err
	}
	defer f.Close()
	_, err = f.WriteString(msg)
	return err
}

// Remove deletes the container: it kills it if it still runs, deletes the
// runc state and cgroup, waits for conmon to exit, and removes the files
// conmon left in the bundle, exit and socket directories. The log file and
// the bundle directory itself (config.json, rootfs) belong to the caller.
// Remove is idempotent.
func (h *Handle) Remove(ctx context.Context) error {
	if err := h.Runc().Delete(ctx, h.ID, true); err != nil {
		return fmt.Errorf("remove %s: %w", h.ID, err)
	}
	if h.ConmonPID > 0 {
		if err := waitGone(ctx, h, 5*time.Second); err != nil {
			return fmt.Errorf("remove %s: %w", h.ID, err)
		}
	}
	if err := h.removeFiles(); err != nil {
		return fmt.Errorf("remove %s: %w", h.ID, err)
	}
	return nil
}

// waitGone waits for conmon to exit after its container died, and kills it
// if it lingers past d.
func waitGone(ctx context.Context, h *Handle, d time.Duration) error {
	fd, err := unix.PidfdOpen(h.ConmonPID, 0)
	if err != nil {
		return nil // already gone
	}
	defer unix.Close(fd)
	if !h.isConmon(h.ConmonPID) {
		return nil // the PID now belongs to someone else
	}
	deadline := time.Now().Add(d)
	for {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 50)
		if err == nil && n > 0 {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("wait for conmon %d: %w", h.ConmonPID, ctx.Err())
		}
		if time.Now().After(deadline) {
			_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
			deadline = time.Now().Add(time.Hour)
		}
	}
}

func readPid(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pid file %s holds %q", path, data)
	}
	return pid, nil
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Stop stops the container as Kubernetes does (SIGTERM, then SIGKILL to
// every process after grace) and waits until conmon recorded its exit.
func (h *Handle) Stop(ctx context.Context, grace time.Duration) (Exit, error) {
	if err := h.Runc().Stop(ctx, h.ID, grace); err != nil {
		return Exit{}, err
	}
	if e, ok, err := h.Exited(); ok || err != nil {
		return e, err
	}
	return h.Wait(ctx)
}
