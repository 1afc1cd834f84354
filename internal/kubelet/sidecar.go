package kubelet

import (
	"context"

	corev1 "k8s.io/api/core/v1"
)

// Sidecar containers are init containers with restartPolicy Always
// (Kubernetes' restartable init containers, KEP-753). They start in order
// with the other init containers, but the next one starts as soon as the
// sidecar has started (its startup probe, if any, succeeded); they keep
// running beside the app containers, restart whatever the pod's
// restartPolicy, do not count for the pod's completion, and are stopped
// after the app containers, in reverse order.

// isSidecar reports whether an init container is a restartable one.
func isSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// probedContainers are the containers whose probes run: the app
// containers and the sidecars (regular init containers have no probes).
func probedContainers(pod *corev1.Pod) []*corev1.Container {
	var out []*corev1.Container
	for i := range pod.Spec.InitContainers {
		if isSidecar(&pod.Spec.InitContainers[i]) {
			out = append(out, &pod.Spec.InitContainers[i])
		}
	}
	for i := range pod.Spec.Containers {
		out = append(out, &pod.Spec.Containers[i])
	}
	return out
}

// appsDone reports whether every app container of the pod has ended for
// good under the pod's restartPolicy (never with Always): the pod is
// complete and its sidecars must stop.
func appsDone(pod *corev1.Pod, st *podState) bool {
	if pod.Spec.RestartPolicy == corev1.RestartPolicyAlways || len(pod.Spec.Containers) == 0 {
		return false
	}
	for i := range pod.Spec.Containers {
		cs := st.latest(pod.Spec.Containers[i].Name)
		if cs == nil || !cs.exited() || shouldRestart(pod, cs) {
			return false
		}
	}
	return true
}

// appsStarted reports whether an app container was ever created in the
// sandbox: the pod got past its init containers, so a sidecar that
// restarts no longer holds anything back.
func appsStarted(pod *corev1.Pod, st *podState, sb *sandboxState) bool {
	for i := range pod.Spec.Containers {
		if st.in(sb.id, pod.Spec.Containers[i].Name) != nil {
			return true
		}
	}
	return false
}

// syncSidecar keeps one sidecar running: it starts it, restarts it after
// an exit (with the crash-loop back-off, whatever the pod's restartPolicy)
// and kills it when its liveness or startup probe failed. It reports
// whether the sidecar has started, so the next init container may start.
func (w *worker) syncSidecar(ctx context.Context, pod *corev1.Pod, c *corev1.Container, cs *containerState, sb *sandboxState, st *podState, vols map[string]string) bool {
	switch {
	case cs == nil:
		w.start(ctx, pod, c, true, sb, st, vols)
	case cs.running():
		delete(w.waiting, c.Name)
		if t, failed := w.k.probes.failed(cs.id, c); failed {
			w.killUnhealthy(ctx, pod, c, cs, t)
			return false
		}
		return w.k.probes.started(cs.id, c)
	case cs.exited():
		w.restart(ctx, pod, c, true, cs, sb, st, vols)
	default:
		w.startCreated(ctx, pod, c, true, cs)
	}
	return false
}
