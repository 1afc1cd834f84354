package kubelet

import (
	"context"
	"fmt"
	"strings"
	"sync"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/clock"

	"github.com/peapod/peapod/internal/cgroup"
)

// fakeRuntime is an in-memory CRI runtime: containers run until the test
// makes them exit.
type fakeRuntime struct {
	clock clock.PassiveClock

	mu         sync.Mutex
	n          int
	sandboxes  map[string]*fakeSandbox
	containers map[string]*fakeContainer
	stops      []int64  // timeouts of StopContainer calls on running containers
	stopped    []string // names of the containers stopped, in order
	created    []string
	// exec answers ExecSync when set (probes); nil: exit 0 with "ok".
	exec  func(name string, cmd []string) (*runtimeapi.ExecSyncResponse, error)
	execs []string // "<container> <cmd>" of every ExecSync
	// reopened lists the containers whose log was reopened.
	reopened []string
}

type fakeSandbox struct {
	id      string
	cfg     *runtimeapi.PodSandboxConfig
	ready   bool
	created int64
}

type fakeContainer struct {
	id, sandbox string
	cfg         *runtimeapi.ContainerConfig
	state       runtimeapi.ContainerState
	created     int64
	started     int64
	finished    int64
	exitCode    int32
	logPath     string
}

func newFakeRuntime(clk clock.PassiveClock) *fakeRuntime {
	return &fakeRuntime{clock: clk, sandboxes: map[string]*fakeSandbox{}, containers: map[string]*fakeContainer{}}
}

func (f *fakeRuntime) now() int64 { return f.clock.Now().UnixNano() }

func (f *fakeRuntime) id(prefix string) string {
	f.n++
	return fmt.Sprintf("%s%062d", prefix, f.n)
}

func (f *fakeRuntime) RunPodSandbox(_ context.Context, r *runtimeapi.RunPodSandboxRequest) (*runtimeapi.RunPodSandboxResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := &fakeSandbox{id: f.id("sb"), cfg: r.GetConfig(), ready: true, created: f.now()}
	f.sandboxes[s.id] = s
	return &runtimeapi.RunPodSandboxResponse{PodSandboxId: s.id}, nil
}

func (f *fakeRuntime) StopPodSandbox(_ context.Context, r *runtimeapi.StopPodSandboxRequest) (*runtimeapi.StopPodSandboxResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.sandboxes[r.GetPodSandboxId()]; ok {
		s.ready = false
		for _, c := range f.containers {
			if c.sandbox == s.id && c.state == runtimeapi.ContainerState_CONTAINER_RUNNING {
				c.state, c.finished, c.exitCode = runtimeapi.ContainerState_CONTAINER_EXITED, f.now(), 137
			}
		}
	}
	return &runtimeapi.StopPodSandboxResponse{}, nil
}

func (f *fakeRuntime) RemovePodSandbox(_ context.Context, r *runtimeapi.RemovePodSandboxRequest) (*runtimeapi.RemovePodSandboxResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.sandboxes, r.GetPodSandboxId())
	for id, c := range f.containers {
		if c.sandbox == r.GetPodSandboxId() {
			delete(f.containers, id)
		}
	}
	return &runtimeapi.RemovePodSandboxResponse{}, nil
}

func (f *fakeRuntime) PodSandboxStatus(_ context.Context, r *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.sandboxes[r.GetPodSandboxId()]
	if !ok {
		return nil, fmt.Errorf("sandbox %s not found", r.GetPodSandboxId())
	}
	state := runtimeapi.PodSandboxState_SANDBOX_NOTREADY
	if s.ready {
		state = runtimeapi.PodSandboxState_SANDBOX_READY
	}
	return &runtimeapi.PodSandboxStatusResponse{Status: &runtimeapi.PodSandboxStatus{
		Id: s.id, Metadata: s.cfg.GetMetadata(), State: state, CreatedAt: s.created,
		Network: &runtimeapi.PodSandboxNetworkStatus{Ip: "10.88.0.5"},
	}}, nil
}

func matches(labels, sel map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func (f *fakeRuntime) ListPodSandbox(_ context.Context, r *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := &runtimeapi.ListPodSandboxResponse{}
	for _, s := range f.sandboxes {
		if !matches(s.cfg.GetLabels(), r.GetFilter().GetLabelSelector()) {
			continue
		}
		state := runtimeapi.PodSandboxState_SANDBOX_NOTREADY
		if s.ready {
			state = runtimeapi.PodSandboxState_SANDBOX_READY
		}
		resp.Items = append(resp.Items, &runtimeapi.PodSandbox{Id: s.id, Metadata: s.cfg.GetMetadata(), State: state, CreatedAt: s.created, Labels: s.cfg.GetLabels()})
	}
	return resp, nil
}

func (f *fakeRuntime) CreateContainer(_ context.Context, r *runtimeapi.CreateContainerRequest) (*runtimeapi.CreateContainerResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.sandboxes[r.GetPodSandboxId()]
	if !ok || !s.ready {
		return nil, fmt.Errorf("sandbox %s not ready", r.GetPodSandboxId())
	}
	c := &fakeContainer{id: f.id("c"), sandbox: s.id, cfg: r.GetConfig(), state: runtimeapi.ContainerState_CONTAINER_CREATED, created: f.now(),
		logPath: s.cfg.GetLogDirectory() + "/" + r.GetConfig().GetLogPath()}
	f.containers[c.id] = c
	f.created = append(f.created, r.GetConfig().GetMetadata().GetName())
	return &runtimeapi.CreateContainerResponse{ContainerId: c.id}, nil
}

func (f *fakeRuntime) StartContainer(_ context.Context, r *runtimeapi.StartContainerRequest) (*runtimeapi.StartContainerResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[r.GetContainerId()]
	if !ok {
		return nil, fmt.Errorf("container %s not found", r.GetContainerId())
	}
	c.state, c.started = runtimeapi.ContainerState_CONTAINER_RUNNING, f.now()
	return &runtimeapi.StartContainerResponse{}, nil
}

func (f *fakeRuntime) StopContainer(_ context.Context, r *runtimeapi.StopContainerRequest) (*runtimeapi.StopContainerResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.containers[r.GetContainerId()]; ok && c.state == runtimeapi.ContainerState_CONTAINER_RUNNING {
		f.stops = append(f.stops, r.GetTimeout())
		f.stopped = append(f.stopped, c.cfg.GetMetadata().GetName())
		c.state, c.finished, c.exitCode = runtimeapi.ContainerState_CONTAINER_EXITED, f.now(), 137
	}
	return &runtimeapi.StopContainerResponse{}, nil
}

func (f *fakeRuntime) RemoveContainer(_ context.Context, r *runtimeapi.RemoveContainerRequest) (*runtimeapi.RemoveContainerResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.containers, r.GetContainerId())
	return &runtimeapi.RemoveContainerResponse{}, nil
}

