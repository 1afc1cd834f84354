package kubelet

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// execProbe is a probe that runs `test -f <file>` in the container.
func execProbe(file string, mutate func(*corev1.Probe)) *corev1.Probe {
	p := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"test", "-f", file}}}}
	if mutate != nil {
		mutate(p)
	}
	return p
}

// files is a fake container filesystem for exec probes: `test -f F`
// succeeds when F is present.
type files struct {
	mu      sync.Mutex
	present map[string]bool
}

func (f *files) set(name string, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.present[name] = ok
}

func (f *files) exec(_ string, cmd []string) (*runtimeapi.ExecSyncResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(cmd) == 3 && cmd[0] == "test" && f.present[cmd[2]] {
		return &runtimeapi.ExecSyncResponse{}, nil
	}
	return &runtimeapi.ExecSyncResponse{ExitCode: 1, Stderr: []byte("missing " + cmd[len(cmd)-1])}, nil
}

func probeHarness(t *testing.T) (*harness, *files) {
	h := newHarness(t)
	fs := &files{present: map[string]bool{}}
	h.rt.exec = fs.exec
	return h, fs
}

func condition(p *corev1.Pod, t corev1.PodConditionType) corev1.PodCondition {
	for _, c := range p.Status.Conditions {
		if c.Type == t {
			return c
		}
	}
	return corev1.PodCondition{}
}

func countEvents(h *harness, pod, prefix string) int {
	n := 0
	for _, e := range h.events(pod) {
		if strings.HasPrefix(e, prefix) {
			n++
		}
	}
	return n
}

func TestReadinessProbeDrivesReadyAndConditions(t *testing.T) {
	h, fs := probeHarness(t)
	p := simplePod("rp", corev1.RestartPolicyAlways, "a", "b")
	p.Spec.Containers[0].ReadinessProbe = execProbe("/tmp/ready", nil)
	h.create(p)
	h.sync("rp")

	// Before the first probe: running but not ready.
	if s := h.status("rp", "a"); s.State.Running == nil || s.Ready || !*s.Started {
		t.Fatalf("a before probing: %+v, want running, started, not ready", s)
	}
	if s := h.status("rp", "b"); !s.Ready {
		t.Errorf("b has no probe and is not ready: %+v", s)
	}
	check := func(want corev1.ConditionStatus) {
		t.Helper()
		pod := h.pod("rp")
		for _, ct := range []corev1.PodConditionType{corev1.PodReady, corev1.ContainersReady} {
			c := condition(pod, ct)
			if c.Status != want {
				t.Errorf("%s = %s, want %s", ct, c.Status, want)
			}
			if want == corev1.ConditionFalse && (c.Reason != ReasonContainersNotReady || c.Message != "containers with unready status: [a]") {
				t.Errorf("%s reason %q message %q", ct, c.Reason, c.Message)
			}
		}
	}
	check(corev1.ConditionFalse)

	h.k.probes.probeAll(h.ctx)
	h.sync("rp")
	check(corev1.ConditionFalse)
	if !h.hasEvent("rp", "Warning Unhealthy Readiness probe failed: missing /tmp/ready") {
		t.Errorf("no Unhealthy event: %v", h.events("rp"))
	}

	fs.set("/tmp/ready", true)
	h.k.probes.probeAll(h.ctx)
	h.sync("rp")
	check(corev1.ConditionTrue)
	if s := h.status("rp", "a"); !s.Ready {
		t.Errorf("a after a successful probe: %+v", s)
	}

	// Readiness failing again (one failure is below failureThreshold 3).
	fs.set("/tmp/ready", false)
	h.k.probes.probeAll(h.ctx)
	h.sync("rp")
	check(corev1.ConditionTrue)
	h.k.probes.probeAll(h.ctx)
	h.k.probes.probeAll(h.ctx)
	h.sync("rp")
	check(corev1.ConditionFalse)
	// Readiness never restarts a container.
	if s := h.status("rp", "a"); s.RestartCount != 0 || s.State.Running == nil {
		t.Errorf("readiness failure touched the container: %+v", s)
	}
}

