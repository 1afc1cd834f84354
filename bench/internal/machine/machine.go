// Package machine says what a benchmark ran on and from which tree, for the
// reports of bench/pod and bench/pull: a number without its machine, load
// and commit cannot be compared with anything.
package machine

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
)

// Facts describes the machine: CPUs and model, memory, kernel, OS, cgroup
// version, Go version, the load average now (loadavg_start), and the
// filesystem that holds dir (work_fs, work_fs_magic), where the runtimes
// under test keep their roots.
func Facts(dir string) map[string]string {
	m := map[string]string{
		"cpus":          fmt.Sprint(runtime.NumCPU()),
		"go":            runtime.Version(),
		"loadavg_start": Loadavg(),
		"cgroup":        "v1",
	}
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		m["cgroup"] = "v2"
	}
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		m["kernel"] = cString(u.Release[:])
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m["cpu"] = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		if f := strings.Fields(line); len(f) > 1 {
			m["memory"] = strings.Join(f[1:], " ")
		}
	}
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
				m["os"] = strings.Trim(v, `"`)
			}
		}
	}
	if dir != "" {
		var fs syscall.Statfs_t
		if syscall.Statfs(dir, &fs) == nil {
			m["work_fs_magic"] = fmt.Sprintf("%#x", fs.Type)
		}
		if mnt := mountOf(dir); mnt != "" {
			m["work_fs"] = mnt
		}
	}
	return m
}

// mountOf describes the mount holding dir (the longest matching mount
// point in /proc/mounts): "TYPE SOURCE on POINT (OPTIONS)".
func mountOf(dir string) string {
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return ""
	}
	best, out := "", ""
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || !(dir == f[1] || strings.HasPrefix(dir, strings.TrimSuffix(f[1], "/")+"/")) || len(f[1]) < len(best) {
			continue
		}
		best = f[1]
		out = fmt.Sprintf("%s %s on %s (%s)", f[2], f[0], f[1], f[3])
	}
	return out
}

func cString(b []int8) string {
	s := make([]byte, 0, len(b))
	for _, c := range b {
		if c == 0 {
			break
		}
		s = append(s, byte(c))
	}
	return string(s)
}

// Loadavg is the 1, 5 and 15 minute load average: the machine may be
// shared, and a busy one makes every number worse.
func Loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// GoEnv is `go env KEY`, empty when go is missing.
func GoEnv(key string) string {
	out, err := exec.Command("go", "env", key).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// GitCommit names the tree the benchmark was built from (`git describe
// --always --dirty`), "unknown" outside a repository.
func GitCommit() string {
	out, err := exec.Command("git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}
