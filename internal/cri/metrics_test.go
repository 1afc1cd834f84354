package cri

import (
	"context"
	"errors"
	"io"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// metricsRuntime is a fake runtime that serves the CRI metrics.
type metricsRuntime struct {
	fakeRuntime
	resp *runtimeapi.ListPodSandboxMetricsResponse
	err  error
}

func (m *metricsRuntime) ListPodSandboxMetrics(ctx context.Context, req *runtimeapi.ListPodSandboxMetricsRequest) (*runtimeapi.ListPodSandboxMetricsResponse, error) {
	return m.resp, m.err
}

// critestMetricNames are the metrics critest (cri-tools v1.37, the
// "runtime should support metrics operations" specs) expects a runtime to
// describe, but those it lists as not yet implemented by every runtime
// (hugetlb, pressure, the memory reservation): a kubelet reading the CRI
// metrics instead of cAdvisor's loses the ones a runtime omits.
var critestMetricNames = []string{
	"container_blkio_device_usage_total",
	"container_cpu_cfs_periods_total",
	"container_cpu_cfs_throttled_periods_total",
	"container_cpu_cfs_throttled_seconds_total",
	"container_cpu_system_seconds_total",
	"container_cpu_usage_seconds_total",
	"container_cpu_user_seconds_total",
	"container_file_descriptors",
	"container_fs_inodes_free",
	"container_fs_inodes_total",
	"container_fs_limit_bytes",
	"container_fs_reads_bytes_total",
	"container_fs_reads_total",
	"container_fs_usage_bytes",
	"container_fs_writes_bytes_total",
	"container_fs_writes_total",
	"container_last_seen",
	"container_memory_cache",
	"container_memory_failcnt",
	"container_memory_failures_total",
	"container_memory_kernel_usage",
	"container_memory_mapped_file",
	"container_memory_max_usage_bytes",
	"container_memory_rss",
	"container_memory_swap",
	"container_memory_usage_bytes",
	"container_memory_working_set_bytes",
	"container_network_receive_bytes_total",
	"container_network_receive_errors_total",
	"container_network_receive_packets_dropped_total",
	"container_network_receive_packets_total",
	"container_network_transmit_bytes_total",
	"container_network_transmit_errors_total",
	"container_network_transmit_packets_dropped_total",
	"container_network_transmit_packets_total",
	"container_oom_events_total",
	"container_processes",
	"container_sockets",
	"container_spec_cpu_period",
	"container_spec_cpu_shares",
	"container_spec_memory_limit_bytes",
	"container_spec_memory_swap_limit_bytes",
	"container_start_time_seconds",
	"container_threads",
	"container_threads_max",
}

func TestListMetricDescriptors(t *testing.T) {
	_, c, _ := serve(t, Options{Runtime: &metricsRuntime{}})
	resp, err := c.rt.ListMetricDescriptors(context.Background(), &runtimeapi.ListMetricDescriptorsRequest{})
	if err != nil {
		t.Fatalf("ListMetricDescriptors: %v", err)
	}
	byName := map[string]*runtimeapi.MetricDescriptor{}
	for _, d := range resp.Descriptors {
		if byName[d.Name] != nil {
			t.Errorf("%s described twice", d.Name)
		}
		byName[d.Name] = d
		if d.Help == "" {
			t.Errorf("%s has no help", d.Name)
		}
		if len(d.LabelKeys) == 0 {
			t.Errorf("%s has no label keys", d.Name)
		}
	}
	for _, name := range critestMetricNames {
		if byName[name] == nil {
			t.Errorf("%s is not described", name)
		}
	}
	// Label keys as cAdvisor's, so that queries written against a
	// kubelet's /metrics/cadvisor keep working.
	for _, tc := range []struct {
		name string
		want []string
	}{
		{"container_memory_usage_bytes", []string{"container", "id", "image", "name", "namespace", "pod"}},
		{"container_cpu_usage_seconds_total", []string{"container", "id", "image", "name", "namespace", "pod", "cpu"}},
		{"container_network_receive_bytes_total", []string{"container", "id", "image", "name", "namespace", "pod", "interface"}},
		{"container_fs_usage_bytes", []string{"container", "id", "image", "name", "namespace", "pod", "device"}},
		{"container_memory_failures_total", []string{"container", "id", "image", "name", "namespace", "pod", "failure_type", "scope"}},
		{"container_blkio_device_usage_total", []string{"container", "id", "image", "name", "namespace", "pod", "device", "major", "minor", "operation"}},
	} {
		if d := byName[tc.name]; d == nil || !slices.Equal(d.LabelKeys, tc.want) {
			t.Errorf("%s label keys = %v, want %v", tc.name, d.GetLabelKeys(), tc.want)
		}
	}
}

func TestPodSandboxMetricsPassThrough(t *testing.T) {
	want := &runtimeapi.ListPodSandboxMetricsResponse{PodMetrics: []*runtimeapi.PodSandboxMetrics{{
		PodSandboxId: "sb1",
		ContainerMetrics: []*runtimeapi.ContainerMetrics{{ContainerId: "c1", Metrics: []*runtimeapi.Metric{{
			Name: "container_memory_usage_bytes", MetricType: runtimeapi.MetricType_GAUGE,
			LabelValues: []string{"c", "c1", "img", "c1", "ns", "pod"}, Value: &runtimeapi.UInt64Value{Value: 4096},
		}}}},
	}}}
	_, c, _ := serve(t, Options{Runtime: &metricsRuntime{resp: want}})
	ctx := context.Background()
	got, err := c.rt.ListPodSandboxMetrics(ctx, &runtimeapi.ListPodSandboxMetricsRequest{})
	if err != nil {
		t.Fatalf("ListPodSandboxMetrics: %v", err)
	}
	if len(got.PodMetrics) != 1 || got.PodMetrics[0].ContainerMetrics[0].Metrics[0].Value.Value != 4096 {
		t.Errorf("ListPodSandboxMetrics = %v, want %v", got, want)
	}

	stream, err := c.rt.StreamPodSandboxMetrics(ctx, &runtimeapi.StreamPodSandboxMetricsRequest{})
	if err != nil {
		t.Fatalf("StreamPodSandboxMetrics: %v", err)
	}
	msg, err := stream.Recv()
	if err != nil {
		t.Fatalf("StreamPodSandboxMetrics: receive: %v", err)
	}
	if len(msg.PodSandboxMetrics) != 1 || msg.PodSandboxMetrics[0].PodSandboxId != "sb1" {
		t.Errorf("streamed %v, want the pod sb1", msg)
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Errorf("after the one message: %v, want EOF", err)
	}
}

func TestPodSandboxMetricsError(t *testing.T) {
	_, c, _ := serve(t, Options{Runtime: &metricsRuntime{err: errGone}})
	_, err := c.rt.ListPodSandboxMetrics(context.Background(), &runtimeapi.ListPodSandboxMetricsRequest{})
	if code(err) != codes.NotFound {
		t.Errorf("ListPodSandboxMetrics with a failing runtime: %v, want the runtime's error as NotFound", err)
	}
}
