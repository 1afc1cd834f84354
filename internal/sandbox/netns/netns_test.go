package netns

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return st.Ino
}

func newNS(t *testing.T, dir string) *NS {
	t.Helper()
	ns, err := New(dir)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := ns.Remove(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return ns
}

// hostNS is the namespace of the thread running the test, which is the
// host's unless netns leaked a thread.
func hostNS(t *testing.T) uint64 {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return inode(t, "/proc/thread-self/ns/net")
}

// threadsIn counts the threads of this process that sit in the namespace
// with inode ino.
func threadsIn(t *testing.T, ino uint64) int {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, task := range tasks {
		var st unix.Stat_t
		if unix.Stat(filepath.Join("/proc/self/task", task.Name(), "ns/net"), &st) == nil && st.Ino == ino {
			n++
		}
	}
	return n
}

func mounted(t *testing.T, path string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == path {
			return true
		}
	}
	return false
}

func TestNewPinsAFreshNamespace(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "netns")
	ns := newNS(t, dir)

	if filepath.Dir(ns.Path()) != dir || !strings.HasPrefix(filepath.Base(ns.Path()), "peapod-") {
		t.Fatalf("Path() = %s, want %s/peapod-*", ns.Path(), dir)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("dir %s: %v %v, want 0755", dir, fi.Mode(), err)
	}
	if !IsPinned(ns.Path()) || !mounted(t, ns.Path()) {
		t.Fatalf("%s is not a pinned netns mount", ns.Path())
	}
	pinned := inode(t, ns.Path())
	if pinned == hostNS(t) {
		t.Fatal("pinned namespace is the host's")
	}
	// The thread that created it must be gone, not back in the scheduler.
	if n := threadsIn(t, pinned); n != 0 {
		t.Fatalf("%d threads of this process are left inside the new namespace", n)
	}

	other := newNS(t, dir)
	if other.Path() == ns.Path() || inode(t, other.Path()) == pinned {
		t.Fatal("two New calls returned the same namespace")
	}
}

func TestDoRunsInsideAndRestores(t *testing.T) {
	ns := newNS(t, t.TempDir())
	pinned := inode(t, ns.Path())

	var ifaces []net.Interface
	var inside uint64
	err := ns.Do(func() error {
		inside = inode(t, "/proc/thread-self/ns/net")
		var err error
		ifaces, err = net.Interfaces()
		return err
	})
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	if inside != pinned {
		t.Fatalf("fn ran in namespace %d, want %d", inside, pinned)
	}
	// A fresh namespace holds only lo, and it is down until CNI's loopback
	// plugin brings it up.
	if len(ifaces) != 1 || ifaces[0].Name != "lo" || ifaces[0].Flags&net.FlagUp != 0 {
		t.Fatalf("interfaces inside = %+v, want only lo, down", ifaces)
	}

	want := errors.New("boom")
	if err := ns.Do(func() error { return want }); !errors.Is(err, want) {
		t.Fatalf("Do returned %v, want fn's error", err)
	}

	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = ns.Do(func() error { return nil })
		}()
	}
	wg.Wait()
	if n := threadsIn(t, pinned); n != 0 {
		t.Fatalf("%d threads were handed back to the scheduler inside the pod namespace", n)
	}
}

func TestNamespaceIsIsolatedFromHost(t *testing.T) {
	ns := newNS(t, t.TempDir())
	var ln net.Listener
	err := ns.Do(func() error {
		// lo is down in a fresh namespace; a wildcard listener still works
		// and belongs to the namespace.
		var err error
		ln, err = net.Listen("tcp", "0.0.0.0:0")
		return err
	})
	if err != nil {
		t.Fatalf("listen inside: %v", err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	// Nothing in the host's namespace listens on that port because of us.
	if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
		c.Close()
		// Another process could own the same port on the host by chance;
		// make sure it is not our listener answering.
		t.Logf("port %d answered on the host; checking it is not ours", port)
		accepted := make(chan struct{})
		go func() {
			if c, err := ln.Accept(); err == nil {
				c.Close()
				close(accepted)
			}
		}()
		select {
		case <-accepted:
			t.Fatal("host connection reached the listener inside the pod namespace")
		default:
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	ns := newNS(t, dir)

	got, err := Load(ns.Path())
	if err != nil || got.Path() != ns.Path() {
		t.Fatalf("Load(pinned) = %v, %v", got, err)
	}

	plain := filepath.Join(dir, "peapod-stale")
	if err := os.WriteFile(plain, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		path    string
		missing bool
	}{
		{name: "missing", path: filepath.Join(dir, "nope"), missing: true},
		{name: "file without mount (after reboot)", path: plain},
		{name: "a mount namespace, not a network one", path: "/proc/self/ns/mnt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.path)
			if !errors.Is(err, ErrNotPinned) || errors.Is(err, os.ErrNotExist) != tt.missing {
				t.Fatalf("Load(%s) = %v, want ErrNotPinned (missing=%v)", tt.path, err, tt.missing)
			}
			if IsPinned(tt.path) {
				t.Fatalf("IsPinned(%s) = true", tt.path)
			}
		})
	}
	if err := RemovePath(plain); err != nil {
		t.Fatalf("RemovePath(stale file): %v", err)
	}
	if _, err := os.Stat(plain); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stale file still there: %v", err)
	}
}

func TestRemoveIsIdempotentAndLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	var (
		mu    sync.Mutex
		paths []string
		wg    sync.WaitGroup
	)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ns, err := New(dir)
			if err != nil {
				t.Errorf("New: %v", err)
				return
			}
			mu.Lock()
			paths = append(paths, ns.Path())
			mu.Unlock()
			for j := 0; j < 2; j++ {
				if err := ns.Remove(); err != nil {
					t.Errorf("Remove #%d: %v", j+1, err)
				}
			}
		}()
	}
	wg.Wait()
	if len(paths) != 20 {
		t.Fatalf("created %d namespaces, want 20", len(paths))
	}
	for _, p := range paths {
		if mounted(t, p) {
			t.Errorf("%s is still mounted", p)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("dir still holds %d entries", len(entries))
	}
}

func TestPinOutlivesProcessesAndDoAfterRemoveFails(t *testing.T) {
	ns := newNS(t, t.TempDir())
	ino := inode(t, ns.Path())
	// Load after the creating thread is long gone still finds the same one.
	again, err := Load(ns.Path())
	if err != nil || inode(t, again.Path()) != ino {
		t.Fatalf("Load: %v", err)
	}
	if err := ns.Remove(); err != nil {
		t.Fatal(err)
	}
	if err := ns.Do(func() error { return nil }); err == nil {
		t.Fatal("Do on a removed namespace succeeded")
	}
}
