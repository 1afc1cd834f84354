package conmon_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/internal/container/conmon"
	"github.com/peapod/peapod/internal/container/rootfs"
	"github.com/peapod/peapod/internal/container/runc"
	"github.com/peapod/peapod/internal/container/runc/runctest"
)

const helperEnv = "PEAPOD_CONMON_TEST_HELPER"

func TestMain(m *testing.M) {
	if opts := os.Getenv(helperEnv); opts != "" {
		os.Exit(helper(opts))
	}
	code := m.Run()
	runctest.RemoveLayer()
	os.Exit(code)
}

// helper plays a daemon in a child process: it creates and starts the
// container, says so, and waits to be killed.
func helper(data string) int {
	var o conmon.Options
	if err := json.Unmarshal([]byte(data), &o); err != nil {
		fmt.Println(err)
		return 1
	}
	h, err := conmon.Create(context.Background(), o)
	if err == nil {
		err = h.Start(context.Background())
	}
	if err != nil {
		fmt.Println(err)
		return 1
	}
	fmt.Println("started")
	select {}
}

// options prepares a bundle running args under the spec edit and returns
// the options to create it with. Cleanups remove the container, its files
// and its rootfs even when the test fails.
func options(t testing.TB, edit func(*specs.Spec), args ...string) conmon.Options {
	t.Helper()
	runctest.Require(t, runctest.Runc, runctest.Conmon, runctest.Busybox)
	id := runctest.ID(t)
	spec := runctest.Spec(id, args...)
	if edit != nil {
		edit(spec)
	}
	bundle := runctest.Bundle(t, spec)
	state := t.TempDir()
	sock, err := os.MkdirTemp("", "pps")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sock) })
	o := conmon.Options{
		ID:         id,
		Bundle:     bundle,
		Conmon:     runctest.Conmon,
		RuncBinary: runctest.Runc,
		RuncRoot:   filepath.Join(state, "runc"),
		LogPath:    filepath.Join(state, "logs", "0.log"),
		ExitDir:    filepath.Join(state, "exits"),
		SocketDir:  sock,
	}
	t.Cleanup(func() {
		h, err := conmon.Load(bundle)
		if err != nil {
			h = &conmon.Handle{Options: o}
		}
		if err := h.Remove(context.Background()); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return o
}

func run(t testing.TB, o conmon.Options) *conmon.Handle {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	h, err := conmon.Create(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return h
}

func wait(t *testing.T, h *conmon.Handle) conmon.Exit {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	e, err := h.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

var criLine = regexp.MustCompile(`^(\S+) (stdout|stderr) (F|P) (.*)$`)

// logLines returns the log's lines as "stream tag text", checking that each
// is in the CRI format with an RFC3339Nano timestamp.
func logLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := criLine.FindStringSubmatch(sc.Text())
		if m == nil {
			t.Fatalf("log line not in CRI format: %q", sc.Text())
		}
		if _, err := time.Parse(time.RFC3339Nano, m[1]); err != nil {
			t.Fatalf("log timestamp %q: %v", m[1], err)
		}
		out = append(out, m[2]+" "+m[3]+" "+m[4])
	}
	return out
}

func TestLogsAndExitCode(t *testing.T) {
	o := options(t, nil, "sh", "-c", "echo hello; echo oops >&2; exit 3")
	before := time.Now().Add(-time.Second) // file mtimes have coarse granularity
	h := run(t, o)
	e := wait(t, h)
	if e.Code != 3 || e.OOMKilled {
		t.Fatalf("exit = %+v, want code 3 without OOM", e)
	}
	if e.FinishedAt.Before(before) || e.FinishedAt.After(time.Now()) {
		t.Errorf("finished at %v, outside the run", e.FinishedAt)
	}
	lines := strings.Join(logLines(t, o.LogPath), "\n")
	for _, want := range []string{"stdout F hello", "stderr F oops"} {
		if !strings.Contains(lines, want) {
			t.Errorf("log lacks %q:\n%s", want, lines)
		}
	}
	code, finished, ok, err := conmon.ExitStatus(o.ExitDir, o.ID)
	if err != nil || !ok || code != 3 || !finished.Equal(e.FinishedAt) {
		t.Errorf("ExitStatus = %d %v %v %v", code, finished, ok, err)
	}
}

func TestCreateFailureReportsRuncError(t *testing.T) {
	o := options(t, nil, "/no/such/binary")
	_, err := conmon.Create(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), "/no/such/binary: no such file or directory") {
		t.Fatalf("err = %v, want runc's explanation", err)
	}
	if _, err := runc.New(o.RuncBinary, o.RuncRoot).State(context.Background(), o.ID); !errors.Is(err, runc.ErrNotExist) {
		t.Errorf("a failed create left runc state: %v", err)
	}
	assertGone(t, o, true)
}

