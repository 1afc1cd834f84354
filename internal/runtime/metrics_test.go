package runtime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestMetricDescriptorsMatchDefinitions(t *testing.T) {
	seen := map[string]bool{}
	for _, d := range MetricDescriptors() {
		if seen[d.Name] {
			t.Errorf("%s described twice", d.Name)
		}
		seen[d.Name] = true
		if d.Help == "" {
			t.Errorf("%s has no help", d.Name)
		}
		if !slices.Equal(d.LabelKeys[:len(baseLabels)], baseLabels) {
			t.Errorf("%s label keys %v do not start with %v", d.Name, d.LabelKeys, baseLabels)
		}
	}
}

func TestReadBlkio(t *testing.T) {
	p := filepath.Join(t.TempDir(), "blkio.throttle.io_service_bytes_recursive")
	data := "8:0 Read 4096\n8:0 Write 8192\n8:0 Total 12288\nTotal 12288\n"
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := readBlkio(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []BlkioStat{{8, 0, "Read", 4096, 0}, {8, 0, "Write", 8192, 0}, {8, 0, "Total", 12288, 0}}
	if !slices.Equal(got, want) {
		t.Errorf("readBlkio = %v, want %v (the all-devices Total line skipped)", got, want)
	}
}

// metricsOf finds the metrics of a pod and of one of its containers.
func metricsOf(t *testing.T, resp *runtimeapi.ListPodSandboxMetricsResponse, podID, ctrID string) (pod, ctr []*runtimeapi.Metric) {
	t.Helper()
	for _, pm := range resp.PodMetrics {
		if pm.PodSandboxId != podID {
			continue
		}
		for _, cm := range pm.ContainerMetrics {
			if cm.ContainerId == ctrID {
				return pm.Metrics, cm.Metrics
			}
		}
		t.Fatalf("no metrics of container %s in pod %s", ctrID, podID)
	}
	t.Fatalf("no metrics of pod %s", podID)
	return nil, nil
}

// value is the value of the metric name whose extra labels are extra
// (any when extra is empty); -1 when absent.
func value(ms []*runtimeapi.Metric, name string, extra ...string) int64 {
	for _, m := range ms {
		if m.Name == name && (len(extra) == 0 || slices.Equal(m.LabelValues[len(baseLabels):], extra)) {
			return int64(m.Value.GetValue())
		}
	}
	return -1
}

// A running container with limits yields every metric peapod describes
// (but block I/O, which a virtual disk may not account), with as many
// label values as its descriptor has keys, real usage and the limits that
// were asked for; the pod yields its eth0 counters.
func TestPodSandboxMetrics(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	pod := f.podConfig("metrics")
	sb := f.runPod(f.v, pod)
	// A busy loop for the whole test: under the 20% quota it takes ~5 s of
	// wall time to use a whole CPU second (the counters are whole seconds)
	// and gets throttled on the way.
	cfg := ctrConfig("busy", "sh", "-c", "(while :; do :; done) & sleep 3600")
	cfg.Linux.Resources = &runtimeapi.LinuxContainerResources{
		CpuPeriod: 100000, CpuQuota: 20000, CpuShares: 1024,
		MemoryLimitInBytes: 64 << 20, MemorySwapLimitInBytes: 64 << 20,
	}
	id := f.start(f.v, sb, pod, cfg)
	f.execOK(f.v, id, "sh", "-c", "mkdir -p /var/lib/m && for i in 1 2 3 4 5; do echo hi > /var/lib/m/f$i; done")
	st, _ := f.containerInfo(f.v, id)

	descs := map[string]*runtimeapi.MetricDescriptor{}
	for _, d := range MetricDescriptors() {
		descs[d.Name] = d
	}
	var podMs, ctrMs []*runtimeapi.Metric
	// CPU time shows once the busy loop has used a whole CPU second.
	eventually(t, 30*time.Second, func() error {
		resp, err := f.v.ListPodSandboxMetrics(ctx, &runtimeapi.ListPodSandboxMetricsRequest{})
		if err != nil {
			t.Fatalf("ListPodSandboxMetrics: %v", err)
		}
		podMs, ctrMs = metricsOf(t, resp, sb, id)
		if v := value(ctrMs, "container_cpu_usage_seconds_total", "total"); v <= 0 {
			return fmt.Errorf("container_cpu_usage_seconds_total = %d, want >= 1 s after a busy loop", v)
		}
		return nil
	})

	found := map[string]bool{}
	for _, m := range append(slices.Clone(podMs), ctrMs...) {
		d := descs[m.Name]
		if d == nil {
			t.Errorf("metric %s is not described", m.Name)
			continue
		}
		found[m.Name] = true
		if len(m.LabelValues) != len(d.LabelKeys) {
			t.Errorf("%s has label values %v for keys %v", m.Name, m.LabelValues, d.LabelKeys)
		}
	}
	for name := range descs {
		switch name {
		case "container_blkio_device_usage_total", "container_fs_reads_bytes_total", "container_fs_reads_total",
			"container_fs_writes_bytes_total", "container_fs_writes_total":
			continue // only with block I/O the cgroup accounted
		}
		if !found[name] {
			t.Errorf("%s described but not reported", name)
		}
	}

	for _, tc := range []struct {
		name  string
		extra []string
		want  int64
	}{
		{"container_spec_cpu_period", nil, 100000},
		{"container_spec_cpu_quota", nil, 20000},
		{"container_spec_cpu_shares", nil, 1024},
		{"container_spec_memory_limit_bytes", nil, 64 << 20},
		{"container_spec_memory_swap_limit_bytes", nil, 64 << 20},
		{"container_start_time_seconds", nil, time.Unix(0, st.StartedAt).Unix()},
	} {
		if got := value(ctrMs, tc.name, tc.extra...); got != tc.want {
			t.Errorf("%s = %d, want %d", tc.name, got, tc.want)
		}
	}
	for _, name := range []string{"container_memory_usage_bytes", "container_memory_working_set_bytes",
		"container_processes", "container_threads", "container_file_descriptors", "container_fs_usage_bytes",
		"container_fs_limit_bytes", "container_fs_inodes_total", "container_ulimits_soft", "container_last_seen"} {
		if v := value(ctrMs, name); v <= 0 {
			t.Errorf("%s = %d, want > 0", name, v)
		}
	}
	if v := value(podMs, "container_network_receive_packets_total", "eth0"); v < 0 {
		t.Errorf("the pod reports no eth0 receive counter: %v", podMs)
	}
	for _, m := range ctrMs {
		if m.LabelValues[0] != "busy" || m.LabelValues[1] != id || m.LabelValues[4] != "default" || m.LabelValues[5] != "metrics" {
			t.Errorf("%s labels %v, want container busy, id %s, namespace default, pod metrics", m.Name, m.LabelValues, id)
			break
		}
	}

	// Another owner's view sees nothing of this pod.
	other, err := f.view("other").ListPodSandboxMetrics(ctx, &runtimeapi.ListPodSandboxMetricsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, pm := range other.PodMetrics {
		if pm.PodSandboxId == sb {
			t.Errorf("owner other sees the metrics of pod %s", sb)
		}
	}

	// A stopped container has no metrics.
	if _, err := f.v.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 1}); err != nil {
		t.Fatal(err)
	}
	resp, err := f.v.ListPodSandboxMetrics(ctx, &runtimeapi.ListPodSandboxMetricsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, pm := range resp.PodMetrics {
		for _, cm := range pm.ContainerMetrics {
			if cm.ContainerId == id {
				t.Errorf("stopped container %s still has metrics", id)
			}
		}
	}
}

// A unified (v2) hierarchy is read in v1's terms, so that the metrics and
// the stats calls need no second mapping. The files are a fake tree: this
// host's runc puts containers in v1 hierarchies.
func TestReadCgroupV2(t *testing.T) {
	root := t.TempDir()
	old := CgroupRoot
	CgroupRoot = root
	t.Cleanup(func() { CgroupRoot = old })
	files := map[string]string{
		"cgroup.controllers":      "cpu io memory pids\n",
		"pod/ctr/cpu.stat":        "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 7\nnr_throttled 2\nthrottled_usec 30\n",
		"pod/ctr/cpu.max":         "20000 100000\n",
		"pod/ctr/memory.current":  "8192000\n",
		"pod/ctr/memory.peak":     "9000000\n",
		"pod/ctr/memory.max":      "67108864\n",
		"pod/ctr/memory.events":   "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
		"pod/ctr/memory.stat":     "anon 4096000\nfile 2048000\nkernel 512000\nfile_mapped 1024\ninactive_file 1000000\npgfault 42\npgmajfault 1\n",
		"pod/ctr/pids.max":        "max\n",
		"pod/ctr/cgroup.procs":    "12\n34\n",
		"pod/ctr/io.stat":         "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n",
		"pod/ctr/memory.swap.max": "max\n",
	}
	for name, data := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err := ReadCgroup("/pod/ctr")
	if err != nil {
		t.Fatalf("ReadCgroup: %v", err)
	}
	for _, tc := range []struct {
		name      string
		got, want uint64
	}{
		{"cpu usage ns", s.CPUUsage, 1500000},
		{"cpu user ns", s.CPUUser, 1000000},
		{"cpu system ns", s.CPUSystem, 500000},
		{"throttled periods", s.CPUThrottled, 2},
		{"throttled ns", s.CPUThrottledTimeNs, 30000},
		{"cfs period", s.CPUPeriodUs, 100000},
		{"memory usage", s.MemUsage, 8192000},
		{"working set", s.WorkingSet(), 8192000 - 1000000},
		{"max usage", s.MemMaxUsage, 9000000},
		{"limit", s.MemLimit, 64 << 20},
		{"failcnt (events max)", s.MemFailcnt, 3},
		{"oom kills", s.OOMKills, 1},
		{"kernel", s.MemKernel, 512000},
		{"rss", s.MemStat["total_rss"], 4096000},
		{"cache", s.MemStat["total_cache"], 2048000},
		{"pgfault", s.MemStat["pgfault"], 42},
		{"pids.max (unlimited)", s.PidsMax, 0},
		{"processes", uint64(len(s.Pids)), 2},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %d, want %d", tc.name, tc.got, tc.want)
		}
	}
	want := []BlkioStat{{8, 0, "Read", 4096, 1}, {8, 0, "Write", 8192, 2}}
	if !slices.Equal(s.Blkio, want) {
		t.Errorf("blkio = %v, want %v", s.Blkio, want)
	}
}
