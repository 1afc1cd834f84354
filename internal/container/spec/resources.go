package spec

import (
	"fmt"
	"path"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// DefaultCgroupParent is used when the pod names no cgroup parent.
const DefaultCgroupParent = "/peapod"

// DefaultSandboxOOMScoreAdj keeps the infra container among the last
// processes the OOM killer picks (containerd's and kubelet's value); it is
// raised to Host.MinOOMScoreAdj where the host allows no lower.
const DefaultSandboxOOMScoreAdj = -998

// sandboxCPUShares is the weight of the infra container's own cgroup: it
// does nothing, so it gets the minimum (containerd's 2).
const sandboxCPUShares = 2

// cgroupsPath is the cgroupfs path of a container: the pod's cgroup parent
// joined with the container's ID (runc creates it in every hierarchy).
func cgroupsPath(parent, id string) (string, error) {
	if parent == "" {
		parent = DefaultCgroupParent
	}
	if strings.Contains(parent, ":") {
		return "", fmt.Errorf("cgroup parent %q: systemd slices are not supported, peapod uses the cgroupfs driver", parent)
	}
	if !path.IsAbs(parent) {
		return "", fmt.Errorf("cgroup parent %q: must be an absolute cgroupfs path", parent)
	}
	if id == "" || strings.ContainsAny(id, "/\x00") || id == "." || id == ".." {
		return "", fmt.Errorf("container id %q: not a valid cgroup name", id)
	}
	return path.Join(parent, id), nil
}

// clampOOMScoreAdj keeps adj within [h.MinOOMScoreAdj, 1000].
func clampOOMScoreAdj(adj int64, h Host) int {
	if adj < int64(h.MinOOMScoreAdj) {
		adj = int64(h.MinOOMScoreAdj)
	}
	if adj < -1000 {
		adj = -1000
	}
	if adj > 1000 {
		adj = 1000
	}
	return int(adj)
}

// linuxResources maps the CRI resources as containerd does: zero means
// unset; a memory limit also caps memory+swap where swap is accounted (so a
// container cannot swap unless the request says how much); hugepage limits
// need the hugetlb controller; unified (cgroup v2) keys need cgroup v2.
func linuxResources(r *runtime.LinuxContainerResources, pidsLimit int64, h Host) (*specs.LinuxResources, error) {
	out := &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}}
	if r != nil {
		cpu := &specs.LinuxCPU{}
		if v := r.GetCpuPeriod(); v != 0 {
			if v < 0 {
				return nil, fmt.Errorf("cpu period %d: negative", v)
			}
			p := uint64(v)
			cpu.Period = &p
		}
		if v := r.GetCpuQuota(); v != 0 {
			cpu.Quota = &v
		}
		if v := r.GetCpuShares(); v != 0 {
			if v < 0 {
				return nil, fmt.Errorf("cpu shares %d: negative", v)
			}
			s := uint64(v)
			cpu.Shares = &s
		}
		cpu.Cpus, cpu.Mems = r.GetCpusetCpus(), r.GetCpusetMems()
		if *cpu != (specs.LinuxCPU{}) {
			out.CPU = cpu
		}
		mem := &specs.LinuxMemory{}
		limit, swap := r.GetMemoryLimitInBytes(), r.GetMemorySwapLimitInBytes()
		if limit < 0 || swap < 0 {
			return nil, fmt.Errorf("memory limit %d / swap limit %d: negative", limit, swap)
		}
		if limit != 0 {
			mem.Limit = &limit
			if swap == 0 && h.Swap {
				s := limit
				mem.Swap = &s
			}
		}
		if swap != 0 && h.Swap {
			mem.Swap = &swap
		}
		if mem.Limit != nil || mem.Swap != nil {
			out.Memory = mem
		}
		if h.Hugetlb {
			for _, l := range r.GetHugepageLimits() {
				out.HugepageLimits = append(out.HugepageLimits, specs.LinuxHugepageLimit{Pagesize: l.GetPageSize(), Limit: l.GetLimit()})
			}
		}
		if len(r.GetUnified()) > 0 {
			if !h.CgroupV2 {
				return nil, fmt.Errorf("unified resources %v: need cgroup v2, this host uses cgroup v1", slices.Sorted(mapKeys(r.GetUnified())))
			}
			out.Unified = map[string]string{}
			for k, v := range r.GetUnified() {
				out.Unified[k] = v
			}
		}
	}
	if pidsLimit > 0 {
		out.Pids = &specs.LinuxPids{Limit: &pidsLimit}
	}
	return out, nil
}

func mapKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// clampRlimits lowers each requested rlimit to the host's hard limit (and
// the soft limit to the hard one): raising a hard limit needs
// CAP_SYS_RESOURCE, which root lacks here.
func clampRlimits(want []specs.POSIXRlimit, h Host) ([]specs.POSIXRlimit, error) {
	var out []specs.POSIXRlimit
	seen := map[string]bool{}
	for _, r := range want {
		if _, ok := rlimitTypes[r.Type]; !ok {
			return nil, fmt.Errorf("rlimit %q: unknown type", r.Type)
		}
		if seen[r.Type] {
			return nil, fmt.Errorf("rlimit %q: given twice", r.Type)
		}
		seen[r.Type] = true
		if max, ok := h.RlimitHard[r.Type]; ok && r.Hard > max {
			r.Hard = max
		}
		if r.Soft > r.Hard {
			r.Soft = r.Hard
		}
		out = append(out, r)
	}
	return out, nil
}

// validateSysctls applies kubelet's rules: only namespaced sysctls (net.*,
// kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*), net.* not with the
// host's network, the IPC ones not with the host's IPC. Names may use '/' as
// the separator (kubelet converts "net/ipv4/ip_forward" the same way).
func validateSysctls(in map[string]string, hostNet, hostIPC bool) (map[string]string, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(in))
	for _, name := range slices.Sorted(mapKeys(in)) {
		n := normalizeSysctl(name)
		if n == "" || strings.ContainsAny(n, " \t\n\x00") || strings.Contains(n, "..") || strings.HasPrefix(n, ".") || strings.HasSuffix(n, ".") {
			return nil, fmt.Errorf("sysctl %q: invalid name", name)
		}
		switch {
		case strings.HasPrefix(n, "net."):
			if hostNet {
				return nil, fmt.Errorf("sysctl %q: not allowed with host network enabled", name)
			}
		case strings.HasPrefix(n, "kernel.shm"), strings.HasPrefix(n, "kernel.msg"), n == "kernel.sem", strings.HasPrefix(n, "fs.mqueue."):
			if hostIPC {
				return nil, fmt.Errorf("sysctl %q: not allowed with host IPC enabled", name)
			}
		default:
			return nil, fmt.Errorf("sysctl %q: not a namespaced sysctl, it would change the whole node", name)
		}
		if _, dup := out[n]; dup {
			return nil, fmt.Errorf("sysctl %q: given twice", name)
		}
		out[n] = in[name]
	}
	return out, nil
}

// normalizeSysctl turns "net/ipv4/conf/eth0.100/rp_filter" into
// "net.ipv4.conf.eth0/100.rp_filter": with '/' as the separator, dots belong
// to a component and become slashes, as runc expects.
func normalizeSysctl(name string) string {
	if i := strings.IndexAny(name, "./"); i < 0 || name[i] == '.' {
		return name
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '/':
			return '.'
		case '.':
			return '/'
		}
		return r
	}, name)
}
