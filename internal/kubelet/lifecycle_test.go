package kubelet

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/peapod/peapod/internal/store"
)

func TestPodStartsAndReportsRunning(t *testing.T) {
	h := newHarness(t)
	h.create(simplePod("web", corev1.RestartPolicyAlways, "a", "b"))
	h.sync("web")
	p := h.pod("web")
	if p.Status.Phase != corev1.PodRunning {
		t.Fatalf("phase %s, want Running; status %+v", p.Status.Phase, p.Status)
	}
	if p.Status.PodIP != "10.88.0.5" || p.Status.HostIP != "192.0.2.10" || p.Status.StartTime == nil {
		t.Errorf("podIP %q hostIP %q startTime %v", p.Status.PodIP, p.Status.HostIP, p.Status.StartTime)
	}
	for _, name := range []string{"a", "b"} {
		s := h.status("web", name)
		if s.State.Running == nil || !s.Ready || s.RestartCount != 0 || !strings.HasPrefix(s.ContainerID, "peapod://") ||
			s.Image != "127.0.0.1:5000/busybox:1" || !strings.HasPrefix(s.ImageID, "127.0.0.1:5000/busybox@sha256:") {
			t.Errorf("container %s status %+v", name, s)
		}
	}
	want := map[corev1.PodConditionType]corev1.ConditionStatus{
		corev1.PodReadyToStartContainers: "True", corev1.PodInitialized: "True", corev1.PodReady: "True",
		corev1.ContainersReady: "True", corev1.PodScheduled: "True",
	}
	for _, c := range p.Status.Conditions {
		if want[c.Type] != c.Status {
			t.Errorf("condition %s = %s, want %s", c.Type, c.Status, want[c.Type])
		}
		delete(want, c.Type)
	}
	if len(want) > 0 {
		t.Errorf("missing conditions %v", want)
	}
	for _, e := range []string{
		`Normal Pulling Pulling image "127.0.0.1:5000/busybox:1"`,
		`Normal Pulled Successfully pulled image "127.0.0.1:5000/busybox:1" in `,
		"Normal Created Created container: a", "Normal Started Started container a",
		"Normal Created Created container: b", "Normal Started Started container b",
	} {
		if !h.hasEvent("web", e) {
			t.Errorf("no event %q in %v", e, h.events("web"))
		}
	}
	// A second sync changes nothing: no new containers, same status.
	rv := p.ResourceVersion
	h.sync("web")
	if got := h.rt.createdNames(); got != "a,b" {
		t.Errorf("containers created %s, want a,b", got)
	}
	if h.pod("web").ResourceVersion != rv {
		t.Error("an idle sync rewrote the status")
	}
}

func TestContainerConfigAndSandboxConfig(t *testing.T) {
	h := newHarness(t)
	p := simplePod("cfg", corev1.RestartPolicyAlways, "a")
	p.Spec.Hostname = "myhost"
	share := true
	p.Spec.ShareProcessNamespace = &share
	p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, HostPort: 8080}}
	h.create(p)
	h.sync("cfg")
	p = h.pod("cfg")
	var sb *fakeSandbox
	for _, s := range h.rt.sandboxes {
		sb = s
	}
	cfg := sb.cfg
	if cfg.Hostname != "myhost" || cfg.Metadata.Uid != string(p.UID) || cfg.Metadata.Attempt != 0 ||
		cfg.LogDirectory != h.k.LogDir(p) || !strings.HasSuffix(cfg.LogDirectory, "/pods/default_cfg_"+string(p.UID)) {
		t.Errorf("sandbox config %v", cfg)
	}
	if cfg.Labels[LabelPodUID] != string(p.UID) || cfg.Labels[LabelPodName] != "cfg" || cfg.Labels[LabelPodNamespace] != "default" {
		t.Errorf("sandbox labels %v", cfg.Labels)
	}
	if len(cfg.PortMappings) != 1 || cfg.PortMappings[0].HostPort != 8080 || cfg.PortMappings[0].ContainerPort != 80 {
		t.Errorf("port mappings %v", cfg.PortMappings)
	}
	if ns := cfg.Linux.SecurityContext.NamespaceOptions; ns.Pid.String() != "POD" || ns.Network.String() != "POD" {
		t.Errorf("namespace options %v", ns)
	}
	var c *fakeContainer
	for _, x := range h.rt.containers {
		c = x
	}
	if c.cfg.LogPath != "a/0.log" || c.cfg.Metadata.Attempt != 0 || c.cfg.Labels[LabelContainerName] != "a" ||
		c.cfg.Annotations[AnnotationRestartCount] != "0" || c.cfg.Annotations[AnnotationContainerHash] == "" ||
		c.cfg.Image.UserSpecifiedImage != "127.0.0.1:5000/busybox:1" || !strings.HasPrefix(c.cfg.Image.Image, "sha256:") {
		t.Errorf("container config %v", c.cfg)
	}
}

