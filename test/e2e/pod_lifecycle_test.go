package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/peapod/peapod/internal/registrytest"
)

const onePod = `apiVersion: v1
kind: Pod
metadata:
  name: %s
spec:
  restartPolicy: %s
  terminationGracePeriodSeconds: 2
  containers:
  - name: c
    image: %s
    command: ["sh", "-c", %q]
`

// Issue 5, acceptance 3: restartPolicy Always restarts with a growing
// back-off (CrashLoopBackOff), OnFailure stops after exit 0, Never keeps
// the exit code; the previous run's log stays beside the current one.
func TestPodRestartPolicies(t *testing.T) {
	d := startPodDaemon(t)
	reg := busyboxRegistry(t, d, registrytest.Options{TLS: true}, "busybox:1")
	img := reg.Ref("busybox:1")
	cleanupPods(t, d, "default")

	apply(t, d, "crash.yaml", fmt.Sprintf(onePod, "crash", "Always", img, "echo run-$(date +%s%N); exit 1"))
	apply(t, d, "once.yaml", fmt.Sprintf(onePod, "once", "OnFailure", img, "echo done"))
	apply(t, d, "never.yaml", fmt.Sprintf(onePod, "never", "Never", img, "exit 3"))

	row := waitStatus(t, d, "default", "crash", "CrashLoopBackOff", 60*time.Second)
	waitFor(t, 60*time.Second, "a growing restart count", func() (bool, string) {
		row = podRow(t, d, "default", "crash")
		n, _ := strconv.Atoi(row[3])
		return n >= 3, strings.Join(row, " ")
	})
	p := getPod(t, d, "default", "crash")
	s := containerStatus(p, "c")
	if p.Status.Phase != "Running" || s.LastTerminationState.Terminated == nil || s.LastTerminationState.Terminated.ExitCode != 1 {
		t.Errorf("crash-looping pod: phase %s, container %+v", p.Status.Phase, s)
	}
	if w := s.State.Waiting; w != nil && w.Reason == "CrashLoopBackOff" && !strings.Contains(w.Message, "restarting failed container=c pod=crash_default(") {
		t.Errorf("CrashLoopBackOff message %q", w.Message)
	}
	if ev := events(t, d, "default"); !strings.Contains(ev, "Back-off restarting failed container c in pod crash_default(") {
		t.Errorf("no BackOff event:\n%s", ev)
	}
	// The previous run's log is kept (logs --previous), next to the current.
	n := int(s.RestartCount)
	prev := containerLog(t, d, p, "c", n-1)
	if !strings.HasPrefix(prev, "run-") {
		t.Errorf("log of the previous run (%d.log) = %q", n-1, prev)
	}

	waitStatus(t, d, "default", "once", "Completed", 30*time.Second)
	waitStatus(t, d, "default", "never", "Error", 30*time.Second)
	time.Sleep(3 * time.Second) // several syncs: neither may start again
	once := getPod(t, d, "default", "once")
	if once.Status.Phase != "Succeeded" || containerStatus(once, "c").RestartCount != 0 {
		t.Errorf("OnFailure after exit 0: phase %s, restarts %d", once.Status.Phase, containerStatus(once, "c").RestartCount)
	}
	never := getPod(t, d, "default", "never")
	ns := containerStatus(never, "c")
	if never.Status.Phase != "Failed" || ns.RestartCount != 0 || ns.State.Terminated == nil || ns.State.Terminated.ExitCode != 3 || ns.State.Terminated.Reason != "Error" {
		t.Errorf("Never after exit 3: phase %s, container %+v", never.Status.Phase, ns)
	}
}

const initPod = `apiVersion: v1
kind: Pod
metadata:
  name: %s
spec:
  restartPolicy: %s
  terminationGracePeriodSeconds: 2
  volumes:
  - name: work
    emptyDir: {}
  initContainers:
  - name: first
    image: %[3]s
    command: ["sh", "-c", "echo first >> /work/order"]
    volumeMounts: [{name: work, mountPath: /work}]
  - name: second
    image: %[3]s
    command: ["sh", "-c", %[4]q]
    volumeMounts: [{name: work, mountPath: /work}]
  containers:
  - name: app
    image: %[3]s
    command: ["sh", "-c", "echo app >> /work/order; cat /work/order; sleep 3600"]
    volumeMounts: [{name: work, mountPath: /work}]
`

// Issue 5, acceptance 4: init containers run one after the other before the
// app container; a failing init container blocks the app.
func TestPodInitContainers(t *testing.T) {
	d := startPodDaemon(t)
	reg := busyboxRegistry(t, d, registrytest.Options{TLS: true}, "busybox:1")
	img := reg.Ref("busybox:1")
	cleanupPods(t, d, "default")

	apply(t, d, "init.yaml", fmt.Sprintf(initPod, "ordered", "Always", img, "echo second >> /work/order"))
	apply(t, d, "fail.yaml", fmt.Sprintf(initPod, "blocked", "Never", img, "exit 7"))

	waitStatus(t, d, "default", "ordered", "Running", 60*time.Second)
	if got := waitLog(t, d, "default", "ordered", "app", "app"); got != "first\nsecond\napp\n" {
		t.Errorf("order seen by the app container: %q", got)
	}
	p := getPod(t, d, "default", "ordered")
	for _, n := range []string{"first", "second"} {
		if s := containerStatus(p, n); s.State.Terminated == nil || s.State.Terminated.Reason != "Completed" {
			t.Errorf("init container %s: %+v", n, s.State)
		}
	}

	waitStatus(t, d, "default", "blocked", "Init:Error", 60*time.Second)
	time.Sleep(2 * time.Second)
	b := getPod(t, d, "default", "blocked")
	if b.Status.Phase != "Failed" {
		t.Errorf("phase %s, want Failed", b.Status.Phase)
	}
	if s := containerStatus(b, "second"); s.State.Terminated == nil || s.State.Terminated.ExitCode != 7 {
		t.Errorf("failed init container: %+v", s.State)
	}
	if s := containerStatus(b, "app"); s.State.Waiting == nil || s.State.Waiting.Reason != "PodInitializing" || s.ContainerID != "" {
		t.Errorf("app container after a failed init container: %+v", s)
	}
}
