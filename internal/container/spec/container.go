package spec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// SandboxNamespaces are the namespaces a pod's containers join, as paths:
// /proc/<pause pid>/ns/<type> or pinned bind mounts. An empty path is only
// allowed where the pod uses the host's namespace (or, for PID, where no
// container shares the pod's).
type SandboxNamespaces struct {
	Net string
	IPC string
	UTS string
	PID string
}

// ContainerParams is what a workload container's spec is made from.
type ContainerParams struct {
	// ID is the container ID: the cgroup's name.
	ID string
	// SandboxID is the pod's sandbox ID (annotation).
	SandboxID string
	// Config is the CRI CreateContainer request's config.
	Config *runtime.ContainerConfig
	// SandboxConfig is the pod's config (cgroup parent, hostname, host
	// namespaces, privileged).
	SandboxConfig *runtime.PodSandboxConfig
	// Image is the image's config: entrypoint, cmd, env, working dir, user.
	Image ocispec.ImageConfig
	// ImageName is the image as the user named it (annotation).
	ImageName string
	// RootfsPath is the absolute path of the container's mounted root
	// filesystem.
	RootfsPath string
	// Accounts resolves user and group names; nil reads /etc/passwd and
	// /etc/group under RootfsPath (RootfsAccounts).
	Accounts Accounts
	// Namespaces are the sandbox's namespaces to join.
	Namespaces SandboxNamespaces
	// TargetPIDNamespace is the PID namespace of the container named by
	// NamespaceOption.TargetId (ephemeral debug containers); required with
	// NamespaceMode TARGET. The caller resolves the ID to a path.
	TargetPIDNamespace string
	// Files are the pod's /etc/hosts, /etc/resolv.conf, /etc/hostname and
	// /dev/shm on the host.
	Files SandboxFiles
	// Rlimits are the daemon's default rlimits for containers; each is
	// lowered to Host.RlimitHard. None: the container inherits runc's.
	Rlimits []specs.POSIXRlimit
	// PidsLimit caps the container's processes (0: no limit).
	PidsLimit int64
	// Host is what this machine allows.
	Host Host
}

// Container returns a workload container's spec. See the package
// documentation and the helpers' comments for each rule; in short:
// Kubernetes' command/args rules, env image < request, working dir request >
// image > "/", the user resolved in the image, the pod's net/IPC/UTS
// namespaces joined and the PID namespace per NamespaceOption, the base
// mounts plus the pod's files and the request's mounts (parents first),
// containerd's default capabilities with add/drop, privileged mode, masked
// and read-only paths, seccomp, resources, oom_score_adj and rlimits clamped
// to the host, and the cgroup <pod cgroup parent>/<ID>.
func Container(p ContainerParams) (*specs.Spec, error) {
	s, err := container(p, mountSources{mountinfo: "/proc/self/mountinfo", create: true})
	if err != nil {
		return nil, fmt.Errorf("container spec for %s (%s): %w", p.Config.GetMetadata().GetName(), p.ID, err)
	}
	return s, nil
}

