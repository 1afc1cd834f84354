package cri

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/peapod/peapod/internal/runtime"
)

// cgroupPath is a container's cgroup below each v1 hierarchy, from its
// bundle's OCI spec.
func cgroupPath(bundle string) (string, error) {
	spec, err := runtime.BundleSpec(bundle)
	if err != nil {
		return "", err
	}
	return runtime.CgroupPath(spec)
}

// cpuSample is one reading of a cgroup's CPU time, kept to compute the
// rate (UsageNanoCores) at the next reading, as cAdvisor and containerd do.
type cpuSample struct {
	at    time.Time
	usage uint64
}

type cpuRates struct {
	mu   sync.Mutex
	last map[string]cpuSample
}

// rate records a sample and returns nanocores since the previous one
// (nil at the first).
func (c *cpuRates) rate(key string, now time.Time, usage uint64) *runtimeapi.UInt64Value {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil {
		c.last = map[string]cpuSample{}
	}
	prev, ok := c.last[key]
	c.last[key] = cpuSample{at: now, usage: usage}
	if !ok || !now.After(prev.at) || usage < prev.usage {
		return nil
	}
	ns := float64(usage-prev.usage) / now.Sub(prev.at).Seconds()
	return &runtimeapi.UInt64Value{Value: uint64(ns)}
}

// forget drops samples of objects that are gone.
func (c *cpuRates) forget(keep map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.last {
		if !keep[k] {
			delete(c.last, k)
		}
	}
}

// cgroupUsage reads CPU and memory of one cgroup v1 path.
func (s *Server) cgroupUsage(key, cg string) (*runtimeapi.CpuUsage, *runtimeapi.MemoryUsage, error) {
	st, err := runtime.ReadCgroup(cg)
	if err != nil {
		return nil, nil, err
	}
	now := st.Time
	cpu := &runtimeapi.CpuUsage{
		Timestamp:            now.UnixNano(),
		UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: st.CPUUsage},
		UsageNanoCores:       s.cpu.rate(key, now, st.CPUUsage),
	}
	ws := st.WorkingSet()
	mem := &runtimeapi.MemoryUsage{
		Timestamp:       now.UnixNano(),
		WorkingSetBytes: &runtimeapi.UInt64Value{Value: ws},
		UsageBytes:      &runtimeapi.UInt64Value{Value: st.MemUsage},
		RssBytes:        &runtimeapi.UInt64Value{Value: st.MemStat["total_rss"]},
		PageFaults:      &runtimeapi.UInt64Value{Value: st.MemStat["total_pgfault"]},
		MajorPageFaults: &runtimeapi.UInt64Value{Value: st.MemStat["total_pgmajfault"]},
	}
	if st.MemLimit > ws {
		mem.AvailableBytes = &runtimeapi.UInt64Value{Value: st.MemLimit - ws}
	}
	return cpu, mem, nil
}

// ownContainerStats reads a container's cgroup and writable layer.
func (s *Server) ownContainerStats(ctx context.Context, id string) (*runtimeapi.ContainerStats, error) {
	st, info, err := s.container(ctx, id)
	if err != nil {
		return nil, err
	}
	stats := &runtimeapi.ContainerStats{Attributes: &runtimeapi.ContainerAttributes{
		Id: st.GetId(), Metadata: st.GetMetadata(), Labels: st.GetLabels(), Annotations: st.GetAnnotations(),
	}}
	if st.GetState() == runtimeapi.ContainerState_CONTAINER_RUNNING {
		cg, err := cgroupPath(info.Bundle)
		if err != nil {
			return nil, fmt.Errorf("stats of container %s: %w", st.GetId(), err)
		}
		cpu, mem, err := s.cgroupUsage(st.GetId(), cg)
		if err != nil {
			return nil, fmt.Errorf("stats of container %s: %w", st.GetId(), err)
		}
		stats.Cpu, stats.Memory = cpu, mem
	}
	// The writable layer is the overlay's upper directory.
	upper := filepath.Join(info.Bundle, "upper")
	if u, err := runtime.DirUsage(upper); err == nil {
		stats.WritableLayer = &runtimeapi.FilesystemUsage{
			Timestamp: u.Timestamp, FsId: u.FsId, UsedBytes: u.UsedBytes, InodesUsed: u.InodesUsed,
		}
	}
	return stats, nil
}

