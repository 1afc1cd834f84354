package spec

import (
	"maps"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestOOMScoreAdjClamp(t *testing.T) {
	tests := []struct {
		adj  int64
		min  int
		want int
	}{
		{adj: -997, min: 0, want: 0},     // Guaranteed pod on a host without CAP_SYS_RESOURCE
		{adj: 1000, min: 0, want: 1000},  // BestEffort
		{adj: 500, min: -500, want: 500}, // within range
		{adj: -999, min: -500, want: -500},
		{adj: -2000, min: -1000, want: -1000},
		{adj: 5000, min: 0, want: 1000},
		{adj: 0, min: 100, want: 100},
	}
	for _, tt := range tests {
		if got := clampOOMScoreAdj(tt.adj, Host{MinOOMScoreAdj: tt.min}); got != tt.want {
			t.Errorf("clamp(%d, min %d) = %d, want %d", tt.adj, tt.min, got, tt.want)
		}
	}
}

func TestLinuxResources(t *testing.T) {
	tests := []struct {
		name    string
		r       *runtime.LinuxContainerResources
		pids    int64
		host    Host
		check   func(t *testing.T, r *specs.LinuxResources)
		wantErr string
	}{
		{name: "nothing set", check: func(t *testing.T, r *specs.LinuxResources) {
			if r.CPU != nil || r.Memory != nil || r.Pids != nil {
				t.Errorf("unexpected limits: %+v", r)
			}
			if len(r.Devices) != 1 || r.Devices[0].Allow || r.Devices[0].Access != "rwm" {
				t.Errorf("devices = %+v, want deny all", r.Devices)
			}
		}},
		{name: "cpu", r: &runtime.LinuxContainerResources{CpuPeriod: 100000, CpuQuota: 50000, CpuShares: 512, CpusetCpus: "0-1", CpusetMems: "0"}, check: func(t *testing.T, r *specs.LinuxResources) {
			c := r.CPU
			if *c.Period != 100000 || *c.Quota != 50000 || *c.Shares != 512 || c.Cpus != "0-1" || c.Mems != "0" {
				t.Errorf("cpu = %+v", c)
			}
		}},
		{name: "memory limit caps swap where accounted", r: &runtime.LinuxContainerResources{MemoryLimitInBytes: 64 << 20}, host: Host{Swap: true}, check: func(t *testing.T, r *specs.LinuxResources) {
			if *r.Memory.Limit != 64<<20 || r.Memory.Swap == nil || *r.Memory.Swap != 64<<20 {
				t.Errorf("memory = %+v", r.Memory)
			}
		}},
		{name: "no swap accounting: limit only", r: &runtime.LinuxContainerResources{MemoryLimitInBytes: 64 << 20}, check: func(t *testing.T, r *specs.LinuxResources) {
			if *r.Memory.Limit != 64<<20 || r.Memory.Swap != nil {
				t.Errorf("memory = %+v", r.Memory)
			}
		}},
		{name: "explicit swap limit", r: &runtime.LinuxContainerResources{MemoryLimitInBytes: 64 << 20, MemorySwapLimitInBytes: 128 << 20}, host: Host{Swap: true}, check: func(t *testing.T, r *specs.LinuxResources) {
			if *r.Memory.Swap != 128<<20 {
				t.Errorf("swap = %d", *r.Memory.Swap)
			}
		}},
		{name: "hugepages with hugetlb", r: &runtime.LinuxContainerResources{HugepageLimits: []*runtime.HugepageLimit{{PageSize: "2MB", Limit: 1 << 21}}}, host: Host{Hugetlb: true}, check: func(t *testing.T, r *specs.LinuxResources) {
			if len(r.HugepageLimits) != 1 || r.HugepageLimits[0].Pagesize != "2MB" {
				t.Errorf("hugepages = %+v", r.HugepageLimits)
			}
		}},
		{name: "hugepages dropped without hugetlb", r: &runtime.LinuxContainerResources{HugepageLimits: []*runtime.HugepageLimit{{PageSize: "2MB", Limit: 1 << 21}}}, check: func(t *testing.T, r *specs.LinuxResources) {
			if len(r.HugepageLimits) != 0 {
				t.Errorf("hugepages = %+v", r.HugepageLimits)
			}
		}},
		{name: "pids limit", pids: 100, check: func(t *testing.T, r *specs.LinuxResources) {
			if r.Pids == nil || *r.Pids.Limit != 100 {
				t.Errorf("pids = %+v", r.Pids)
			}
		}},
		{name: "unified on v2", r: &runtime.LinuxContainerResources{Unified: map[string]string{"memory.high": "1000000"}}, host: Host{CgroupV2: true}, check: func(t *testing.T, r *specs.LinuxResources) {
			if r.Unified["memory.high"] != "1000000" {
				t.Errorf("unified = %v", r.Unified)
			}
		}},
		{name: "unified on v1", r: &runtime.LinuxContainerResources{Unified: map[string]string{"memory.high": "1"}}, wantErr: "need cgroup v2"},
		{name: "negative memory", r: &runtime.LinuxContainerResources{MemoryLimitInBytes: -1}, wantErr: "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := linuxResources(tt.r, tt.pids, tt.host)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, got)
		})
	}
}

