package runtime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/peapod/peapod/internal/procfs"
)

// BenchmarkPodStart measures the time from RunPodSandbox to a running
// container for a 1-container pod whose image is present (p50/p99 over
// b.N pods), and the memory of the processes the runtime adds per running
// pod: every process that appeared during the run and belongs to the test
// (in its cgroup parent, naming its directories, or descending from this
// process), minus the workloads themselves.
//
//	go test ./internal/runtime -run '^$' -bench PodStart -benchtime 50x
func BenchmarkPodStart(b *testing.B) {
	f := newFixture(b)
	ctx := context.Background()
	root := filepath.Dir(f.opts.Root)
	f.runPod(f.v, f.podConfig("warm")) // bridge, pause rootfs, iptables chains
	before := procfs.PIDs()
	var lat []time.Duration
	var workloads []int
	b.ResetTimer()
	for i := range b.N {
		pod := f.podConfig(fmt.Sprintf("bench-%d", i))
		start := time.Now()
		resp, err := f.v.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: pod})
		if err != nil {
			b.Fatal(err)
		}
		c, err := f.v.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: resp.PodSandboxId, Config: ctrConfig("c", "sleep", "3600"), SandboxConfig: pod})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.v.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: c.ContainerId}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
		_, ci := f.containerInfo(f.v, c.ContainerId)
		workloads = append(workloads, ci.Pid)
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[(len(lat)*99)/100].Microseconds())/1000, "p99-ms")

	self := os.Getpid()
	var rss, pss, n int
	for pid := range procfs.PIDs() {
		if before[pid] || slices.Contains(workloads, pid) || pid == self {
			continue
		}
		if !ours(pid, self, f.cgroup, root) {
			continue
		}
		r, p, _ := procfs.Memory(pid)
		rss, pss, n = rss+r, pss+p, n+1
	}
	b.ReportMetric(float64(rss)/float64(b.N)/1024, "helper-RSS-MiB/pod")
	b.ReportMetric(float64(pss)/float64(b.N)/1024, "helper-PSS-MiB/pod")
	b.ReportMetric(float64(n)/float64(b.N), "helper-procs/pod")
}

// ours reports whether pid belongs to this benchmark's pods.
func ours(pid, self int, cgroup, dir string) bool {
	if cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid)); err == nil && strings.Contains(string(cg), cgroup+"/") {
		return true
	}
	if cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && strings.Contains(string(cmd), dir+"/") {
		return true
	}
	for p := pid; p > 1; {
		st, err := procfs.ReadStat(p)
		if err != nil {
			return false
		}
		if st.PPID == self {
			return true
		}
		p = st.PPID
	}
	return false
}
