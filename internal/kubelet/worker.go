package kubelet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/peapod/peapod/internal/image/policy"
	"github.com/peapod/peapod/internal/kubelet/images"
	"github.com/peapod/peapod/internal/objects"
	"github.com/peapod/peapod/internal/store"
)

// Waiting reasons and event reasons of the container lifecycle (kubelet's
// pkg/kubelet/container and pkg/kubelet/events).
const (
	ReasonContainerCreating          = "ContainerCreating"
	ReasonPodInitializing            = "PodInitializing"
	ReasonCrashLoopBackOff           = "CrashLoopBackOff"
	ReasonCreateContainerConfigError = "CreateContainerConfigError"
	ReasonCreateContainerError       = "CreateContainerError"
	ReasonRunContainerError          = "RunContainerError"

	EventCreated                = "Created"
	EventStarted                = "Started"
	EventKilling                = "Killing"
	EventFailed                 = "Failed"
	EventBackOff                = "BackOff"
	EventSandboxChanged         = "SandboxChanged"
	EventFailedCreatePodSandBox = "FailedCreatePodSandBox"
	EventFailedMount            = "FailedMount"
	EventInvalidEnvVarNames     = "InvalidEnvironmentVariableNames"
)

// minKillGrace is kubelet's minimumGracePeriodInSeconds: a pod removed
// from the store without a grace period still gets this long.
const minKillGrace = 2

type waiting struct{ reason, message string }

// worker owns one pod: only its goroutine touches the runtime objects of
// that pod.
type worker struct {
	k    *Kubelet
	uid  types.UID
	wake chan struct{}

	mu      sync.Mutex
	pod     *corev1.Pod // the latest state from the store
	deleted bool        // the pod is gone from the store

	// Owned by the worker goroutine.
	waiting       map[string]waiting   // container name -> why it is not running
	backOffEvent  map[string]time.Time // container -> finish time the BackOff event was for
	startFailedAt map[string]time.Time
	imageIDs      map[string]string // image ID -> repo digest, for status.imageID
	next          time.Duration     // when to look again, at most Resync
	lastState     *podState         // the runtime state the status is made of
}

func newWorker(k *Kubelet, pod *corev1.Pod) *worker {
	return &worker{
		k: k, uid: pod.UID, wake: make(chan struct{}, 1), pod: pod,
		waiting: map[string]waiting{}, backOffEvent: map[string]time.Time{},
		startFailedAt: map[string]time.Time{}, imageIDs: map[string]string{},
	}
}

// update gives the worker the pod's latest state. Only changes that ask
// for work wake it: a new spec (generation), a deletion, a new pod; the
// worker's own status writes do not, or every status write would trigger
// another sync at once.
func (w *worker) update(pod *corev1.Pod, deleted bool) {
	w.mu.Lock()
	wake := deleted || w.pod == nil
	if pod != nil && pod.UID == w.uid {
		old := w.pod
		wake = wake || old.Generation != pod.Generation || (old.DeletionTimestamp == nil) != (pod.DeletionTimestamp == nil) ||
			old.ResourceVersion == pod.ResourceVersion
		w.pod = pod
	}
	if deleted {
		w.deleted = true
	}
	w.mu.Unlock()
	if !wake {
		return
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *worker) run(ctx context.Context) {
	for {
		done := w.sync(ctx)
		if done || ctx.Err() != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		case <-w.k.clock.After(w.next):
		}
	}
}

func (w *worker) event(pod *corev1.Pod, fieldPath, typ, reason, msg string) {
	w.k.events.Event(pod, fieldPath, typ, reason, msg)
}

func fieldPath(c *corev1.Container, init bool) string {
	if init {
		return "spec.initContainers{" + c.Name + "}"
	}
	return "spec.containers{" + c.Name + "}"
}