func TestContainerSurvivesItsCreator(t *testing.T) {
	o := options(t, nil, "sleep", "1000")
	data, _ := json.Marshal(o)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"="+string(data))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "started" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("helper: %q", line)
	}
	if err := cmd.Process.Signal(unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	h, err := conmon.Load(o.Bundle)
	if err != nil {
		t.Fatal(err)
	}
	if !h.MonitorRunning() {
		t.Fatalf("conmon died with its creator")
	}
	st, err := h.Runc().State(context.Background(), o.ID)
	if err != nil || st.Status != runc.StatusRunning || st.Pid != h.ContainerPID {
		t.Fatalf("state after creator died: %+v %v (loaded pid %d)", st, err, h.ContainerPID)
	}
	if _, ok, _ := h.Exited(); ok {
		t.Fatalf("exit recorded for a running container")
	}
	// The restarted "daemon" can still stop it and see the exit.
	e, err := h.Stop(context.Background(), 100*time.Millisecond)
	if err != nil || e.Code != 137 {
		t.Fatalf("stop = %+v, %v; want 137 (SIGKILL)", e, err)
	}
}

func TestStopGraceful(t *testing.T) {
	o := options(t, nil, "sh", "-c", "trap 'exit 42' TERM; while true; do sleep 0.05; done")
	h := run(t, o)
	e, err := h.Stop(context.Background(), time.Minute)
	if err != nil || e.Code != 42 {
		t.Fatalf("stop = %+v, %v; want the TERM handler's 42", e, err)
	}
}

func TestOOMKilled(t *testing.T) {
	limit := int64(16 << 20)
	o := options(t, func(s *specs.Spec) {
		s.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit, Swap: &limit}}
	}, "sh", "-c", "a=xxxxxxxxxxxxxxxx; while true; do a=$a$a; done")
	h := run(t, o)
	e := wait(t, h)
	if !e.OOMKilled || e.Code != 137 {
		t.Fatalf("exit = %+v, want OOMKilled with 137", e)
	}
	// Without conmon's marker the cgroup's own counter still tells.
	if err := os.Remove(filepath.Join(o.Bundle, "oom")); err != nil {
		t.Fatal(err)
	}
	if e, ok, err := h.Exited(); err != nil || !ok || !e.OOMKilled {
		t.Fatalf("from the cgroup counter: %+v %v %v", e, ok, err)
	}
}

func TestAttachSocketAndLogReopen(t *testing.T) {
	o := options(t, nil, "sh", "-c", "i=0; while true; do echo line$i; i=$((i+1)); sleep 0.02; done")
	h := run(t, o)
	st, err := os.Stat(h.AttachSocket())
	if err != nil || st.Mode()&os.ModeSocket == 0 {
		t.Fatalf("attach socket %s: %v %v", h.AttachSocket(), st, err)
	}
	if len(h.AttachSocket()) >= 108 {
		t.Errorf("attach socket path too long to connect: %s", h.AttachSocket())
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: h.AttachSocket()}); err != nil {
		t.Fatalf("connect to attach socket: %v", err)
	}

	rotated := o.LogPath + ".1"
	waitFor(t, func() bool { st, err := os.Stat(o.LogPath); return err == nil && st.Size() > 0 })
	if err := os.Rename(o.LogPath, rotated); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.ReopenLog(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { st, err := os.Stat(o.LogPath); return err == nil && st.Size() > 0 })
	if lines := logLines(t, o.LogPath); !strings.HasPrefix(lines[0], "stdout F line") {
		t.Errorf("new log starts with %q", lines[0])
	}
	if len(logLines(t, rotated)) == 0 {
		t.Errorf("rotated log is empty")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within 10s")
}

