package cri

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
)

// quiet drops the logs of servers under test.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// errGone stands for the runtime's "no such sandbox/container" error.
var errGone = errors.New("no such object")

func init() { RegisterErrorCode(errGone, codes.NotFound) }

// fakeRuntime records calls and answers from canned values; unit tests of
// the mapping only (the integration tests in test/cri use the real one).
type fakeRuntime struct {
	mu       sync.Mutex
	calls    []string
	err      error // returned by every lifecycle call when set
	state    runtimeapi.ContainerState
	sbState  runtimeapi.PodSandboxState
	execCode int
}

func (f *fakeRuntime) call(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, name)
	return f.err
}

func (f *fakeRuntime) RunPodSandbox(ctx context.Context, r *runtimeapi.RunPodSandboxRequest) (*runtimeapi.RunPodSandboxResponse, error) {
	return &runtimeapi.RunPodSandboxResponse{PodSandboxId: "sb1"}, f.call("RunPodSandbox")
}
func (f *fakeRuntime) StopPodSandbox(ctx context.Context, r *runtimeapi.StopPodSandboxRequest) (*runtimeapi.StopPodSandboxResponse, error) {
	return &runtimeapi.StopPodSandboxResponse{}, f.call("StopPodSandbox")
}
func (f *fakeRuntime) RemovePodSandbox(ctx context.Context, r *runtimeapi.RemovePodSandboxRequest) (*runtimeapi.RemovePodSandboxResponse, error) {
	return &runtimeapi.RemovePodSandboxResponse{}, f.call("RemovePodSandbox")
}
func (f *fakeRuntime) PodSandboxStatus(ctx context.Context, r *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	if err := f.call("PodSandboxStatus"); err != nil {
		return nil, err
	}
	return &runtimeapi.PodSandboxStatusResponse{Status: &runtimeapi.PodSandboxStatus{Id: r.PodSandboxId, State: f.sbState}}, nil
}
func (f *fakeRuntime) ListPodSandbox(ctx context.Context, r *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	return &runtimeapi.ListPodSandboxResponse{}, f.call("ListPodSandbox")
}
func (f *fakeRuntime) CreateContainer(ctx context.Context, r *runtimeapi.CreateContainerRequest) (*runtimeapi.CreateContainerResponse, error) {
	return &runtimeapi.CreateContainerResponse{ContainerId: "c1"}, f.call("CreateContainer")
}
func (f *fakeRuntime) StartContainer(ctx context.Context, r *runtimeapi.StartContainerRequest) (*runtimeapi.StartContainerResponse, error) {
	return &runtimeapi.StartContainerResponse{}, f.call("StartContainer")
}
func (f *fakeRuntime) StopContainer(ctx context.Context, r *runtimeapi.StopContainerRequest) (*runtimeapi.StopContainerResponse, error) {
	return &runtimeapi.StopContainerResponse{}, f.call("StopContainer")
}
func (f *fakeRuntime) RemoveContainer(ctx context.Context, r *runtimeapi.RemoveContainerRequest) (*runtimeapi.RemoveContainerResponse, error) {
	return &runtimeapi.RemoveContainerResponse{}, f.call("RemoveContainer")
}
func (f *fakeRuntime) ContainerStatus(ctx context.Context, r *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	if err := f.call("ContainerStatus"); err != nil {
		return nil, err
	}
	return &runtimeapi.ContainerStatusResponse{Status: &runtimeapi.ContainerStatus{Id: r.ContainerId, State: f.state}}, nil
}
func (f *fakeRuntime) ListContainers(ctx context.Context, r *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	return &runtimeapi.ListContainersResponse{}, f.call("ListContainers")
}
func (f *fakeRuntime) UpdateContainerResources(ctx context.Context, r *runtimeapi.UpdateContainerResourcesRequest) (*runtimeapi.UpdateContainerResourcesResponse, error) {
	return &runtimeapi.UpdateContainerResourcesResponse{}, f.call("UpdateContainerResources")
}
func (f *fakeRuntime) ReopenContainerLog(ctx context.Context, r *runtimeapi.ReopenContainerLogRequest) (*runtimeapi.ReopenContainerLogResponse, error) {
	return &runtimeapi.ReopenContainerLogResponse{}, f.call("ReopenContainerLog")
}
func (f *fakeRuntime) ExecSync(ctx context.Context, r *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
	return &runtimeapi.ExecSyncResponse{ExitCode: int32(f.execCode)}, f.call("ExecSync")
}
func (f *fakeRuntime) Exec(ctx context.Context, id string, cmd []string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	return f.call("Exec")
}
func (f *fakeRuntime) Attach(ctx context.Context, id string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	return f.call("Attach")
}
func (f *fakeRuntime) PortForward(ctx context.Context, id string, port int32, stream io.ReadWriteCloser) error {
	return f.call("PortForward")
}
func (f *fakeRuntime) ContainerStats(ctx context.Context, r *runtimeapi.ContainerStatsRequest) (*runtimeapi.ContainerStatsResponse, error) {
	return &runtimeapi.ContainerStatsResponse{}, f.call("ContainerStats")
}
func (f *fakeRuntime) ListContainerStats(ctx context.Context, r *runtimeapi.ListContainerStatsRequest) (*runtimeapi.ListContainerStatsResponse, error) {
	return &runtimeapi.ListContainerStatsResponse{}, f.call("ListContainerStats")
}
func (f *fakeRuntime) PodSandboxStats(ctx context.Context, r *runtimeapi.PodSandboxStatsRequest) (*runtimeapi.PodSandboxStatsResponse, error) {
	return &runtimeapi.PodSandboxStatsResponse{}, f.call("PodSandboxStats")
}
func (f *fakeRuntime) ListPodSandboxStats(ctx context.Context, r *runtimeapi.ListPodSandboxStatsRequest) (*runtimeapi.ListPodSandboxStatsResponse, error) {
	return &runtimeapi.ListPodSandboxStatsResponse{}, f.call("ListPodSandboxStats")
}

