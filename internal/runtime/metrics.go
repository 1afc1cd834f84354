package runtime

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The CRI metrics (ListMetricDescriptors, ListPodSandboxMetrics) are the
// cAdvisor container_* metrics a kubelet exports on /metrics/cadvisor,
// served by the runtime so that a kubelet with the PodAndContainerStatsFromCRI
// gate needs no cAdvisor. Names, meaning and label keys follow cAdvisor's,
// so dashboards keep working.
//
// Values are unsigned integers on the wire (Metric.value is a UInt64Value)
// and the kubelet exports them as they are, under cAdvisor's names: the
// *_seconds_total CPU counters are therefore whole seconds (truncated), as
// CRI-O reports them, so that a dashboard's rate() reads CPUs, not
// nanoseconds. Spec limits that are unset (no quota, no memory limit) are 0.

// baseLabels are the label keys of every container metric: the
// Kubernetes container, pod and namespace, and the runtime's ID, name and
// image of the container (cAdvisor's id, name, image).
var baseLabels = []string{"container", "id", "image", "name", "namespace", "pod"}

type metricDef struct {
	name, help string
	typ        runtimeapi.MetricType
	extra      []string // label keys after baseLabels
}

const (
	counter = runtimeapi.MetricType_COUNTER
	gauge   = runtimeapi.MetricType_GAUGE
)

