package testdaemon

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/peapod/peapod/internal/cgroup"
)

// TestReapStaleRemovesDeadRunsOnly leaves what a test binary killed
// mid-run leaves (its daemon directory with a mount and a pod cgroup root),
// beside the directory of a run that is still alive and one that is not
// the harness's, and checks that only the dead run's leftovers go.
func TestReapStaleRemovesDeadRunsOnly(t *testing.T) {
	prefix := fmt.Sprintf("peapod-stale-test-%08x-", rand.Uint32())
	mkdir := func(name string) string {
		dir := filepath.Join(os.TempDir(), prefix+name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { Unmount(dir); os.RemoveAll(dir) })
		return dir
	}
	owner := func(dir string, pid int) {
		if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(pid)), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// A process that has exited: its PID names a dead owner.
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	alive := exec.Command("sleep", "60")
	if err := alive.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = alive.Process.Kill(); _ = alive.Wait() })

	dead := mkdir("dead")
	owner(dead, gone.Process.Pid)
	shm := filepath.Join(dead, "state", "shm")
	if err := os.MkdirAll(shm, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", shm, "tmpfs", 0, "size=64k"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	cgroupRoot := "/" + prefix + "cg"
	m, err := cgroup.New()
	if err != nil || len(m.Mounts) == 0 {
		t.Fatalf("no cgroup hierarchy: %v", err)
	}
	hier := m.Mounts[0].Path
	cgroupDir := filepath.Join(hier, cgroupRoot, "kubepods", "podx")
	if err := os.MkdirAll(cgroupDir, 0o755); err != nil {
		t.Fatalf("make a cgroup: %v", err)
	}
	t.Cleanup(func() { RemoveCgroups(cgroupRoot) })
	cfg := fmt.Sprintf("[network]\nbridge = %q\nsubnet = %q\n\n[kubelet]\ncgroup_root = %q\n", "ppstale0", "10.208.0.0/24", cgroupRoot)
	if err := os.WriteFile(filepath.Join(dead, "peapod.toml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	live := mkdir("live")
	owner(live, alive.Process.Pid)
	foreign := mkdir("foreign")

	reaped := ReapStale(prefix)
	if len(reaped) != 1 || reaped[0] != dead {
		t.Errorf("reaped %v, want only %s", reaped, dead)
	}
	if _, err := os.Stat(dead); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the dead run's directory is still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(hier, cgroupRoot)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the dead run's cgroup root is still there: %v", err)
	}
	for _, dir := range []string{live, foreign} {
		if _, err := os.Stat(dir); err != nil {
			t.Errorf("%s was removed: %v", dir, err)
		}
	}
}
