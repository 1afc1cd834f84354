// Package runctest builds what the runc and conmon integration tests need:
// a root filesystem made from this machine's dynamic busybox and the shared
// libraries it links, mounted per container as an overlay, and a minimal
// OCI runtime spec with a unique cgroup that is removed when the test ends.
//
// It uses the real binaries and kernel, never fakes: a missing binary fails
// the test with a hint to install it.
package runctest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/peapod/peapod/internal/container/rootfs"
)

// Binaries the integration tests run.
const (
	Runc    = "/usr/sbin/runc"
	Conmon  = "/usr/bin/conmon"
	Busybox = "/usr/bin/busybox"
)

// Require fails the test unless every binary exists and the test runs as root.
func Require(t testing.TB, binaries ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("container tests need root")
	}
	for _, b := range binaries {
		if _, err := os.Stat(b); err != nil {
			t.Fatalf("%s is missing: install it with `make deps`", b)
		}
	}
}

// ID returns a container ID unique to this test run.
func ID(t testing.TB) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "pptest-" + hex.EncodeToString(b)
}

var (
	layerOnce sync.Once
	layerDir  string
	layerErr  error
)

// Layer returns a directory holding a busybox root filesystem, built once per
// test binary (the caller's TestMain removes it with RemoveLayer).
func Layer(t testing.TB) string {
	t.Helper()
	Require(t, Busybox)
	layerOnce.Do(func() { layerDir, layerErr = buildLayer() })
	if layerErr != nil {
		t.Fatalf("build busybox layer: %v", layerErr)
	}
	return layerDir
}

// RemoveLayer removes the shared layer; call it from TestMain after m.Run.
func RemoveLayer() {
	if layerDir != "" {
		os.RemoveAll(layerDir)
	}
}

func buildLayer() (string, error) {
	dir, err := os.MkdirTemp("", "busybox-layer-")
	if err != nil {
		return "", err
	}
	for _, d := range []string{"bin", "dev", "proc", "sys", "tmp", "etc", "root"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return "", err
		}
	}
	if err := copyFile(Busybox, filepath.Join(dir, "bin/busybox")); err != nil {
		return "", err
	}
	out, err := exec.Command("ldd", Busybox).Output()
	if err != nil {
		return "", fmt.Errorf("ldd %s: %w", Busybox, err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		// "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or
		// "/lib64/ld-linux-x86-64.so.2 (0x...)"
		for _, f := range strings.Fields(line) {
			if strings.HasPrefix(f, "/") {
				real, err := filepath.EvalSymlinks(f)
				if err != nil {
					return "", err
				}
				if err := copyFile(real, filepath.Join(dir, f)); err != nil {
					return "", err
				}
			}
		}
	}
	list, err := exec.Command(Busybox, "--list").Output()
	if err != nil {
		return "", fmt.Errorf("busybox --list: %w", err)
	}
	for _, applet := range strings.Fields(string(list)) {
		if applet == "busybox" {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", applet)); err != nil && !errors.Is(err, os.ErrExist) {
			return "", err
		}
	}
	if err := os.Symlink("bin", filepath.Join(dir, "sbin")); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644); err != nil {
		return "", err
	}
	return dir, nil
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, data, st.Mode().Perm())
}

// CgroupPath is the cgroupsPath the spec of container id asks runc for.
func CgroupPath(id string) string { return "/" + id }

// CgroupDirs lists the cgroup directories of container id that exist now,
// across every v1 hierarchy and the unified one.
func CgroupDirs(id string) []string {
	var found []string
	hier, _ := filepath.Glob("/sys/fs/cgroup/*")
	for _, h := range append(hier, "/sys/fs/cgroup") {
		p := filepath.Join(h, id)
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			found = append(found, p)
		}
	}
	return found
}

// Spec returns a minimal spec running args in a busybox rootfs at
// bundle/rootfs, with fresh pid, ipc, uts, mount and network namespaces and
// cgroup CgroupPath(id).
func Spec(id string, args ...string) *specs.Spec {
	caps := []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT"}
	return &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: "rootfs"},
		Process: &specs.Process{
			Args: args,
			Env:  []string{"PATH=/bin", "HOME=/root"},
			Cwd:  "/",
			Capabilities: &specs.LinuxCapabilities{
				Bounding: caps, Effective: caps, Permitted: caps,
			},
			NoNewPrivileges: true,
		},
		Hostname: "pptest",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		},
		Linux: &specs.Linux{
			CgroupsPath: CgroupPath(id),
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
				{Type: specs.MountNamespace}, {Type: specs.NetworkNamespace},
			},
			MaskedPaths:   []string{"/proc/kcore", "/sys/firmware"},
			ReadonlyPaths: []string{"/proc/sys", "/proc/sysrq-trigger"},
		},
	}
}

// Bundle writes spec into a fresh bundle directory whose rootfs is an overlay
// of the busybox layer, and registers cleanups that unmount the rootfs and
// remove the container's cgroup directories (after any cleanup registered
// later, such as deleting the container, has run).
func Bundle(t testing.TB, spec *specs.Spec) string {
	t.Helper()
	layer := Layer(t)
	dir := t.TempDir()
	bundle := filepath.Join(dir, "bundle")
	if err := os.MkdirAll(bundle, 0o700); err != nil {
		t.Fatal(err)
	}
	id := strings.TrimPrefix(spec.Linux.CgroupsPath, "/")
	t.Cleanup(func() {
		for _, d := range CgroupDirs(id) {
			if err := syscall.Rmdir(d); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("remove cgroup %s: %v", d, err)
			}
		}
	})
	target := filepath.Join(bundle, "rootfs")
	if err := rootfs.Mount(target, filepath.Join(dir, "upper"), filepath.Join(dir, "work"), []string{layer}, false); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := rootfs.Unmount(target); err != nil {
			t.Errorf("unmount rootfs: %v", err)
		}
	})
	data, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	return bundle
}

// Mounted reports whether path is a mount point now.
func Mounted(t testing.TB, path string) bool {
	t.Helper()
	m, err := rootfs.IsMountPoint(path)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