// metricDefs are every metric peapod serves; ListPodSandboxMetrics emits
// each of them for each running container (or pod, for the network ones),
// but the blkio ones when the cgroup saw no block I/O.
var metricDefs = []metricDef{
	{"container_cpu_usage_seconds_total", "Cumulative CPU time consumed, in seconds.", counter, []string{"cpu"}},
	{"container_cpu_user_seconds_total", "Cumulative user CPU time consumed, in seconds.", counter, nil},
	{"container_cpu_system_seconds_total", "Cumulative system CPU time consumed, in seconds.", counter, nil},
	{"container_cpu_cfs_periods_total", "Number of elapsed CFS enforcement periods.", counter, nil},
	{"container_cpu_cfs_throttled_periods_total", "Number of throttled CFS periods.", counter, nil},
	{"container_cpu_cfs_throttled_seconds_total", "Total time the container was throttled, in seconds.", counter, nil},

	{"container_memory_usage_bytes", "Current memory usage, including all memory regardless of when it was accessed.", gauge, nil},
	{"container_memory_working_set_bytes", "Current working set: usage without inactive file pages.", gauge, nil},
	{"container_memory_max_usage_bytes", "Maximum memory usage recorded.", gauge, nil},
	{"container_memory_cache", "Page cache memory.", gauge, nil},
	{"container_memory_rss", "Anonymous and swap cache memory (RSS).", gauge, nil},
	{"container_memory_mapped_file", "Size of memory-mapped files.", gauge, nil},
	{"container_memory_swap", "Swap usage.", gauge, nil},
	{"container_memory_kernel_usage", "Kernel memory usage.", gauge, nil},
	{"container_memory_failcnt", "Number of times memory usage hit the limit.", counter, nil},
	{"container_memory_failures_total", "Cumulative count of memory allocation failures (page faults).", counter, []string{"failure_type", "scope"}},
	{"container_oom_events_total", "Count of out-of-memory kills in the container.", counter, nil},

	{"container_processes", "Number of processes running in the container.", gauge, nil},
	{"container_threads", "Number of threads running in the container.", gauge, nil},
	{"container_threads_max", "Maximum number of threads (pids.max); 0 is unlimited.", gauge, nil},
	{"container_file_descriptors", "Number of open file descriptors of the container's processes.", gauge, nil},
	{"container_sockets", "Number of open sockets of the container's processes.", gauge, nil},
	{"container_ulimits_soft", "Soft ulimit of the container's main process; 0 is unlimited.", gauge, []string{"ulimit"}},

	{"container_fs_usage_bytes", "Bytes used by the container's writable layer.", gauge, []string{"device"}},
	{"container_fs_limit_bytes", "Size of the filesystem holding the writable layer.", gauge, []string{"device"}},
	{"container_fs_inodes_total", "Inodes of the filesystem holding the writable layer.", gauge, []string{"device"}},
	{"container_fs_inodes_free", "Free inodes of the filesystem holding the writable layer.", gauge, []string{"device"}},
	{"container_fs_reads_bytes_total", "Cumulative bytes read from block devices.", counter, []string{"device"}},
	{"container_fs_reads_total", "Cumulative count of completed block device reads.", counter, []string{"device"}},
	{"container_fs_writes_bytes_total", "Cumulative bytes written to block devices.", counter, []string{"device"}},
	{"container_fs_writes_total", "Cumulative count of completed block device writes.", counter, []string{"device"}},
	{"container_blkio_device_usage_total", "Block I/O bytes by device and operation.", counter, []string{"device", "major", "minor", "operation"}},

	{"container_network_receive_bytes_total", "Cumulative bytes received.", counter, []string{"interface"}},
	{"container_network_receive_packets_total", "Cumulative packets received.", counter, []string{"interface"}},
	{"container_network_receive_errors_total", "Cumulative errors while receiving.", counter, []string{"interface"}},
	{"container_network_receive_packets_dropped_total", "Cumulative packets dropped while receiving.", counter, []string{"interface"}},
	{"container_network_transmit_bytes_total", "Cumulative bytes transmitted.", counter, []string{"interface"}},
	{"container_network_transmit_packets_total", "Cumulative packets transmitted.", counter, []string{"interface"}},
	{"container_network_transmit_errors_total", "Cumulative errors while transmitting.", counter, []string{"interface"}},
	{"container_network_transmit_packets_dropped_total", "Cumulative packets dropped while transmitting.", counter, []string{"interface"}},

	{"container_spec_cpu_period", "CPU CFS period of the container, in microseconds.", gauge, nil},
	{"container_spec_cpu_quota", "CPU CFS quota of the container, in microseconds per period.", gauge, nil},
	{"container_spec_cpu_shares", "CPU shares of the container.", gauge, nil},
	{"container_spec_memory_limit_bytes", "Memory limit of the container.", gauge, nil},
	{"container_spec_memory_swap_limit_bytes", "Memory plus swap limit of the container.", gauge, nil},

	{"container_start_time_seconds", "Start time of the container since the Unix epoch, in seconds.", gauge, nil},
	{"container_last_seen", "Last time the runtime saw the container, since the Unix epoch, in seconds.", gauge, nil},
}

var metricIndex = func() map[string]*metricDef {
	m := make(map[string]*metricDef, len(metricDefs))
	for i := range metricDefs {
		m[metricDefs[i].name] = &metricDefs[i]
	}
	return m
}()

// MetricDescriptors describes every metric ListPodSandboxMetrics emits.
func MetricDescriptors() []*runtimeapi.MetricDescriptor {
	out := make([]*runtimeapi.MetricDescriptor, 0, len(metricDefs))
	for _, d := range metricDefs {
		keys := append(append([]string{}, baseLabels...), d.extra...)
		out = append(out, &runtimeapi.MetricDescriptor{Name: d.name, Help: d.help, LabelKeys: keys})
	}
	return out
}

// metricSet collects the metrics of one object under its base label values.
type metricSet struct {
	base []string
	out  []*runtimeapi.Metric
}

// add appends metric name with the extra label values; a name or label
// count that does not match its definition is a bug, caught by the tests.
func (m *metricSet) add(name string, v uint64, extra ...string) {
	d, ok := metricIndex[name]
	if !ok || len(extra) != len(d.extra) {
		panic(fmt.Sprintf("metric %s: %d extra labels, not as defined", name, len(extra)))
	}
	labels := append(append(make([]string, 0, len(m.base)+len(extra)), m.base...), extra...)
	m.out = append(m.out, &runtimeapi.Metric{Name: name, MetricType: d.typ, LabelValues: labels, Value: &runtimeapi.UInt64Value{Value: v}})
}

