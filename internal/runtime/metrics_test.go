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
	cfg := ctrConfig("busy", "sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 3600")
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
	// CPU time shows once the busy loop has run a scheduler tick or two.
	eventually(t, 20*time.Second, func() error {
		resp, err := f.v.ListPodSandboxMetrics(ctx, &runtimeapi.ListPodSandboxMetricsRequest{})
		if err != nil {
			t.Fatalf("ListPodSandboxMetrics: %v", err)
		}
		podMs, ctrMs = metricsOf(t, resp, sb, id)
		if v := value(ctrMs, "container_cpu_usage_seconds_total", "total"); v <= 0 {
			return fmt.Errorf("container_cpu_usage_seconds_total = %d, want > 0 after a busy loop", v)
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
