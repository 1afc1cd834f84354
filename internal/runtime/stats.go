package runtime

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// CgroupRoot is where the cgroup hierarchies are mounted: one directory
// per controller (v1, and the hybrid layout), or the unified tree (v2, told
// by its cgroup.controllers file). The stats and metrics read containers'
// cgroups below it.
var CgroupRoot = "/sys/fs/cgroup"

// unlimited is the smallest value a v1 cgroup reports for "no limit"
// (PAGE_COUNTER_MAX rounded to pages, just below 2^63).
const unlimited = 1 << 62

// BundleSpec reads the OCI spec of a container's bundle.
func BundleSpec(bundle string) (*specs.Spec, error) {
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, err
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, fmt.Errorf("%s/config.json: %w", bundle, err)
	}
	return &spec, nil
}

// CgroupPath is a container's cgroup below each v1 hierarchy: runc's
// cgroupfs driver takes linux.cgroupsPath relative to the mount of each
// controller.
func CgroupPath(spec *specs.Spec) (string, error) {
	if spec.Linux == nil || spec.Linux.CgroupsPath == "" {
		return "", fmt.Errorf("the OCI spec names no cgroup")
	}
	if strings.Count(spec.Linux.CgroupsPath, ":") == 2 {
		return "", fmt.Errorf("cgroup %q is in the systemd driver's form; peapod reads cgroupfs paths", spec.Linux.CgroupsPath)
	}
	return spec.Linux.CgroupsPath, nil
}

// CgroupStats is one reading of a container's cgroups. Times are
// nanoseconds, sizes bytes. Only the CPU and memory usage must be
// readable; the rest stays zero when its file is missing (an older kernel,
// a controller not mounted).
type CgroupStats struct {
	Time time.Time

	CPUUsage, CPUUser, CPUSystem                 uint64 // cpuacct (v2: cpu.stat)
	CPUPeriods, CPUThrottled, CPUThrottledTimeNs uint64 // cpu.stat
	CPUPeriodUs, CPUShares                       uint64 // the limits in force (v2: no shares)

	MemUsage, MemMaxUsage, MemFailcnt uint64
	MemLimit                          uint64 // 0: unlimited
	MemKernel                         uint64
	OOMKills                          uint64
	// MemStat is memory.stat in v1's names: cache, rss, mapped_file,
	// swap, pgfault, ... and their hierarchical total_* sums (v2's
	// counters, hierarchical already, are given under both names).
	MemStat map[string]uint64

	PidsMax uint64 // 0: unlimited
	Pids    []int  // the processes in the cgroup

	Blkio []BlkioStat
}

// BlkioStat is one device's line of blkio.throttle.io_service_bytes or
// io_serviced: Op is Read, Write, Sync, Async, Discard or Total.
type BlkioStat struct {
	Major, Minor uint64
	Op           string
	Bytes, Ops   uint64
}

// WorkingSet is what the kubelet evicts on: usage without the page cache
// the kernel can drop (inactive file pages).
func (s *CgroupStats) WorkingSet() uint64 {
	if inactive := s.MemStat["total_inactive_file"]; inactive < s.MemUsage {
		return s.MemUsage - inactive
	}
	return 0
}

func cgroupFile(controller, cg, name string) string {
	return filepath.Join(CgroupRoot, controller, cg, name)
}

// ReadCgroup reads the cgroup cg (runc's cgroupsPath) of every controller
// peapod reports on.
func ReadCgroup(cg string) (*CgroupStats, error) {
	if _, err := os.Stat(filepath.Join(CgroupRoot, "cgroup.controllers")); err == nil {
		return readCgroupV2(filepath.Join(CgroupRoot, cg))
	}
	return readCgroupV1(cg)
}

