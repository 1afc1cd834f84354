package testdaemon

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	"github.com/peapod/peapod/internal/cgroup"
)

// Reap removes what a stopped daemon's pods leave on the machine, all of
// it named by the daemon's directories, bridge and subnet so that nothing
// of another daemon is touched: the containers of every runc root below
// dirs (State/runtime/runc), the conmon monitors whose command line names
// one of dirs, every mount below dirs (rootfs overlays, shm and volume
// tmpfs, pinned network namespaces, whose veths go with them), the NAT
// rules and chains the CNI plugins added for pod addresses in subnet, and
// the bridge. It is best effort: a leftover it cannot remove must not hide
// the test's own result.
func Reap(dirs []string, bridge, subnet string) {
	for _, dir := range dirs {
		runcRoot := filepath.Join(dir, "runtime", "runc")
		ents, err := os.ReadDir(runcRoot)
		if err != nil {
			continue
		}
		for _, e := range ents {
			_ = exec.Command("runc", "--root", runcRoot, "kill", "--all", e.Name(), "KILL").Run()
			_ = exec.Command("runc", "--root", runcRoot, "delete", "--force", e.Name()).Run()
		}
	}
	for _, pid := range monitors(dirs) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	for _, dir := range dirs {
		Unmount(dir)
	}
	if subnet != "" {
		removeNAT(subnet)
	}
	if bridge != "" {
		_ = exec.Command("ip", "link", "del", bridge).Run()
	}
}

