package kubelet

import (
	"fmt"
	"path"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/peapod/peapod/internal/cgroup"
	"github.com/peapod/peapod/internal/objects"
)

// DefaultCgroupRoot is where the pod cgroups go by default: kubelet's
// kubepods tree, below peapod's own cgroup so that it never mixes with a
// real kubelet's /kubepods on the same host.
const DefaultCgroupRoot = "/peapod"

// podCgroupName is the pod's cgroup, as kubelet's cgroupfs driver names
// it: ROOT/kubepods/pod<UID> for Guaranteed pods,
// ROOT/kubepods/{burstable,besteffort}/pod<UID> otherwise.
func podCgroupName(root string, pod *corev1.Pod) string {
	if root == "" {
		root = DefaultCgroupRoot
	}
	qos := ""
	switch objects.QOSClass(&pod.Spec) {
	case corev1.PodQOSBurstable:
		qos = "burstable"
	case corev1.PodQOSBestEffort:
		qos = "besteffort"
	}
	return path.Join(root, "kubepods", qos, "pod"+string(pod.UID))
}

// podResources is kubelet's ResourceConfigForPod: cpu.shares from the
// CPU requests (the minimum for BestEffort pods); a memory limit and a CPU
// quota only when every container declares that limit, set to the pod's
// effective limit (the larger of what the app containers and sidecars
// need together and what any regular init container needs with the
// sidecars started before it).
func podResources(pod *corev1.Pod) cgroup.Resources {
	req := effective(pod, true, corev1.ResourceCPU)
	r := cgroup.Resources{CPUShares: milliCPUToShares(milli(req))}
	if objects.QOSClass(&pod.Spec) == corev1.PodQOSBestEffort {
		r.CPUShares = minShares
	}
	if declared(pod, corev1.ResourceMemory) {
		r.MemoryLimit = value(effective(pod, false, corev1.ResourceMemory))
	}
	if declared(pod, corev1.ResourceCPU) {
		r.CPUQuota = milliCPUToQuota(milli(effective(pod, false, corev1.ResourceCPU)))
		r.CPUPeriod = quotaPeriod
	}
	return r
}

func value(q resource.Quantity) int64 { return q.Value() }
func milli(q resource.Quantity) int64 { return q.MilliValue() }

// effective is the pod's need of one resource: max(sum of app containers
// and sidecars, max over regular init containers of itself plus the
// sidecars before it).
func effective(pod *corev1.Pod, requests bool, name corev1.ResourceName) resource.Quantity {
	var sum, sidecars, initMax resource.Quantity
	value := func(c *corev1.Container) resource.Quantity {
		if !requests {
			return c.Resources.Limits[name]
		}
		q, ok := c.Resources.Requests[name]
		if !ok {
			q = c.Resources.Limits[name] // requests default to limits
		}
		return q
	}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		v := value(c)
		if isSidecar(c) {
			sidecars.Add(v)
			sum.Add(v)
			continue
		}
		v.Add(sidecars)
		if v.Cmp(initMax) > 0 {
			initMax = v
		}
	}
	for i := range pod.Spec.Containers {
		sum.Add(value(&pod.Spec.Containers[i]))
	}
	if initMax.Cmp(sum) > 0 {
		return initMax
	}
	return sum
}

// declared reports whether every container has a limit for the resource.
func declared(pod *corev1.Pod, name corev1.ResourceName) bool {
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			if _, ok := cs[i].Resources.Limits[name]; !ok {
				return false
			}
		}
	}
	return true
}

func milliCPUToShares(milli int64) uint64 {
	if milli == 0 {
		return minShares
	}
	s := milli * sharesPerCPU / milliPerCPU
	return uint64(min(max(s, minShares), maxShares))
}

func milliCPUToQuota(milli int64) int64 {
	if milli == 0 {
		return 0
	}
	return max(milli*quotaPeriod/milliPerCPU, minQuotaPeriod)
}

// PodCgroups makes and removes pod cgroups (*cgroup.Manager on a host).
type PodCgroups interface {
	Ensure(name string, r cgroup.Resources) error
	Remove(name string) error
}

// ensureCgroup makes the pod's cgroup with the pod-level limits before
// its sandbox starts in it.
func (w *worker) ensureCgroup(pod *corev1.Pod) error {
	if w.k.cgroups == nil {
		return nil
	}
	name := podCgroupName(w.k.opts.CgroupRoot, pod)
	if err := w.k.cgroups.Ensure(name, podResources(pod)); err != nil {
		return fmt.Errorf("pod cgroup of %s: %w", podString(pod), err)
	}
	return nil
}

// removeCgroup removes the pod's cgroup once its sandboxes are gone. The
// pod may be known by UID only (an orphan found at start), so the name
// under every QoS class is tried.
func (w *worker) removeCgroup(pod *corev1.Pod) {
	if w.k.cgroups == nil {
		return
	}
	for _, qos := range []string{"", "burstable", "besteffort"} {
		name := path.Join(w.k.opts.CgroupRoot, "kubepods", qos, "pod"+string(w.uid))
		if err := w.k.cgroups.Remove(name); err != nil {
			w.k.log.Warn("remove pod cgroup", "pod", podString(pod), "cgroup", name, "err", err)
		}
	}
}
