package main

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestPodStatusSidecars checks the READY/STATUS/RESTARTS columns of pods
// with sidecars (init containers with restartPolicy Always) against what
// kubectl prints for the same status.
func TestPodStatusSidecars(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	sidecar := corev1.Container{Name: "web", RestartPolicy: &always}
	setup := corev1.Container{Name: "setup"}
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	waiting := func(r string) corev1.ContainerState {
		return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: r}}
	}
	term := func(r string, code int32) corev1.ContainerState {
		return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: r, ExitCode: code}}
	}
	st := func(name string, s corev1.ContainerState, started, ready bool, restarts int32) corev1.ContainerStatus {
		return corev1.ContainerStatus{Name: name, State: s, Started: &started, Ready: ready, RestartCount: restarts}
	}
	threeHoursAgo := metav1.NewTime(time.Now().Add(-3 * time.Hour))
	crashed := func(cs corev1.ContainerStatus) corev1.ContainerStatus {
		cs.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error", FinishedAt: threeHoursAgo}
		return cs
	}
	now := metav1.Now()

	for _, tc := range []struct {
		name                    string
		init                    []corev1.Container
		phase                   corev1.PodPhase
		initialized, podReady   bool
		initStatus, appStatus   []corev1.ContainerStatus
		deleting                bool
		ready, status, restarts string
	}{
		{
			name: "sidecar running, not started yet", init: []corev1.Container{sidecar}, phase: corev1.PodPending,
			initStatus: []corev1.ContainerStatus{st("web", running, false, false, 0)},
			appStatus:  []corev1.ContainerStatus{st("app", waiting("PodInitializing"), false, false, 0)},
			ready:      "0/2", status: "Init:0/1", restarts: "0",
		},
		{
			name: "sidecar image pulling", init: []corev1.Container{sidecar}, phase: corev1.PodPending,
			initStatus: []corev1.ContainerStatus{st("web", waiting("ErrImagePull"), false, false, 0)},
			appStatus:  []corev1.ContainerStatus{st("app", waiting("PodInitializing"), false, false, 0)},
			ready:      "0/2", status: "Init:ErrImagePull", restarts: "0",
		},
		{
			name: "started sidecar is skipped, next init container running", init: []corev1.Container{sidecar, setup}, phase: corev1.PodPending,
			initStatus: []corev1.ContainerStatus{st("web", running, true, true, 0), st("setup", running, false, false, 0)},
			appStatus:  []corev1.ContainerStatus{st("app", waiting("PodInitializing"), false, false, 0)},
			ready:      "1/2", status: "Init:1/2", restarts: "0",
		},
		{
			name: "sidecar started but not ready, app being created", init: []corev1.Container{sidecar}, phase: corev1.PodPending,
			initialized: true,
			initStatus:  []corev1.ContainerStatus{st("web", running, true, false, 0)},
			appStatus:   []corev1.ContainerStatus{st("app", waiting("ContainerCreating"), false, false, 0)},
			ready:       "0/2", status: "ContainerCreating", restarts: "0",
		},
		{
			name: "sidecar started but not ready, app ready", init: []corev1.Container{sidecar}, phase: corev1.PodRunning,
			initialized: true,
			initStatus:  []corev1.ContainerStatus{st("web", running, true, false, 0)},
			appStatus:   []corev1.ContainerStatus{st("app", running, true, true, 0)},
			ready:       "1/2", status: "Running", restarts: "0",
		},
		{
			name: "sidecar and app ready", init: []corev1.Container{sidecar}, phase: corev1.PodRunning,
			initialized: true, podReady: true,
			initStatus: []corev1.ContainerStatus{st("web", running, true, true, 0)},
			appStatus:  []corev1.ContainerStatus{st("app", running, true, true, 0)},
			ready:      "2/2", status: "Running", restarts: "0",
		},
		{
			name: "regular init done, then a ready sidecar", init: []corev1.Container{setup, sidecar}, phase: corev1.PodRunning,
			initialized: true, podReady: true,
			initStatus: []corev1.ContainerStatus{st("setup", term("Completed", 0), false, true, 1), st("web", running, true, true, 0)},
			appStatus:  []corev1.ContainerStatus{st("app", running, true, true, 0)},
			ready:      "2/2", status: "Running", restarts: "0",
		},
		{
			name: "completed pod, sidecar stopped with SIGTERM's exit code", init: []corev1.Container{sidecar}, phase: corev1.PodSucceeded,
			initialized: true,
			initStatus:  []corev1.ContainerStatus{st("web", term("Error", 143), false, false, 0)},
			appStatus:   []corev1.ContainerStatus{st("app", term("Completed", 0), false, false, 0)},
			ready:       "0/2", status: "Completed", restarts: "0",
		},
		{
			name: "failed pod, sidecar stopped", init: []corev1.Container{sidecar}, phase: corev1.PodFailed,
			initialized: true,
			initStatus:  []corev1.ContainerStatus{st("web", term("Error", 137), false, false, 0)},
			appStatus:   []corev1.ContainerStatus{st("app", term("Error", 2), false, false, 0)},
			ready:       "0/2", status: "Error", restarts: "0",
		},
		{
			name: "sidecar in CrashLoopBackOff after init, app running", init: []corev1.Container{sidecar}, phase: corev1.PodRunning,
			initialized: true,
			initStatus:  []corev1.ContainerStatus{crashed(st("web", waiting("CrashLoopBackOff"), false, false, 3))},
			appStatus:   []corev1.ContainerStatus{st("app", running, true, true, 0)},
			ready:       "1/2", status: "Init:CrashLoopBackOff", restarts: "3 (3h ago)",
		},
		{
			name: "sidecar crash-looping, app crash-looping too", init: []corev1.Container{sidecar}, phase: corev1.PodRunning,
			initialized: true,
			initStatus:  []corev1.ContainerStatus{st("web", waiting("CrashLoopBackOff"), false, false, 3)},
			appStatus:   []corev1.ContainerStatus{st("app", waiting("CrashLoopBackOff"), false, false, 2)},
			ready:       "0/2", status: "CrashLoopBackOff", restarts: "5",
		},
		{
			name: "regular init failing with a sidecar running", init: []corev1.Container{sidecar, setup}, phase: corev1.PodPending,
			initStatus: []corev1.ContainerStatus{st("web", running, true, true, 1), st("setup", term("Error", 1), false, false, 2)},
			appStatus:  []corev1.ContainerStatus{st("app", waiting("PodInitializing"), false, false, 0)},
			ready:      "1/2", status: "Init:Error", restarts: "3",
		},
		{
			name: "regular init crash-looping with a sidecar running", init: []corev1.Container{sidecar, setup}, phase: corev1.PodPending,
			initStatus: []corev1.ContainerStatus{st("web", running, true, true, 0), crashed(st("setup", waiting("CrashLoopBackOff"), false, false, 4))},
			appStatus:  []corev1.ContainerStatus{st("app", waiting("PodInitializing"), false, false, 0)},
			ready:      "1/2", status: "Init:CrashLoopBackOff", restarts: "4 (3h ago)",
		},
		{
			name: "regular init retries drop out of RESTARTS once initialized", init: []corev1.Container{setup, sidecar}, phase: corev1.PodRunning,
			initialized: true, podReady: true,
			initStatus: []corev1.ContainerStatus{crashed(st("setup", term("Completed", 0), false, true, 2)), st("web", running, true, true, 1)},
			appStatus:  []corev1.ContainerStatus{st("app", running, true, true, 0)},
			ready:      "2/2", status: "Running", restarts: "1",
		},
		{
			name: "sidecar pod being deleted", init: []corev1.Container{sidecar}, phase: corev1.PodRunning,
			initialized: true, podReady: true, deleting: true,
			initStatus: []corev1.ContainerStatus{st("web", running, true, true, 0)},
			appStatus:  []corev1.ContainerStatus{st("app", running, true, true, 0)},
			ready:      "2/2", status: "Terminating", restarts: "0",
		},
		{
			name: "completed sidecar pod being deleted stays Completed", init: []corev1.Container{sidecar}, phase: corev1.PodSucceeded,
			initialized: true, deleting: true,
			initStatus: []corev1.ContainerStatus{st("web", term("Error", 143), false, false, 0)},
			appStatus:  []corev1.ContainerStatus{st("app", term("Completed", 0), false, false, 0)},
			ready:      "0/2", status: "Completed", restarts: "0",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &corev1.Pod{
				Spec: corev1.PodSpec{InitContainers: tc.init, Containers: []corev1.Container{{Name: "app"}}},
				Status: corev1.PodStatus{
					Phase:                 tc.phase,
					InitContainerStatuses: tc.initStatus,
					ContainerStatuses:     tc.appStatus,
					Conditions: []corev1.PodCondition{
						{Type: corev1.PodInitialized, Status: condStatus(tc.initialized)},
						{Type: corev1.PodReady, Status: condStatus(tc.podReady)},
					},
				},
			}
			if tc.deleting {
				p.DeletionTimestamp = &now
			}
			ready, status, restarts := PodStatus(p)
			if ready != tc.ready || status != tc.status || restarts != tc.restarts {
				t.Errorf("got %s %s %q, want %s %s %q", ready, status, restarts, tc.ready, tc.status, tc.restarts)
			}
		})
	}
}