func readCgroupV1(cg string) (*CgroupStats, error) {
	s := &CgroupStats{Time: time.Now()}
	var err error
	if s.CPUUsage, err = readUint(cgroupFile("cpuacct", cg, "cpuacct.usage")); err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", cg, err)
	}
	if s.MemUsage, err = readUint(cgroupFile("memory", cg, "memory.usage_in_bytes")); err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", cg, err)
	}
	if s.MemStat, err = readKV(cgroupFile("memory", cg, "memory.stat")); err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", cg, err)
	}
	s.CPUUser, _ = readUint(cgroupFile("cpuacct", cg, "cpuacct.usage_user"))
	s.CPUSystem, _ = readUint(cgroupFile("cpuacct", cg, "cpuacct.usage_sys"))
	if st, err := readKV(cgroupFile("cpu", cg, "cpu.stat")); err == nil {
		s.CPUPeriods, s.CPUThrottled, s.CPUThrottledTimeNs = st["nr_periods"], st["nr_throttled"], st["throttled_time"]
	}
	s.CPUPeriodUs, _ = readUint(cgroupFile("cpu", cg, "cpu.cfs_period_us"))
	s.CPUShares, _ = readUint(cgroupFile("cpu", cg, "cpu.shares"))
	s.MemMaxUsage, _ = readUint(cgroupFile("memory", cg, "memory.max_usage_in_bytes"))
	s.MemFailcnt, _ = readUint(cgroupFile("memory", cg, "memory.failcnt"))
	s.MemKernel, _ = readUint(cgroupFile("memory", cg, "memory.kmem.usage_in_bytes"))
	if l, err := readUint(cgroupFile("memory", cg, "memory.limit_in_bytes")); err == nil && l < unlimited {
		s.MemLimit = l
	}
	if oc, err := readKV(cgroupFile("memory", cg, "memory.oom_control")); err == nil {
		s.OOMKills = oc["oom_kill"]
	}
	s.PidsMax, _ = readUint(cgroupFile("pids", cg, "pids.max")) // "max" does not parse: 0
	s.Pids, _ = readPids(cgroupFile("pids", cg, "cgroup.procs"))
	if s.Pids == nil {
		s.Pids, _ = readPids(cgroupFile("memory", cg, "cgroup.procs"))
	}
	bytes, _ := readBlkio(cgroupFile("blkio", cg, "blkio.throttle.io_service_bytes_recursive"))
	// io_serviced has the same lines with counts of operations.
	ops, _ := readBlkio(cgroupFile("blkio", cg, "blkio.throttle.io_serviced_recursive"))
	for i := range bytes {
		for _, o := range ops {
			if o.Major == bytes[i].Major && o.Minor == bytes[i].Minor && o.Op == bytes[i].Op {
				bytes[i].Ops = o.Bytes
			}
		}
	}
	s.Blkio = bytes
	return s, nil
}

// readCgroupV2 reads the unified cgroup at dir, in v1's terms.
func readCgroupV2(dir string) (*CgroupStats, error) {
	s := &CgroupStats{Time: time.Now()}
	cpu, err := readKV(filepath.Join(dir, "cpu.stat"))
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", dir, err)
	}
	if s.MemUsage, err = readUint(filepath.Join(dir, "memory.current")); err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", dir, err)
	}
	mem, err := readKV(filepath.Join(dir, "memory.stat"))
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", dir, err)
	}
	s.CPUUsage, s.CPUUser, s.CPUSystem = cpu["usage_usec"]*1000, cpu["user_usec"]*1000, cpu["system_usec"]*1000
	s.CPUPeriods, s.CPUThrottled, s.CPUThrottledTimeNs = cpu["nr_periods"], cpu["nr_throttled"], cpu["throttled_usec"]*1000
	if b, err := os.ReadFile(filepath.Join(dir, "cpu.max")); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			s.CPUPeriodUs, _ = strconv.ParseUint(f[1], 10, 64)
		}
	}
	s.MemMaxUsage, _ = readUint(filepath.Join(dir, "memory.peak"))
	s.MemLimit, _ = readUint(filepath.Join(dir, "memory.max")) // "max": 0
	if ev, err := readKV(filepath.Join(dir, "memory.events")); err == nil {
		s.MemFailcnt, s.OOMKills = ev["max"], ev["oom_kill"]
	}
	s.MemKernel = mem["kernel"]
	if s.MemKernel == 0 {
		s.MemKernel = mem["kernel_stack"] + mem["slab"] + mem["sock"] + mem["pagetables"]
	}
	swap, _ := readUint(filepath.Join(dir, "memory.swap.current"))
	s.MemStat = map[string]uint64{}
	for v1, v := range map[string]uint64{
		"cache": mem["file"], "rss": mem["anon"], "mapped_file": mem["file_mapped"], "swap": swap,
		"inactive_file": mem["inactive_file"], "pgfault": mem["pgfault"], "pgmajfault": mem["pgmajfault"],
	} {
		s.MemStat[v1], s.MemStat["total_"+v1] = v, v
	}
	s.PidsMax, _ = readUint(filepath.Join(dir, "pids.max"))
	s.Pids, _ = readPids(filepath.Join(dir, "cgroup.procs"))
	s.Blkio, _ = readIOStat(filepath.Join(dir, "io.stat"))
	return s, nil
}

// readIOStat reads v2's io.stat ("MAJ:MIN rbytes=N wbytes=N rios=N ...")
// as v1's Read and Write lines.
func readIOStat(path string) ([]BlkioStat, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []BlkioStat
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		maj, min, ok := strings.Cut(fields[0], ":")
		if !ok {
			continue
		}
		kv := map[string]uint64{}
		for _, f := range fields[1:] {
			if k, v, ok := strings.Cut(f, "="); ok {
				kv[k], _ = strconv.ParseUint(v, 10, 64)
			}
		}
		ma, e1 := strconv.ParseUint(maj, 10, 64)
		mi, e2 := strconv.ParseUint(min, 10, 64)
		if e1 != nil || e2 != nil {
			continue
		}
		out = append(out,
			BlkioStat{Major: ma, Minor: mi, Op: "Read", Bytes: kv["rbytes"], Ops: kv["rios"]},
			BlkioStat{Major: ma, Minor: mi, Op: "Write", Bytes: kv["wbytes"], Ops: kv["wios"]})
	}
	return out, nil
}