// sync takes the pod one step towards its spec and reports whether the
// worker is finished (the pod is gone and cleaned up).
func (w *worker) sync(ctx context.Context) bool {
	k := w.k
	w.next = k.opts.Resync
	w.mu.Lock()
	pod := w.pod.DeepCopy()
	deleted := w.deleted
	w.mu.Unlock()
	log := k.log.With("pod", pod.Namespace+"/"+pod.Name)

	st, err := k.runtimeState(ctx, w.uid)
	if err != nil {
		log.Warn("read runtime state", "err", err)
		return false
	}
	if deleted || pod.DeletionTimestamp != nil {
		grace := int64(minKillGrace)
		if pod.DeletionGracePeriodSeconds != nil {
			grace = max(*pod.DeletionGracePeriodSeconds, minKillGrace)
		}
		if err := w.terminate(ctx, pod, st, grace); err != nil {
			log.Warn("terminate pod", "err", err)
			return false
		}
		if !deleted {
			zero := int64(0)
			uid := w.uid
			_, _, err := k.store.Delete(ctx, "pods", pod.Namespace, pod.Name, store.DeleteOptions{GracePeriodSeconds: &zero, Preconditions: metav1Preconditions(uid)})
			if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
				log.Warn("remove terminated pod", "err", err)
				return false
			}
		}
		w.cleanup(pod)
		log.Info("pod removed")
		return true
	}
	if pod.Spec.NodeName == "" {
		if pod, err = w.bind(ctx, pod); err != nil {
			log.Warn("bind pod", "err", err)
			return false
		}
	}
	if pod.Spec.NodeName != k.node {
		w.notHere(ctx, pod)
		w.next = DefaultStatusResync
		return false
	}
	if terminal(pod.Status.Phase) {
		// A finished pod keeps its status; nothing runs any more.
		k.probes.removePod(w.uid)
		if sb := st.current(); sb != nil && sb.ready {
			w.stopSandbox(ctx, pod, st, sb, 0)
		}
		w.next = DefaultStatusResync
		return false
	}
	w.syncPod(ctx, pod, st)
	return false
}

func metav1Preconditions(uid types.UID) (p metav1.Preconditions) {
	p.UID = &uid
	return p
}

func terminal(p corev1.PodPhase) bool { return p == corev1.PodSucceeded || p == corev1.PodFailed }

// terminate stops every container with the grace period (Killing events):
// the app containers (and regular init containers) together, then the
// sidecars one by one in reverse order, as kubelet does; then it stops and
// removes the sandboxes.
func (w *worker) terminate(ctx context.Context, pod *corev1.Pod, st *podState, grace int64) error {
	w.stopContainers(ctx, pod, st, grace, func(name string) bool {
		spec, init := w.specOf(pod, name)
		return !init || spec == nil || !isSidecar(spec)
	})
	w.stopSidecars(ctx, pod, st)
	var errs []error
	for _, sb := range st.sandboxes {
		if _, err := w.k.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.id}); err != nil {
			errs = append(errs, err)
			continue
		}
		if _, err := w.k.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.id}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// stopSidecars stops the running sidecars in reverse order with the pod's
// grace period and reports whether it stopped any.
func (w *worker) stopSidecars(ctx context.Context, pod *corev1.Pod, st *podState) bool {
	grace := objects.DefaultTerminationGracePeriodSeconds
	if pod.DeletionGracePeriodSeconds != nil {
		grace = max(*pod.DeletionGracePeriodSeconds, minKillGrace)
	} else if pod.Spec.TerminationGracePeriodSeconds != nil {
		grace = *pod.Spec.TerminationGracePeriodSeconds
	}
	stopped := false
	for i := len(pod.Spec.InitContainers) - 1; i >= 0; i-- {
		c := &pod.Spec.InitContainers[i]
		if !isSidecar(c) {
			continue
		}
		if w.stopContainers(ctx, pod, st, grace, func(name string) bool { return name == c.Name }) {
			stopped = true
		}
	}
	return stopped
}

// stopContainers stops, in parallel, the running containers whose name
// matches, with Killing events, and reports whether there were any.
func (w *worker) stopContainers(ctx context.Context, pod *corev1.Pod, st *podState, grace int64, match func(string) bool) bool {
	var wg sync.WaitGroup
	anyStopped := false
	for _, c := range st.containers {
		if !c.running() || !match(c.name) {
			continue
		}
		anyStopped = true
		spec, init := w.specOf(pod, c.name)
		if spec != nil {
			w.event(pod, fieldPath(spec, init), corev1.EventTypeNormal, EventKilling, "Stopping container "+c.name)
		}
		wg.Add(1)
		go func(id string) {
			defer wg.Done()
			if _, err := w.k.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: grace}); err != nil {
				w.k.log.Warn("stop container", "container", id, "err", err)
			}
		}(c.id)
	}
	wg.Wait()
	return anyStopped
}