func (f *fakeRuntime) ContainerStatus(_ context.Context, r *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[r.GetContainerId()]
	if !ok {
		return nil, fmt.Errorf("container %s not found", r.GetContainerId())
	}
	return &runtimeapi.ContainerStatusResponse{Status: &runtimeapi.ContainerStatus{
		Id: c.id, Metadata: c.cfg.GetMetadata(), State: c.state, CreatedAt: c.created, StartedAt: c.started,
		FinishedAt: c.finished, ExitCode: c.exitCode, ImageRef: c.cfg.GetImage().GetImage(),
		Labels: c.cfg.GetLabels(), Annotations: c.cfg.GetAnnotations(), LogPath: c.logPath,
	}}, nil
}

func (f *fakeRuntime) ListContainers(_ context.Context, r *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := &runtimeapi.ListContainersResponse{}
	for _, c := range f.containers {
		if !matches(c.cfg.GetLabels(), r.GetFilter().GetLabelSelector()) {
			continue
		}
		resp.Containers = append(resp.Containers, &runtimeapi.Container{Id: c.id, PodSandboxId: c.sandbox, Metadata: c.cfg.GetMetadata(),
			State: c.state, CreatedAt: c.created, Labels: c.cfg.GetLabels(), Annotations: c.cfg.GetAnnotations(),
			Image: c.cfg.GetImage(), ImageRef: c.cfg.GetImage().GetImage()})
	}
	return resp, nil
}

func (f *fakeRuntime) ExecSync(_ context.Context, r *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
	f.mu.Lock()
	c, ok := f.containers[r.GetContainerId()]
	if !ok || c.state != runtimeapi.ContainerState_CONTAINER_RUNNING {
		f.mu.Unlock()
		return nil, fmt.Errorf("container %s is not running", r.GetContainerId())
	}
	name := c.cfg.GetMetadata().GetName()
	f.execs = append(f.execs, name+" "+strings.Join(r.GetCmd(), " "))
	exec := f.exec
	f.mu.Unlock()
	if exec != nil {
		return exec(name, r.GetCmd())
	}
	return &runtimeapi.ExecSyncResponse{Stdout: []byte("ok\n")}, nil
}

func (f *fakeRuntime) ReopenContainerLog(_ context.Context, r *runtimeapi.ReopenContainerLogRequest) (*runtimeapi.ReopenContainerLogResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[r.GetContainerId()]
	if !ok || c.state != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return nil, fmt.Errorf("container %s is not running", r.GetContainerId())
	}
	f.reopened = append(f.reopened, c.cfg.GetMetadata().GetName())
	return &runtimeapi.ReopenContainerLogResponse{}, nil
}

// exit makes the running container called name exit with code.
func (f *fakeRuntime) exit(name string, code int32) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.containers {
		if c.cfg.GetMetadata().GetName() == name && c.state == runtimeapi.ContainerState_CONTAINER_RUNNING {
			c.state, c.finished, c.exitCode = runtimeapi.ContainerState_CONTAINER_EXITED, f.now(), code
			return true
		}
	}
	return false
}

// reboot kills everything: sandboxes NOTREADY, containers exited.
func (f *fakeRuntime) reboot() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.sandboxes {
		s.ready = false
	}
	for _, c := range f.containers {
		if c.state == runtimeapi.ContainerState_CONTAINER_RUNNING {
			c.state, c.finished, c.exitCode = runtimeapi.ContainerState_CONTAINER_EXITED, f.now(), 255
		}
	}
}

func (f *fakeRuntime) createdNames() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.created, ",")
}

func (f *fakeRuntime) counts() (sandboxes, containers int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sandboxes), len(f.containers)
}

// fakeCgroups records the pod cgroups the kubelet makes and removes.
type fakeCgroups struct {
	mu      sync.Mutex
	made    map[string]cgroup.Resources
	removed []string
}

func (f *fakeCgroups) Ensure(name string, r cgroup.Resources) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.made[name] = r
	return nil
}

func (f *fakeCgroups) Remove(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.made[name]; ok {
		delete(f.made, name)
		f.removed = append(f.removed, name)
	}
	return nil
}