func TestClampRlimits(t *testing.T) {
	h := Host{RlimitHard: map[string]uint64{"RLIMIT_NOFILE": 4096, "RLIMIT_NPROC": 100}}
	got, err := clampRlimits([]specs.POSIXRlimit{
		{Type: "RLIMIT_NOFILE", Hard: 1 << 20, Soft: 1 << 20},
		{Type: "RLIMIT_NPROC", Hard: 50, Soft: 80},
		{Type: "RLIMIT_CORE", Hard: 10, Soft: 5},
	}, h)
	if err != nil {
		t.Fatal(err)
	}
	want := []specs.POSIXRlimit{
		{Type: "RLIMIT_NOFILE", Hard: 4096, Soft: 4096},
		{Type: "RLIMIT_NPROC", Hard: 50, Soft: 50},
		{Type: "RLIMIT_CORE", Hard: 10, Soft: 5},
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("rlimit %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if _, err := clampRlimits([]specs.POSIXRlimit{{Type: "RLIMIT_BOGUS"}}, h); err == nil {
		t.Error("unknown rlimit accepted")
	}
	if _, err := clampRlimits([]specs.POSIXRlimit{{Type: "RLIMIT_CORE"}, {Type: "RLIMIT_CORE"}}, h); err == nil {
		t.Error("duplicate rlimit accepted")
	}
}

func TestSysctls(t *testing.T) {
	tests := []struct {
		name             string
		in               map[string]string
		hostNet, hostIPC bool
		want             map[string]string
		wantErr          string
	}{
		{name: "namespaced kinds", in: map[string]string{
			"net.ipv4.ip_unprivileged_port_start": "0", "kernel.shmmax": "1", "kernel.msgmax": "2",
			"kernel.sem": "250 32000 32 128", "fs.mqueue.msg_max": "20",
		}, want: map[string]string{
			"net.ipv4.ip_unprivileged_port_start": "0", "kernel.shmmax": "1", "kernel.msgmax": "2",
			"kernel.sem": "250 32000 32 128", "fs.mqueue.msg_max": "20",
		}},
		{name: "slash separators", in: map[string]string{"net/ipv4/conf/eth0.100/rp_filter": "1"}, want: map[string]string{"net.ipv4.conf.eth0/100.rp_filter": "1"}},
		{name: "dots with a slash component kept", in: map[string]string{"net.ipv4.conf.eth0/100.rp_filter": "1"}, want: map[string]string{"net.ipv4.conf.eth0/100.rp_filter": "1"}},
		{name: "net with host network", in: map[string]string{"net.ipv4.ip_forward": "1"}, hostNet: true, wantErr: "not allowed with host network"},
		{name: "ipc with host ipc", in: map[string]string{"kernel.shmmax": "1"}, hostIPC: true, wantErr: "not allowed with host IPC"},
		{name: "ipc with host network is fine", in: map[string]string{"kernel.shmmax": "1"}, hostNet: true, want: map[string]string{"kernel.shmmax": "1"}},
		{name: "node-wide sysctl", in: map[string]string{"kernel.pid_max": "1"}, wantErr: "not a namespaced sysctl"},
		{name: "vm sysctl", in: map[string]string{"vm.swappiness": "1"}, wantErr: "not a namespaced sysctl"},
		{name: "kernel.semx is not kernel.sem", in: map[string]string{"kernel.semx": "1"}, wantErr: "not a namespaced sysctl"},
		{name: "path tricks", in: map[string]string{"net.ipv4..conf": "1"}, wantErr: "invalid name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := validateSysctls(tt.in, tt.hostNet, tt.hostIPC)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, tt.want) {
				t.Fatalf("sysctls = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCgroupsPath(t *testing.T) {
	for _, tt := range []struct{ parent, id, want, err string }{
		{parent: "/kubepods/burstable/pod123", id: "abc", want: "/kubepods/burstable/pod123/abc"},
		{parent: "", id: "abc", want: DefaultCgroupParent + "/abc"},
		{parent: "kubepods.slice:cri:abc", id: "abc", err: "systemd"},
		{parent: "relative", id: "abc", err: "absolute"},
		{parent: "/p", id: "../x", err: "not a valid cgroup name"},
	} {
		got, err := cgroupsPath(tt.parent, tt.id)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("cgroupsPath(%q, %q) err = %v, want %q", tt.parent, tt.id, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("cgroupsPath(%q, %q) = %q, %v; want %q", tt.parent, tt.id, got, err, tt.want)
		}
	}
}