// Always: an exited container is restarted at once the first time, then
// waits in CrashLoopBackOff 10s, 20s, ... with kubelet's message.
func TestCrashLoopBackOff(t *testing.T) {
	h := newHarness(t)
	h.create(simplePod("crash", corev1.RestartPolicyAlways, "c"))
	h.sync("crash")
	uid := h.pod("crash").UID
	h.clk.Step(time.Second)
	h.rt.exit("c", 1)
	h.sync("crash")
	if s := h.status("crash", "c"); s.RestartCount != 1 || s.State.Running == nil || s.LastTerminationState.Terminated == nil ||
		s.LastTerminationState.Terminated.ExitCode != 1 || s.LastTerminationState.Terminated.Reason != "Error" {
		t.Fatalf("after the first exit: %+v", s)
	}
	for _, wait := range []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second} {
		h.clk.Step(time.Second)
		h.rt.exit("c", 1)
		h.sync("crash")
		s := h.status("crash", "c")
		want := "back-off " + wait.String() + " restarting failed container=c pod=crash_default(" + string(uid) + ")"
		if s.State.Waiting == nil || s.State.Waiting.Reason != "CrashLoopBackOff" || s.State.Waiting.Message != want {
			t.Fatalf("after an exit with a %v back-off: %+v, want CrashLoopBackOff %q", wait, s.State, want)
		}
		if p := h.pod("crash"); p.Status.Phase != corev1.PodRunning {
			t.Errorf("phase %s during CrashLoopBackOff, want Running (kubelet)", p.Status.Phase)
		}
		n := s.RestartCount
		h.clk.Step(wait - 10*time.Millisecond)
		h.sync("crash")
		if h.status("crash", "c").RestartCount != n {
			t.Fatalf("restarted before the %v back-off ended", wait)
		}
		h.clk.Step(20 * time.Millisecond)
		h.sync("crash")
		if s := h.status("crash", "c"); s.RestartCount != n+1 || s.State.Running == nil {
			t.Fatalf("not restarted after the %v back-off: %+v", wait, s)
		}
	}
	if !h.hasEvent("crash", "Warning BackOff Back-off restarting failed container c in pod crash_default(") {
		t.Errorf("no BackOff event in %v", h.events("crash"))
	}
	// Only the current and the previous container are kept.
	if _, n := h.rt.counts(); n != 2 {
		t.Errorf("%d containers kept, want 2 (current and previous)", n)
	}
}

