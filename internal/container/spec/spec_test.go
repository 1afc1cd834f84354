package spec

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func podConfig(mut ...func(*runtime.PodSandboxConfig)) *runtime.PodSandboxConfig {
	c := &runtime.PodSandboxConfig{
		Metadata:     &runtime.PodSandboxMetadata{Name: "web", Namespace: "default", Uid: "uid-1"},
		LogDirectory: "/var/log/pods/default_web_uid-1",
		Linux: &runtime.LinuxPodSandboxConfig{
			CgroupParent:    "/kubepods/besteffort/poduid-1",
			SecurityContext: &runtime.LinuxSandboxSecurityContext{NamespaceOptions: &runtime.NamespaceOption{}},
		},
	}
	for _, m := range mut {
		m(c)
	}
	return c
}

func sandboxParams(t *testing.T, pod *runtime.PodSandboxConfig) SandboxParams {
	return SandboxParams{
		ID:         "sb1",
		Config:     pod,
		Image:      ocispec.ImageConfig{Entrypoint: []string{"/catatonit", "-P"}},
		ImageName:  "localhost/peapod-pause:latest",
		RootfsPath: t.TempDir(),
		NetNSPath:  "/run/peapod/netns/sb1",
		Host:       thisHost,
	}
}

func nsMap(s *specs.Spec) map[specs.LinuxNamespaceType]string {
	m := map[specs.LinuxNamespaceType]string{}
	for _, n := range s.Linux.Namespaces {
		m[n.Type] = n.Path
	}
	return m
}

// roundTrip checks the spec survives config.json: what runc reads.
func roundTrip(t *testing.T, s *specs.Spec) *specs.Spec {
	t.Helper()
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back specs.Spec
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if err := Validate(&back); err != nil {
		t.Fatalf("spec read back from JSON is invalid: %v", err)
	}
	return &back
}

func TestSandbox(t *testing.T) {
	p := sandboxParams(t, podConfig(func(c *runtime.PodSandboxConfig) {
		c.Linux.Sysctls = map[string]string{"net.ipv4.ip_unprivileged_port_start": "0"}
		c.Linux.SecurityContext.Seccomp = &runtime.SecurityProfile{ProfileType: runtime.SecurityProfile_RuntimeDefault}
	}))
	p.Host.MinOOMScoreAdj = -500
	s, err := Sandbox(p)
	if err != nil {
		t.Fatal(err)
	}
	s = roundTrip(t, s)
	if !slices.Equal(s.Process.Args, []string{"/catatonit", "-P"}) || s.Process.Cwd != "/" {
		t.Errorf("process = %q in %s", s.Process.Args, s.Process.Cwd)
	}
	if !s.Root.Readonly || !s.Process.NoNewPrivileges {
		t.Error("pause must have a read-only root and no new privileges")
	}
	// JSON drops empty lists, but the capabilities object must stay so
	// that runc drops every capability instead of keeping its own.
	if s.Process.Capabilities == nil || len(s.Process.Capabilities.Bounding)+len(s.Process.Capabilities.Permitted)+len(s.Process.Capabilities.Effective) != 0 {
		t.Errorf("capabilities = %+v, want none", s.Process.Capabilities)
	}
	if *s.Process.OOMScoreAdj != -500 {
		t.Errorf("oom_score_adj = %d, want the host floor -500", *s.Process.OOMScoreAdj)
	}
	if s.Hostname != "web" {
		t.Errorf("hostname = %q, want the pod name", s.Hostname)
	}
	if s.Linux.CgroupsPath != "/kubepods/besteffort/poduid-1/sb1" {
		t.Errorf("cgroups path = %q", s.Linux.CgroupsPath)
	}
	if s.Linux.Sysctl["net.ipv4.ip_unprivileged_port_start"] != "0" {
		t.Errorf("sysctls = %v", s.Linux.Sysctl)
	}
	if s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction != specs.ActErrno {
		t.Error("pause runs without the default seccomp profile it asked for")
	}
	if s, err := Sandbox(sandboxParams(t, podConfig())); err != nil || s.Linux.Seccomp != nil {
		t.Errorf("a sandbox without a seccomp profile is confined (%v)", err)
	}
	if m := find(s.Mounts, "/dev/shm"); m == nil || m.Type != "tmpfs" || !slices.Contains(m.Options, "size=65536k") {
		t.Errorf("/dev/shm = %+v, want a private 64 MiB tmpfs", m)
	}
	if s.Annotations[AnnotationContainerType] != ContainerTypeSandbox || s.Annotations[AnnotationSandboxID] != "sb1" ||
		s.Annotations[AnnotationSandboxName] != "web" || s.Annotations[AnnotationSandboxNamespace] != "default" ||
		s.Annotations[AnnotationSandboxImageName] != "localhost/peapod-pause:latest" {
		t.Errorf("annotations = %v", s.Annotations)
	}
}