// monitors lists the conmon processes that serve containers below dirs.
func monitors(dirs []string) []int {
	procs, _ := filepath.Glob("/proc/[0-9]*")
	var pids []int
	for _, p := range procs {
		comm, err := os.ReadFile(filepath.Join(p, "comm"))
		if err != nil || strings.TrimSpace(string(comm)) != "conmon" {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join(p, "cmdline"))
		if err != nil {
			continue
		}
		if namesDir(strings.Split(string(cmdline), "\x00"), dirs) {
			if pid, err := strconv.Atoi(filepath.Base(p)); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// namesDir reports whether an argument of a command line is, or is below,
// one of dirs.
func namesDir(args, dirs []string) bool {
	for _, a := range args {
		for _, d := range dirs {
			d = strings.TrimSuffix(d, "/")
			if d != "" && (a == d || strings.HasPrefix(a, d+"/") || strings.Contains(a, "="+d+"/")) {
				return true
			}
		}
	}
	return false
}

// Unmount lazily detaches every mount below dir, deepest first, so that
// removing dir neither fails on a mount nor descends into one. dir itself
// stays mounted if it is a mount point.
func Unmount(dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	for _, mp := range mountsBelow(string(b), dir) {
		_ = syscall.Unmount(mp, syscall.MNT_DETACH)
	}
}

// mountsBelow lists the mount points of a mountinfo text below dir,
// deepest (latest) first.
func mountsBelow(mountinfo, dir string) []string {
	dir = strings.TrimSuffix(dir, "/")
	var mps []string
	for _, line := range strings.Split(mountinfo, "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		if mp := unescapeMount(f[4]); strings.HasPrefix(mp, dir+"/") {
			mps = append(mps, mp)
		}
	}
	for i, j := 0, len(mps)-1; i < j; i, j = i+1, j-1 {
		mps[i], mps[j] = mps[j], mps[i]
	}
	return mps
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space, ...).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// removeNAT deletes the nat rules the CNI bridge (ipMasq) and portmap
// plugins added for pods of subnet and the per-pod chains they jump to.
// The plugins remove them on CNI DEL, which a pod reaped after its daemon
// stopped never gets.
func removeNAT(subnet string) {
	out, err := exec.Command("iptables", "-w", "-t", "nat", "-S").Output()
	if err != nil {
		return
	}
	rules, chains := natLeftovers(string(out), subnet)
	for _, r := range rules {
		_ = exec.Command("iptables", append([]string{"-w", "-t", "nat", "-D"}, r...)...).Run()
	}
	for _, c := range chains {
		_ = exec.Command("iptables", "-w", "-t", "nat", "-F", c).Run()
		_ = exec.Command("iptables", "-w", "-t", "nat", "-X", c).Run()
	}
}

// cniID finds the container id in a CNI plugin's rule comment
// (name: "net" id: "ID").
var cniID = regexp.MustCompile(`id: "([^"]+)"`)

// natLeftovers reads `iptables -t nat -S` and returns the rules (without
// -A) that belong to pods with an address in subnet, and the per-pod CNI
// chains they jump to. A pod is known by the masquerade rule of its
// address in POSTROUTING; its other rules (portmap's) by the container id
// in their comments.
func natLeftovers(save, subnet string) (rules [][]string, chains []string) {
	_, ipnet, err := net.ParseCIDR(subnet)
	if err != nil {
		return nil, nil
	}
	var all [][]string
	for _, line := range strings.Split(save, "\n") {
		args := splitRule(line)
		if len(args) > 1 && args[0] == "-A" {
			all = append(all, args[1:])
		}
	}
	ids := map[string]bool{}
	for _, r := range all {
		if r[0] != "POSTROUTING" {
			continue
		}
		src, _, _ := strings.Cut(flagValue(r, "-s"), "/")
		if ip := net.ParseIP(src); ip != nil && ipnet.Contains(ip) {
			if m := cniID.FindStringSubmatch(flagValue(r, "--comment")); m != nil {
				ids[m[1]] = true
			}
		}
	}
	seen := map[string]bool{}
	for _, r := range all {
		m := cniID.FindStringSubmatch(flagValue(r, "--comment"))
		if m == nil || !ids[m[1]] {
			continue
		}
		rules = append(rules, r)
		// CNI-HOSTPORT-* chains are shared by every pod on the machine.
		if j := flagValue(r, "-j"); strings.HasPrefix(j, "CNI-") && !strings.HasPrefix(j, "CNI-HOSTPORT-") && !seen[j] {
			seen[j] = true
			chains = append(chains, j)
		}
	}
	return rules, chains
}

// flagValue is the argument after flag in a rule, or "".
func flagValue(rule []string, flag string) string {
	for i := 0; i+1 < len(rule); i++ {
		if rule[i] == flag {
			return rule[i+1]
		}
	}
	return ""
}

// splitRule splits a line of `iptables -S` into arguments: words, and
// double-quoted strings in which \" stands for a quote.
func splitRule(line string) []string {
	var args []string
	var cur strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quoted && c == '\\' && i+1 < len(line) && (line[i+1] == '"' || line[i+1] == '\\'):
			i++
			cur.WriteByte(line[i])
		case c == '"':
			quoted = !quoted
			inWord = true
		case !quoted && (c == ' ' || c == '\t'):
			if inWord {
				args = append(args, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		args = append(args, cur.String())
	}
	return args
}

func randUint32() uint32 { return rand.Uint32() }

// freeSubnet picks a /24 in 10.200.0.0/13 that no route of the machine
// covers yet, so that daemons running side by side never share addresses
// (nor, in Reap, NAT rules).
func freeSubnet() string {
	routes, _ := exec.Command("ip", "-4", "route", "show").Output()
	var s string
	for range 20 {
		s = fmt.Sprintf("10.%d.%d.0/24", 200+rand.IntN(8), rand.IntN(256))
		if !strings.Contains(string(routes), s) {
			break
		}
	}
	return s
}

// RemoveCgroups removes the cgroup root (and everything below it) in every
// hierarchy, once Reap has killed the processes in it. Best effort too.
func RemoveCgroups(root string) {
	if root == "" || root == "/" {
		return
	}
	m, err := cgroup.New()
	if err != nil {
		return
	}
	_ = m.Remove(root)
}
