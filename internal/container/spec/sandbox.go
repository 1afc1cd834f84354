package spec

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// DefaultPauseCommand runs when the pause image's config names no
// entrypoint or cmd: Debian's static catatonit, which as PID 1 of a shared
// PID namespace reaps zombies (-P: pause mode, no child to start).
var DefaultPauseCommand = []string{"/catatonit", "-P"}

// SandboxParams is what the infra (pause) container's spec is made from.
type SandboxParams struct {
	// ID is the sandbox ID: the cgroup's name and the sandbox-id annotation.
	ID string
	// Config is the CRI request.
	Config *runtime.PodSandboxConfig
	// Image is the pause image's config; its Entrypoint+Cmd is the process
	// (DefaultPauseCommand when both are empty), its Env and WorkingDir are
	// kept, its User applies unless the pod sets run_as_user.
	Image ocispec.ImageConfig
	// ImageName names the pause image in the annotations.
	ImageName string
	// RootfsPath is the absolute path of the pause container's root
	// filesystem; it is mounted read-only.
	RootfsPath string
	// NetNSPath is the pod's pinned network namespace, joined by path.
	// Required unless the pod uses the host's network.
	NetNSPath string
	// ShmPath is a host directory (a tmpfs the sandbox mounted) to bind at
	// the pause container's /dev/shm, the same one its containers get. Empty
	// gives the pause container a private 64 MiB tmpfs. Ignored with host
	// IPC, where the host's /dev/shm is bound.
	ShmPath string
	// Host is what this machine allows (oom_score_adj floor, capabilities...).
	Host Host
	// NativePause says the pause process is a static binary of this
	// machine's architecture that runs nothing else (peapod's local
	// catatonit). A seccomp profile then filters only the native ABI: no
	// other ABI's system call can come from that process, and each extra
	// ABI costs runc ~7 ms to compile (docs/benchmarks.md). Workload
	// containers always keep the profile's full architecture list.
	NativePause bool
}

// Sandbox returns the infra container's spec: the pause process, read-only
// root, no capabilities, no new privileges, in the pod's network namespace
// and new IPC, UTS, PID and mount namespaces (the host's where the pod asks
// for host network, IPC or PID; host network also means the host's UTS
// namespace, as in Kubernetes). The hostname is the config's, else the pod's
// name. Sysctls are checked as kubelet does and set here, in the namespaces
// every container of the pod shares.
func Sandbox(p SandboxParams) (*specs.Spec, error) {
	s, err := sandbox(p)
	if err != nil {
		return nil, fmt.Errorf("sandbox spec for %s: %w", p.ID, err)
	}
	return s, nil
}