// clients are the two CRI services over one connection.
type clients struct {
	rt  runtimeapi.RuntimeServiceClient
	img runtimeapi.ImageServiceClient
}

// serve runs a Server on a socket in a temporary directory and connects a
// gRPC client to it.
func serve(t *testing.T, opts Options) (*Server, clients, string) {
	t.Helper()
	if opts.Runtime == nil {
		opts.Runtime = &fakeRuntime{}
	}
	if opts.Images == nil {
		opts.Images = newTestImages(t)
	}
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "cri", "peapod.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, sock) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := clients{rt: runtimeapi.NewRuntimeServiceClient(conn), img: runtimeapi.NewImageServiceClient(conn)}
	// Wait for the socket to answer.
	for i := 0; ; i++ {
		_, err := c.rt.Version(context.Background(), &runtimeapi.VersionRequest{})
		if err == nil {
			break
		}
		if i > 200 {
			t.Fatalf("server did not answer: %v", err)
		}
		select {
		case err := <-done:
			t.Fatalf("Serve ended: %v", err)
		default:
		}
		waitABit()
	}
	return srv, c, sock
}

func code(err error) codes.Code { return status.Code(err) }

func TestVersionStatusRuntimeConfigAndSocketMode(t *testing.T) {
	netErr := errors.New("cni config uninitialized: no network config found in /etc/cni/net.d")
	var netDown bool
	var mu sync.Mutex
	_, c, sock := serve(t, Options{
		Version: "1.2.3",
		NetworkReady: func(context.Context) error {
			mu.Lock()
			defer mu.Unlock()
			if netDown {
				return netErr
			}
			return nil
		},
	})
	ctx := context.Background()

	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o660 || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("socket mode = %v, want a socket with 0660", fi.Mode())
	}

	v, err := c.rt.Version(ctx, &runtimeapi.VersionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if v.RuntimeName != "peapod" || v.RuntimeApiVersion != "v1" || v.RuntimeVersion != "1.2.3" || v.Version != "0.1.0" {
		t.Errorf("Version = %+v", v)
	}

	cond := func(st *runtimeapi.StatusResponse, typ string) *runtimeapi.RuntimeCondition {
		for _, c := range st.GetStatus().GetConditions() {
			if c.Type == typ {
				return c
			}
		}
		t.Fatalf("no %s condition in %v", typ, st)
		return nil
	}
	st, err := c.rt.Status(ctx, &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if !cond(st, runtimeapi.RuntimeReady).Status || !cond(st, runtimeapi.NetworkReady).Status {
		t.Errorf("conditions not ready: %v", st.Status.Conditions)
	}
	mu.Lock()
	netDown = true
	mu.Unlock()
	st, err = c.rt.Status(ctx, &runtimeapi.StatusRequest{Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	nc := cond(st, runtimeapi.NetworkReady)
	if nc.Status || nc.Reason != "NetworkPluginNotReady" || nc.Message != "Network plugin returns error: "+netErr.Error() {
		t.Errorf("network condition = %+v", nc)
	}
	if st.Info["config"] == "" {
		t.Error("verbose Status has no config info")
	}

	rc, err := c.rt.RuntimeConfig(ctx, &runtimeapi.RuntimeConfigRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if rc.GetLinux().GetCgroupDriver() != runtimeapi.CgroupDriver_CGROUPFS {
		t.Errorf("cgroup driver = %v, want CGROUPFS", rc.GetLinux().GetCgroupDriver())
	}
}

// Kubernetes' idempotency rules: stop and remove of what is gone succeed;
// status of what is gone is NotFound.
func TestIdempotentStopAndRemove(t *testing.T) {
	rt := &fakeRuntime{err: fmt.Errorf("container abc: %w", errGone)}
	_, c, _ := serve(t, Options{Runtime: rt})
	ctx := context.Background()
	okCalls := map[string]func() error{
		"StopPodSandbox": func() error {
			_, err := c.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: "gone"})
			return err
		},
		"RemovePodSandbox": func() error {
			_, err := c.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: "gone"})
			return err
		},
		"StopContainer": func() error {
			_, err := c.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: "gone", Timeout: 1})
			return err
		},
		"RemoveContainer": func() error {
			_, err := c.rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: "gone"})
			return err
		},
	}
	for name, f := range okCalls {
		if err := f(); err != nil {
			t.Errorf("%s of a missing object: %v, want success", name, err)
		}
	}
	_, err := c.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: "gone"})
	if code(err) != codes.NotFound || status.Convert(err).Message() != "container abc: no such object" {
		t.Errorf("ContainerStatus of a missing container: %v, want NotFound with the runtime's message", err)
	}
	_, err = c.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: "gone"})
	if code(err) != codes.NotFound {
		t.Errorf("PodSandboxStatus of a missing sandbox: %v, want NotFound", err)
	}
	// Other failures are not swallowed.
	rt.err = errors.New("runc kill: permission denied")
	if _, err := c.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: "x"}); code(err) != codes.Unknown {
		t.Errorf("StopContainer failure: %v, want Unknown", err)
	}
}