func TestSandboxNamespaces(t *testing.T) {
	mode := func(net, ipc, pid runtime.NamespaceMode) func(*runtime.PodSandboxConfig) {
		return func(c *runtime.PodSandboxConfig) {
			c.Linux.SecurityContext.NamespaceOptions = &runtime.NamespaceOption{Network: net, Ipc: ipc, Pid: pid}
		}
	}
	P, N, C := runtime.NamespaceMode_POD, runtime.NamespaceMode_NODE, runtime.NamespaceMode_CONTAINER
	tests := []struct {
		name         string
		mut          func(*runtime.PodSandboxConfig)
		want         map[specs.LinuxNamespaceType]string
		wantHostname string
		wantShm      string
	}{
		{name: "all pod", mut: mode(P, P, C), want: map[specs.LinuxNamespaceType]string{"mount": "", "network": "/run/peapod/netns/sb1", "uts": "", "ipc": "", "pid": ""}, wantHostname: "web", wantShm: "tmpfs"},
		{name: "host network also means host UTS", mut: mode(N, P, C), want: map[specs.LinuxNamespaceType]string{"mount": "", "ipc": "", "pid": ""}, wantShm: "tmpfs"},
		{name: "host IPC", mut: mode(P, N, C), want: map[specs.LinuxNamespaceType]string{"mount": "", "network": "/run/peapod/netns/sb1", "uts": "", "pid": ""}, wantHostname: "web", wantShm: "/dev/shm"},
		{name: "host PID", mut: mode(P, P, N), want: map[specs.LinuxNamespaceType]string{"mount": "", "network": "/run/peapod/netns/sb1", "uts": "", "ipc": ""}, wantHostname: "web", wantShm: "tmpfs"},
		{name: "hostname from config", mut: func(c *runtime.PodSandboxConfig) { c.Hostname = "custom" }, want: map[specs.LinuxNamespaceType]string{"mount": "", "network": "/run/peapod/netns/sb1", "uts": "", "ipc": "", "pid": ""}, wantHostname: "custom", wantShm: "tmpfs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Sandbox(sandboxParams(t, podConfig(tt.mut)))
			if err != nil {
				t.Fatal(err)
			}
			got := nsMap(s)
			if len(got) != len(tt.want) {
				t.Fatalf("namespaces = %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if p, ok := got[k]; !ok || p != v {
					t.Errorf("namespace %s = %q (present %v), want %q", k, p, ok, v)
				}
			}
			if s.Hostname != tt.wantHostname {
				t.Errorf("hostname = %q, want %q", s.Hostname, tt.wantHostname)
			}
			if m := find(s.Mounts, "/dev/shm"); m.Source != "shm" && m.Source != tt.wantShm || (tt.wantShm == "tmpfs" && m.Type != "tmpfs") {
				t.Errorf("/dev/shm = %+v, want %s", m, tt.wantShm)
			}
		})
	}
}