func TestRestartPolicies(t *testing.T) {
	tests := []struct {
		policy    corev1.RestartPolicy
		exit      int32
		phase     corev1.PodPhase
		restarted bool
	}{
		{corev1.RestartPolicyOnFailure, 0, corev1.PodSucceeded, false},
		{corev1.RestartPolicyOnFailure, 2, corev1.PodRunning, true},
		{corev1.RestartPolicyNever, 3, corev1.PodFailed, false},
		{corev1.RestartPolicyNever, 0, corev1.PodSucceeded, false},
		{corev1.RestartPolicyAlways, 0, corev1.PodRunning, true},
	}
	for _, tt := range tests {
		t.Run(string(tt.policy)+"/"+string(rune('0'+tt.exit)), func(t *testing.T) {
			h := newHarness(t)
			h.create(simplePod("p", tt.policy, "c"))
			h.sync("p")
			h.clk.Step(time.Second)
			h.rt.exit("c", tt.exit)
			h.sync("p")
			p := h.pod("p")
			if p.Status.Phase != tt.phase {
				t.Errorf("phase %s, want %s", p.Status.Phase, tt.phase)
			}
			s := h.status("p", "c")
			if got := s.RestartCount == 1; got != tt.restarted {
				t.Errorf("restartCount %d, restarted want %v", s.RestartCount, tt.restarted)
			}
			if !tt.restarted {
				if s.State.Terminated == nil || s.State.Terminated.ExitCode != tt.exit {
					t.Errorf("state %+v, want terminated with %d", s.State, tt.exit)
				}
				wantReason := "Completed"
				if tt.exit != 0 {
					wantReason = "Error"
				}
				if s.State.Terminated.Reason != wantReason {
					t.Errorf("reason %s, want %s", s.State.Terminated.Reason, wantReason)
				}
				// Terminal pods stay put: more syncs start nothing.
				h.clk.Step(time.Minute)
				h.sync("p")
				if got := h.rt.createdNames(); got != "c" {
					t.Errorf("containers created %s after the pod finished", got)
				}
			}
		})
	}
}

func TestInitContainersRunInOrder(t *testing.T) {
	h := newHarness(t)
	p := simplePod("init", corev1.RestartPolicyAlways, "app")
	p.Spec.InitContainers = []corev1.Container{
		{Name: "first", Image: "127.0.0.1:5000/busybox:1"},
		{Name: "second", Image: "127.0.0.1:5000/busybox:1"},
	}
	h.create(p)
	h.sync("init")
	if got := h.rt.createdNames(); got != "first" {
		t.Fatalf("created %s, want only the first init container", got)
	}
	pp := h.pod("init")
	if pp.Status.Phase != corev1.PodPending || h.status("init", "app").State.Waiting.Reason != "PodInitializing" {
		t.Fatalf("phase %s, app %+v", pp.Status.Phase, h.status("init", "app").State)
	}
	for _, c := range pp.Status.Conditions {
		if c.Type == corev1.PodInitialized && (c.Status != "False" || c.Reason != "ContainersNotInitialized" || c.Message != "containers with incomplete status: [first second]") {
			t.Errorf("Initialized condition %+v", c)
		}
	}
	h.sync("init")
	if got := h.rt.createdNames(); got != "first" {
		t.Fatalf("created %s while the first init container runs", got)
	}
	h.rt.exit("first", 0)
	h.sync("init")
	if got := h.rt.createdNames(); got != "first,second" {
		t.Fatalf("created %s, want first,second", got)
	}
	h.rt.exit("second", 0)
	h.sync("init")
	if got := h.rt.createdNames(); got != "first,second,app" {
		t.Fatalf("created %s, want first,second,app", got)
	}
	if s := h.status("init", "first"); s.State.Terminated == nil || s.State.Terminated.Reason != "Completed" || !s.Ready {
		t.Errorf("init status %+v", s)
	}
	if h.pod("init").Status.Phase != corev1.PodRunning {
		t.Errorf("phase %s", h.pod("init").Status.Phase)
	}
}

