package main

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestPodStatusColumn(t *testing.T) {
	waiting := func(r string) corev1.ContainerState {
		return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: r}}
	}
	term := func(r string, code int32) corev1.ContainerState {
		return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: r, ExitCode: code}}
	}
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	now := metav1.Now()
	for _, tc := range []struct {
		name                    string
		init, main              []corev1.ContainerStatus
		deleting                bool
		ready, status, restarts string
	}{
		{"pending, no status", nil, nil, false, "0/1", "Pending", "0"},
		{"ErrImagePull", nil, []corev1.ContainerStatus{{State: waiting("ErrImagePull")}}, false, "0/1", "ErrImagePull", "0"},
		{"ImagePullBackOff", nil, []corev1.ContainerStatus{{State: waiting("ImagePullBackOff")}}, false, "0/1", "ImagePullBackOff", "0"},
		{"CrashLoopBackOff", nil, []corev1.ContainerStatus{{State: waiting("CrashLoopBackOff"), RestartCount: 3}}, false, "0/1", "CrashLoopBackOff", "3"},
		{"Completed", nil, []corev1.ContainerStatus{{State: term("Completed", 0)}}, false, "0/1", "Completed", "0"},
		{"exit code without reason", nil, []corev1.ContainerStatus{{State: term("", 2)}}, false, "0/1", "ExitCode:2", "0"},
		{"Running", nil, []corev1.ContainerStatus{{State: running, Ready: true}}, false, "1/1", "Running", "0"},
		{"init waiting", []corev1.ContainerStatus{{State: waiting("ErrImagePull")}}, nil, false, "0/1", "Init:ErrImagePull", "0"},
		{"init in progress", []corev1.ContainerStatus{{State: running}}, nil, false, "0/1", "Init:0/1", "0"},
		{"init failed", []corev1.ContainerStatus{{State: term("Error", 1)}}, nil, false, "0/1", "Init:Error", "0"},
		{"Terminating", nil, []corev1.ContainerStatus{{State: running, Ready: true}}, true, "1/1", "Terminating", "0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &corev1.Pod{
				Spec:   corev1.PodSpec{Containers: []corev1.Container{{Name: "a"}}},
				Status: corev1.PodStatus{Phase: corev1.PodPending, InitContainerStatuses: tc.init, ContainerStatuses: tc.main},
			}
			if tc.init != nil {
				p.Spec.InitContainers = []corev1.Container{{Name: "i"}}
			}
			if tc.status == "Running" || tc.status == "Terminating" {
				p.Status.Phase = corev1.PodRunning
			}
			if tc.deleting {
				p.DeletionTimestamp = &now
			}
			ready, status, restarts := PodStatus(p)
			if ready != tc.ready || status != tc.status || restarts != tc.restarts {
				t.Errorf("got %s %s %s, want %s %s %s", ready, status, restarts, tc.ready, tc.status, tc.restarts)
			}
		})
	}
}

func TestJSONPath(t *testing.T) {
	doc := map[string]any{"items": []any{
		map[string]any{"metadata": map[string]any{"name": "a", "labels": map[string]any{"app.kubernetes.io/name": "x"}}},
		map[string]any{"metadata": map[string]any{"name": "b"}},
	}}
	for _, tc := range []struct{ tmpl, want string }{
		{"{.items[*].metadata.name}", "a b"},
		{"{.items[0].metadata.name}{\"\\n\"}", "a\n"},
		{"{.items[-1].metadata.name}", "b"},
		{"name={.items[0].metadata.labels['app.kubernetes.io/name']}", "name=x"},
	} {
		got, err := jsonPath(tc.tmpl, doc)
		if err != nil || got != tc.want {
			t.Errorf("%s: got %q, %v; want %q", tc.tmpl, got, err, tc.want)
		}
	}
}
