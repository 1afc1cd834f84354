package runc_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/peapod/peapod/internal/container/runc"
	"github.com/peapod/peapod/internal/container/runc/runctest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	runctest.RemoveLayer()
	os.Exit(code)
}

// started creates and starts a container running args and deletes it when
// the test ends.
func started(t *testing.T, args ...string) (*runc.Runc, string, string) {
	t.Helper()
	runctest.Require(t, runctest.Runc, runctest.Busybox)
	id := runctest.ID(t)
	bundle := runctest.Bundle(t, runctest.Spec(id, args...))
	r := runc.New(runctest.Runc, t.TempDir())
	ctx := context.Background()
	t.Cleanup(func() {
		if err := r.Delete(context.Background(), id, true); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	if err := r.Create(ctx, id, bundle, filepath.Join(bundle, "pid")); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	return r, id, bundle
}

func status(t *testing.T, r *runc.Runc, id string) string {
	t.Helper()
	st, err := r.State(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return st.Status
}

func TestLifecycleAndCleanup(t *testing.T) {
	runctest.Require(t, runctest.Runc, runctest.Busybox)
	ctx := context.Background()
	id := runctest.ID(t)
	bundle := runctest.Bundle(t, runctest.Spec(id, "sleep", "1000"))
	root := t.TempDir()
	r := runc.New(runctest.Runc, root)
	t.Cleanup(func() { _ = r.Delete(context.Background(), id, true) })
	if err := r.Create(ctx, id, bundle, ""); err != nil {
		t.Fatal(err)
	}
	if got := status(t, r, id); got != runc.StatusCreated {
		t.Fatalf("after create: %s", got)
	}
	if err := r.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	st, err := r.State(ctx, id)
	if err != nil || st.Status != runc.StatusRunning || st.Pid <= 0 || st.Bundle != bundle {
		t.Fatalf("after start: %+v %v", st, err)
	}
	list, err := r.List(ctx)
	if err != nil || len(list) != 1 || list[0].ID != id {
		t.Fatalf("list = %+v, %v", list, err)
	}
	if err := r.Pause(ctx, id); err != nil {
		t.Fatal(err)
	}
	if got := status(t, r, id); got != runc.StatusPaused {
		t.Fatalf("after pause: %s", got)
	}
	if err := r.Resume(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := r.Delete(ctx, id, true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, id)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("runc state dir remains: %v", err)
	}
	if d := runctest.CgroupDirs(id); len(d) != 0 {
		t.Errorf("cgroups remain: %v", d)
	}
	if err := r.Delete(ctx, id, false); err != nil {
		t.Errorf("second delete: %v", err)
	}
	if _, err := r.State(ctx, id); !errors.Is(err, runc.ErrNotExist) {
		t.Errorf("state of deleted container: %v, want ErrNotExist", err)
	}
	if list, err := r.List(ctx); err != nil || len(list) != 0 {
		t.Errorf("list after delete = %+v, %v", list, err)
	}
}

func TestErrorsCarryRuncMessage(t *testing.T) {
	runctest.Require(t, runctest.Runc)
	r := runc.New(runctest.Runc, t.TempDir())
	err := r.Start(context.Background(), "no-such-container")
	if err == nil || !strings.Contains(err.Error(), "runc start no-such-container: container does not exist") {
		t.Fatalf("err = %v", err)
	}
	if !errors.Is(err, runc.ErrNotExist) {
		t.Errorf("errors.Is(%v, ErrNotExist) = false", err)
	}
	// A spec naming a missing binary: runc's own explanation must reach the user.
	id := runctest.ID(t)
	bundle := runctest.Bundle(t, runctest.Spec(id, "/no/such/binary"))
	t.Cleanup(func() { _ = r.Delete(context.Background(), id, true) })
	err = r.Create(context.Background(), id, bundle, "")
	if err == nil || !strings.Contains(err.Error(), `exec: "/no/such/binary": stat /no/such/binary: no such file or directory`) {
		t.Fatalf("create with missing binary: %v", err)
	}
}

func TestExec(t *testing.T) {
	r, id, _ := started(t, "sleep", "1000")
	ctx := context.Background()
	proc := specs.Process{Args: []string{"sh", "-c", "read x; echo out $x; echo err >&2; exit 7"}, Env: []string{"PATH=/bin"}, Cwd: "/"}
	var out, errOut bytes.Buffer
	code, err := r.Exec(ctx, id, proc, strings.NewReader("in\n"), &out, &errOut, false)
	if err != nil || code != 7 {
		t.Fatalf("exec = %d, %v", code, err)
	}
	if out.String() != "out in\n" || errOut.String() != "err\n" {
		t.Errorf("stdout %q stderr %q", out.String(), errOut.String())
	}

	out.Reset()
	proc.Args = []string{"tty"}
	if code, err := r.Exec(ctx, id, proc, nil, &out, nil, true); err != nil || code != 0 || !strings.HasPrefix(out.String(), "/dev/pts/") {
		t.Errorf("tty exec = %d, %v, %q", code, err, out.String())
	}

	proc.Args = []string{"/no/such/binary"}
	if _, err := r.Exec(ctx, id, proc, nil, nil, nil, false); err == nil || !strings.Contains(err.Error(), "/no/such/binary") {
		t.Errorf("exec of missing binary: %v", err)
	}
}

func TestExecTimeoutKillsProcess(t *testing.T) {
	r, id, _ := started(t, "sleep", "1000")
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	proc := specs.Process{Args: []string{"sleep", "100"}, Env: []string{"PATH=/bin"}, Cwd: "/"}
	code, err := r.Exec(ctx, id, proc, nil, nil, nil, false)
	if !errors.Is(err, context.DeadlineExceeded) || code != -1 {
		t.Fatalf("exec = %d, %v; want deadline exceeded", code, err)
	}
	// The process that ran "sleep 100" must be gone.
	var out bytes.Buffer
	ps := specs.Process{Args: []string{"sh", "-c", "ps -o args | grep -cx 'sleep 100'"}, Env: []string{"PATH=/bin"}, Cwd: "/"}
	if _, err := r.Exec(context.Background(), id, ps, nil, &out, nil, false); err != nil {
		t.Fatal(err)
	}
	if n := strings.TrimSpace(out.String()); n != "0" {
		t.Fatalf("the timed-out exec's process still runs (%s found)", n)
	}
}

func TestStopHonoursSIGTERMThenKills(t *testing.T) {
	t.Run("exits on SIGTERM", func(t *testing.T) {
		r, id, bundle := started(t, "sh", "-c", "trap 'echo term > /got-term; exit 0' TERM; while true; do sleep 0.05; done")
		if err := r.Stop(context.Background(), id, time.Minute); err != nil {
			t.Fatal(err)
		}
		if got := status(t, r, id); got != runc.StatusStopped {
			t.Fatalf("after stop: %s", got)
		}
		if _, err := os.Stat(filepath.Join(bundle, "rootfs", "got-term")); err != nil {
			t.Errorf("the process never saw SIGTERM: %v", err)
		}
	})
	t.Run("ignores SIGTERM", func(t *testing.T) {
		// PID 1 without a handler ignores SIGTERM: only SIGKILL ends it.
		r, id, _ := started(t, "sleep", "1000")
		if err := r.Stop(context.Background(), id, 200*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if got := status(t, r, id); got != runc.StatusStopped {
			t.Fatalf("after stop: %s", got)
		}
		if err := r.Stop(context.Background(), id, time.Second); err != nil {
			t.Errorf("stop of stopped container: %v", err)
		}
	})
}

func TestUpdateChangesCgroupLimit(t *testing.T) {
	r, id, _ := started(t, "sleep", "1000")
	limit := int64(64 << 20)
	if err := r.Update(context.Background(), id, &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/memory", runctest.CgroupPath(id), "memory.limit_in_bytes"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(b)) != strconv.FormatInt(limit, 10) {
		t.Errorf("memory.limit_in_bytes = %s, want %d", b, limit)
	}
}
