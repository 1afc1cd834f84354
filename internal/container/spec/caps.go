package spec

import (
	"fmt"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// allCapabilities lists the Linux capabilities by bit number.
var allCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
	"CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
	"CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
	"CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// DefaultCapabilities is the set an unprivileged container starts with:
// containerd's (released 1.x and 2.x) default, which is also Docker's.
var DefaultCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// normalizeCap turns a CRI capability name ("net_admin", "NET_ADMIN" or
// "CAP_NET_ADMIN") into the OCI form ("CAP_NET_ADMIN").
func normalizeCap(name string) string {
	n := strings.ToUpper(strings.TrimSpace(name))
	if !strings.HasPrefix(n, "CAP_") {
		n = "CAP_" + n
	}
	return n
}

func isAll(name string) bool { return strings.EqualFold(strings.TrimSpace(name), "ALL") }

// hostCaps is what "ALL" means on this host.
func (h Host) hostCaps() []string {
	if h.Capabilities == nil {
		return slices.Clone(allCapabilities)
	}
	out := make([]string, 0, len(h.Capabilities))
	for _, c := range h.Capabilities {
		out = append(out, normalizeCap(c))
	}
	return out
}

// capabilitySet applies the CRI add/drop lists to the default set the way
// containerd does: "ALL" in add, then "ALL" in drop, then the named adds,
// then the named drops (so add ALL + drop CHOWN is everything but CHOWN, and
// drop ALL + add NET_BIND_SERVICE is just that one). A named add this host
// cannot grant is an error; an unknown drop is ignored, since dropping
// something that does not exist is harmless.
func capabilitySet(c *runtime.Capability, privileged bool, h Host) (*specs.LinuxCapabilities, error) {
	available := h.hostCaps()
	var set []string
	switch {
	case privileged:
		set = available
	default:
		for _, d := range DefaultCapabilities {
			if slices.Contains(available, d) {
				set = append(set, d)
			}
		}
	}
	if !privileged && c != nil {
		if slices.ContainsFunc(c.GetAddCapabilities(), isAll) {
			set = slices.Clone(available)
		}
		if slices.ContainsFunc(c.GetDropCapabilities(), isAll) {
			set = nil
		}
		for _, a := range c.GetAddCapabilities() {
			if isAll(a) {
				continue
			}
			n := normalizeCap(a)
			if err := grantable(n, available); err != nil {
				return nil, err
			}
			if !slices.Contains(set, n) {
				set = append(set, n)
			}
		}
		for _, d := range c.GetDropCapabilities() {
			if isAll(d) {
				continue
			}
			n := normalizeCap(d)
			set = slices.DeleteFunc(set, func(s string) bool { return s == n })
		}
	}
	caps := &specs.LinuxCapabilities{
		Bounding:  nonNil(set),
		Effective: slices.Clone(nonNil(set)),
		Permitted: slices.Clone(nonNil(set)),
	}
	// Ambient capabilities let a non-root user keep a capability across
	// exec; the kernel requires them to be inheritable and permitted too.
	for _, a := range c.GetAddAmbientCapabilities() {
		n := normalizeCap(a)
		if err := grantable(n, available); err != nil {
			return nil, fmt.Errorf("ambient: %w", err)
		}
		if !slices.Contains(caps.Bounding, n) {
			caps.Bounding = append(caps.Bounding, n)
			caps.Effective = append(caps.Effective, n)
			caps.Permitted = append(caps.Permitted, n)
		}
		caps.Inheritable = append(caps.Inheritable, n)
		caps.Ambient = append(caps.Ambient, n)
	}
	return caps, nil
}

func grantable(n string, available []string) error {
	if !slices.Contains(allCapabilities, n) {
		return fmt.Errorf("add capability %q: unknown capability", n)
	}
	if !slices.Contains(available, n) {
		return fmt.Errorf("add capability %q: the runtime does not hold it on this host", n)
	}
	return nil
}

// nonNil keeps an empty set empty rather than absent: runc leaves the
// capabilities alone when the field is missing, so "none" must be spelt out.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
