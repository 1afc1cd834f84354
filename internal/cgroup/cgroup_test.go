package cgroup

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSharesToWeight(t *testing.T) {
	for _, tt := range []struct{ shares, weight uint64 }{{0, 0}, {2, 1}, {1024, 39}, {262144, 10000}, {1 << 20, 10000}} {
		if got := SharesToWeight(tt.shares); got != tt.weight {
			t.Errorf("SharesToWeight(%d) = %d, want %d", tt.shares, got, tt.weight)
		}
	}
}

func TestNameChecked(t *testing.T) {
	m := &Manager{Mounts: []Mount{{Path: t.TempDir(), V2: true}}}
	for _, name := range []string{"", "/", "rel/x", "/a/../b", "/a/"} {
		if err := m.Ensure(name, Resources{}); err == nil {
			t.Errorf("Ensure(%q) accepted", name)
		}
	}
}

// Against the host's real cgroup filesystem: the cgroup is made in every
// hierarchy with the limits written, and Remove takes it away again.
func TestEnsureAndRemoveOnHost(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (it makes cgroups): run it as root, as CI does")
	}
	m, err := New()
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("/peapod-test/cg%d/podX", os.Getpid())
	t.Cleanup(func() {
		_ = m.Remove(name)
		_ = m.Remove(filepath.Dir(name))
		for _, mt := range m.Mounts {
			_ = os.Remove(filepath.Join(mt.Path, "peapod-test"))
		}
	})
	r := Resources{MemoryLimit: 64 << 20, CPUQuota: 50000, CPUPeriod: 100000, CPUShares: 512}
	if err := m.Ensure(name, r); err != nil {
		t.Fatal(err)
	}
	if err := m.Ensure(name, r); err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	for _, mt := range m.Mounts {
		if _, err := os.Stat(filepath.Join(mt.Path, name)); err != nil {
			t.Errorf("not made in %s: %v", mt.Path, err)
		}
	}
	read := func(file string) string {
		for _, mt := range m.Mounts {
			b, err := os.ReadFile(filepath.Join(mt.Path, name, file))
			if err == nil {
				return strings.TrimSpace(string(b))
			}
		}
		return ""
	}
	if mountOf(m, "memory") != "" {
		for file, want := range map[string]string{"memory.limit_in_bytes": "67108864", "cpu.cfs_quota_us": "50000", "cpu.shares": "512"} {
			if got := read(file); got != want {
				t.Errorf("%s = %q, want %q", file, got, want)
			}
		}
	} else if got := read("memory.max"); got != "67108864" {
		t.Errorf("memory.max = %q, want 67108864", got)
	}
	if err := m.Remove(name); err != nil {
		t.Fatal(err)
	}
	if m.Exists(name) {
		t.Error("cgroup still present after Remove")
	}
	if err := m.Remove(name); err != nil {
		t.Errorf("second Remove: %v", err)
	}
}

// mountOf is the v1 hierarchy holding a controller ("" on pure v2).
func mountOf(m *Manager, controller string) string {
	for _, mt := range m.Mounts {
		if !mt.V2 && mt.has(controller) {
			return mt.Path
		}
	}
	return ""
}