func sandbox(p SandboxParams) (*specs.Spec, error) {
	cfg := p.Config
	if cfg == nil {
		return nil, fmt.Errorf("no sandbox config")
	}
	if !filepath.IsAbs(p.RootfsPath) {
		return nil, fmt.Errorf("rootfs path %q must be absolute", p.RootfsPath)
	}
	sc := cfg.GetLinux().GetSecurityContext()
	ns := sc.GetNamespaceOptions()
	hostNet := ns.GetNetwork() == runtime.NamespaceMode_NODE
	hostIPC := ns.GetIpc() == runtime.NamespaceMode_NODE
	hostPID := ns.GetPid() == runtime.NamespaceMode_NODE
	if ns.GetUsernsOptions() != nil && ns.GetUsernsOptions().GetMode() != runtime.NamespaceMode_NODE {
		return nil, fmt.Errorf("user namespaces are not supported (runc 1.1)")
	}

	args := append(append([]string{}, p.Image.Entrypoint...), p.Image.Cmd...)
	if len(args) == 0 {
		args = append([]string{}, DefaultPauseCommand...)
	}
	cwd := p.Image.WorkingDir
	if cwd == "" {
		cwd = "/"
	}
	req, err := criUser("", sc.GetRunAsUser(), sc.GetRunAsGroup(), sc.GetSupplementalGroups(), sc.GetSupplementalGroupsPolicy(), p.Image.User)
	if err != nil {
		return nil, err
	}
	user, err := resolveUser(req, RootfsAccounts(p.RootfsPath))
	if err != nil {
		return nil, err
	}
	sysctls, err := validateSysctls(cfg.GetLinux().GetSysctls(), hostNet, hostIPC)
	if err != nil {
		return nil, err
	}
	cgroup, err := cgroupsPath(cfg.GetLinux().GetCgroupParent(), p.ID)
	if err != nil {
		return nil, err
	}
	//lint:ignore SA1019 crictl and older clients still send only the deprecated path
	seccomp, err := seccompProfile(sc.GetSeccomp(), sc.GetSeccompProfilePath(), sc.GetPrivileged(), nil)
	if err != nil {
		return nil, err
	}
	if seccomp != nil && p.NativePause {
		if native := seccompArchitectures(); len(native) > 0 && len(seccomp.Architectures) > 1 && slices.Contains(seccomp.Architectures, native[0]) {
			seccomp.Architectures = native[:1]
		}
	}
	oom := clampOOMScoreAdj(DefaultSandboxOOMScoreAdj, p.Host)
	shares := uint64(sandboxCPUShares)

	s := &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: p.RootfsPath, Readonly: true},
		Process: &specs.Process{
			Args:            args,
			Env:             mergeEnv([]string{defaultPath}, p.Image.Env),
			Cwd:             cwd,
			User:            user,
			Capabilities:    &specs.LinuxCapabilities{Bounding: []string{}, Effective: []string{}, Permitted: []string{}},
			NoNewPrivileges: true,
			OOMScoreAdj:     &oom,
		},
		Annotations: sandboxAnnotations(p.ID, p.ImageName, cfg),
		Linux: &specs.Linux{
			CgroupsPath: cgroup,
			Sysctl:      sysctls,
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
				CPU:     &specs.LinuxCPU{Shares: &shares},
			},
			MaskedPaths:   DefaultMaskedPaths(),
			ReadonlyPaths: DefaultReadonlyPaths(),
			Seccomp:       seccomp,
		},
	}
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.MountNamespace})
	if !hostNet {
		if p.NetNSPath == "" {
			return nil, fmt.Errorf("no network namespace path for a pod without host network")
		}
		s.Linux.Namespaces = append(s.Linux.Namespaces,
			specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: p.NetNSPath},
			specs.LinuxNamespace{Type: specs.UTSNamespace})
		s.Hostname = PodHostname(cfg)
	}
	if !hostIPC {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.IPCNamespace})
	}
	if !hostPID {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.PIDNamespace})
	}

	// The pause process never looks at cgroups: one mount fewer to set up.
	for _, m := range baseMounts() {
		if m.Destination != "/sys/fs/cgroup" {
			s.Mounts = append(s.Mounts, m)
		}
	}
	shm := specs.Mount{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", shmSize}}
	switch {
	case hostIPC:
		shm = specs.Mount{Destination: "/dev/shm", Type: "bind", Source: "/dev/shm", Options: []string{"rbind", "rprivate", "ro", "nosuid", "nodev", "noexec"}}
	case p.ShmPath != "":
		shm = specs.Mount{Destination: "/dev/shm", Type: "bind", Source: p.ShmPath, Options: []string{"rbind", "rprivate", "ro", "nosuid", "nodev", "noexec"}}
	}
	s.Mounts = insertAfter(s.Mounts, "/dev/pts", shm)
	if err := Validate(s); err != nil {
		return nil, err
	}
	return s, nil
}

// insertAfter puts m after the mount at dst (or at the end).
func insertAfter(ms []specs.Mount, dst string, m specs.Mount) []specs.Mount {
	for i := range ms {
		if ms[i].Destination == dst {
			return append(ms[:i+1], append([]specs.Mount{m}, ms[i+1:]...)...)
		}
	}
	return append(ms, m)
}

// DefaultMaskedPaths are hidden from unprivileged containers: kernel memory,
// keys, timers and firmware that leak host data or allow attacks
// (containerd's and kubelet's list).
func DefaultMaskedPaths() []string {
	return []string{
		"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
		"/sys/devices/virtual/powercap", "/proc/scsi",
	}
}

// DefaultReadonlyPaths are read-only in unprivileged containers: the kernel
// knobs under /proc that are not namespaced.
func DefaultReadonlyPaths() []string {
	return []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
}

// PodHostname is the hostname of a pod that does not use the host's network:
// the requested one, or else the pod name cut to 63 characters (without a
// trailing '-' or '.') as kubelet does, since sethostname refuses longer
// names and pod names may have up to 253.
func PodHostname(cfg *runtime.PodSandboxConfig) string {
	if h := cfg.GetHostname(); h != "" {
		return h
	}
	h := cfg.GetMetadata().GetName()
	if len(h) > 63 {
		h = strings.TrimRight(h[:63], "-.")
	}
	return h
}
