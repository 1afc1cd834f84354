package kubelet

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/peapod/peapod/internal/cgroup"
	"github.com/peapod/peapod/internal/store"
)

func res(kv ...string) corev1.ResourceList {
	l := corev1.ResourceList{}
	for i := 0; i+1 < len(kv); i += 2 {
		l[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return l
}

func TestPodCgroupNameAndResources(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	ctr := func(name string, req, lim corev1.ResourceList) corev1.Container {
		return corev1.Container{Name: name, Resources: corev1.ResourceRequirements{Requests: req, Limits: lim}}
	}
	tests := []struct {
		name string
		init []corev1.Container
		apps []corev1.Container
		cg   string
		want cgroup.Resources
	}{
		{"best effort", nil, []corev1.Container{ctr("a", nil, nil)},
			"/peapod/kubepods/besteffort/podU", cgroup.Resources{CPUShares: 2}},
		{"guaranteed: limits summed", nil, []corev1.Container{
			ctr("a", nil, res("cpu", "500m", "memory", "64Mi")), ctr("b", nil, res("cpu", "250m", "memory", "32Mi"))},
			"/peapod/kubepods/podU", cgroup.Resources{CPUShares: 768, CPUQuota: 75000, CPUPeriod: 100000, MemoryLimit: 96 << 20}},
		{"burstable: a container without a memory limit leaves the pod unlimited", nil, []corev1.Container{
			ctr("a", res("cpu", "100m"), res("cpu", "1", "memory", "64Mi")), ctr("b", res("cpu", "200m"), res("cpu", "1"))},
			"/peapod/kubepods/burstable/podU", cgroup.Resources{CPUShares: 307, CPUQuota: 200000, CPUPeriod: 100000}},
		{"a big init container sets the limit", []corev1.Container{ctr("i", nil, res("memory", "256Mi"))},
			[]corev1.Container{ctr("a", res("memory", "10Mi"), res("memory", "64Mi"))},
			"/peapod/kubepods/burstable/podU", cgroup.Resources{CPUShares: 2, MemoryLimit: 256 << 20}},
		{"sidecars add to the app containers", []corev1.Container{
			func() corev1.Container {
				c := ctr("s", nil, res("memory", "32Mi"))
				c.RestartPolicy = &always
				return c
			}(),
			ctr("i", nil, res("memory", "64Mi"))},
			[]corev1.Container{ctr("a", nil, res("memory", "48Mi"))},
			"/peapod/kubepods/burstable/podU", cgroup.Resources{CPUShares: 2, MemoryLimit: 96 << 20}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &corev1.Pod{}
			p.UID = "U"
			p.Spec.InitContainers, p.Spec.Containers = tt.init, tt.apps
			if got := podCgroupName("", p); got != tt.cg {
				t.Errorf("cgroup %s, want %s", got, tt.cg)
			}
			if got := podResources(p); got != tt.want {
				t.Errorf("resources %+v, want %+v", got, tt.want)
			}
		})
	}
}

// The sandbox runs in the pod cgroup, made with the pod's limits before it
// and removed with the pod.
func TestPodCgroupLifecycle(t *testing.T) {
	h := newHarness(t)
	p := simplePod("cg", corev1.RestartPolicyAlways, "a")
	p.Spec.Containers[0].Resources.Limits = res("cpu", "1", "memory", "64Mi")
	h.create(p)
	h.sync("cg")
	p = h.pod("cg")
	want := "/peapod/kubepods/pod" + string(p.UID)
	var sb *fakeSandbox
	for _, s := range h.rt.sandboxes {
		sb = s
	}
	if got := sb.cfg.GetLinux().GetCgroupParent(); got != want {
		t.Errorf("sandbox cgroup parent %q, want %q", got, want)
	}
	if r, ok := h.cgroups.made[want]; !ok || r.MemoryLimit != 64<<20 || r.CPUQuota != 100000 {
		t.Errorf("cgroups made %v, want %s with 64Mi and a 1-CPU quota", h.cgroups.made, want)
	}
	if _, _, err := h.store.Delete(h.ctx, "pods", "default", "cg", store.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	w := h.workers["cg"]
	w.update(h.pod("cg"), false)
	if done := w.sync(h.ctx); !done {
		t.Fatal("worker not finished after termination")
	}
	if len(h.cgroups.made) != 0 || len(h.cgroups.removed) != 1 || h.cgroups.removed[0] != want {
		t.Errorf("after deletion: cgroups left %v, removed %v", h.cgroups.made, h.cgroups.removed)
	}
}