// metricsFsCache keeps the writable layers' walks between scrapes.
var metricsFsCache FsUsageCache

// ListPodSandboxMetrics reads the metrics of this owner's ready sandboxes
// and their running containers. A container that stops or goes away while
// it is being read is left out, not an error.
func (v *View) ListPodSandboxMetrics(ctx context.Context, req *runtimeapi.ListPodSandboxMetricsRequest) (*runtimeapi.ListPodSandboxMetricsResponse, error) {
	ss, _ := v.r.snapshot(v.owner)
	resp := &runtimeapi.ListPodSandboxMetricsResponse{}
	for _, sb := range ss {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("list pod sandbox metrics: %w", err)
		}
		sb.mu.Lock()
		if sb.removed || !sb.ready() {
			sb.mu.Unlock()
			continue
		}
		rec := sb.rec
		sb.mu.Unlock()
		pm := &runtimeapi.PodSandboxMetrics{PodSandboxId: sb.id}
		md := sb.config.GetMetadata()
		if rec.NetNS != "" {
			// The pod's network is the pause container's, as cAdvisor
			// reports it (container "POD").
			ms := &metricSet{base: []string{"POD", sb.id, rec.PauseImage, sb.id, md.GetNamespace(), md.GetName()}}
			if ifs, err := NetworkStats(rec.PausePID); err == nil {
				addNetwork(ms, ifs)
			}
			pm.Metrics = ms.out
		}
		for _, c := range v.r.containersOf(sb.id) {
			cm, err := v.r.containerMetrics(c, md)
			if err != nil {
				v.r.log.Debug("container metrics", "container", c.id, "err", err)
				continue
			}
			if cm != nil {
				pm.ContainerMetrics = append(pm.ContainerMetrics, cm)
			}
		}
		resp.PodMetrics = append(resp.PodMetrics, pm)
	}
	return resp, nil
}

func addNetwork(ms *metricSet, ifs []NetworkInterfaceStats) {
	for _, n := range ifs {
		ms.add("container_network_receive_bytes_total", n.RxBytes, n.Name)
		ms.add("container_network_receive_packets_total", n.RxPackets, n.Name)
		ms.add("container_network_receive_errors_total", n.RxErrors, n.Name)
		ms.add("container_network_receive_packets_dropped_total", n.RxDropped, n.Name)
		ms.add("container_network_transmit_bytes_total", n.TxBytes, n.Name)
		ms.add("container_network_transmit_packets_total", n.TxPackets, n.Name)
		ms.add("container_network_transmit_errors_total", n.TxErrors, n.Name)
		ms.add("container_network_transmit_packets_dropped_total", n.TxDropped, n.Name)
	}
}

