package kubelet

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/peapod/peapod/internal/image/reference"
	"github.com/peapod/peapod/internal/objects"
)

// Condition reasons kubelet uses (pkg/kubelet/status/generate.go).
const (
	ReasonContainersNotReady       = "ContainersNotReady"
	ReasonContainersNotInitialized = "ContainersNotInitialized"
	ReasonPodCompleted             = "PodCompleted"
	ReasonPodFailed                = "PodFailed"
)

// ContainerIDPrefix is the runtime name in status containerIDs.
const ContainerIDPrefix = "peapod://"

// writeStatus computes the pod's status from the last runtime state and
// stores it (status only; the store keeps everything else as it is).
func (w *worker) writeStatus(ctx context.Context, pod *corev1.Pod) {
	st := w.lastState
	if st == nil {
		return
	}
	_, err := w.k.store.GuaranteedUpdate(ctx, "pods", pod.Namespace, pod.Name, func(cur objects.Object) (objects.Object, error) {
		p := cur.(*corev1.Pod)
		if p.UID != w.uid {
			return nil, apierrors.NewConflict(corev1.Resource("pods"), pod.Name, fmt.Errorf("uid changed"))
		}
		p.Status = w.computeStatus(p, st)
		return p, nil
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) && ctx.Err() == nil {
		w.k.log.Warn("write pod status", "pod", pod.Namespace+"/"+pod.Name, "err", err)
	}
}

// computeStatus is kubelet's generateAPIPodStatus for the pod from the
// runtime state, keeping the transition times of conditions that did not
// change.
func (w *worker) computeStatus(pod *corev1.Pod, st *podState) corev1.PodStatus {
	k := w.k
	old := pod.Status
	now := metav1.NewTime(k.clock.Now().Truncate(1e9))
	s := corev1.PodStatus{
		QOSClass:  objects.QOSClass(&pod.Spec),
		HostIP:    k.hostIP,
		HostIPs:   []corev1.HostIP{{IP: k.hostIP}},
		StartTime: old.StartTime,
	}
	if s.StartTime == nil {
		s.StartTime = &now
	}
	sb := st.current()
	sandboxReady := sb != nil && sb.ready
	if sandboxReady {
		ips := sb.ips
		if pod.Spec.HostNetwork {
			ips = []string{k.hostIP}
		}
		for _, ip := range ips {
			s.PodIPs = append(s.PodIPs, corev1.PodIP{IP: ip})
		}
		if len(ips) > 0 {
			s.PodIP = ips[0]
		}
	} else if terminal(old.Phase) {
		s.PodIP, s.PodIPs = old.PodIP, old.PodIPs
	}

	initDone := true
	var incomplete, unready []string
	pastInit := sb != nil && appsStarted(pod, st, sb)
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		cs := w.containerStatus(pod, c, st, true, false)
		switch {
		case isSidecar(c):
			// A sidecar counts as initialized once started; later
			// restarts do not take the Initialized condition back.
			if !pastInit && (cs.Started == nil || !*cs.Started) {
				initDone = false
				incomplete = append(incomplete, c.Name)
			}
			if !cs.Ready {
				unready = append(unready, c.Name)
			}
		case cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0:
			cs.Ready = true
		default:
			initDone = false
			incomplete = append(incomplete, c.Name)
		}
		s.InitContainerStatuses = append(s.InitContainerStatuses, cs)
	}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		cs := w.containerStatus(pod, c, st, false, !initDone)
		if !cs.Ready {
			unready = append(unready, c.Name)
		}
		s.ContainerStatuses = append(s.ContainerStatuses, cs)
	}
	s.Phase = podPhase(pod, s.InitContainerStatuses, s.ContainerStatuses, pastInit)
	if terminal(old.Phase) {
		s.Phase = old.Phase // a pod never leaves a terminal phase
	}

	cond := func(t corev1.PodConditionType, ok bool, reason, msg string) corev1.PodCondition {
		c := corev1.PodCondition{Type: t, Status: corev1.ConditionFalse, Reason: reason, Message: msg, LastTransitionTime: now}
		if ok {
			c.Status = corev1.ConditionTrue
			if reason != ReasonPodCompleted {
				c.Reason, c.Message = "", ""
			}
		}
		for _, o := range old.Conditions {
			if o.Type == t && o.Status == c.Status {
				c.LastTransitionTime = o.LastTransitionTime
			}
		}
		return c
	}
	initReason, initMsg := "", ""
	if !initDone {
		initReason, initMsg = ReasonContainersNotInitialized, fmt.Sprintf("containers with incomplete status: [%s]", strings.Join(incomplete, " "))
	} else if s.Phase == corev1.PodSucceeded {
		initReason = ReasonPodCompleted
	}
	readyReason, readyMsg := ReasonContainersNotReady, fmt.Sprintf("containers with unready status: [%s]", strings.Join(unready, " "))
	switch s.Phase {
	case corev1.PodSucceeded:
		readyReason, readyMsg = ReasonPodCompleted, ""
	case corev1.PodFailed:
		readyReason, readyMsg = ReasonPodFailed, ""
	}
	ready := len(unready) == 0 && !terminal(s.Phase)
	s.Conditions = []corev1.PodCondition{
		cond(corev1.PodReadyToStartContainers, sandboxReady, "", ""),
		cond(corev1.PodInitialized, initDone, initReason, initMsg),
		cond(corev1.PodReady, ready, readyReason, readyMsg),
		cond(corev1.ContainersReady, ready, readyReason, readyMsg),
		cond(corev1.PodScheduled, true, "", ""),
	}
	for i := range s.Conditions {
		if s.Conditions[i].Type == corev1.PodScheduled {
			s.Conditions[i].LastTransitionTime = pod.CreationTimestamp
			for _, o := range old.Conditions {
				if o.Type == corev1.PodScheduled && !o.LastTransitionTime.IsZero() {
					s.Conditions[i].LastTransitionTime = o.LastTransitionTime
				}
			}
		}
	}
	return s
}