func container(p ContainerParams, src mountSources) (*specs.Spec, error) {
	cfg, pod := p.Config, p.SandboxConfig
	if cfg == nil || pod == nil {
		return nil, errors.New("container and sandbox configs are required")
	}
	if !filepath.IsAbs(p.RootfsPath) {
		return nil, fmt.Errorf("rootfs path %q must be absolute", p.RootfsPath)
	}
	sc := cfg.GetLinux().GetSecurityContext()
	ns := sc.GetNamespaceOptions()
	podNS := pod.GetLinux().GetSecurityContext().GetNamespaceOptions()
	privileged := sc.GetPrivileged()
	if privileged && !pod.GetLinux().GetSecurityContext().GetPrivileged() {
		return nil, errors.New("a privileged container needs a privileged sandbox")
	}
	if ns.GetUsernsOptions() != nil && ns.GetUsernsOptions().GetMode() != runtime.NamespaceMode_NODE {
		return nil, errors.New("user namespaces are not supported (runc 1.1)")
	}
	hostNet := podNS.GetNetwork() == runtime.NamespaceMode_NODE || ns.GetNetwork() == runtime.NamespaceMode_NODE
	hostIPC := podNS.GetIpc() == runtime.NamespaceMode_NODE || ns.GetIpc() == runtime.NamespaceMode_NODE

	args, err := processArgs(cfg, p.Image)
	if err != nil {
		return nil, err
	}
	cwd, err := workingDir(cfg, p.Image)
	if err != nil {
		return nil, err
	}
	hostname := pod.GetHostname()
	if hostname == "" && !hostNet {
		hostname = pod.GetMetadata().GetName()
	}
	if hostname == "" {
		hostname, _ = os.Hostname()
	}

	acc := p.Accounts
	if acc == nil {
		acc = RootfsAccounts(p.RootfsPath)
	}
	req, err := criUser(sc.GetRunAsUsername(), sc.GetRunAsUser(), sc.GetRunAsGroup(), sc.GetSupplementalGroups(), sc.GetSupplementalGroupsPolicy(), p.Image.User)
	if err != nil {
		return nil, err
	}
	user, err := resolveUser(req, acc)
	if err != nil {
		return nil, err
	}

	caps, err := capabilitySet(sc.GetCapabilities(), privileged, p.Host)
	if err != nil {
		return nil, err
	}
	//lint:ignore SA1019 crictl and older clients still send only the deprecated path
	seccomp, err := seccompProfile(sc.GetSeccomp(), sc.GetSeccompProfilePath(), privileged, caps.Bounding)
	if err != nil {
		return nil, err
	}
	resources, err := linuxResources(cfg.GetLinux().GetResources(), p.PidsLimit, p.Host)
	if err != nil {
		return nil, err
	}
	rlimits, err := clampRlimits(p.Rlimits, p.Host)
	if err != nil {
		return nil, err
	}
	cgroup, err := cgroupsPath(pod.GetLinux().GetCgroupParent(), p.ID)
	if err != nil {
		return nil, err
	}
	namespaces, err := containerNamespaces(ns.GetPid(), hostNet, hostIPC, p.Namespaces, p.TargetPIDNamespace)
	if err != nil {
		return nil, err
	}
	if p.Host.CgroupV2 && !privileged {
		namespaces = append(namespaces, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	}
	mounts, propagation, err := containerMounts(cfg.GetMounts(), podMounts(p.Files, sc.GetReadonlyRootfs(), hostIPC), src)
	if err != nil {
		return nil, err
	}
	oom := clampOOMScoreAdj(cfg.GetLinux().GetResources().GetOomScoreAdj(), p.Host)

	s := &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: p.RootfsPath, Readonly: sc.GetReadonlyRootfs()},
		Process: &specs.Process{
			Terminal:        cfg.GetTty(),
			Args:            args,
			Env:             containerEnv(cfg, p.Image, hostname),
			Cwd:             cwd,
			User:            user,
			Capabilities:    caps,
			NoNewPrivileges: sc.GetNoNewPrivs(),
			OOMScoreAdj:     &oom,
			Rlimits:         rlimits,
		},
		Mounts:      mounts,
		Annotations: containerAnnotations(p.SandboxID, cfg.GetMetadata().GetName(), p.ImageName, pod),
		Linux: &specs.Linux{
			CgroupsPath:       cgroup,
			Namespaces:        namespaces,
			Resources:         resources,
			Seccomp:           seccomp,
			RootfsPropagation: propagation,
			MaskedPaths:       DefaultMaskedPaths(),
			ReadonlyPaths:     DefaultReadonlyPaths(),
		},
	}
	// The request's lists replace the defaults; an empty list arrives as
	// nil over the wire, so it cannot mean "none" (kubelet only unmasks
	// /proc for user-namespaced pods, which runc 1.1 cannot run anyway).
	if m := sc.GetMaskedPaths(); len(m) > 0 {
		s.Linux.MaskedPaths = append([]string{}, m...)
	}
	if r := sc.GetReadonlyPaths(); len(r) > 0 {
		s.Linux.ReadonlyPaths = append([]string{}, r...)
	}

	nodes, rules, err := criDevices(cfg.GetDevices())
	if err != nil {
		return nil, err
	}
	s.Linux.Devices = nodes
	s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, rules...)

	if privileged {
		s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
		for i := range s.Mounts {
			if s.Mounts[i].Type == "sysfs" || s.Mounts[i].Type == "cgroup" {
				s.Mounts[i].Options = replaceOption(s.Mounts[i].Options, "ro", "rw")
			}
		}
		host, err := devicesUnder("/dev", "/dev")
		if err != nil {
			return nil, fmt.Errorf("privileged: host devices: %w", err)
		}
		s.Linux.Devices = mergeDevices(host, s.Linux.Devices)
		s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	}
	if err := Validate(s); err != nil {
		return nil, err
	}
	return s, nil
}

// containerNamespaces joins the pod's network, IPC and UTS namespaces
// (unless the pod uses the host's: then the entry is left out) and picks the
// PID namespace: CONTAINER a new one, POD the sandbox's, NODE the host's,
// TARGET another container's.
func containerNamespaces(pid runtime.NamespaceMode, hostNet, hostIPC bool, sb SandboxNamespaces, target string) ([]specs.LinuxNamespace, error) {
	out := []specs.LinuxNamespace{{Type: specs.MountNamespace}}
	join := func(t specs.LinuxNamespaceType, path, what string) error {
		if path == "" {
			return fmt.Errorf("no %s namespace path to join", what)
		}
		out = append(out, specs.LinuxNamespace{Type: t, Path: path})
		return nil
	}
	if !hostNet {
		if err := join(specs.NetworkNamespace, sb.Net, "sandbox network"); err != nil {
			return nil, err
		}
		if err := join(specs.UTSNamespace, sb.UTS, "sandbox UTS"); err != nil {
			return nil, err
		}
	}
	if !hostIPC {
		if err := join(specs.IPCNamespace, sb.IPC, "sandbox IPC"); err != nil {
			return nil, err
		}
	}
	switch pid {
	case runtime.NamespaceMode_CONTAINER:
		out = append(out, specs.LinuxNamespace{Type: specs.PIDNamespace})
	case runtime.NamespaceMode_POD:
		if err := join(specs.PIDNamespace, sb.PID, "sandbox PID"); err != nil {
			return nil, err
		}
	case runtime.NamespaceMode_NODE:
	case runtime.NamespaceMode_TARGET:
		if err := join(specs.PIDNamespace, target, "target container's PID"); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("PID namespace mode %d: unknown", pid)
	}
	return out, nil
}

func replaceOption(opts []string, from, to string) []string {
	out := append([]string{}, opts...)
	for i, o := range out {
		if o == from {
			out[i] = to
		}
	}
	return out
}

// mergeDevices keeps the request's device where both name the same path.
func mergeDevices(base, over []specs.LinuxDevice) []specs.LinuxDevice {
	byPath := map[string]bool{}
	for _, d := range over {
		byPath[d.Path] = true
	}
	var out []specs.LinuxDevice
	for _, d := range base {
		if !byPath[d.Path] {
			out = append(out, d)
		}
	}
	return append(out, over...)
}
