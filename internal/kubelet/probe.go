package kubelet

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/peapod/peapod/internal/sandbox/netns"
)

// EventUnhealthy is kubelet's event for a failed probe.
const EventUnhealthy = "Unhealthy"

// probeUserAgent is the User-Agent of HTTP probes ("kube-probe/<major>.<minor>").
const probeUserAgent = "kube-probe/1.37"

// maxProbeOutput bounds how much of a probe's output goes into an event.
const maxProbeOutput = 10 * 1024

type probeType int

const (
	probeLiveness probeType = iota
	probeReadiness
	probeStartup
)

func (t probeType) String() string {
	return [...]string{"Liveness", "Readiness", "Startup"}[t]
}

func (t probeType) spec(c *corev1.Container) *corev1.Probe {
	return [...]*corev1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe}[t]
}

type probeResult int8

const (
	resultUnknown probeResult = iota
	resultSuccess
	resultFailure
)

// initialResult is what a probe reports before it has run, as kubelet's
// prober: a container is not ready until its readiness probe succeeded,
// alive until its liveness probe failed, and not started until its
// startup probe succeeded.
func (t probeType) initialResult() probeResult {
	switch t {
	case probeReadiness:
		return resultFailure
	case probeLiveness:
		return resultSuccess
	}
	return resultUnknown
}

type probeKey struct {
	containerID string
	typ         probeType
}

// prober owns one probe worker (a goroutine) per probe of every running
// container of the kubelet's pods. A worker lives exactly as long as its
// container: a restarted container has a new ID, so a new worker with
// fresh state, as kubelet's prober manager does. Pod workers read the
// results to decide readiness, startup and whether to kill a container.
type prober struct {
	k *Kubelet
	// manual: no goroutines; tests call probeAll (the state machine is the
	// same).
	manual bool

	mu      sync.Mutex
	workers map[probeKey]*probeWorker
	results map[probeKey]probeResult
}

func newProber(k *Kubelet) *prober {
	return &prober{k: k, workers: map[probeKey]*probeWorker{}, results: map[probeKey]probeResult{}}
}

// probeWorker runs one probe of one container.
type probeWorker struct {
	p         *prober
	key       probeKey
	pod       *corev1.Pod // identity only, for events
	container corev1.Container
	spec      *corev1.Probe
	started   time.Time // when the container started
	host      string    // the pod's IP (the node's with hostNetwork)
	netns     string    // the pod's network namespace; "" dials from the host
	stop      chan struct{}

	// Owned by the worker's goroutine.
	lastResult probeResult
	resultRun  int
	onHold     bool // liveness/startup failed: wait for the container to go
}

// sync makes the probe workers match the pod's running containers: one
// per probe of each running app container and sidecar, none for anything
// else.
func (p *prober) sync(ctx context.Context, pod *corev1.Pod, st *podState, sb *sandboxState) {
	want := map[probeKey]bool{}
	var start []*probeWorker
	nsPath := ""
	if sb != nil && sb.ready && !pod.Spec.HostNetwork && p.needsNetwork(pod, st, sb) {
		var err error
		if nsPath, err = p.k.sandboxNetNS(ctx, sb.id); err != nil {
			p.k.log.Warn("probe: pod network namespace", "pod", podString(pod), "err", err)
		}
	}
	p.mu.Lock()
	if sb != nil && sb.ready {
		for _, c := range probedContainers(pod) {
			cs := st.in(sb.id, c.Name)
			if cs == nil || !cs.running() {
				continue
			}
			for _, t := range []probeType{probeLiveness, probeReadiness, probeStartup} {
				spec := t.spec(c)
				if spec == nil {
					continue
				}
				key := probeKey{cs.id, t}
				want[key] = true
				if _, ok := p.workers[key]; ok {
					continue
				}
				id := &corev1.Pod{}
				id.Name, id.Namespace, id.UID = pod.Name, pod.Namespace, pod.UID
				w := &probeWorker{p: p, key: key, pod: id, container: *c.DeepCopy(), spec: spec.DeepCopy(),
					started: cs.started, host: pod.Status.PodIP, netns: nsPath, stop: make(chan struct{})}
				p.workers[key] = w
				p.results[key] = t.initialResult()
				start = append(start, w)
			}
		}
	}
	for key, w := range p.workers {
		if w.pod.UID == pod.UID && !want[key] {
			p.stopLocked(key)
		}
	}
	p.mu.Unlock()
	if p.manual {
		return
	}
	for _, w := range start {
		go w.run(ctx)
	}
}