// cleanup removes what the pod left on the node besides runtime objects.
func (w *worker) cleanup(pod *corev1.Pod) {
	k := w.k
	w.removeCgroup(pod)
	if err := k.volumes.TearDown(w.uid); err != nil {
		k.log.Warn("tear down volumes", "pod", pod.Namespace+"/"+pod.Name, "err", err)
	}
	if pod.Name != "" {
		_ = os.RemoveAll(k.LogDir(pod))
	}
	k.probes.removePod(w.uid)
	k.images.ForgetPod(w.uid)
	k.crash.DeletePrefix(string(w.uid) + "_")
	k.events.forget(w.uid)
}

func (w *worker) specOf(pod *corev1.Pod, name string) (*corev1.Container, bool) {
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i], true
		}
	}
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i], false
		}
	}
	return nil, false
}

func (w *worker) stopSandbox(ctx context.Context, pod *corev1.Pod, st *podState, sb *sandboxState, grace int64) {
	for _, c := range st.containers {
		if c.sandboxID == sb.id && c.running() {
			_, _ = w.k.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: c.id, Timeout: grace})
		}
	}
	if _, err := w.k.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.id}); err != nil {
		w.k.log.Warn("stop sandbox", "pod", pod.Namespace+"/"+pod.Name, "err", err)
	}
}

// shouldRestart applies restartPolicy to an exited container.
func shouldRestart(pod *corev1.Pod, c *containerState) bool {
	switch pod.Spec.RestartPolicy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return c.exitCode != 0
	}
	return true
}

