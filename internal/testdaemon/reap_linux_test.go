package testdaemon

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestReapRemovesLeftovers leaves on the machine what a pod of a stopped
// daemon leaves (a mount below its state, its bridge, the CNI bridge
// plugin's masquerade rule and chain), plus the same for another daemon's
// subnet, and checks that Reap removes the first set and only it.
func TestReapRemovesLeftovers(t *testing.T) {
	for _, bin := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s: %v (install it with `make deps`)", bin, err)
		}
	}
	dir := t.TempDir()
	shm := filepath.Join(dir, "state", "pod", "shm")
	if err := os.MkdirAll(shm, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", shm, "tmpfs", 0, "size=64k"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(shm, syscall.MNT_DETACH) })

	tag := fmt.Sprintf("%08x", rand.Uint32())
	bridge := "ppr" + tag
	mine, other := "10.206."+fmt.Sprint(rand.IntN(256))+".0/24", "10.207."+fmt.Sprint(rand.IntN(256))+".0/24"
	run(t, "ip", "link", "add", bridge, "type", "bridge")
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", bridge).Run() })
	chains := map[string]string{"CNI-r" + tag: mine, "CNI-o" + tag: other}
	for chain, subnet := range chains {
		addr := strings.TrimSuffix(subnet, "0/24") + "2"
		rule := []string{"POSTROUTING", "-s", addr + "/32", "-m", "comment", "--comment", fmt.Sprintf(`name: "peapod" id: "%s"`, chain), "-j", chain}
		run(t, "iptables", "-w", "-t", "nat", "-N", chain)
		run(t, "iptables", "-w", "-t", "nat", "-A", chain, "-d", subnet, "-j", "ACCEPT")
		run(t, "iptables", append([]string{"-w", "-t", "nat", "-A"}, rule...)...)
		t.Cleanup(func() {
			_ = exec.Command("iptables", append([]string{"-w", "-t", "nat", "-D"}, rule...)...).Run()
			_ = exec.Command("iptables", "-w", "-t", "nat", "-F", chain).Run()
			_ = exec.Command("iptables", "-w", "-t", "nat", "-X", chain).Run()
		})
	}

	Reap([]string{dir}, bridge, mine)

	if info, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(info), shm) {
		t.Errorf("%s is still mounted", shm)
	}
	if exec.Command("ip", "link", "show", bridge).Run() == nil {
		t.Errorf("bridge %s is still there", bridge)
	}
	nat, err := exec.Command("iptables", "-w", "-t", "nat", "-S").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(nat), "CNI-r"+tag) {
		t.Errorf("the reaped subnet's NAT rule or chain is still there:\n%s", grep(string(nat), tag))
	}
	if strings.Count(grep(string(nat), "CNI-o"+tag), "\n") != 3 {
		t.Errorf("another daemon's NAT rules were touched:\n%s", grep(string(nat), tag))
	}
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

func grep(text, word string) string {
	var b strings.Builder
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, word) {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}