func TestSandboxErrors(t *testing.T) {
	tests := []struct {
		name string
		mut  func(*SandboxParams)
		want string
	}{
		{"no netns", func(p *SandboxParams) { p.NetNSPath = "" }, "no network namespace path"},
		{"net sysctl with host network", func(p *SandboxParams) {
			p.Config.Linux.SecurityContext.NamespaceOptions.Network = runtime.NamespaceMode_NODE
			p.Config.Linux.Sysctls = map[string]string{"net.core.somaxconn": "1024"}
		}, "not allowed with host network"},
		{"node sysctl", func(p *SandboxParams) { p.Config.Linux.Sysctls = map[string]string{"kernel.panic": "1"} }, "not a namespaced sysctl"},
		{"unknown image user", func(p *SandboxParams) { p.Image.User = "pause" }, "not found"},
		{"user namespace", func(p *SandboxParams) {
			p.Config.Linux.SecurityContext.NamespaceOptions.UsernsOptions = &runtime.UserNamespace{Mode: runtime.NamespaceMode_POD}
		}, "user namespaces"},
		{"relative rootfs", func(p *SandboxParams) { p.RootfsPath = "rootfs" }, "absolute"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := sandboxParams(t, podConfig())
			tt.mut(&p)
			_, err := Sandbox(p)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestSandboxDefaults(t *testing.T) {
	p := sandboxParams(t, podConfig(func(c *runtime.PodSandboxConfig) {
		c.Linux.SecurityContext.RunAsUser = i64(65535)
	}))
	p.Image = ocispec.ImageConfig{}
	p.ShmPath = "/run/peapod/sandboxes/sb1/shm"
	s, err := Sandbox(p)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.Process.Args, DefaultPauseCommand) {
		t.Errorf("args = %q, want the default pause command", s.Process.Args)
	}
	if s.Process.User.UID != 65535 {
		t.Errorf("uid = %d", s.Process.User.UID)
	}
	if m := find(s.Mounts, "/dev/shm"); m.Type != "bind" || m.Source != p.ShmPath {
		t.Errorf("/dev/shm = %+v, want the sandbox's shm bound", m)
	}
}

func containerParams(t *testing.T, mut ...func(*ContainerParams)) ContainerParams {
	p := ContainerParams{
		ID:        "c1",
		SandboxID: "sb1",
		Config: &runtime.ContainerConfig{
			Metadata: &runtime.ContainerMetadata{Name: "app"},
			Image:    &runtime.ImageSpec{Image: "busybox:1"},
			Linux:    &runtime.LinuxContainerConfig{SecurityContext: &runtime.LinuxContainerSecurityContext{NamespaceOptions: &runtime.NamespaceOption{}}},
		},
		SandboxConfig: podConfig(),
		Image:         ocispec.ImageConfig{Cmd: []string{"sh"}, Env: []string{"PATH=/bin"}, User: "app"},
		ImageName:     "docker.io/library/busybox:1",
		RootfsPath:    fixtureRootfs(t),
		Namespaces:    SandboxNamespaces{Net: "/proc/42/ns/net", IPC: "/proc/42/ns/ipc", UTS: "/proc/42/ns/uts", PID: "/proc/42/ns/pid"},
		Host:          thisHost,
	}
	for _, m := range mut {
		m(&p)
	}
	return p
}

func sc(p *ContainerParams) *runtime.LinuxContainerSecurityContext {
	return p.Config.Linux.SecurityContext
}

func TestContainer(t *testing.T) {
	dir := t.TempDir()
	p := containerParams(t, func(p *ContainerParams) {
		p.Files = SandboxFiles{Hosts: dir, ResolvConf: dir, Hostname: dir, Shm: dir}
		p.Config.Linux.Resources = &runtime.LinuxContainerResources{CpuQuota: 20000, CpuPeriod: 100000, MemoryLimitInBytes: 32 << 20, OomScoreAdj: -997}
		p.Host.Swap = true
		p.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1 << 20, Soft: 1024}}
		p.Host.RlimitHard = map[string]uint64{"RLIMIT_NOFILE": 524288}
		sc(p).ReadonlyRootfs = true
		sc(p).Seccomp = &runtime.SecurityProfile{ProfileType: runtime.SecurityProfile_RuntimeDefault}
		sc(p).NoNewPrivs = true
	})
	s, err := Container(p)
	if err != nil {
		t.Fatal(err)
	}
	s = roundTrip(t, s)
	if s.Process.User.UID != 1000 || s.Process.User.GID != 1000 {
		t.Errorf("user = %+v, want app (1000:1000)", s.Process.User)
	}
	if !slices.Equal(s.Process.Args, []string{"sh"}) || !slices.Contains(s.Process.Env, "HOSTNAME=web") || !slices.Contains(s.Process.Env, "PATH=/bin") {
		t.Errorf("process = %q env %q", s.Process.Args, s.Process.Env)
	}
	if !s.Root.Readonly || !s.Process.NoNewPrivileges || s.Root.Path != p.RootfsPath {
		t.Errorf("root = %+v, nnp = %v", s.Root, s.Process.NoNewPrivileges)
	}
	if *s.Process.OOMScoreAdj != 0 {
		t.Errorf("oom_score_adj = %d, want clamped to 0", *s.Process.OOMScoreAdj)
	}
	if s.Process.Rlimits[0].Hard != 524288 || s.Process.Rlimits[0].Soft != 1024 {
		t.Errorf("rlimits = %+v", s.Process.Rlimits)
	}
	if s.Linux.CgroupsPath != "/kubepods/besteffort/poduid-1/c1" {
		t.Errorf("cgroups path = %q", s.Linux.CgroupsPath)
	}
	if *s.Linux.Resources.CPU.Quota != 20000 || *s.Linux.Resources.Memory.Limit != 32<<20 || *s.Linux.Resources.Memory.Swap != 32<<20 {
		t.Errorf("resources = %+v %+v", s.Linux.Resources.CPU, s.Linux.Resources.Memory)
	}
	if !slices.Equal(s.Linux.MaskedPaths, DefaultMaskedPaths()) || !slices.Equal(s.Linux.ReadonlyPaths, DefaultReadonlyPaths()) {
		t.Errorf("masked %v readonly %v", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
	if s.Linux.Seccomp == nil {
		t.Error("no seccomp profile")
	}
	if !slices.Equal(slices.Sorted(slices.Values(s.Process.Capabilities.Bounding)), slices.Sorted(slices.Values(DefaultCapabilities))) {
		t.Errorf("caps = %v", s.Process.Capabilities.Bounding)
	}
	for _, dst := range []string{"/etc/hosts", "/etc/resolv.conf", "/etc/hostname"} {
		if m := find(s.Mounts, dst); m == nil || !slices.Contains(m.Options, "ro") {
			t.Errorf("%s = %+v, want a read-only bind with a read-only rootfs", dst, m)
		}
	}
	if m := find(s.Mounts, "/dev/shm"); m == nil || m.Source != dir || !slices.Contains(m.Options, "rw") {
		t.Errorf("/dev/shm = %+v", m)
	}
	if m := find(s.Mounts, "/sys"); m == nil || !slices.Contains(m.Options, "ro") {
		t.Errorf("/sys = %+v, want read-only", m)
	}
	if s.Hostname != "" {
		t.Errorf("a container joining the pod's UTS namespace must not set the hostname (%q)", s.Hostname)
	}
	want := map[string]string{
		AnnotationContainerType: ContainerTypeContainer, AnnotationSandboxID: "sb1", AnnotationContainerName: "app",
		AnnotationImageName: "docker.io/library/busybox:1", AnnotationSandboxName: "web", AnnotationSandboxNamespace: "default", AnnotationSandboxUID: "uid-1",
	}
	for k, v := range want {
		if s.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, s.Annotations[k], v)
		}
	}
}