// containerMetrics reads one container; nil when it is not running.
func (r *Runtime) containerMetrics(c *container, pod *runtimeapi.PodSandboxMetadata) (*runtimeapi.ContainerMetrics, error) {
	c.mu.Lock()
	if c.removed {
		c.mu.Unlock()
		return nil, nil
	}
	r.refresh(c)
	rec := c.rec
	name := c.config.GetMetadata().GetName()
	c.mu.Unlock()
	if runtimeapi.ContainerState(rec.State) != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return nil, nil
	}
	spec, err := BundleSpec(rec.Bundle)
	if err != nil {
		return nil, fmt.Errorf("metrics of container %s: %w", c.id, err)
	}
	cg, err := CgroupPath(spec)
	if err != nil {
		return nil, fmt.Errorf("metrics of container %s: %w", c.id, err)
	}
	st, err := ReadCgroup(cg)
	if err != nil {
		return nil, fmt.Errorf("metrics of container %s: %w", c.id, err)
	}
	ms := &metricSet{base: []string{name, c.id, rec.ImageName, c.id, pod.GetNamespace(), pod.GetName()}}

	ms.add("container_cpu_usage_seconds_total", seconds(st.CPUUsage), "total")
	ms.add("container_cpu_user_seconds_total", seconds(st.CPUUser))
	ms.add("container_cpu_system_seconds_total", seconds(st.CPUSystem))
	ms.add("container_cpu_cfs_periods_total", st.CPUPeriods)
	ms.add("container_cpu_cfs_throttled_periods_total", st.CPUThrottled)
	ms.add("container_cpu_cfs_throttled_seconds_total", seconds(st.CPUThrottledTimeNs))

	ms.add("container_memory_usage_bytes", st.MemUsage)
	ms.add("container_memory_working_set_bytes", st.WorkingSet())
	ms.add("container_memory_max_usage_bytes", st.MemMaxUsage)
	ms.add("container_memory_cache", st.MemStat["total_cache"])
	ms.add("container_memory_rss", st.MemStat["total_rss"])
	ms.add("container_memory_mapped_file", st.MemStat["total_mapped_file"])
	ms.add("container_memory_swap", st.MemStat["total_swap"])
	ms.add("container_memory_kernel_usage", st.MemKernel)
	ms.add("container_memory_failcnt", st.MemFailcnt)
	ms.add("container_memory_failures_total", st.MemStat["pgfault"], "pgfault", "container")
	ms.add("container_memory_failures_total", st.MemStat["pgmajfault"], "pgmajfault", "container")
	ms.add("container_memory_failures_total", st.MemStat["total_pgfault"], "pgfault", "hierarchy")
	ms.add("container_memory_failures_total", st.MemStat["total_pgmajfault"], "pgmajfault", "hierarchy")
	ms.add("container_oom_events_total", st.OOMKills)

	p := processStats(st.Pids)
	ms.add("container_processes", uint64(len(st.Pids)))
	ms.add("container_threads", p.threads)
	ms.add("container_threads_max", st.PidsMax)
	ms.add("container_file_descriptors", p.fds)
	ms.add("container_sockets", p.sockets)
	if soft, ok := softNoFile(rec.PID); ok {
		ms.add("container_ulimits_soft", soft, "max_open_files")
	}

	upper := filepath.Join(rec.Bundle, "upper")
	dev := deviceOf(upper)
	if u, err := metricsFsCache.Usage(upper); err == nil {
		ms.add("container_fs_usage_bytes", u.GetUsedBytes().GetValue(), dev)
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs(upper, &sfs); err == nil {
		ms.add("container_fs_limit_bytes", sfs.Blocks*uint64(sfs.Bsize), dev)
		ms.add("container_fs_inodes_total", sfs.Files, dev)
		ms.add("container_fs_inodes_free", sfs.Ffree, dev)
	}
	addBlkio(ms, st.Blkio)

	if res := spec.Linux.Resources; res != nil {
		if cpu := res.CPU; cpu != nil {
			if cpu.Period != nil {
				ms.add("container_spec_cpu_period", *cpu.Period)
			}
			if cpu.Quota != nil && *cpu.Quota > 0 {
				ms.add("container_spec_cpu_quota", uint64(*cpu.Quota))
			}
			if cpu.Shares != nil {
				ms.add("container_spec_cpu_shares", *cpu.Shares)
			}
		}
		var limit, swap uint64
		if mem := res.Memory; mem != nil {
			if mem.Limit != nil && *mem.Limit > 0 {
				limit = uint64(*mem.Limit)
			}
			if mem.Swap != nil && *mem.Swap > 0 {
				swap = uint64(*mem.Swap)
			}
		}
		ms.add("container_spec_memory_limit_bytes", limit)
		ms.add("container_spec_memory_swap_limit_bytes", swap)
	}
	// Not in the spec: the cgroup's defaults apply.
	if !hasMetric(ms, "container_spec_cpu_period") {
		ms.add("container_spec_cpu_period", st.CPUPeriodUs)
	}
	if !hasMetric(ms, "container_spec_cpu_shares") {
		ms.add("container_spec_cpu_shares", st.CPUShares)
	}
	if !hasMetric(ms, "container_spec_memory_limit_bytes") {
		ms.add("container_spec_memory_limit_bytes", 0)
		ms.add("container_spec_memory_swap_limit_bytes", 0)
	}

	ms.add("container_start_time_seconds", uint64(time.Unix(0, rec.StartedAt).Unix()))
	ms.add("container_last_seen", uint64(st.Time.Unix()))
	return &runtimeapi.ContainerMetrics{ContainerId: c.id, Metrics: ms.out}, nil
}