func TestRequestValidation(t *testing.T) {
	_, c, _ := serve(t, Options{})
	ctx := context.Background()
	for name, f := range map[string]func() error{
		"RunPodSandbox without metadata": func() error {
			_, err := c.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{}})
			return err
		},
		"RunPodSandbox with unknown handler": func() error {
			_, err := c.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{RuntimeHandler: "kata", Config: &runtimeapi.PodSandboxConfig{
				Metadata: &runtimeapi.PodSandboxMetadata{Name: "a", Namespace: "b", Uid: "c"}}})
			return err
		},
		"CreateContainer without image": func() error {
			_, err := c.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: "sb", Config: &runtimeapi.ContainerConfig{
				Metadata: &runtimeapi.ContainerMetadata{Name: "c"}}})
			return err
		},
		"CreateContainer with run_as_group but no user": func() error {
			_, err := c.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: "sb", Config: &runtimeapi.ContainerConfig{
				Metadata: &runtimeapi.ContainerMetadata{Name: "c"}, Image: &runtimeapi.ImageSpec{Image: "busybox"},
				Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
					RunAsGroup: &runtimeapi.Int64Value{Value: 10}}}}})
			return err
		},
		"StartContainer without id": func() error {
			_, err := c.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{})
			return err
		},
		"ExecSync without command": func() error {
			_, err := c.rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: "c"})
			return err
		},
		"Exec with tty and stderr": func() error {
			_, err := c.rt.Exec(ctx, &runtimeapi.ExecRequest{ContainerId: "c", Cmd: []string{"sh"}, Tty: true, Stderr: true, Stdout: true})
			return err
		},
		"PullImage without image": func() error {
			_, err := c.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{}})
			return err
		},
		"PullImage with an invalid name": func() error {
			_, err := c.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: "Busybox"}})
			return err
		},
	} {
		if err := f(); code(err) != codes.InvalidArgument {
			t.Errorf("%s: %v, want InvalidArgument", name, err)
		}
	}
}

