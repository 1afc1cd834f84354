package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/peapod/peapod/internal/registrytest"
)

// A sidecar (an init container with restartPolicy Always) serves a page
// on localhost; its startupProbe holds the app container back until it
// listens, so the app's single fetch works. Both keep running and ready.
const sidecarPod = `apiVersion: v1
kind: Pod
metadata:
  name: %s
spec:
  restartPolicy: %s
  terminationGracePeriodSeconds: 2
  initContainers:
  - name: web
    image: %s
    restartPolicy: Always
    command: ["sh", "-c", "mkdir -p /www && echo hello-from-the-sidecar > /www/index.html && exec httpd -f -p 8080 -h /www"]
    startupProbe:
      tcpSocket: {port: 8080}
      periodSeconds: 1
  containers:
  - name: app
    image: %s
    command: ["sh", "-c", %q]
`

func TestPodSidecarServesTheApp(t *testing.T) {
	d := startPodDaemon(t)
	reg := busyboxRegistry(t, d, registrytest.Options{TLS: true}, "busybox:1")
	img := reg.Ref("busybox:1")
	cleanupPods(t, d, "default")

	apply(t, d, "sc.yaml", fmt.Sprintf(sidecarPod, "sc", "Always", img, img,
		"wget -q -O - http://127.0.0.1:8080/ && exec sleep 3600"))
	waitLog(t, d, "default", "sc", "app", "hello-from-the-sidecar")
	var p *corev1.Pod
	waitFor(t, 30*time.Second, "pod sc Running with both containers ready", func() (bool, string) {
		p = getPod(t, d, "default", "sc")
		web, app := containerStatus(p, "web"), containerStatus(p, "app")
		return p.Status.Phase == corev1.PodRunning && web.Ready && app.Ready, fmt.Sprintf("%s web=%+v app=%+v", p.Status.Phase, web.State, app.State)
	})
	web := containerStatus(p, "web")
	if web.State.Running == nil || web.Started == nil || !*web.Started || len(p.Status.InitContainerStatuses) != 1 {
		t.Errorf("sidecar status %+v, want running and started in initContainerStatuses", web)
	}
	for _, c := range p.Status.Conditions {
		if (c.Type == corev1.PodInitialized || c.Type == corev1.PodReady) && c.Status != corev1.ConditionTrue {
			t.Errorf("condition %s = %s", c.Type, c.Status)
		}
	}
	// kubectl counts the sidecar in READY beside the app container.
	if row := podRow(t, d, "default", "sc"); row[1] != "2/2" || row[2] != "Running" || row[3] != "0" {
		t.Errorf("get pods row %q, want READY 2/2, STATUS Running, RESTARTS 0", row)
	}
}

// restartPolicy Never: once the app container exits 0 the pod is
// Succeeded and its sidecar, which would run forever, is stopped.
func TestPodSidecarStoppedWhenAppCompletes(t *testing.T) {
	d := startPodDaemon(t)
	reg := busyboxRegistry(t, d, registrytest.Options{TLS: true}, "busybox:1")
	img := reg.Ref("busybox:1")
	cleanupPods(t, d, "default")

	apply(t, d, "job.yaml", fmt.Sprintf(sidecarPod, "job", "Never", img, img,
		"wget -q -O - http://127.0.0.1:8080/ && echo fetched"))
	var p *corev1.Pod
	waitFor(t, 60*time.Second, "pod job Succeeded with its sidecar stopped", func() (bool, string) {
		p = getPod(t, d, "default", "job")
		web := containerStatus(p, "web")
		return p.Status.Phase == corev1.PodSucceeded && web.State.Terminated != nil, fmt.Sprintf("%s web=%+v", p.Status.Phase, web.State)
	})
	if app := containerStatus(p, "app"); app.State.Terminated == nil || app.State.Terminated.ExitCode != 0 || app.RestartCount != 0 {
		t.Errorf("app status %+v", app)
	}
	if log := waitLog(t, d, "default", "job", "app", "fetched"); !strings.Contains(log, "hello-from-the-sidecar") {
		t.Errorf("app log %q", log)
	}
	time.Sleep(3 * time.Second) // several syncs: the sidecar must not come back
	if web := containerStatus(getPod(t, d, "default", "job"), "web"); web.State.Terminated == nil || web.RestartCount != 0 {
		t.Errorf("sidecar after the pod completed: %+v restarts %d", web.State, web.RestartCount)
	}
	// The sidecar stopped by the pod's completion ended with a signal's
	// exit code; like kubectl, get pods still says Completed, not Init:Error.
	if row := podRow(t, d, "default", "job"); row[1] != "0/2" || row[2] != "Completed" {
		t.Errorf("get pods row %q, want READY 0/2, STATUS Completed", row)
	}
}