func (w *worker) syncPod(ctx context.Context, pod *corev1.Pod, st *podState) {
	k := w.k
	log := k.log.With("pod", pod.Namespace+"/"+pod.Name)
	defer func() { w.writeStatus(ctx, pod) }()

	vols, err := k.volumes.Setup(ctx, pod)
	if err != nil {
		w.event(pod, "", corev1.EventTypeWarning, EventFailedMount, err.Error())
		w.lastState = st
		return
	}

	sb := st.current()
	if sb == nil || !sb.ready {
		if sb != nil && pod.Spec.RestartPolicy == corev1.RestartPolicyNever && len(st.containers) > 0 {
			// kubelet does not bring back a pod that must never restart.
			w.lastState = st
			return
		}
		attempt := uint32(0)
		if sb != nil {
			w.event(pod, "", corev1.EventTypeNormal, EventSandboxChanged, "Pod sandbox changed, it will be killed and re-created.")
			for _, old := range st.sandboxes {
				if old.ready {
					w.stopSandbox(ctx, pod, st, old, 0)
				}
			}
			attempt = sb.attempt + 1
		}
		if err := os.MkdirAll(k.LogDir(pod), 0o755); err != nil {
			log.Warn("pod log directory", "err", err)
		}
		if err := w.ensureCgroup(pod); err != nil {
			w.event(pod, "", corev1.EventTypeWarning, EventFailedCreatePodSandBox, "Failed to create pod sandbox: "+err.Error())
			w.lastState = st
			w.next = 5 * time.Second
			return
		}
		_, err := k.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: k.sandboxConfig(pod, attempt)})
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			w.event(pod, "", corev1.EventTypeWarning, EventFailedCreatePodSandBox, "Failed to create pod sandbox: "+err.Error())
			w.lastState = st
			w.next = 5 * time.Second
			return
		}
		if st, err = k.runtimeState(ctx, w.uid); err != nil {
			log.Warn("read runtime state", "err", err)
			return
		}
		sb = st.current()
		if sb == nil {
			return
		}
	}
	w.fillIPs(pod, sb)

	initDone := true
	done := appsDone(pod, st)
	pastInit := appsStarted(pod, st, sb)
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		cs := st.in(sb.id, c.Name)
		if isSidecar(c) {
			if done {
				continue // stopped below, never restarted
			}
			if w.syncSidecar(ctx, pod, c, cs, sb, st, vols) || pastInit {
				continue
			}
			initDone = false
			break
		}
		if cs != nil && cs.exited() && cs.exitCode == 0 {
			continue
		}
		if pastInit && cs == nil {
			continue // removed by gc after the pod initialized
		}
		initDone = false
		switch {
		case cs == nil:
			w.start(ctx, pod, c, true, sb, st, vols)
		case cs.running():
			delete(w.waiting, c.Name)
		case cs.exited():
			if pod.Spec.RestartPolicy != corev1.RestartPolicyNever {
				w.restart(ctx, pod, c, true, cs, sb, st, vols)
			}
		default:
			w.startCreated(ctx, pod, c, true, cs)
		}
		break
	}
	if initDone {
		for i := range pod.Spec.Containers {
			c := &pod.Spec.Containers[i]
			cs := st.in(sb.id, c.Name)
			switch {
			case cs == nil:
				if prev := st.latest(c.Name); prev != nil && prev.exited() && !shouldRestart(pod, prev) {
					continue // finished in an earlier sandbox
				}
				w.start(ctx, pod, c, false, sb, st, vols)
			case cs.running():
				delete(w.waiting, c.Name)
				if t, failed := k.probes.failed(cs.id, c); failed {
					w.killUnhealthy(ctx, pod, c, cs, t)
				} else if cs.hash != "" && cs.hash != containerHash(c) {
					w.event(pod, fieldPath(c, false), corev1.EventTypeNormal, EventKilling, fmt.Sprintf("Container %s definition changed, will be restarted", c.Name))
					grace := objects.DefaultTerminationGracePeriodSeconds
					if pod.Spec.TerminationGracePeriodSeconds != nil {
						grace = *pod.Spec.TerminationGracePeriodSeconds
					}
					if _, err := k.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: cs.id, Timeout: grace}); err != nil {
						log.Warn("stop container", "container", c.Name, "err", err)
					}
					w.next = 0
				}
			case cs.exited():
				if shouldRestart(pod, cs) {
					w.restart(ctx, pod, c, false, cs, sb, st, vols)
				} else {
					delete(w.waiting, c.Name)
				}
			default:
				w.startCreated(ctx, pod, c, false, cs)
			}
		}
	}
	if st2, err := k.runtimeState(ctx, w.uid); err == nil {
		st = st2
	}
	if appsDone(pod, st) && w.stopSidecars(ctx, pod, st) {
		if st2, err := k.runtimeState(ctx, w.uid); err == nil {
			st = st2
		}
	}
	w.gc(ctx, pod, st)
	k.probes.sync(ctx, pod, st, st.current())
	w.lastState = st
}

// killUnhealthy stops a container whose liveness or startup probe failed,
// with kubelet's Killing event; restartPolicy then decides whether it
// comes back.
func (w *worker) killUnhealthy(ctx context.Context, pod *corev1.Pod, c *corev1.Container, cs *containerState, t probeType) {
	msg := fmt.Sprintf("Container %s failed %s probe", c.Name, strings.ToLower(t.String()))
	_, init := w.specOf(pod, c.Name)
	if pod.Spec.RestartPolicy != corev1.RestartPolicyNever || init {
		msg += ", will be restarted"
	}
	w.event(pod, fieldPath(c, init), corev1.EventTypeNormal, EventKilling, msg)
	grace := objects.DefaultTerminationGracePeriodSeconds
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		grace = *pod.Spec.TerminationGracePeriodSeconds
	}
	if spec := t.spec(c); spec != nil && spec.TerminationGracePeriodSeconds != nil {
		grace = *spec.TerminationGracePeriodSeconds
	}
	if _, err := w.k.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: cs.id, Timeout: grace}); err != nil {
		w.k.log.Warn("stop unhealthy container", "pod", podString(pod), "container", c.Name, "err", err)
	}
	w.next = 0
}

