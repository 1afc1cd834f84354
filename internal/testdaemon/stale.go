package testdaemon

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
)

// ownerFile, in a daemon's directory, holds the PID of the process that
// made it (the test or bench binary). A test binary that dies without
// running its cleanups (a -timeout panic, a SIGKILL) leaves pods behind;
// ReapStale finds them by this file.
const ownerFile = "owner.pid"

// writeOwner records the current process as the owner of dir.
func writeOwner(dir string) error {
	return os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644)
}

var (
	bridgeKey = regexp.MustCompile(`(?m)^bridge = "([^"]+)"`)
	subnetKey = regexp.MustCompile(`(?m)^subnet = "([^"]+)"`)
	cgroupKey = regexp.MustCompile(`(?m)^cgroup_root = "([^"]+)"`)
)

// ReapStale reaps the daemons of earlier runs under os.TempDir() whose
// directory name starts with prefix and whose owner process is gone: their
// containers, monitors, mounts, bridge, NAT rules and cgroups (read back
// from the peapod.toml the harness wrote), then the directory. A directory
// without an owner file is left alone: it is not known to be ours.
// It returns the directories it removed.
func ReapStale(prefix string) []string {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), prefix+"*"))
	var reaped []string
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || pid == os.Getpid() || processExists(pid) {
			continue
		}
		cfg, _ := os.ReadFile(filepath.Join(dir, "peapod.toml"))
		// The harness's layout (New): root/ and state/ inside the directory.
		Reap([]string{dir, filepath.Join(dir, "root"), filepath.Join(dir, "state")}, match(bridgeKey, cfg), match(subnetKey, cfg))
		RemoveCgroups(match(cgroupKey, cfg))
		Unmount(dir)
		if os.RemoveAll(dir) == nil {
			reaped = append(reaped, dir)
		}
	}
	return reaped
}

func match(re *regexp.Regexp, b []byte) string {
	if m := re.FindSubmatch(b); m != nil {
		return string(m[1])
	}
	return ""
}

// processExists reports whether pid is a live process (signal 0).
func processExists(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}