// needsNetwork says whether a probe worker that dials is about to start
// (only then is the sandbox's namespace looked up).
func (p *prober) needsNetwork(pod *corev1.Pod, st *podState, sb *sandboxState) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range probedContainers(pod) {
		cs := st.in(sb.id, c.Name)
		if cs == nil || !cs.running() {
			continue
		}
		for _, t := range []probeType{probeLiveness, probeReadiness, probeStartup} {
			spec := t.spec(c)
			if spec == nil || spec.Exec != nil {
				continue
			}
			if _, ok := p.workers[probeKey{cs.id, t}]; !ok {
				return true
			}
		}
	}
	return false
}

// sandboxNetNS is the pinned network namespace of a sandbox, from its
// verbose status.
func (k *Kubelet) sandboxNetNS(ctx context.Context, id string) (string, error) {
	resp, err := k.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id, Verbose: true})
	if err != nil {
		return "", err
	}
	var info struct {
		NetNS string `json:"netns"`
	}
	if raw := resp.GetInfo()["info"]; raw != "" {
		if err := json.Unmarshal([]byte(raw), &info); err != nil {
			return "", fmt.Errorf("pod sandbox %s: verbose info: %w", id, err)
		}
	}
	return info.NetNS, nil
}

// dial connects from inside the pod's network namespace, so a probe
// reaches the pod's IP whatever the host's routes say (two bridges with
// the same subnet, a policy route); kubelet dials from the host, which
// reaches the same address on a sane node.
func (w *probeWorker) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var (
		d    net.Dialer
		conn net.Conn
		derr error
	)
	if w.netns == "" {
		return d.DialContext(ctx, network, addr)
	}
	n, err := netns.Load(w.netns)
	if err != nil {
		return nil, err
	}
	if err := n.Do(func() error {
		conn, derr = d.DialContext(ctx, network, addr)
		return nil
	}); err != nil {
		return nil, err
	}
	return conn, derr
}

// removePod stops every probe of a pod.
func (p *prober) removePod(uid types.UID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for key, w := range p.workers {
		if w.pod.UID == uid {
			p.stopLocked(key)
		}
	}
}

func (p *prober) stopLocked(key probeKey) {
	close(p.workers[key].stop)
	delete(p.workers, key)
	delete(p.results, key)
}

func (p *prober) result(id string, t probeType) probeResult {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.results[probeKey{id, t}]
	if !ok {
		return t.initialResult()
	}
	return r
}

// started says whether a running container has started: its startup
// probe succeeded, or it has none.
func (p *prober) started(id string, c *corev1.Container) bool {
	return c.StartupProbe == nil || p.result(id, probeStartup) == resultSuccess
}

// ready says whether a running container is ready: started, and its
// readiness probe succeeded last (or it has none).
func (p *prober) ready(id string, c *corev1.Container) bool {
	return p.started(id, c) && (c.ReadinessProbe == nil || p.result(id, probeReadiness) == resultSuccess)
}

// failed reports a liveness or startup probe that failed failureThreshold
// times in a row: the container must be killed.
func (p *prober) failed(id string, c *corev1.Container) (probeType, bool) {
	if c.StartupProbe != nil && p.result(id, probeStartup) == resultFailure {
		return probeStartup, true
	}
	if c.LivenessProbe != nil && p.result(id, probeLiveness) == resultFailure {
		return probeLiveness, true
	}
	return 0, false
}