func TestStreamingURLsOnlyForRunningContainers(t *testing.T) {
	rt := &fakeRuntime{state: runtimeapi.ContainerState_CONTAINER_EXITED, sbState: runtimeapi.PodSandboxState_SANDBOX_NOTREADY}
	srv, c, _ := serve(t, Options{Runtime: rt})
	ctx := context.Background()
	_, err := c.rt.Exec(ctx, &runtimeapi.ExecRequest{ContainerId: "c1", Cmd: []string{"true"}, Stdout: true})
	if code(err) != codes.FailedPrecondition {
		t.Errorf("Exec in an exited container: %v, want FailedPrecondition", err)
	}
	_, err = c.rt.PortForward(ctx, &runtimeapi.PortForwardRequest{PodSandboxId: "sb1", Port: []int32{80}})
	if code(err) != codes.FailedPrecondition {
		t.Errorf("PortForward to a stopped sandbox: %v, want FailedPrecondition", err)
	}
	rt.state, rt.sbState = runtimeapi.ContainerState_CONTAINER_RUNNING, runtimeapi.PodSandboxState_SANDBOX_READY
	for name, get := range map[string]func() (string, error){
		"exec": func() (string, error) {
			r, err := c.rt.Exec(ctx, &runtimeapi.ExecRequest{ContainerId: "c1", Cmd: []string{"true"}, Stdout: true})
			return r.GetUrl(), err
		},
		"attach": func() (string, error) {
			r, err := c.rt.Attach(ctx, &runtimeapi.AttachRequest{ContainerId: "c1", Stdout: true})
			return r.GetUrl(), err
		},
		"portforward": func() (string, error) {
			r, err := c.rt.PortForward(ctx, &runtimeapi.PortForwardRequest{PodSandboxId: "sb1", Port: []int32{80}})
			return r.GetUrl(), err
		},
	} {
		u, err := get()
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if want := srv.StreamURL() + "/" + name + "/"; len(u) <= len(want) || u[:len(want)] != want {
			t.Errorf("%s URL = %q, want under %q", name, u, want)
		}
	}
}

func TestUnimplementedNewerCalls(t *testing.T) {
	_, c, _ := serve(t, Options{})
	ctx := context.Background()
	if _, err := c.rt.CheckpointContainer(ctx, &runtimeapi.CheckpointContainerRequest{ContainerId: "c"}); code(err) != codes.Unimplemented {
		t.Errorf("CheckpointContainer: %v", err)
	}
	// The fake runtime is no MetricsProvider: metrics are Unimplemented,
	// so a kubelet falls back to the stats calls (see metrics_test.go for
	// a runtime that serves them).
	if _, err := c.rt.ListMetricDescriptors(ctx, &runtimeapi.ListMetricDescriptorsRequest{}); code(err) != codes.Unimplemented {
		t.Errorf("ListMetricDescriptors: %v", err)
	}
	if _, err := c.rt.ListPodSandboxMetrics(ctx, &runtimeapi.ListPodSandboxMetricsRequest{}); code(err) != codes.Unimplemented {
		t.Errorf("ListPodSandboxMetrics: %v", err)
	}
	if _, err := c.rt.UpdateRuntimeConfig(ctx, &runtimeapi.UpdateRuntimeConfigRequest{RuntimeConfig: &runtimeapi.RuntimeConfig{
		NetworkConfig: &runtimeapi.NetworkConfig{PodCidr: "10.0.0.0/24"}}}); err != nil {
		t.Errorf("UpdateRuntimeConfig: %v", err)
	}
}