func TestFailingInitContainerBlocks(t *testing.T) {
	for _, policy := range []corev1.RestartPolicy{corev1.RestartPolicyNever, corev1.RestartPolicyAlways} {
		t.Run(string(policy), func(t *testing.T) {
			h := newHarness(t)
			p := simplePod("init", policy, "app")
			p.Spec.InitContainers = []corev1.Container{{Name: "fail", Image: "127.0.0.1:5000/busybox:1"}}
			h.create(p)
			h.sync("init")
			h.clk.Step(time.Second)
			h.rt.exit("fail", 1)
			h.sync("init")
			h.clk.Step(time.Minute)
			h.sync("init")
			if strings.Contains(h.rt.createdNames(), "app") {
				t.Fatal("the app container started after a failed init container")
			}
			phase := h.pod("init").Status.Phase
			if policy == corev1.RestartPolicyNever && phase != corev1.PodFailed {
				t.Errorf("phase %s, want Failed", phase)
			}
			if policy == corev1.RestartPolicyAlways && (phase != corev1.PodPending || h.status("init", "fail").RestartCount == 0) {
				t.Errorf("phase %s restarts %d, want Pending and the init container restarted", phase, h.status("init", "fail").RestartCount)
			}
		})
	}
}

func TestGracefulDeletion(t *testing.T) {
	h := newHarness(t)
	p := simplePod("del", corev1.RestartPolicyAlways, "a")
	grace := int64(45)
	p.Spec.TerminationGracePeriodSeconds = &grace
	h.create(p)
	h.sync("del")
	if _, gone, err := h.store.Delete(h.ctx, "pods", "default", "del", store.DeleteOptions{}); err != nil || gone {
		t.Fatalf("delete: gone=%v err=%v, want the pod marked", gone, err)
	}
	w := h.workers["del"]
	w.update(h.pod("del"), false)
	if done := w.sync(h.ctx); !done {
		t.Fatal("worker not finished after termination")
	}
	if len(h.rt.stops) != 1 || h.rt.stops[0] != 45 {
		t.Errorf("StopContainer timeouts %v, want [45]", h.rt.stops)
	}
	if sbs, cs := h.rt.counts(); sbs != 0 || cs != 0 {
		t.Errorf("%d sandboxes and %d containers left", sbs, cs)
	}
	if _, err := h.store.Get(h.ctx, "pods", "default", "del"); err == nil {
		t.Error("pod still in the store")
	}
	if !h.hasEvent("del", "Normal Killing Stopping container a") {
		t.Errorf("no Killing event: %v", h.events("del"))
	}
}

// A new daemon adopts running pods without touching them; after a reboot
// (sandbox dead) it creates a new sandbox and starts the containers again.
func TestAdoptionAndReboot(t *testing.T) {
	h := newHarness(t)
	h.create(simplePod("keep", corev1.RestartPolicyAlways, "a"))
	h.sync("keep")
	before := h.status("keep", "a")

	h.k = h.newKubelet() // the daemon restarted
	h.sync("keep")
	if got := h.rt.createdNames(); got != "a" {
		t.Fatalf("containers created %s after a daemon restart, want none new", got)
	}
	if after := h.status("keep", "a"); after.ContainerID != before.ContainerID || after.RestartCount != 0 {
		t.Fatalf("adopted container %s/%d, want %s/0", after.ContainerID, after.RestartCount, before.ContainerID)
	}

	h.clk.Step(time.Minute)
	h.rt.reboot()
	h.k = h.newKubelet()
	h.sync("keep")
	s := h.status("keep", "a")
	if s.State.Running == nil || s.RestartCount != 1 || s.ContainerID == before.ContainerID {
		t.Fatalf("after a reboot: %+v, want running again with restartCount 1", s)
	}
	var attempts []uint32
	for _, sb := range h.rt.sandboxes {
		attempts = append(attempts, sb.cfg.Metadata.Attempt)
	}
	if !h.hasEvent("keep", "Normal SandboxChanged Pod sandbox changed, it will be killed and re-created.") {
		t.Errorf("no SandboxChanged event: %v", h.events("keep"))
	}
	h.sync("keep")
	if n, _ := h.rt.counts(); n > 2 {
		t.Errorf("%d sandboxes (attempts %v)", n, attempts)
	}
}
