package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/peapod/peapod/internal/registrytest"
)

const probePod = `apiVersion: v1
kind: Pod
metadata:
  name: %s
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: %s
    command: ["sh", "-c", %q]
%s`

// Probes as a kubelet runs them: a readiness probe keeps a running pod
// at READY 0/1 until it succeeds (exec on a file that appears later, and
// httpGet dialled at the pod's IP); a failing liveness probe restarts the
// container with Unhealthy and Killing events.
func TestPodProbes(t *testing.T) {
	d := startPodDaemon(t)
	reg := busyboxRegistry(t, d, registrytest.Options{TLS: true}, "busybox:1")
	img := reg.Ref("busybox:1")
	cleanupPods(t, d, "default")

	apply(t, d, "ready.yaml", fmt.Sprintf(probePod, "late-ready", img, "sleep 4; touch /tmp/ready; sleep 3600", `    readinessProbe:
      exec:
        command: ["cat", "/tmp/ready"]
      periodSeconds: 1
`))
	apply(t, d, "http.yaml", fmt.Sprintf(probePod, "web", img, "sleep 2; mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www", `    ports:
    - name: http
      containerPort: 8080
    readinessProbe:
      httpGet:
        path: /index.html
        port: http
      periodSeconds: 1
`))
	apply(t, d, "live.yaml", fmt.Sprintf(probePod, "unhealthy", img, "sleep 3600", `    livenessProbe:
      exec:
        command: ["test", "-f", "/tmp/healthy"]
      initialDelaySeconds: 1
      periodSeconds: 1
      failureThreshold: 2
`))

	row := waitStatus(t, d, "default", "late-ready", "Running", 60*time.Second)
	if row[1] != "0/1" {
		t.Errorf("late-ready is %v before its file exists, want READY 0/1", row)
	}
	waitFor(t, 60*time.Second, "late-ready to become 1/1", func() (bool, string) {
		row := podRow(t, d, "default", "late-ready")
		return row[1] == "1/1" && row[2] == "Running", strings.Join(row, " ")
	})
	p := getPod(t, d, "default", "late-ready")
	for _, c := range p.Status.Conditions {
		if (c.Type == "Ready" || c.Type == "ContainersReady") && c.Status != "True" {
			t.Errorf("condition %s = %s after the probe succeeded", c.Type, c.Status)
		}
	}
	if ev := events(t, d, "default"); !strings.Contains(ev, "Readiness probe failed:") {
		t.Errorf("no Unhealthy event for the failed readiness probe:\n%s", ev)
	}

	waitFor(t, 60*time.Second, "web to become 1/1 through its httpGet probe", func() (bool, string) {
		row := podRow(t, d, "default", "web")
		return row[1] == "1/1", strings.Join(row, " ") + "\n" + events(t, d, "default")
	})

	waitFor(t, 90*time.Second, "unhealthy to be restarted twice", func() (bool, string) {
		row := podRow(t, d, "default", "unhealthy")
		n, _ := strconv.Atoi(row[3])
		return n >= 2, strings.Join(row, " ")
	})
	ev := events(t, d, "default")
	for _, want := range []string{"Liveness probe failed:", "Container c failed liveness probe, will be restarted"} {
		if !strings.Contains(ev, want) {
			t.Errorf("no event %q:\n%s", want, ev)
		}
	}
	if s := containerStatus(getPod(t, d, "default", "unhealthy"), "c"); s.LastTerminationState.Terminated == nil || s.LastTerminationState.Terminated.ExitCode != 137 {
		t.Errorf("lastState of the killed container: %+v, want terminated with 137", s.LastTerminationState)
	}
}