// set records a result and wakes the pod's worker when it changed.
func (p *prober) set(key probeKey, uid types.UID, r probeResult) {
	p.mu.Lock()
	old, ok := p.results[key]
	if ok {
		p.results[key] = r
	}
	p.mu.Unlock()
	if ok && old != r {
		p.k.wakePod(uid)
	}
}

// probeAll runs every probe once, in a stable order (tests).
func (p *prober) probeAll(ctx context.Context) {
	p.mu.Lock()
	ws := make([]*probeWorker, 0, len(p.workers))
	for _, w := range p.workers {
		ws = append(ws, w)
	}
	p.mu.Unlock()
	sort.Slice(ws, func(i, j int) bool {
		if ws[i].key.containerID != ws[j].key.containerID {
			return ws[i].key.containerID < ws[j].key.containerID
		}
		return ws[i].key.typ > ws[j].key.typ // startup first
	})
	for _, w := range ws {
		w.doProbe(ctx)
	}
}

func (w *probeWorker) run(ctx context.Context) {
	period := time.Duration(max(w.spec.PeriodSeconds, 1)) * time.Second
	for {
		w.doProbe(ctx)
		select {
		case <-ctx.Done():
			return
		case <-w.stop:
			return
		case <-w.p.k.clock.After(period):
		}
	}
}

// doProbe runs the probe once and applies kubelet's thresholds: a result
// counts only after successThreshold successes or failureThreshold
// failures in a row.
func (w *probeWorker) doProbe(ctx context.Context) {
	p := w.p
	select {
	case <-w.stop:
		return
	default:
	}
	if w.onHold {
		return
	}
	id := w.key.containerID
	switch {
	case w.key.typ == probeStartup && p.result(id, probeStartup) == resultSuccess:
		return // a started container is not probed for startup again
	case w.key.typ != probeStartup && !p.started(id, &w.container):
		return // startup gates liveness and readiness
	case p.k.clock.Since(w.started) < time.Duration(w.spec.InitialDelaySeconds)*time.Second:
		return
	}
	ok, output, err := w.probe(ctx)
	select {
	case <-w.stop:
		return // the container went while probing: the answer means nothing
	default:
	}
	fp := fieldPath(&w.container, false)
	if err != nil {
		// Could not probe at all (kubelet throws the result away).
		p.k.events.Event(w.pod, fp, corev1.EventTypeWarning, EventUnhealthy, fmt.Sprintf("%s probe errored: %v", w.key.typ, err))
		return
	}
	res := resultSuccess
	if !ok {
		res = resultFailure
		p.k.events.Event(w.pod, fp, corev1.EventTypeWarning, EventUnhealthy, fmt.Sprintf("%s probe failed: %s", w.key.typ, output))
	}
	if res == w.lastResult {
		w.resultRun++
	} else {
		w.lastResult, w.resultRun = res, 1
	}
	if (res == resultFailure && w.resultRun < int(max(w.spec.FailureThreshold, 1))) ||
		(res == resultSuccess && w.resultRun < int(max(w.spec.SuccessThreshold, 1))) {
		return
	}
	p.set(w.key, w.pod.UID, res)
	if res == resultFailure && w.key.typ != probeReadiness {
		// The container is about to be killed; its successor gets a new
		// worker.
		w.onHold = true
		w.resultRun = 0
	}
}

// probe runs the handler: ok is the probe's verdict with its output, err
// means it could not be run.
func (w *probeWorker) probe(ctx context.Context) (ok bool, output string, err error) {
	timeout := time.Duration(max(w.spec.TimeoutSeconds, 1)) * time.Second
	h := w.spec.ProbeHandler
	switch {
	case h.Exec != nil:
		return w.probeExec(ctx, h.Exec.Command, timeout)
	case h.HTTPGet != nil:
		return w.probeHTTP(ctx, h.HTTPGet, timeout)
	case h.TCPSocket != nil:
		port, err := w.port(h.TCPSocket.Port)
		if err != nil {
			return false, "", err
		}
		addr := net.JoinHostPort(w.hostOr(h.TCPSocket.Host), strconv.Itoa(port))
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		conn, err := w.dial(ctx, "tcp", addr)
		if err != nil {
			return false, err.Error(), nil
		}
		conn.Close()
		return true, "", nil
	case h.GRPC != nil:
		return w.probeGRPC(ctx, h.GRPC, timeout)
	}
	return false, "", errors.New("probe has no handler")
}