func condStatus(ok bool) corev1.ConditionStatus {
	if ok {
		return corev1.ConditionTrue
	}
	return corev1.ConditionFalse
}

// TestPodStatusPodLevelRules covers kubectl's rules that look at the pod
// rather than one container: a scheduling gate, a lost node, deletion of
// a finished pod, and Completed turning back into Running or NotReady.
func TestPodStatusPodLevelRules(t *testing.T) {
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	done := corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Completed"}}
	now := metav1.Now()
	for _, tc := range []struct {
		name     string
		pod      corev1.Pod
		ready    string
		status   string
		deleting bool
	}{
		{name: "scheduling gated", pod: corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonSchedulingGated}}}},
			ready: "0/2", status: "SchedulingGated"},
		{name: "node lost while deleting", deleting: true, pod: corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodRunning, Reason: "NodeLost"}},
			ready: "0/2", status: "Unknown"},
		{name: "failed pod being deleted", deleting: true, pod: corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodFailed}},
			ready: "0/2", status: "Failed"},
		{name: "one app done, one still running, pod ready", pod: corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodRunning,
			Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "a", State: done}, {Name: "b", State: running, Ready: true}}}},
			ready: "1/2", status: "Running"},
		{name: "one app done, one still running, pod not ready", pod: corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodRunning,
			ContainerStatuses: []corev1.ContainerStatus{{Name: "a", State: done}, {Name: "b", State: running, Ready: true}}}},
			ready: "1/2", status: "NotReady"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.pod
			p.Spec.Containers = []corev1.Container{{Name: "a"}, {Name: "b"}}
			if tc.deleting {
				p.DeletionTimestamp = &now
			}
			ready, status, _ := PodStatus(&p)
			if ready != tc.ready || status != tc.status {
				t.Errorf("got %s %s, want %s %s", ready, status, tc.ready, tc.status)
			}
		})
	}
}
