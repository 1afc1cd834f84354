package kubelet

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/peapod/peapod/internal/store"
)

// sidecarPod has regular init container "setup", sidecars "log" and
// "proxy" (in that order, around "setup") and app containers.
func sidecarPod(name string, policy corev1.RestartPolicy, apps ...string) *corev1.Pod {
	p := simplePod(name, policy, apps...)
	always := corev1.ContainerRestartPolicyAlways
	for _, n := range []string{"log", "setup", "proxy"} {
		c := corev1.Container{Name: n, Image: "127.0.0.1:5000/busybox:1", Command: []string{"sh"}}
		if n != "setup" {
			c.RestartPolicy = &always
		}
		p.Spec.InitContainers = append(p.Spec.InitContainers, c)
	}
	return p
}

func condStatus(p *corev1.Pod, t corev1.PodConditionType) corev1.ConditionStatus {
	for _, c := range p.Status.Conditions {
		if c.Type == t {
			return c.Status
		}
	}
	return ""
}

// Sidecars start in order with the init containers, the next one starting
// once the sidecar runs, and keep running beside the app containers.
func TestSidecarStartsInOrderAndKeepsRunning(t *testing.T) {
	h := newHarness(t)
	h.create(sidecarPod("sc", corev1.RestartPolicyAlways, "app"))
	h.sync("sc") // log starts, setup must wait for the next sync
	if got := h.rt.createdNames(); got != "log" {
		t.Fatalf("first sync created %s, want log", got)
	}
	if p := h.pod("sc"); p.Status.Phase != corev1.PodPending || condStatus(p, corev1.PodInitialized) != "False" {
		t.Errorf("phase %s initialized %s while initializing", p.Status.Phase, condStatus(p, corev1.PodInitialized))
	}
	h.sync("sc") // log started: setup runs
	if got := h.rt.createdNames(); got != "log,setup" {
		t.Fatalf("created %s, want log,setup", got)
	}
	h.rt.exit("setup", 0)
	h.sync("sc") // proxy
	h.sync("sc") // proxy started: app
	if got := h.rt.createdNames(); got != "log,setup,proxy,app" {
		t.Fatalf("created %s, want log,setup,proxy,app", got)
	}
	p := h.pod("sc")
	if p.Status.Phase != corev1.PodRunning || condStatus(p, corev1.PodInitialized) != "True" || condStatus(p, corev1.PodReady) != "True" {
		t.Errorf("phase %s initialized %s ready %s", p.Status.Phase, condStatus(p, corev1.PodInitialized), condStatus(p, corev1.PodReady))
	}
	for _, n := range []string{"log", "proxy"} {
		s := h.status("sc", n)
		if s.State.Running == nil || !s.Ready || s.Started == nil || !*s.Started {
			t.Errorf("sidecar %s status %+v, want running, started and ready", n, s)
		}
	}
	if s := h.status("sc", "setup"); s.State.Terminated == nil || s.State.Terminated.Reason != "Completed" {
		t.Errorf("setup status %+v", s)
	}
}

// A sidecar restarts with the crash-loop back-off whatever the pod's
// restartPolicy, and does not take the pod back to Pending.
func TestSidecarRestartsUnderNever(t *testing.T) {
	h := newHarness(t)
	h.create(sidecarPod("sr", corev1.RestartPolicyNever, "app"))
	for range 4 {
		h.sync("sr")
		h.rt.exit("setup", 0)
	}
	h.clk.Step(time.Second)
	h.rt.exit("log", 1)
	h.sync("sr")
	if s := h.status("sr", "log"); s.RestartCount != 1 || s.State.Running == nil {
		t.Fatalf("sidecar after its exit: %+v, want restarted", s)
	}
	h.clk.Step(time.Second)
	h.rt.exit("log", 1)
	h.sync("sr")
	s := h.status("sr", "log")
	if s.State.Waiting == nil || s.State.Waiting.Reason != ReasonCrashLoopBackOff {
		t.Fatalf("sidecar after a second exit: %+v, want CrashLoopBackOff", s.State)
	}
	if p := h.pod("sr"); p.Status.Phase != corev1.PodRunning || condStatus(p, corev1.PodInitialized) != "True" ||
		condStatus(p, corev1.PodReady) != "False" {
		t.Errorf("phase %s initialized %s ready %s, want Running, True, False", p.Status.Phase,
			condStatus(p, corev1.PodInitialized), condStatus(p, corev1.PodReady))
	}
	if s := h.status("sr", "app"); s.State.Running == nil || s.RestartCount != 0 {
		t.Errorf("app container disturbed by the sidecar: %+v", s)
	}
}

// The pod's completion ignores sidecars: when the app containers are done
// the pod ends and its sidecars are stopped, in reverse order.
func TestSidecarPodCompletes(t *testing.T) {
	tests := []struct {
		policy corev1.RestartPolicy
		exit   int32
		phase  corev1.PodPhase
	}{
		{corev1.RestartPolicyNever, 0, corev1.PodSucceeded},
		{corev1.RestartPolicyNever, 1, corev1.PodFailed},
		{corev1.RestartPolicyOnFailure, 0, corev1.PodSucceeded},
	}
	for _, tt := range tests {
		t.Run(string(tt.policy)+"/"+string(rune('0'+tt.exit)), func(t *testing.T) {
			h := newHarness(t)
			h.create(sidecarPod("done", tt.policy, "app"))
			for range 4 {
				h.sync("done")
				h.rt.exit("setup", 0)
			}
			h.clk.Step(time.Second)
			h.rt.exit("app", tt.exit)
			h.sync("done")
			p := h.pod("done")
			if p.Status.Phase != tt.phase {
				t.Fatalf("phase %s, want %s", p.Status.Phase, tt.phase)
			}
			if got := strings.Join(h.rt.stopped, ","); got != "proxy,log" {
				t.Errorf("stopped %s, want proxy,log (reverse order)", got)
			}
			for _, n := range []string{"log", "proxy"} {
				if s := h.status("done", n); s.State.Terminated == nil {
					t.Errorf("sidecar %s not terminated: %+v", n, s.State)
				}
			}
			h.clk.Step(time.Minute)
			h.sync("done")
			if got := h.rt.createdNames(); got != "log,setup,proxy,app" {
				t.Errorf("created %s after completion, want nothing new", got)
			}
		})
	}
}

// On deletion the app containers stop first, then the sidecars in reverse
// order.
func TestSidecarsStopLastOnDeletion(t *testing.T) {
	h := newHarness(t)
	h.create(sidecarPod("del", corev1.RestartPolicyAlways, "a", "b"))
	for range 4 {
		h.sync("del")
		h.rt.exit("setup", 0)
	}
	if _, _, err := h.store.Delete(h.ctx, "pods", "default", "del", store.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	w := h.workers["del"]
	w.update(h.pod("del"), false)
	if done := w.sync(h.ctx); !done {
		t.Fatal("worker not finished after termination")
	}
	got := h.rt.stopped
	if len(got) != 4 || got[2] != "proxy" || got[3] != "log" || !(got[0] == "a" && got[1] == "b" || got[0] == "b" && got[1] == "a") {
		t.Errorf("stop order %v, want the app containers, then proxy, then log", got)
	}
}