func TestLivenessProbeFailureRestartsTheContainer(t *testing.T) {
	for _, tc := range []struct {
		policy      corev1.RestartPolicy
		wantKilling string
		wantRestart bool
	}{
		{corev1.RestartPolicyAlways, "Normal Killing Container a failed liveness probe, will be restarted", true},
		{corev1.RestartPolicyOnFailure, "Normal Killing Container a failed liveness probe, will be restarted", true},
		{corev1.RestartPolicyNever, "Normal Killing Container a failed liveness probe", false},
	} {
		t.Run(string(tc.policy), func(t *testing.T) {
			h, fs := probeHarness(t)
			fs.set("/tmp/healthy", true)
			p := simplePod("lp", tc.policy, "a")
			grace := int64(7)
			p.Spec.Containers[0].LivenessProbe = execProbe("/tmp/healthy", func(p *corev1.Probe) { p.TerminationGracePeriodSeconds = &grace })
			h.create(p)
			h.sync("lp")
			h.k.probes.probeAll(h.ctx)
			fs.set("/tmp/healthy", false)
			for i := 0; i < 2; i++ { // below failureThreshold (3)
				h.k.probes.probeAll(h.ctx)
				h.sync("lp")
			}
			if s := h.status("lp", "a"); s.State.Running == nil || s.RestartCount != 0 {
				t.Fatalf("killed before failureThreshold: %+v", s)
			}
			h.k.probes.probeAll(h.ctx)
			h.sync("lp")
			if n := countEvents(h, "lp", "Warning Unhealthy Liveness probe failed: missing /tmp/healthy"); n != 1 {
				// The recorder folds repeats into one event with a count.
				t.Errorf("%d Unhealthy events, want 1 (with a count): %v", n, h.events("lp"))
			}
			found := false
			for _, e := range h.events("lp") {
				found = found || e == tc.wantKilling
			}
			if !found {
				t.Errorf("no event %q in %v", tc.wantKilling, h.events("lp"))
			}
			if len(h.rt.stops) != 1 || h.rt.stops[0] != 7 {
				t.Errorf("StopContainer timeouts %v, want [7] (the probe's terminationGracePeriodSeconds)", h.rt.stops)
			}
			h.sync("lp")
			s := h.status("lp", "a")
			if tc.wantRestart {
				if s.RestartCount != 1 || s.State.Running == nil || s.LastTerminationState.Terminated == nil {
					t.Errorf("after the kill: %+v, want restarted once", s)
				}
				// The new container has fresh probe state: alive.
				fs.set("/tmp/healthy", true)
				h.k.probes.probeAll(h.ctx)
				h.sync("lp")
				if s := h.status("lp", "a"); s.RestartCount != 1 || s.State.Running == nil {
					t.Errorf("healthy restarted container: %+v", s)
				}
			} else if s.State.Terminated == nil || s.RestartCount != 0 {
				t.Errorf("restartPolicy Never: %+v, want terminated and not restarted", s)
			}
		})
	}
}

func TestStartupProbeGatesLivenessAndReadiness(t *testing.T) {
	h, fs := probeHarness(t)
	p := simplePod("sp", corev1.RestartPolicyAlways, "a")
	c := &p.Spec.Containers[0]
	c.StartupProbe = execProbe("/tmp/started", func(p *corev1.Probe) { p.FailureThreshold = 30 })
	c.LivenessProbe = execProbe("/tmp/alive", nil)
	c.ReadinessProbe = execProbe("/tmp/ready", nil)
	h.create(p)
	h.sync("sp")
	for i := 0; i < 5; i++ {
		h.k.probes.probeAll(h.ctx)
	}
	h.sync("sp")
	s := h.status("sp", "a")
	if *s.Started || s.Ready || s.RestartCount != 0 || s.State.Running == nil {
		t.Errorf("before startup succeeded: %+v, want running, not started, not ready, not killed", s)
	}
	for _, e := range h.rt.execs {
		if !strings.HasSuffix(e, "/tmp/started") {
			t.Fatalf("probe %q ran before the startup probe succeeded", e)
		}
	}
	fs.set("/tmp/started", true)
	fs.set("/tmp/alive", true)
	fs.set("/tmp/ready", true)
	h.k.probes.probeAll(h.ctx) // startup first, then the others in the same round
	h.sync("sp")
	if s := h.status("sp", "a"); !*s.Started || !s.Ready {
		t.Errorf("after startup and readiness succeeded: %+v", s)
	}
	n := len(h.rt.execs)
	h.k.probes.probeAll(h.ctx)
	for _, e := range h.rt.execs[n:] {
		if strings.HasSuffix(e, "/tmp/started") {
			t.Errorf("startup probe ran again after success")
		}
	}
}

func TestStartupProbeFailureKills(t *testing.T) {
	h, _ := probeHarness(t)
	p := simplePod("sf", corev1.RestartPolicyAlways, "a")
	p.Spec.Containers[0].StartupProbe = execProbe("/tmp/started", func(p *corev1.Probe) { p.FailureThreshold = 2 })
	h.create(p)
	h.sync("sf")
	h.k.probes.probeAll(h.ctx)
	h.k.probes.probeAll(h.ctx)
	h.sync("sf")
	if !h.hasEvent("sf", "Normal Killing Container a failed startup probe, will be restarted") {
		t.Errorf("no Killing event: %v", h.events("sf"))
	}
	if !h.hasEvent("sf", "Warning Unhealthy Startup probe failed: missing /tmp/started") {
		t.Errorf("no Unhealthy event: %v", h.events("sf"))
	}
}