func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}

// readKV reads "key value" lines (memory.stat, cpu.stat).
func readKV(path string) (map[string]uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]uint64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
			out[k] = n
		}
	}
	return out, sc.Err()
}

func readPids(path string) ([]int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []int
	for _, f := range strings.Fields(string(data)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out, nil
}

// readBlkio reads "MAJ:MIN Op value" lines; the "Total" summary line of
// all devices has no device and is skipped.
func readBlkio(path string) ([]BlkioStat, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []BlkioStat
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 3 {
			continue
		}
		maj, min, ok := strings.Cut(fields[0], ":")
		if !ok {
			continue
		}
		var b BlkioStat
		var e1, e2, e3 error
		b.Major, e1 = strconv.ParseUint(maj, 10, 64)
		b.Minor, e2 = strconv.ParseUint(min, 10, 64)
		b.Bytes, e3 = strconv.ParseUint(fields[2], 10, 64)
		if e1 != nil || e2 != nil || e3 != nil {
			continue
		}
		b.Op = fields[1]
		out = append(out, b)
	}
	return out, sc.Err()
}

// NetworkInterfaceStats are one interface's counters from /proc/PID/net/dev.
type NetworkInterfaceStats struct {
	Name                                    string
	RxBytes, RxPackets, RxErrors, RxDropped uint64
	TxBytes, TxPackets, TxErrors, TxDropped uint64
}

// NetworkStats reads /proc/PID/net/dev: the counters of every interface in
// the process's network namespace but loopback.
func NetworkStats(pid int) ([]NetworkInterfaceStats, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/net/dev", pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []NetworkInterfaceStats
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		name = strings.TrimSpace(name)
		fields := strings.Fields(rest)
		if name == "lo" || len(fields) < 16 {
			continue
		}
		n := make([]uint64, 16)
		for i := range n {
			n[i], _ = strconv.ParseUint(fields[i], 10, 64)
		}
		out = append(out, NetworkInterfaceStats{Name: name,
			RxBytes: n[0], RxPackets: n[1], RxErrors: n[2], RxDropped: n[3],
			TxBytes: n[8], TxPackets: n[9], TxErrors: n[10], TxDropped: n[11]})
	}
	return out, sc.Err()
}

// fsUsageTTL bounds how often a directory tree is walked: the kubelet asks
// every few seconds, and a big image store takes a while to walk.
const fsUsageTTL = 10 * time.Second

// FsUsageCache remembers the last walk of each directory for fsUsageTTL.
// The zero value is ready to use.
type FsUsageCache struct {
	mu      sync.Mutex
	entries map[string]*runtimeapi.FilesystemUsage
}

// Usage is DirUsage(dir), walked at most once per fsUsageTTL.
func (c *FsUsageCache) Usage(dir string) (*runtimeapi.FilesystemUsage, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if u, ok := c.entries[dir]; ok && time.Since(time.Unix(0, u.Timestamp)) < fsUsageTTL {
		return u, nil
	}
	u, err := DirUsage(dir)
	if err != nil {
		return nil, err
	}
	if c.entries == nil {
		c.entries = map[string]*runtimeapi.FilesystemUsage{}
	}
	// Drop what is stale, so directories of removed containers go too.
	for d, e := range c.entries {
		if time.Since(time.Unix(0, e.Timestamp)) >= fsUsageTTL {
			delete(c.entries, d)
		}
	}
	c.entries[dir] = u
	return u, nil
}

// DirUsage walks dir and counts the bytes of disk blocks and the inodes
// used under it (each hard-linked inode once, as du does). A missing
// directory uses nothing.
func DirUsage(dir string) (*runtimeapi.FilesystemUsage, error) {
	now := time.Now().UnixNano()
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	u := &runtimeapi.FilesystemUsage{
		Timestamp:  now,
		FsId:       &runtimeapi.FilesystemIdentifier{Mountpoint: abs},
		UsedBytes:  &runtimeapi.UInt64Value{},
		InodesUsed: &runtimeapi.UInt64Value{},
	}
	seen := map[uint64]bool{}
	err = filepath.WalkDir(abs, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		info, err := d.Info()
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		if st.Nlink > 1 {
			if seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
		}
		u.InodesUsed.Value++
		u.UsedBytes.Value += uint64(st.Blocks) * 512
		return nil
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}