// fillIPs puts the sandbox's addresses into the pod copy used for env and
// downward API values.
func (w *worker) fillIPs(pod *corev1.Pod, sb *sandboxState) {
	ips := sb.ips
	if pod.Spec.HostNetwork {
		ips = []string{w.k.hostIP}
	}
	pod.Status.HostIP = w.k.hostIP
	pod.Status.HostIPs = []corev1.HostIP{{IP: w.k.hostIP}}
	pod.Status.PodIPs = nil
	for _, ip := range ips {
		pod.Status.PodIPs = append(pod.Status.PodIPs, corev1.PodIP{IP: ip})
	}
	if len(ips) > 0 {
		pod.Status.PodIP = ips[0]
	}
}

// restart starts an exited container again unless it is in its crash-loop
// back-off.
func (w *worker) restart(ctx context.Context, pod *corev1.Pod, c *corev1.Container, init bool, cs *containerState, sb *sandboxState, st *podState, vols map[string]string) {
	k := w.k
	key := string(w.uid) + "_" + c.Name
	if k.crash.InBackOffSince(key, cs.finished) {
		w.waiting[c.Name] = waiting{ReasonCrashLoopBackOff,
			fmt.Sprintf("back-off %s restarting failed container=%s pod=%s", k.crash.Get(key), c.Name, podString(pod))}
		if !w.backOffEvent[c.Name].Equal(cs.finished) {
			w.backOffEvent[c.Name] = cs.finished
			w.event(pod, fieldPath(c, init), corev1.EventTypeWarning, EventBackOff,
				fmt.Sprintf("Back-off restarting failed container %s in pod %s", c.Name, podString(pod)))
		}
		if r := k.crash.Remaining(key, cs.finished); r < w.next {
			w.next = r + 10*time.Millisecond
		}
		return
	}
	k.crash.Next(key, cs.finished)
	w.start(ctx, pod, c, init, sb, st, vols)
}

// startCreated starts a container that was created but not started (the
// daemon stopped in between).
func (w *worker) startCreated(ctx context.Context, pod *corev1.Pod, c *corev1.Container, init bool, cs *containerState) {
	if _, err := w.k.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: cs.id}); err != nil {
		w.k.log.Warn("start created container", "container", c.Name, "err", err)
		_, _ = w.k.rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: cs.id})
		return
	}
	w.event(pod, fieldPath(c, init), corev1.EventTypeNormal, EventStarted, "Started container "+c.Name)
}

// start pulls the image, creates and starts one container, recording
// kubelet's events; on failure the container's waiting reason says why.
func (w *worker) start(ctx context.Context, pod *corev1.Pod, c *corev1.Container, init bool, sb *sandboxState, st *podState, vols map[string]string) {
	k := w.k
	fp := fieldPath(c, init)
	key := string(w.uid) + "_" + c.Name
	if t, ok := w.startFailedAt[c.Name]; ok && k.crash.InBackOffSince(key, t) {
		w.waiting[c.Name] = waiting{ReasonCrashLoopBackOff,
			fmt.Sprintf("back-off %s restarting failed container=%s pod=%s", k.crash.Get(key), c.Name, podString(pod))}
		if r := k.crash.Remaining(key, t); r < w.next {
			w.next = r + 10*time.Millisecond
		}
		return
	}
	fail := func(reason, msg string) {
		w.waiting[c.Name] = waiting{reason, msg}
		w.event(pod, fp, corev1.EventTypeWarning, EventFailed, "Error: "+msg)
	}
	restartCount := 0
	if prev := st.latest(c.Name); prev != nil {
		restartCount = prev.restartCount + 1
	}
	secrets := w.pullSecrets(ctx, pod)
	img, err := k.images.EnsureImage(ctx, images.Pull{Pod: pod, Container: c, FieldPath: fp, Secrets: secrets})
	if err != nil {
		var ie *images.Error
		if errors.As(err, &ie) {
			w.waiting[c.Name] = waiting{ie.Reason, ie.Message}
			if ie.Reason != images.ReasonImagePullBackOff {
				w.event(pod, fp, corev1.EventTypeWarning, EventFailed, "Error: "+ie.Reason)
			} else {
				w.event(pod, fp, corev1.EventTypeWarning, EventFailed, "Error: "+policy.ReasonImagePullBackOff)
			}
		}
		return
	}
	cfg, skipped, err := k.containerConfig(ctx, pod, c, img, restartCount, vols)
	if err != nil {
		fail(ReasonCreateContainerConfigError, err.Error())
		return
	}
	for _, s := range skipped {
		w.event(pod, fp, corev1.EventTypeWarning, EventInvalidEnvVarNames, s)
	}
	if err := os.MkdirAll(filepath.Join(k.LogDir(pod), c.Name), 0o755); err != nil {
		fail(ReasonCreateContainerError, err.Error())
		return
	}
	resp, err := k.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId: sb.id, Config: cfg, SandboxConfig: k.sandboxConfig(pod, sb.attempt),
	})
	if err != nil {
		fail(ReasonCreateContainerError, err.Error())
		return
	}
	w.event(pod, fp, corev1.EventTypeNormal, EventCreated, "Created container: "+c.Name)
	if _, err := k.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: resp.GetContainerId()}); err != nil {
		fail(ReasonRunContainerError, err.Error())
		now := k.clock.Now()
		k.crash.Next(key, now)
		w.startFailedAt[c.Name] = now
		_, _ = k.rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: resp.GetContainerId()})
		return
	}
	w.event(pod, fp, corev1.EventTypeNormal, EventStarted, "Started container "+c.Name)
	delete(w.waiting, c.Name)
	delete(w.startFailedAt, c.Name)
}