func TestProbeThresholdsAndInitialDelay(t *testing.T) {
	h, fs := probeHarness(t)
	p := simplePod("th", corev1.RestartPolicyAlways, "a")
	p.Spec.Containers[0].ReadinessProbe = execProbe("/tmp/ready", func(p *corev1.Probe) {
		p.InitialDelaySeconds = 30
		p.SuccessThreshold = 2
	})
	fs.set("/tmp/ready", true)
	h.create(p)
	h.sync("th")
	h.k.probes.probeAll(h.ctx)
	if len(h.rt.execs) != 0 {
		t.Fatalf("probed before initialDelaySeconds: %v", h.rt.execs)
	}
	h.clk.Step(31 * time.Second)
	h.k.probes.probeAll(h.ctx)
	h.sync("th")
	if len(h.rt.execs) != 1 || h.status("th", "a").Ready {
		t.Fatalf("one success with successThreshold 2: execs %v, ready %v", h.rt.execs, h.status("th", "a").Ready)
	}
	h.k.probes.probeAll(h.ctx)
	h.sync("th")
	if !h.status("th", "a").Ready {
		t.Error("not ready after successThreshold successes")
	}
}

func TestProbesStopWithTheirPod(t *testing.T) {
	h, _ := probeHarness(t)
	p := simplePod("gone", corev1.RestartPolicyAlways, "a")
	p.Spec.Containers[0].LivenessProbe = execProbe("/x", nil)
	p.Spec.Containers[0].ReadinessProbe = execProbe("/x", nil)
	h.create(p)
	h.sync("gone")
	if n := len(h.k.probes.workers); n != 2 {
		t.Fatalf("%d probe workers, want 2", n)
	}
	h.rt.exit("a", 1)
	h.sync("gone") // restarted: the old container's workers go, new ones come
	for key := range h.k.probes.workers {
		if _, ok := h.rt.containers[key.containerID]; !ok || h.rt.containers[key.containerID].state != runtimeapi.ContainerState_CONTAINER_RUNNING {
			t.Errorf("probe worker for a container that is not running: %v", key)
		}
	}
	w := h.workers["gone"]
	w.cleanup(h.pod("gone"))
	if n := len(h.k.probes.workers); n != 0 {
		t.Errorf("%d probe workers after the pod went", n)
	}
}

// The network handlers against real listeners on loopback.
func TestProbeHandlers(t *testing.T) {
	var gotHeader, gotUA string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotHeader, gotUA = r.Header.Get("X-Probe"), r.UserAgent()
		switch r.URL.Path {
		case "/ok":
			fmt.Fprint(w, "fine")
		case "/redirect":
			http.Redirect(w, r, "http://192.0.2.1/elsewhere", http.StatusFound)
		case "/missing":
			http.NotFound(w, r)
		default:
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	_, portStr, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ := strconv.Atoi(portStr)
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close()

	httpGet := func(path string, p intstr.IntOrString) corev1.ProbeHandler {
		return corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: p, Scheme: corev1.URISchemeHTTP,
			HTTPHeaders: []corev1.HTTPHeader{{Name: "X-Probe", Value: "yes"}}}}
	}
	for _, tc := range []struct {
		name    string
		handler corev1.ProbeHandler
		ok      bool
		output  string
		err     bool
	}{
		{"http 200", httpGet("/ok", intstr.FromInt32(int32(port))), true, "fine", false},
		{"http by port name", httpGet("/ok", intstr.FromString("web")), true, "fine", false},
		{"http 302 to another host is success", httpGet("/redirect", intstr.FromInt32(int32(port))), true, "", false},
		{"http 404", httpGet("/missing", intstr.FromInt32(int32(port))), false, "HTTP probe failed with statuscode: 404", false},
		{"http 500", httpGet("/boom", intstr.FromInt32(int32(port))), false, "HTTP probe failed with statuscode: 500", false},
		{"http refused", httpGet("/ok", intstr.FromInt32(int32(closedPort))), false, "connection refused", false},
		{"unknown port name", httpGet("/ok", intstr.FromString("nope")), false, "", true},
		{"tcp open", corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(int32(port))}}, true, "", false},
		{"tcp closed", corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(int32(closedPort))}}, false, "connection refused", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &probeWorker{host: "127.0.0.1", spec: &corev1.Probe{ProbeHandler: tc.handler, TimeoutSeconds: 2},
				container: corev1.Container{Name: "c", Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: int32(port)}}}}
			ok, out, err := w.probe(context.Background())
			if (err != nil) != tc.err {
				t.Fatalf("err %v, want error %v", err, tc.err)
			}
			if ok != tc.ok || !strings.Contains(out, tc.output) {
				t.Errorf("ok %v output %q, want %v containing %q", ok, out, tc.ok, tc.output)
			}
			if tc.handler.HTTPGet != nil && tc.ok && (gotHeader != "yes" || gotUA != probeUserAgent) {
				t.Errorf("request headers: X-Probe %q User-Agent %q", gotHeader, gotUA)
			}
		})
	}
}
