package spec

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Host is what this machine lets a container have. The generators clamp or
// refuse what exceeds it, because runc would otherwise fail with messages
// such as "can't get final child's PID from pipe: EOF".
//
// The zero value describes a permissive host (no oom_score_adj floor, every
// known capability, no rlimit ceiling, cgroup v1 without swap accounting or
// hugetlb); use DetectHost in the daemon.
type Host struct {
	// MinOOMScoreAdj is the lowest oom_score_adj a child of the daemon may
	// get: the daemon's own (/proc/self/oom_score_adj), since lowering it
	// needs CAP_SYS_RESOURCE. Requests below it are raised to it, as
	// containerd's restrict_oom_score_adj does.
	MinOOMScoreAdj int
	// Capabilities the runtime holds ("CAP_..."): what "ALL" and privileged
	// mean, and the limit for explicit adds. Nil means every capability
	// this package knows.
	Capabilities []string
	// RlimitHard is the daemon's hard limit per rlimit type ("RLIMIT_NOFILE"):
	// no container rlimit may exceed it. A missing type is not clamped.
	RlimitHard map[string]uint64
	// CgroupV2 is true on a unified (cgroup v2 only) hierarchy: containers
	// then get a cgroup namespace and may carry unified resources.
	CgroupV2 bool
	// Swap is true when swap can be limited (memory.memsw.* on v1,
	// memory.swap.max on v2); a memory limit then also caps swap.
	Swap bool
	// Hugetlb is true when the hugetlb controller exists; hugepage limits
	// are dropped without it (containerd's tolerate_missing_hugetlb_controller).
	Hugetlb bool
}

// rlimitTypes maps the OCI rlimit names to their resource numbers.
var rlimitTypes = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": 10,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
	"RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15, "RLIMIT_SIGPENDING": 11, "RLIMIT_STACK": unix.RLIMIT_STACK,
}

// DetectHost reads this process's limits and the cgroup layout. Run it in
// the daemon (whose limits runc and conmon inherit), once at start.
func DetectHost() (Host, error) {
	var h Host
	b, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		return h, fmt.Errorf("detect host: %w", err)
	}
	if h.MinOOMScoreAdj, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
		return h, fmt.Errorf("detect host: parse /proc/self/oom_score_adj: %w", err)
	}
	if h.Capabilities, err = currentCapabilities(); err != nil {
		return h, fmt.Errorf("detect host: %w", err)
	}
	h.RlimitHard = make(map[string]uint64, len(rlimitTypes))
	for name, res := range rlimitTypes {
		var rl unix.Rlimit
		if err := unix.Getrlimit(res, &rl); err == nil {
			h.RlimitHard[name] = rl.Max
		}
	}
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		h.CgroupV2 = true
	}
	if h.CgroupV2 {
		h.Swap = exists("/sys/fs/cgroup/memory.swap.max") || exists("/sys/fs/cgroup/init.scope/memory.swap.max")
		ctrl, _ := os.ReadFile("/sys/fs/cgroup/cgroup.controllers")
		h.Hugetlb = strings.Contains(string(ctrl), "hugetlb")
	} else {
		h.Swap = exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
		h.Hugetlb = exists("/sys/fs/cgroup/hugetlb")
	}
	return h, nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// currentCapabilities lists the capabilities in this process's effective
// set: the most a container started by it can hold.
func currentCapabilities() ([]string, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		hex, ok := strings.CutPrefix(line, "CapEff:")
		if !ok {
			continue
		}
		mask, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
		if err != nil {
			return nil, fmt.Errorf("parse CapEff %q: %w", hex, err)
		}
		var caps []string
		for bit, name := range allCapabilities {
			if mask&(1<<uint(bit)) != 0 {
				caps = append(caps, name)
			}
		}
		return caps, nil
	}
	return nil, errors.New("no CapEff in /proc/self/status")
}