func (s *Server) ownListContainerStats(ctx context.Context, f *runtimeapi.ContainerStatsFilter) ([]*runtimeapi.ContainerStats, error) {
	lf := &runtimeapi.ContainerFilter{Id: f.GetId(), PodSandboxId: f.GetPodSandboxId(), LabelSelector: f.GetLabelSelector()}
	list, err := s.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: lf})
	if err != nil {
		return nil, err
	}
	out := make([]*runtimeapi.ContainerStats, 0, len(list.Containers))
	keep := map[string]bool{}
	for _, c := range list.Containers {
		st, err := s.ownContainerStats(ctx, c.Id)
		if isNotFound(err) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		keep[c.Id] = true
		out = append(out, st)
	}
	if f.GetId() == "" && f.GetPodSandboxId() == "" && len(f.GetLabelSelector()) == 0 {
		s.cpu.forget(keep)
	}
	return out, nil
}

// ownPodSandboxStats sums the containers' usage (the pod's cgroup belongs
// to the kubelet when it made one) and reads the network counters of the
// sandbox's interfaces through the infra process.
func (s *Server) ownPodSandboxStats(ctx context.Context, id string) (*runtimeapi.PodSandboxStats, error) {
	st, info, err := s.sandbox(ctx, id)
	if err != nil {
		return nil, err
	}
	cs, err := s.ownListContainerStats(ctx, &runtimeapi.ContainerStatsFilter{PodSandboxId: st.GetId()})
	if err != nil {
		return nil, err
	}
	now := time.Now().UnixNano()
	linux := &runtimeapi.LinuxPodSandboxStats{Containers: cs}
	var cpuNs, ws, usage, rss uint64
	running := false
	for _, c := range cs {
		if c.Cpu == nil {
			continue
		}
		running = true
		cpuNs += c.Cpu.GetUsageCoreNanoSeconds().GetValue()
		ws += c.Memory.GetWorkingSetBytes().GetValue()
		usage += c.Memory.GetUsageBytes().GetValue()
		rss += c.Memory.GetRssBytes().GetValue()
	}
	if running {
		linux.Cpu = &runtimeapi.CpuUsage{Timestamp: now, UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: cpuNs},
			UsageNanoCores: s.cpu.rate("pod/"+st.GetId(), time.Unix(0, now), cpuNs)}
		linux.Memory = &runtimeapi.MemoryUsage{Timestamp: now, WorkingSetBytes: &runtimeapi.UInt64Value{Value: ws},
			UsageBytes: &runtimeapi.UInt64Value{Value: usage}, RssBytes: &runtimeapi.UInt64Value{Value: rss}}
	}
	if info.Pid > 0 && st.GetState() == runtimeapi.PodSandboxState_SANDBOX_READY && info.NetNS != "" {
		if n, err := netStats(info.Pid, now); err == nil {
			linux.Network = n
		}
	}
	return &runtimeapi.PodSandboxStats{
		Attributes: &runtimeapi.PodSandboxAttributes{Id: st.GetId(), Metadata: st.GetMetadata(), Labels: st.GetLabels(), Annotations: st.GetAnnotations()},
		Linux:      linux,
	}, nil
}

// netStats is the sandbox's network usage: every interface of the infra
// process's network namespace but loopback; eth0 is the default.
func netStats(pid int, now int64) (*runtimeapi.NetworkUsage, error) {
	ifs, err := runtime.NetworkStats(pid)
	if err != nil {
		return nil, err
	}
	n := &runtimeapi.NetworkUsage{Timestamp: now}
	for _, i := range ifs {
		is := &runtimeapi.NetworkInterfaceUsage{Name: i.Name,
			RxBytes: &runtimeapi.UInt64Value{Value: i.RxBytes}, RxErrors: &runtimeapi.UInt64Value{Value: i.RxErrors},
			TxBytes: &runtimeapi.UInt64Value{Value: i.TxBytes}, TxErrors: &runtimeapi.UInt64Value{Value: i.TxErrors}}
		if i.Name == "eth0" {
			n.DefaultInterface = is
		} else {
			n.Interfaces = append(n.Interfaces, is)
		}
	}
	return n, nil
}
