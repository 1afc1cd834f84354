package runc_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/peapod/peapod/internal/container/runc"
	"github.com/peapod/peapod/internal/container/runc/runctest"
)

// created creates (but does not start) a container running args and returns
// its driver, ID and init PID; it is deleted when the test ends.
func created(t *testing.T, args ...string) (*runc.Runc, string, int) {
	t.Helper()
	runctest.Require(t, runctest.Runc, runctest.Busybox)
	id := runctest.ID(t)
	bundle := runctest.Bundle(t, runctest.Spec(id, args...))
	r := runc.New(runctest.Runc, t.TempDir())
	t.Cleanup(func() {
		if err := r.Delete(context.Background(), id, true); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	pidFile := filepath.Join(bundle, "pid")
	if err := r.Create(context.Background(), id, bundle, pidFile); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return r, id, pid
}

// StartCreated must leave the container exactly as `runc start` does: the
// workload runs as the init PID and runc itself reports it running.
func TestStartCreatedRunsTheWorkload(t *testing.T) {
	r, id, pid := created(t, "sleep", "1000")
	if err := r.StartCreated(context.Background(), id, pid); err != nil {
		t.Fatal(err)
	}
	st, err := r.State(context.Background(), id)
	if err != nil || st.Status != runc.StatusRunning || st.Pid != pid {
		t.Fatalf("after start: %+v %v, want running with pid %d", st, err, pid)
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || !strings.HasPrefix(string(cmdline), "sleep\x001000") {
		t.Fatalf("init process runs %q (%v), want the workload", cmdline, err)
	}
	// A second start is runc's error, not a hang.
	err = r.StartCreated(context.Background(), id, pid)
	if err == nil || !strings.Contains(err.Error(), "runc start "+id) {
		t.Fatalf("second start: %v", err)
	}
}

// An init process that died while created cannot be started; the caller
// gets runc's wording instead of waiting forever on the fifo.
func TestStartCreatedDeadInit(t *testing.T) {
	r, id, pid := created(t, "sleep", "1000")
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := r.StartCreated(context.Background(), id, pid)
	if err == nil || !strings.Contains(err.Error(), "container process is already dead") {
		t.Fatalf("start of a dead init: %v", err)
	}
}

func TestStartCreatedUnknownContainer(t *testing.T) {
	runctest.Require(t, runctest.Runc)
	r := runc.New(runctest.Runc, t.TempDir())
	err := r.StartCreated(context.Background(), "no-such-container", 1)
	if !errors.Is(err, runc.ErrNotExist) {
		t.Fatalf("start of an unknown container: %v, want ErrNotExist", err)
	}
}