func TestContainerNamespaces(t *testing.T) {
	P, N, C, T := runtime.NamespaceMode_POD, runtime.NamespaceMode_NODE, runtime.NamespaceMode_CONTAINER, runtime.NamespaceMode_TARGET
	base := map[specs.LinuxNamespaceType]string{"mount": "", "network": "/proc/42/ns/net", "uts": "/proc/42/ns/uts", "ipc": "/proc/42/ns/ipc"}
	with := func(extra map[specs.LinuxNamespaceType]string, drop ...specs.LinuxNamespaceType) map[specs.LinuxNamespaceType]string {
		m := map[specs.LinuxNamespaceType]string{}
		for k, v := range base {
			if !slices.Contains(drop, k) {
				m[k] = v
			}
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name          string
		net, ipc, pid runtime.NamespaceMode
		podNet        runtime.NamespaceMode
		target        string
		want          map[specs.LinuxNamespaceType]string
		wantErr       string
	}{
		{name: "own PID namespace", pid: C, want: with(map[specs.LinuxNamespaceType]string{"pid": ""})},
		{name: "pod PID namespace", pid: P, want: with(map[specs.LinuxNamespaceType]string{"pid": "/proc/42/ns/pid"})},
		{name: "host PID", pid: N, want: with(nil)},
		{name: "target PID", pid: T, target: "/proc/77/ns/pid", want: with(map[specs.LinuxNamespaceType]string{"pid": "/proc/77/ns/pid"})},
		{name: "target without path", pid: T, wantErr: "target container's PID"},
		{name: "host network (pod level)", podNet: N, pid: C, want: with(map[specs.LinuxNamespaceType]string{"pid": ""}, "network", "uts")},
		{name: "host network (container level)", net: N, pid: C, want: with(map[specs.LinuxNamespaceType]string{"pid": ""}, "network", "uts")},
		{name: "host IPC", ipc: N, pid: C, want: with(map[specs.LinuxNamespaceType]string{"pid": ""}, "ipc")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := containerParams(t, func(p *ContainerParams) {
				sc(p).NamespaceOptions = &runtime.NamespaceOption{Network: tt.net, Ipc: tt.ipc, Pid: tt.pid}
				p.SandboxConfig.Linux.SecurityContext.NamespaceOptions.Network = tt.podNet
				p.TargetPIDNamespace = tt.target
			})
			s, err := Container(p)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := nsMap(s)
			if len(got) != len(tt.want) {
				t.Fatalf("namespaces = %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if p, ok := got[k]; !ok || p != v {
					t.Errorf("namespace %s = %q (present %v), want %q", k, p, ok, v)
				}
			}
		})
	}
	// Joining needs the sandbox's paths.
	p := containerParams(t, func(p *ContainerParams) { p.Namespaces.Net = "" })
	if _, err := Container(p); err == nil || !strings.Contains(err.Error(), "sandbox network") {
		t.Fatalf("missing netns path: %v", err)
	}
}