func (w *probeWorker) hostOr(h string) string {
	if h != "" {
		return h
	}
	return w.host
}

// port resolves a port given by number or by the name of a container port.
func (w *probeWorker) port(p intstr.IntOrString) (int, error) {
	if p.Type == intstr.Int {
		if p.IntVal <= 0 || p.IntVal > 65535 {
			return 0, fmt.Errorf("invalid port number: %d", p.IntVal)
		}
		return int(p.IntVal), nil
	}
	for _, cp := range w.container.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	if n, err := strconv.Atoi(p.StrVal); err == nil && n > 0 && n <= 65535 {
		return n, nil
	}
	return 0, fmt.Errorf("couldn't find port: %s in %s", p.StrVal, w.container.Name)
}

func (w *probeWorker) probeExec(ctx context.Context, cmd []string, timeout time.Duration) (bool, string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout+5*time.Second)
	defer cancel()
	resp, err := w.p.k.rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: w.key.containerID, Cmd: cmd, Timeout: int64(timeout / time.Second)})
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "deadline exceeded") {
			return false, fmt.Sprintf("command %q timed out", strings.Join(cmd, " ")), nil
		}
		return false, "", err
	}
	out := string(resp.GetStdout()) + string(resp.GetStderr())
	if len(out) > maxProbeOutput {
		out = out[:maxProbeOutput]
	}
	return resp.GetExitCode() == 0, out, nil
}

func (w *probeWorker) probeHTTP(ctx context.Context, g *corev1.HTTPGetAction, timeout time.Duration) (bool, string, error) {
	port, err := w.port(g.Port)
	if err != nil {
		return false, "", err
	}
	scheme := strings.ToLower(string(g.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	path := g.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	u, err := url.Parse(fmt.Sprintf("%s://%s%s", scheme, net.JoinHostPort(w.hostOr(g.Host), strconv.Itoa(port)), path))
	if err != nil {
		return false, "", err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return false, "", err
	}
	req.Header.Set("User-Agent", probeUserAgent)
	req.Header.Set("Accept", "*/*")
	for _, h := range g.HTTPHeaders {
		if strings.EqualFold(h.Name, "Host") {
			req.Host = h.Value
			continue
		}
		req.Header.Add(h.Name, h.Value)
	}
	client := &http.Client{
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // kubelet does not verify probe certificates
			DisableKeepAlives: true,
			Proxy:             nil,
			DialContext:       w.dial,
		},
		// A redirect to another host is not followed; its 3xx counts as
		// success, as with kubelet.
		CheckRedirect: func(r *http.Request, via []*http.Request) error {
			if len(via) >= 10 || r.URL.Hostname() != via[0].URL.Hostname() {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, err.Error(), nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxProbeOutput))
	if resp.StatusCode >= 200 && resp.StatusCode < 400 {
		return true, string(body), nil
	}
	return false, fmt.Sprintf("HTTP probe failed with statuscode: %d", resp.StatusCode), nil
}

func (w *probeWorker) probeGRPC(ctx context.Context, g *corev1.GRPCAction, timeout time.Duration) (bool, string, error) {
	addr := net.JoinHostPort(w.host, strconv.Itoa(int(g.Port)))
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithUserAgent(probeUserAgent),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) { return w.dial(ctx, "tcp", addr) }))
	if err != nil {
		return false, "", err
	}
	defer conn.Close()
	svc := ""
	if g.Service != nil {
		svc = *g.Service
	}
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
	if err != nil {
		return false, fmt.Sprintf("failed to connect service %q within %v: %v", addr, timeout, err), nil
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return false, fmt.Sprintf("service unhealthy (responded with %q)", resp.GetStatus()), nil
	}
	return true, "", nil
}
