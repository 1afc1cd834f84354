// Package netns creates network namespaces that are pinned by a bind mount,
// so a pod's network outlives every process in it: the pause container can
// be restarted, the daemon can crash, and CNI can still be torn down against
// the same path afterwards. This is what containerd's pkg/netns and CRI-O's
// pinns do.
//
// Network namespaces are a property of an OS thread, and the Go scheduler
// moves goroutines between threads. Every namespace switch here therefore
// happens on a thread locked to its goroutine, which is moved back to the
// namespace it came from before it is unlocked; a thread whose namespace
// cannot be put back is never handed back to the scheduler: its goroutine
// exits while still locked, which makes the runtime terminate the thread.
//
// Loopback: New leaves lo down. The CNI loopback plugin brings it up as part
// of the pod network setup (internal/sandbox/cni), as with kubelet and
// containerd; one owner for every interface inside the namespace keeps setup
// and teardown symmetric.
//
// Mount propagation: a bind mount of an nsfs file works whatever the
// propagation of the directory's mount (shared or private); we do not turn
// the directory into a mount point of its own the way `ip netns` does for
// /run/netns. What `ip netns` gains from that (an unmount propagating into
// mount namespaces copied while the pin existed) does not apply to runc,
// which pivots away from and detaches its copy of the host's mounts, and a
// mount on the state directory would be one more thing for every caller to
// undo.
package netns

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// ErrNotPinned is returned by Load for a path that does not hold a pinned
// network namespace (missing, or a leftover file whose mount is gone, as after
// a reboot).
var ErrNotPinned = errors.New("not a pinned network namespace")

// NS is a network namespace pinned at a path. The zero value is not usable;
// get one from New or Load.
type NS struct {
	path string
}

// New creates a network namespace and pins it at a new, uniquely named file
// in dir (created 0755 if missing). The file name starts with "peapod-".
func New(dir string) (*NS, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create netns dir %s: %w", dir, err)
	}
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("create netns name: %w", err)
	}
	path := filepath.Join(dir, "peapod-"+hex.EncodeToString(b[:]))

	// The mount target must exist; 0444 because nobody writes to it.
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return nil, fmt.Errorf("create netns file %s: %w", path, err)
	}
	f.Close()

	err = onThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare network namespace: %w", err)
		}
		src := fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid())
		if err := unix.Mount(src, path, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind mount %s on %s: %w", src, path, err)
		}
		return nil
	})
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("create netns %s: %w", path, err)
	}
	return &NS{path: path}, nil
}

// onThread runs fn on a locked OS thread and then moves that thread back to
// the network namespace it started in. Only a thread that is back where it
// started is returned to the scheduler. Otherwise its goroutine exits still
// locked, and the runtime terminates the thread (or, for the process's main
// thread, parks it for good; that keeps a reference to the namespace, but
// only after the kernel refused setns back into our own namespace).
//
// Restoring instead of always discarding matters because the goroutine may
// land on the main thread, which Go never terminates: a discarded main
// thread would keep the first pod's network namespace alive for the life of
// the daemon and make /proc/<daemon>/ns/net point into that pod.
func onThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		self := fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid())
		orig, err := os.Open(self)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open own netns: %w", err)
			return
		}
		defer orig.Close()
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("return to own netns: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Load returns the namespace pinned at path, as recorded before a daemon
// restart. It fails with an error wrapping ErrNotPinned when path holds no
// pinned network namespace; RemovePath cleans such a path up.
func Load(path string) (*NS, error) {
	if err := checkPinned(path); err != nil {
		return nil, fmt.Errorf("load netns %s: %w", path, err)
	}
	return &NS{path: path}, nil
}

// IsPinned reports whether path holds a pinned network namespace.
func IsPinned(path string) bool {
	return checkPinned(path) == nil
}

func checkPinned(path string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("%w: %w", ErrNotPinned, os.ErrNotExist)
		}
		return fmt.Errorf("statfs: %w", err)
	}
	if st.Type != unix.NSFS_MAGIC {
		return ErrNotPinned
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	kind, err := unix.IoctlRetInt(int(f.Fd()), unix.NS_GET_NSTYPE)
	if err != nil {
		return fmt.Errorf("query namespace type: %w", err)
	}
	if kind != unix.CLONE_NEWNET {
		return fmt.Errorf("%w: namespace type %#x", ErrNotPinned, kind)
	}
	return nil
}

// Path is the pinned file; OCI specs (the pause container's) and CNI plugins
// join the namespace through it.
func (n *NS) Path() string { return n.path }

// Do runs fn on an OS thread that is inside the namespace, and waits for it.
// Sockets that fn creates belong to the namespace and stay usable from any
// goroutine afterwards. Goroutines that fn starts do not run inside the
// namespace.
func (n *NS) Do(fn func() error) error {
	target, err := os.Open(n.path)
	if err != nil {
		return fmt.Errorf("enter netns %s: %w", n.path, err)
	}
	defer target.Close()
	err = onThread(func() error {
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("setns: %w", err)
		}
		return fn()
	})
	if err != nil {
		return fmt.Errorf("in netns %s: %w", n.path, err)
	}
	return nil
}

// Remove unmounts the pin and deletes the file. The namespace itself goes
// away once no process or open file refers to it. Remove is idempotent.
func (n *NS) Remove() error { return RemovePath(n.path) }

// RemovePath unmounts (lazily, so a busy pin does not block) and deletes a
// pin file. A path that is missing, or a file that is no longer a mount, is
// not an error.
func RemovePath(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil &&
		!errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount netns %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove netns %s: %w", path, err)
	}
	return nil
}