func TestContainerPrivileged(t *testing.T) {
	p := containerParams(t, func(p *ContainerParams) {
		sc(p).Privileged = true
		sc(p).Seccomp = &runtime.SecurityProfile{ProfileType: runtime.SecurityProfile_RuntimeDefault}
		p.SandboxConfig.Linux.SecurityContext.Privileged = true
	})
	s, err := Container(p)
	if err != nil {
		t.Fatal(err)
	}
	s = roundTrip(t, s)
	if len(s.Linux.MaskedPaths) != 0 || len(s.Linux.ReadonlyPaths) != 0 {
		t.Errorf("privileged has masked %v / readonly %v", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
	if s.Linux.Seccomp != nil {
		t.Error("privileged container is confined by seccomp")
	}
	if !slices.Equal(slices.Sorted(slices.Values(s.Process.Capabilities.Bounding)), slices.Sorted(slices.Values(thisHost.Capabilities))) {
		t.Errorf("caps = %v, want everything the host holds", s.Process.Capabilities.Bounding)
	}
	if slices.Contains(s.Process.Capabilities.Bounding, "CAP_SYS_RESOURCE") {
		t.Error("asks for CAP_SYS_RESOURCE, which this host's root lacks")
	}
	if m := find(s.Mounts, "/sys"); m == nil || !slices.Contains(m.Options, "rw") {
		t.Errorf("/sys = %+v, want writable", m)
	}
	if d := s.Linux.Resources.Devices; len(d) != 1 || !d[0].Allow || d[0].Access != "rwm" {
		t.Errorf("device rules = %+v, want allow all", d)
	}
	if !slices.ContainsFunc(s.Linux.Devices, func(d specs.LinuxDevice) bool {
		return d.Path == "/dev/null" && d.Type == "c" && d.Major == 1 && d.Minor == 3
	}) {
		t.Errorf("host devices not passed: %d devices", len(s.Linux.Devices))
	}
	// A privileged container needs a privileged pod.
	p.SandboxConfig.Linux.SecurityContext.Privileged = false
	if _, err := Container(p); err == nil || !strings.Contains(err.Error(), "privileged sandbox") {
		t.Fatalf("privileged container in unprivileged pod: %v", err)
	}
}

func TestContainerMaskedPathsOverride(t *testing.T) {
	p := containerParams(t, func(p *ContainerParams) {
		sc(p).MaskedPaths = []string{"/proc/secret"}
		sc(p).ReadonlyPaths = []string{"/proc/ro"}
	})
	s, err := Container(p)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.Linux.MaskedPaths, []string{"/proc/secret"}) || !slices.Equal(s.Linux.ReadonlyPaths, []string{"/proc/ro"}) {
		t.Fatalf("masked %v readonly %v", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
}

func TestContainerSeccompFollowsAddedCapabilities(t *testing.T) {
	p := containerParams(t, func(p *ContainerParams) {
		sc(p).Capabilities = &runtime.Capability{AddCapabilities: []string{"SYS_ADMIN"}}
		sc(p).Seccomp = &runtime.SecurityProfile{ProfileType: runtime.SecurityProfile_RuntimeDefault}
	})
	s, err := Container(p)
	if err != nil {
		t.Fatal(err)
	}
	if !allowed(s.Linux.Seccomp, "mount") {
		t.Fatal("CAP_SYS_ADMIN added but mount still blocked by seccomp")
	}
}

func TestContainerDevices(t *testing.T) {
	p := containerParams(t, func(p *ContainerParams) {
		p.Config.Devices = []*runtime.Device{{HostPath: "/dev/null", ContainerPath: "/dev/mynull", Permissions: "rw"}}
	})
	s, err := Container(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Linux.Devices) != 1 || s.Linux.Devices[0].Path != "/dev/mynull" || s.Linux.Devices[0].Major != 1 {
		t.Fatalf("devices = %+v", s.Linux.Devices)
	}
	rules := s.Linux.Resources.Devices
	if len(rules) != 2 || rules[0].Allow || !rules[1].Allow || rules[1].Access != "rw" || *rules[1].Major != 1 || *rules[1].Minor != 3 {
		t.Fatalf("device rules = %+v", rules)
	}
	p.Config.Devices[0].Permissions = "rwx"
	if _, err := Container(p); err == nil {
		t.Fatal("bad permissions accepted")
	}
}

func TestContainerErrors(t *testing.T) {
	tests := []struct {
		name string
		mut  func(*ContainerParams)
		want string
	}{
		{"no command", func(p *ContainerParams) { p.Image.Cmd = nil }, "no command specified"},
		{"unknown user", func(p *ContainerParams) { sc(p).RunAsUsername = "ghost" }, `user "ghost" not found`},
		{"cap the host lacks", func(p *ContainerParams) {
			sc(p).Capabilities = &runtime.Capability{AddCapabilities: []string{"SYS_RESOURCE"}}
		}, "CAP_SYS_RESOURCE"},
		{"systemd cgroup parent", func(p *ContainerParams) { p.SandboxConfig.Linux.CgroupParent = "kubepods.slice" }, "absolute"},
		{"no configs", func(p *ContainerParams) { p.SandboxConfig = nil }, "required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := containerParams(t, tt.mut)
			_, err := Container(p)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	good := func() *specs.Spec {
		return &specs.Spec{
			Version: specs.Version,
			Root:    &specs.Root{Path: "/r"},
			Process: &specs.Process{Args: []string{"sh"}, Cwd: "/"},
			Linux:   &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.MountNamespace}, {Type: specs.UTSNamespace}, {Type: specs.NetworkNamespace, Path: "/n"}}},
		}
	}
	if err := Validate(good()); err != nil {
		t.Fatalf("good spec: %v", err)
	}
	oom := 2000
	tests := []struct {
		name string
		mut  func(*specs.Spec)
		want string
	}{
		{"no version", func(s *specs.Spec) { s.Version = "" }, "ociVersion"},
		{"no root", func(s *specs.Spec) { s.Root = nil }, "root.path"},
		{"no process", func(s *specs.Spec) { s.Process = nil }, "process is missing"},
		{"no args", func(s *specs.Spec) { s.Process.Args = nil }, "process.args"},
		{"relative cwd", func(s *specs.Spec) { s.Process.Cwd = "x" }, "process.cwd"},
		{"no linux", func(s *specs.Spec) { s.Linux = nil }, "linux is missing"},
		{"duplicate namespace", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.MountNamespace})
		}, "twice"},
		{"bad namespace", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "bogus"})
		}, "unknown"},
		{"no mount namespace", func(s *specs.Spec) { s.Linux.Namespaces = s.Linux.Namespaces[1:] }, "no mount namespace"},
		{"hostname in a joined uts", func(s *specs.Spec) { s.Hostname = "h"; s.Linux.Namespaces[1].Path = "/u" }, "new UTS"},
		{"net sysctl in host netns", func(s *specs.Spec) {
			s.Linux.Namespaces = s.Linux.Namespaces[:2]
			s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
		}, "network namespace of its own"},
		{"node sysctl", func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"vm.swappiness": "1"} }, "not namespaced"},
		{"relative mount", func(s *specs.Spec) { s.Mounts = []specs.Mount{{Destination: "x"}} }, "not absolute"},
		{"oom out of range", func(s *specs.Spec) { s.Process.OOMScoreAdj = &oom }, "oomScoreAdj"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := good()
			tt.mut(s)
			err := Validate(s)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestDetectHost(t *testing.T) {
	h, err := DetectHost()
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Capabilities) == 0 && h.MinOOMScoreAdj == 0 {
		t.Logf("host: %+v", h)
	}
	if _, ok := h.RlimitHard["RLIMIT_NOFILE"]; !ok {
		t.Error("no RLIMIT_NOFILE hard limit detected")
	}
	// Whatever this machine is, a spec built for it must not ask for more
	// than it holds.
	p := containerParams(t, func(p *ContainerParams) {
		p.Host = h
		sc(p).Capabilities = &runtime.Capability{AddCapabilities: []string{"ALL"}}
	})
	s, err := Container(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range s.Process.Capabilities.Bounding {
		if !slices.Contains(h.Capabilities, c) {
			t.Errorf("%s requested but not held by this process", c)
		}
	}
}

// The local pause (a static native binary that runs nothing else) gets the
// profile for the native ABI only; a configured pause image and every
// workload keep the profile's whole architecture list.
func TestSandboxSeccompArchitectures(t *testing.T) {
	native := seccompArchitectures()
	if len(native) < 2 {
		t.Skipf("%v: this architecture has a single ABI, nothing to narrow", native)
	}
	withProfile := podConfig(func(c *runtime.PodSandboxConfig) {
		c.Linux.SecurityContext.Seccomp = &runtime.SecurityProfile{ProfileType: runtime.SecurityProfile_RuntimeDefault}
	})
	for _, tc := range []struct {
		name   string
		native bool
		want   []specs.Arch
	}{
		{"local pause", true, native[:1]},
		{"configured pause image", false, native},
	} {
		p := sandboxParams(t, withProfile)
		p.NativePause = tc.native
		s, err := Sandbox(p)
		if err != nil {
			t.Fatal(err)
		}
		if s.Linux.Seccomp == nil || !slices.Equal(s.Linux.Seccomp.Architectures, tc.want) {
			t.Errorf("%s: seccomp %+v, want architectures %v", tc.name, s.Linux.Seccomp, tc.want)
		}
		// The rules are the default profile's either way.
		if s.Linux.Seccomp != nil && len(s.Linux.Seccomp.Syscalls) != len(DefaultSeccomp(nil).Syscalls) {
			t.Errorf("%s: %d syscall rules, want the default profile's %d", tc.name, len(s.Linux.Seccomp.Syscalls), len(DefaultSeccomp(nil).Syscalls))
		}
	}
}
