package runtime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Acceptance 7: a container over its memory limit ends OOMKilled; a CPU
// quota appears in its cgroup, and UpdateContainerResources changes it.
func TestMemoryLimitAndCPUQuota(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	pod := f.podConfig("limits")
	sb := f.runPod(f.v, pod)

	hog := ctrConfig("hog", "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1")
	hog.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 16 << 20}
	h := f.start(f.v, sb, pod, hog)
	st := f.waitExited(f.v, h, 20e9)
	if st.Reason != ReasonOOMKilled || st.ExitCode != 137 {
		t.Errorf("hog over its 16 MiB limit: exit %d reason %q, want 137 OOMKilled", st.ExitCode, st.Reason)
	}

	cpu := ctrConfig("cpu", "sleep", "3600")
	cpu.Linux.Resources = &runtimeapi.LinuxContainerResources{CpuPeriod: 100000, CpuQuota: 50000}
	c := f.start(f.v, sb, pod, cpu)
	if got := cpuQuota(t, f.cgroup, c); got != "50000" {
		t.Errorf("cpu.cfs_quota_us = %s, want 50000", got)
	}
	if _, err := f.v.UpdateContainerResources(ctx, &runtimeapi.UpdateContainerResourcesRequest{
		ContainerId: c, Linux: &runtimeapi.LinuxContainerResources{CpuPeriod: 100000, CpuQuota: 20000},
	}); err != nil {
		t.Fatalf("UpdateContainerResources: %v", err)
	}
	if got := cpuQuota(t, f.cgroup, c); got != "20000" {
		t.Errorf("cpu.cfs_quota_us after update = %s, want 20000", got)
	}
	if st, _ := f.containerInfo(f.v, c); st.GetResources().GetLinux().GetCpuQuota() != 20000 {
		t.Errorf("status resources %v, want the updated quota", st.GetResources())
	}
}

// cpuQuota reads the container's CFS quota from its cgroup (v1 cpu
// controller, or cpu.max on v2).
func cpuQuota(t *testing.T, parent, id string) string {
	t.Helper()
	for _, p := range []string{
		filepath.Join("/sys/fs/cgroup/cpu,cpuacct", parent, id, "cpu.cfs_quota_us"),
		filepath.Join("/sys/fs/cgroup/cpu", parent, id, "cpu.cfs_quota_us"),
		filepath.Join("/sys/fs/cgroup", parent, id, "cpu.max"),
	} {
		if b, err := os.ReadFile(p); err == nil {
			return strings.Fields(string(b))[0]
		}
	}
	t.Fatalf("no CPU cgroup for container %s under %s", id, parent)
	return ""
}

// Acceptance 8: users by number and by name, read-only root filesystem,
// and dropping all capabilities behave as in Kubernetes.
func TestSecurityContext(t *testing.T) {
	f := newFixture(t)
	pod := f.podConfig("sec")
	sb := f.runPod(f.v, pod)
	n := 0
	run := func(cfg *runtimeapi.ContainerConfig) string {
		n++
		cfg.Metadata.Name = fmt.Sprintf("c%d", n)
		return f.start(f.v, sb, pod, cfg)
	}

	byNumber := ctrConfig("", "sleep", "3600")
	byNumber.Linux.SecurityContext.RunAsUser = &runtimeapi.Int64Value{Value: 1234}
	if got := f.execOK(f.v, run(byNumber), "id"); !strings.HasPrefix(got, "uid=1234 gid=0") {
		t.Errorf("runAsUser 1234: id = %q", got)
	}
	fromImage := ctrConfig("", "sleep", "3600")
	fromImage.Image.Image = busyboxApp
	got := f.execOK(f.v, run(fromImage), "id")
	if !strings.HasPrefix(got, "uid=1000(app) gid=1000(app)") || !strings.Contains(got, "100(users)") {
		t.Errorf("image USER app: id = %q, want uid 1000 gid 1000 and group users from /etc/group", got)
	}
	byName := ctrConfig("", "sleep", "3600")
	byName.Linux.SecurityContext.RunAsUsername = "app"
	if got := f.execOK(f.v, run(byName), "id", "-u"); got != "1000\n" {
		t.Errorf("run_as_username app: id -u = %q", got)
	}

	plain := run(ctrConfig("", "sleep", "3600"))
	ro := ctrConfig("", "sleep", "3600")
	ro.Linux.SecurityContext.ReadonlyRootfs = true
	roID := run(ro)
	if out, code := f.exec(f.v, roID, "touch", "/x"); code == 0 {
		t.Errorf("readOnlyRootFilesystem: touch /x succeeded: %s", out)
	}
	if out, code := f.exec(f.v, plain, "touch", "/x"); code != 0 {
		t.Errorf("writable root: touch /x: %d %s", code, out)
	}

	noCaps := ctrConfig("", "sleep", "3600")
	noCaps.Linux.SecurityContext.Capabilities = &runtimeapi.Capability{DropCapabilities: []string{"ALL"}}
	nc := run(noCaps)
	if got := f.execOK(f.v, nc, "grep", "CapEff", "/proc/self/status"); !strings.Contains(got, "0000000000000000") {
		t.Errorf("drop ALL: %s", got)
	}
	if out, code := f.exec(f.v, nc, "chown", "1", "/tmp"); code == 0 {
		t.Errorf("drop ALL: root could still chown: %s", out)
	}
	if out, code := f.exec(f.v, plain, "chown", "1", "/tmp"); code != 0 {
		t.Errorf("default capabilities: chown failed: %s", out)
	}
}

// Acceptance 10: RuntimeDefault seccomp refuses unshare (Unconfined does
// not), and a net.* sysctl of the pod is seen by every container and not
// by the host.
func TestSeccompAndSysctls(t *testing.T) {
	f := newFixture(t)
	const sysctl, value = "net.ipv4.ip_local_port_range", "40000\t50000"
	pod := f.podConfig("sysctl")
	pod.Linux.Sysctls = map[string]string{sysctl: "40000 50000"}
	sb := f.runPod(f.v, pod)

	confined := ctrConfig("confined", "sleep", "3600")
	confined.Linux.SecurityContext.Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
	unconfined := ctrConfig("unconfined", "sleep", "3600")
	unconfined.Linux.SecurityContext.Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}
	a := f.start(f.v, sb, pod, confined)
	b := f.start(f.v, sb, pod, unconfined)
	if out, code := f.exec(f.v, a, "unshare", "-U", "true"); code == 0 {
		t.Errorf("RuntimeDefault let unshare through: %s", out)
	}
	if out, code := f.exec(f.v, b, "unshare", "-U", "true"); code != 0 {
		t.Errorf("Unconfined: unshare refused (%d): %s", code, out)
	}

	path := "/proc/sys/" + strings.ReplaceAll(sysctl, ".", "/")
	for _, id := range []string{a, b} {
		if got := strings.TrimSpace(f.execOK(f.v, id, "cat", path)); got != value {
			t.Errorf("%s in container %s = %q, want %q", sysctl, id[:12], got, value)
		}
	}
	host, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(host)) == value {
		t.Errorf("the pod's %s leaked to the host", sysctl)
	}
}
