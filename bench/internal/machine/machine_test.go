package machine

import (
	"os"
	"strings"
	"testing"
)

func TestFacts(t *testing.T) {
	dir := t.TempDir()
	m := Facts(dir)
	for _, k := range []string{"cpus", "go", "kernel", "cgroup", "memory", "work_fs", "work_fs_magic"} {
		if m[k] == "" {
			t.Errorf("fact %q missing: %v", k, m)
		}
	}
	if la := strings.Fields(Loadavg()); len(la) != 3 {
		t.Errorf("Loadavg() = %q, want three numbers", Loadavg())
	}
	if _, err := os.Stat("/etc/os-release"); err == nil && m["os"] == "" {
		t.Errorf("os missing although /etc/os-release exists: %v", m)
	}
}