// pullSecrets reads the pod's imagePullSecrets from its namespace. Missing
// ones are a warning event, and the pull goes ahead without them, as with
// kubelet; the event also names namespaces where a Secret of that name
// does exist, since imagePullSecrets in the wrong namespace are a classic.
func (w *worker) pullSecrets(ctx context.Context, pod *corev1.Pod) []corev1.Secret {
	var (
		out     []corev1.Secret
		missing []string
		hints   []string
	)
	for _, ref := range pod.Spec.ImagePullSecrets {
		s, err := w.k.objects.Secret(ctx, pod.Namespace, ref.Name)
		if err != nil {
			missing = append(missing, fmt.Sprintf("%q", ref.Name))
			others, _, lerr := w.k.store.List(ctx, "secrets", "", store.ListOptions{Fields: fields.OneTermEqualSelector("metadata.name", ref.Name)})
			if lerr == nil {
				var nss []string
				for _, o := range others {
					nss = append(nss, o.GetNamespace())
				}
				if len(nss) > 0 {
					hints = append(hints, fmt.Sprintf("a Secret %q exists in namespace %s, but imagePullSecrets must be in the pod's namespace %q", ref.Name, strings.Join(quoteAll(nss), ", "), pod.Namespace))
				}
			}
			continue
		}
		out = append(out, *s)
	}
	if len(missing) > 0 {
		msg := fmt.Sprintf(policy.MsgMissingPullSecrets, strings.Join(missing, ", "))
		if len(hints) > 0 {
			msg += " Hint: " + strings.Join(hints, "; ") + "."
		}
		w.event(pod, "", corev1.EventTypeWarning, policy.EventFailedToRetrieveImagePullSecret, msg)
	}
	return out
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// gc removes dead containers beyond the newest two of each name (the
// current one and the previous one, for lastState and `logs --previous`),
// with their log files, and old sandboxes that hold nothing any more.
func (w *worker) gc(ctx context.Context, pod *corev1.Pod, st *podState) {
	k := w.k
	count := map[string]int{}
	keep := map[string]bool{}
	for _, c := range st.containers {
		count[c.name]++
		if count[c.name] <= 2 || c.running() {
			keep[c.id] = true
			continue
		}
		if _, err := k.rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: c.id}); err != nil {
			k.log.Warn("remove dead container", "container", c.id, "err", err)
			keep[c.id] = true
			continue
		}
		removeLogs(c.logPath)
	}
	cur := st.current()
	for _, sb := range st.sandboxes {
		if sb == cur {
			continue
		}
		used := false
		for _, c := range st.containers {
			if c.sandboxID == sb.id && keep[c.id] {
				used = true
			}
		}
		if used {
			continue
		}
		if _, err := k.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.id}); err == nil {
			_, _ = k.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.id})
		}
	}
}
