package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/peapod/peapod/internal/procfs"
)

// scopedResult is the memory of every process one runtime added for n
// running 1-container pods, counted without names but only among processes
// that belong to this runtime's pods. pod-overhead.sh counts every process
// that appeared on the machine meanwhile, so on a machine where others run
// tests too it also counts their processes; this count does not.
type scopedResult struct {
	perPod
	List []string
}

// perPod is what both memory counts report: how many processes a runtime
// added for Pods running pods, and their memory and the daemon's growth per
// pod.
type perPod struct {
	Runtime                 string
	Pods, Procs             int
	RSSKiB, PSSKiB, GrowKiB int // per pod
}

// A process belongs to the runtime's pods when it lives in one of the
// pods' network namespaces (pause, workloads), its command line names the
// daemon's root or state directory (monitors, shims: conmon's --bundle,
// the shim's -address), or one of its ancestors does either.
func scopedOverhead(ctx context.Context, d daemon, n int, logRoot string) (scopedResult, error) {
	res := scopedResult{perPod: perPod{Runtime: d.name(), Pods: n}}
	c, err := dialCRI(d.endpoint())
	if err != nil {
		return res, err
	}
	defer c.close()
	if _, err := c.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: busyboxImage}}); err != nil {
		return res, err
	}
	before := procfs.PIDs()
	rss0, _ := procfs.StatusKiB(d.pid(), "VmRSS")
	var pods []string
	var workloads []int
	defer func() {
		for _, p := range pods {
			c.removePod(context.WithoutCancel(ctx), p)
		}
	}()
	for i := range n {
		name := fmt.Sprintf("scoped-%d", i)
		logDir := filepath.Join(logRoot, d.name(), name)
		if err := os.MkdirAll(logDir, 0o755); err != nil {
			return res, err
		}
		pod := &runtimeapi.PodSandboxConfig{
			Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "bench-pod", Uid: fmt.Sprintf("%s-%d", name, os.Getpid())},
			LogDirectory: logDir,
			Linux:        &runtimeapi.LinuxPodSandboxConfig{},
		}
		rp, err := c.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: pod})
		if err != nil {
			return res, err
		}
		pods = append(pods, rp.PodSandboxId)
		cc, err := c.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: rp.PodSandboxId, SandboxConfig: pod, Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "sleeper"}, Image: &runtimeapi.ImageSpec{Image: busyboxImage},
			Command: []string{"sleep", "3600"}, LogPath: "sleeper.log", Linux: &runtimeapi.LinuxContainerConfig{},
		}})
		if err != nil {
			return res, err
		}
		if _, err := c.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: cc.ContainerId}); err != nil {
			return res, err
		}
		st, err := c.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: cc.ContainerId, Verbose: true})
		if err != nil {
			return res, err
		}
		var info struct {
			Pid int `json:"pid"`
		}
		_ = json.Unmarshal([]byte(st.GetInfo()["info"]), &info)
		if info.Pid == 0 {
			return res, fmt.Errorf("container %s: no pid in verbose status", cc.ContainerId)
		}
		workloads = append(workloads, info.Pid)
	}
	time.Sleep(2 * time.Second)
	rss1, _ := procfs.StatusKiB(d.pid(), "VmRSS")
	dirs := d.dirs()
	netns := map[string]bool{}
	for _, pid := range workloads {
		if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid)); err == nil {
			netns[ns] = true
		}
	}
	memo := map[int]bool{}
	var own func(pid, depth int) bool
	own = func(pid, depth int) bool {
		if v, ok := memo[pid]; ok {
			return v
		}
		if pid <= 1 || depth > 64 {
			return false
		}
		v := pid == d.pid()
		if !v {
			if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid)); err == nil && netns[ns] {
				v = true
			}
		}
		if !v {
			cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			for _, dir := range dirs {
				if strings.Contains(string(cmd), dir) {
					v = true
				}
			}
		}
		if !v {
			if st, err := procfs.ReadStat(pid); err == nil {
				v = own(st.PPID, depth+1)
			}
		}
		memo[pid] = v
		return v
	}
	for pid := range procfs.PIDs() {
		if before[pid] || slices.Contains(workloads, pid) || pid == d.pid() || !own(pid, 0) {
			continue
		}
		r, p, _ := procfs.Memory(pid)
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		res.List = append(res.List, fmt.Sprintf("%d %s rss=%dKiB pss=%dKiB", pid, strings.TrimSpace(string(comm)), r, p))
		res.RSSKiB += r
		res.PSSKiB += p
		res.Procs++
	}
	slices.Sort(res.List)
	res.RSSKiB /= n
	res.PSSKiB /= n
	res.GrowKiB = int(rss1-rss0) / n
	return res, nil
}