func hasMetric(ms *metricSet, name string) bool {
	for _, m := range ms.out {
		if m.Name == name {
			return true
		}
	}
	return false
}

// addBlkio reports the block I/O per device: the per-operation bytes, and
// the read and write totals cAdvisor calls container_fs_*.
func addBlkio(ms *metricSet, stats []BlkioStat) {
	for _, b := range stats {
		dev := blockDeviceName(b.Major, b.Minor)
		maj, min := strconv.FormatUint(b.Major, 10), strconv.FormatUint(b.Minor, 10)
		ms.add("container_blkio_device_usage_total", b.Bytes, dev, maj, min, b.Op)
		switch b.Op {
		case "Read":
			ms.add("container_fs_reads_bytes_total", b.Bytes, dev)
			ms.add("container_fs_reads_total", b.Ops, dev)
		case "Write":
			ms.add("container_fs_writes_bytes_total", b.Bytes, dev)
			ms.add("container_fs_writes_total", b.Ops, dev)
		}
	}
}

// blockDeviceName is /dev/NAME of a block device, or "MAJ:MIN" when sysfs
// does not name it.
func blockDeviceName(major, minor uint64) string {
	data, err := os.ReadFile(fmt.Sprintf("/sys/dev/block/%d:%d/uevent", major, minor))
	if err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if name, ok := strings.CutPrefix(line, "DEVNAME="); ok {
				return "/dev/" + name
			}
		}
	}
	return fmt.Sprintf("%d:%d", major, minor)
}

// deviceOf names the filesystem holding path by its device number, as
// the blkio metrics name devices.
func deviceOf(path string) string {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return ""
	}
	return blockDeviceName(uint64(unix.Major(st.Dev)), uint64(unix.Minor(st.Dev)))
}

type procCounts struct{ threads, fds, sockets uint64 }

// processStats counts the threads, open files and sockets of pids.
// A process that exits meanwhile counts for nothing.
func processStats(pids []int) procCounts {
	var c procCounts
	for _, pid := range pids {
		dir := fmt.Sprintf("/proc/%d", pid)
		if tasks, err := os.ReadDir(dir + "/task"); err == nil {
			c.threads += uint64(len(tasks))
		}
		fds, err := os.ReadDir(dir + "/fd")
		if err != nil {
			continue
		}
		c.fds += uint64(len(fds))
		for _, fd := range fds {
			if target, err := os.Readlink(filepath.Join(dir, "fd", fd.Name())); err == nil && strings.HasPrefix(target, "socket:") {
				c.sockets++
			}
		}
	}
	return c
}

// softNoFile is the soft open-files limit of pid, from /proc/PID/limits
// ("unlimited" is 0).
func softNoFile(pid int) (uint64, bool) {
	if pid <= 0 {
		return 0, false
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "Max open files")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return 0, false
		}
		if fields[0] == "unlimited" {
			return 0, true
		}
		v, err := strconv.ParseUint(fields[0], 10, 64)
		return v, err == nil
	}
	return 0, false
}

// seconds turns a nanosecond counter into whole seconds.
func seconds(ns uint64) uint64 { return ns / uint64(time.Second) }