// conmons returns the PIDs of conmon processes monitoring id.
func conmons(t *testing.T, id string) []string {
	t.Helper()
	out, _ := exec.Command("pgrep", "-f", "conmon .*--cid "+id).Output()
	return strings.Fields(string(out))
}

func TestRemoveLeavesNothing(t *testing.T) {
	o := options(t, nil, "sleep", "1000")
	h := run(t, o)
	if len(conmons(t, o.ID)) != 1 {
		t.Fatalf("conmon not found running")
	}
	if err := h.Remove(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := rootfs.Unmount(filepath.Join(o.Bundle, "rootfs")); err != nil {
		t.Fatal(err)
	}
	assertGone(t, o, false)
	if err := h.Remove(context.Background()); err != nil {
		t.Errorf("second remove: %v", err)
	}
}

// assertGone checks that container o left no process, runc state, cgroup,
// mount or file behind (the rootfs may stay mounted when mounted is set).
func assertGone(t *testing.T, o conmon.Options, mounted bool) {
	t.Helper()
	if p := conmons(t, o.ID); len(p) != 0 {
		t.Errorf("conmon still runs: %v", p)
	}
	if _, err := os.Stat(filepath.Join(o.RuncRoot, o.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("runc state remains: %v", err)
	}
	if d := runctest.CgroupDirs(o.ID); len(d) != 0 {
		t.Errorf("cgroups remain: %v", d)
	}
	if !mounted && runctest.Mounted(t, filepath.Join(o.Bundle, "rootfs")) {
		t.Errorf("rootfs still mounted")
	}
	left, _ := os.ReadDir(o.Bundle)
	for _, e := range left {
		if e.Name() != "config.json" && e.Name() != "rootfs" {
			t.Errorf("bundle keeps %s", e.Name())
		}
	}
	for _, dir := range []string{o.ExitDir, o.SocketDir} {
		if left, _ := os.ReadDir(dir); len(left) != 0 {
			t.Errorf("%s keeps %d entries", dir, len(left))
		}
	}
}

func TestNoLeaksOverManyCycles(t *testing.T) {
	for i := 0; i < 20; i++ {
		o := options(t, nil, "sleep", "1000")
		h := run(t, o)
		if _, err := h.Stop(context.Background(), 50*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if err := h.Remove(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := rootfs.Unmount(filepath.Join(o.Bundle, "rootfs")); err != nil {
			t.Fatal(err)
		}
		assertGone(t, o, false)
	}
}

func TestStdinThroughAttachSocketAndTerminal(t *testing.T) {
	for _, terminal := range []bool{false, true} {
		t.Run(fmt.Sprintf("terminal=%v", terminal), func(t *testing.T) {
			o := options(t, func(s *specs.Spec) { s.Process.Terminal = terminal }, "sh", "-c", "read x; echo got $x; tty || true")
			o.Stdin, o.StdinOnce, o.Terminal = true, true, terminal
			h := run(t, o)
			fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(fd)
			if err := unix.Connect(fd, &unix.SockaddrUnix{Name: h.AttachSocket()}); err != nil {
				t.Fatal(err)
			}
			if _, err := unix.Write(fd, []byte("hi\n")); err != nil {
				t.Fatal(err)
			}
			if e := wait(t, h); e.Code != 0 {
				t.Fatalf("exit %+v", e)
			}
			lines := strings.Join(logLines(t, o.LogPath), "\n")
			wantTTY := "stdout F not a tty"
			if terminal {
				wantTTY = "stdout F /dev/pts/0"
			}
			for _, want := range []string{"stdout F got hi", wantTTY} {
				if !strings.Contains(lines, want) {
					t.Errorf("log lacks %q:\n%s", want, lines)
				}
			}
		})
	}
}