func (w *worker) containerStatus(pod *corev1.Pod, c *corev1.Container, st *podState, init, initPending bool) corev1.ContainerStatus {
	cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image}
	cur, prev := st.latest(c.Name), st.previous(c.Name)
	if cur != nil {
		cs.RestartCount = int32(cur.restartCount)
		cs.ImageID = w.imageID(c.Image, cur.imageRef)
		cs.ContainerID = ContainerIDPrefix + cur.id
	}
	wt, hasWaiting := w.waiting[c.Name]
	switch {
	case cur != nil && cur.running():
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(cur.started)}
		cs.Ready = (!init || isSidecar(c)) && w.k.probes.ready(cur.id, c)
		if prev != nil && prev.exited() {
			cs.LastTerminationState.Terminated = terminated(prev)
		}
	case hasWaiting:
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: wt.reason, Message: wt.message}
		if cur != nil && cur.exited() {
			cs.LastTerminationState.Terminated = terminated(cur)
		}
	case cur != nil && cur.exited():
		cs.State.Terminated = terminated(cur)
		if prev != nil && prev.exited() {
			cs.LastTerminationState.Terminated = terminated(prev)
		}
	case cur != nil:
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: ReasonContainerCreating}
	default:
		reason := ReasonContainerCreating
		if init || initPending {
			reason = ReasonPodInitializing
		}
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: reason}
	}
	started := cs.State.Running != nil && ((init && !isSidecar(c)) || w.k.probes.started(cur.id, c))
	cs.Started = &started
	return cs
}

func terminated(c *containerState) *corev1.ContainerStateTerminated {
	reason := c.reason
	if reason == "" {
		reason = "Completed"
		if c.exitCode != 0 {
			reason = "Error"
		}
	}
	return &corev1.ContainerStateTerminated{
		ExitCode: c.exitCode, Reason: reason, Message: c.message,
		StartedAt: metav1.NewTime(c.started), FinishedAt: metav1.NewTime(c.finished),
		ContainerID: ContainerIDPrefix + c.id,
	}
}

// imageID is the repo digest of the image a container runs
// ("127.0.0.1:5000/app@sha256:..."), as containerd reports it, else the
// image ID.
func (w *worker) imageID(specImage, ref string) string {
	if ref == "" {
		return ""
	}
	if id, ok := w.imageIDs[ref]; ok {
		return id
	}
	id := ref
	if img, err := w.k.opts.Images.Status(ref); err == nil && len(img.RepoDigests) > 0 {
		id = img.RepoDigests[0]
		if r, err := reference.Parse(specImage); err == nil {
			for _, d := range img.RepoDigests {
				if strings.HasPrefix(d, r.Name()+"@") {
					id = d
				}
			}
		}
	}
	w.imageIDs[ref] = id
	return id
}

// podPhase is kubelet's getPhase.
// A sidecar keeps the pod pending only until it has started (or the app
// containers were created) and never fails it.
func podPhase(pod *corev1.Pod, initStatuses, statuses []corev1.ContainerStatus, pastInit bool) corev1.PodPhase {
	pendingInit, failedInit := 0, 0
	for i, s := range initStatuses {
		if i < len(pod.Spec.InitContainers) && isSidecar(&pod.Spec.InitContainers[i]) {
			if !pastInit && (s.Started == nil || !*s.Started) {
				pendingInit++
			}
			continue
		}
		switch {
		case s.State.Running != nil:
			pendingInit++
		case s.State.Terminated != nil:
			if s.State.Terminated.ExitCode != 0 {
				failedInit++
			}
		case s.State.Waiting != nil && s.LastTerminationState.Terminated != nil:
			if s.LastTerminationState.Terminated.ExitCode != 0 {
				failedInit++
			}
		default:
			pendingInit++
		}
	}
	if failedInit > 0 && pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
		return corev1.PodFailed
	}
	waiting, running, stopped, succeeded := 0, 0, 0, 0
	for _, s := range statuses {
		switch {
		case s.State.Running != nil:
			running++
		case s.State.Terminated != nil:
			stopped++
			if s.State.Terminated.ExitCode == 0 {
				succeeded++
			}
		case s.State.Waiting != nil:
			if s.LastTerminationState.Terminated != nil {
				stopped++
			} else {
				waiting++
			}
		}
	}
	switch {
	case pendingInit > 0 || failedInit > 0, waiting > 0:
		return corev1.PodPending
	case running > 0:
		return corev1.PodRunning
	case stopped > 0:
		if pod.Spec.RestartPolicy == corev1.RestartPolicyAlways {
			return corev1.PodRunning
		}
		if stopped == succeeded {
			return corev1.PodSucceeded
		}
		if pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
			return corev1.PodFailed
		}
		return corev1.PodRunning
	}
	return corev1.PodPending
}
