package e2e

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDemo runs `make demo`'s script as a user would, twice in a row (the
// second run proves the first left nothing in its way), and checks what it
// shows: the pod pulled with the Secret and Running 2/2, its infra process
// and both containers in one net/ipc/uts namespace with different PIDs, the
// page one container serves fetched by the other, and nothing of the demo
// left on the machine.
func TestDemo(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	for run := 1; run <= 2; run++ {
		cmd := exec.Command("bash", filepath.Join(root, "demo", "demo.sh"))
		cmd.Env = append(os.Environ(), "PEAPOD="+peapodBin)
		b, err := cmd.CombinedOutput()
		out := string(b)
		if err != nil {
			t.Fatalf("demo run %d failed: %v\n%s", run, err, out)
		}
		checkDemoOutput(t, out)
		checkDemoLeftNothing(t)
	}
}

func checkDemoOutput(t *testing.T, out string) {
	t.Helper()
	for _, want := range []string{
		"unauthorized",              // the anonymous pull
		"Login Succeeded",           // peapod login
		"secret/regcred created",    // the login file as a Secret
		"Successfully pulled image", // the pod's pull, with that Secret
		"<h1>Hello from awesomeapps/web</h1>",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`(?m)^web +2/2 +Running `).MatchString(out) {
		t.Errorf("demo output shows no pod web Running 2/2:\n%s", out)
	}
	// The namespace table: PROCESS PID NET IPC UTS, one row per process.
	rows := regexp.MustCompile(`(?m)^(infra\(pause\)|web|client) +(\d+) +(\d+) +(\d+) +(\d+)$`).FindAllStringSubmatch(out, -1)
	if len(rows) != 3 {
		t.Fatalf("want 3 rows (infra, web, client) in the namespace table, got %d:\n%s", len(rows), out)
	}
	pids := map[string]bool{}
	for _, r := range rows {
		pids[r[2]] = true
		if r[3] != rows[0][3] || r[4] != rows[0][4] || r[5] != rows[0][5] {
			t.Errorf("%s's net/ipc/uts inodes %s/%s/%s differ from the infra process's %s/%s/%s",
				r[1], r[3], r[4], r[5], rows[0][3], rows[0][4], rows[0][5])
		}
	}
	if len(pids) != 3 {
		t.Errorf("want 3 different PIDs in the namespace table, got %v", pids)
	}
}

// checkDemoLeftNothing looks for what the demo creates, by the names it
// uses: its bridge, its temp dirs and mounts, its cgroups, its NAT rules.
func checkDemoLeftNothing(t *testing.T) {
	t.Helper()
	if _, err := net.InterfaceByName("peapoddemo0"); err == nil {
		t.Error("the demo left its bridge peapoddemo0")
	}
	if m, _ := filepath.Glob("/tmp/peapod-demo.*"); len(m) > 0 {
		t.Errorf("the demo left %v", m)
	}
	for _, pat := range []string{"/sys/fs/cgroup/peapod-demo", "/sys/fs/cgroup/*/peapod-demo"} {
		if m, _ := filepath.Glob(pat); len(m) > 0 {
			t.Errorf("the demo left cgroups %v", m)
		}
	}
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil && strings.Contains(string(b), "/tmp/peapod-demo.") {
		t.Error("the demo left mounts below /tmp/peapod-demo.*")
	}
	if b, err := exec.Command("iptables-save", "-t", "nat").Output(); err == nil && strings.Contains(string(b), "10.88.77.") {
		t.Error("the demo left NAT rules for its subnet 10.88.77.0/24")
	}
}
