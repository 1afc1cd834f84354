package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// criClient is the one CRI client used for both runtimes.
type criClient struct {
	conn *grpc.ClientConn
	rt   runtimeapi.RuntimeServiceClient
	img  runtimeapi.ImageServiceClient
}

func dialCRI(ep string) (*criClient, error) {
	conn, err := grpc.NewClient(ep, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", ep, err)
	}
	return &criClient{conn: conn, rt: runtimeapi.NewRuntimeServiceClient(conn), img: runtimeapi.NewImageServiceClient(conn)}, nil
}

func (c *criClient) close() { c.conn.Close() }

func (c *criClient) removePod(ctx context.Context, id string) error {
	if _, err := c.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
		return fmt.Errorf("stop pod %s: %w", id, err)
	}
	if _, err := c.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
		return fmt.Errorf("remove pod %s: %w", id, err)
	}
	return nil
}

// seccompProfile is the profile a mode puts into the pod's and the
// container's security context: nil for "none" (crictl's and critest's
// requests carry none; peapod then applies RuntimeDefault as CRI-O does,
// containerd runs unconfined).
func seccompProfile(mode string) (*runtimeapi.SecurityProfile, error) {
	switch mode {
	case "none":
		return nil, nil
	case "unconfined":
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}, nil
	case "runtime-default":
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}, nil
	}
	return nil, fmt.Errorf("seccomp mode %q: not none, unconfined or runtime-default", mode)
}

// grpcResult is one runtime's pod starts in one seccomp mode.
type grpcResult struct {
	Runtime, Seccomp string
	// Per pod, in milliseconds: RunPodSandbox, CreateContainer,
	// StartContainer and their sum.
	Run, Create, Start, Total []float64
}

// grpcPodStart starts warmup+n one-container pods on every daemon,
// interleaved: pod i starts on each runtime in turn (the first one
// alternating), so that both see the same machine, load included. Each
// start is timed RunPodSandbox → CreateContainer → StartContainer; the pod
// is then stopped and removed (untimed), so every start sees the same
// number of running pods.
func grpcPodStart(ctx context.Context, ds []daemon, mode string, warmup, n int, logRoot string) ([]grpcResult, error) {
	prof, err := seccompProfile(mode)
	if err != nil {
		return nil, err
	}
	res := make([]grpcResult, len(ds))
	clients := make([]*criClient, len(ds))
	for j, d := range ds {
		res[j] = grpcResult{Runtime: d.name(), Seccomp: mode}
		c, err := dialCRI(d.endpoint())
		if err != nil {
			return nil, err
		}
		defer c.close()
		clients[j] = c
		if _, err := c.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: busyboxImage}}); err != nil {
			return nil, fmt.Errorf("%s: pull %s: %w", d.name(), busyboxImage, err)
		}
	}
	for i := range warmup + n {
		for k := range ds {
			j := k
			if i%2 == 1 {
				j = len(ds) - 1 - k
			}
			run, create, start, err := onePod(ctx, clients[j], prof, fmt.Sprintf("grpc-%s-%d", mode, i), filepath.Join(logRoot, ds[j].name()))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", ds[j].name(), err)
			}
			if i < warmup {
				continue
			}
			r := &res[j]
			r.Run, r.Create, r.Start = append(r.Run, run), append(r.Create, create), append(r.Start, start)
			r.Total = append(r.Total, run+create+start)
		}
	}
	return res, nil
}

// onePod starts one pod, returns the three calls' durations in ms, and
// removes the pod.
func onePod(ctx context.Context, c *criClient, prof *runtimeapi.SecurityProfile, name, logRoot string) (run, create, start float64, err error) {
	logDir := filepath.Join(logRoot, name)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return 0, 0, 0, err
	}
	pod := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "bench-pod", Uid: fmt.Sprintf("%s-%d", name, os.Getpid())},
		LogDirectory: logDir,
		Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{},
			Seccomp:          prof,
		}},
	}
	ctr := &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "sleeper"},
		Image:    &runtimeapi.ImageSpec{Image: busyboxImage},
		Command:  []string{"sleep", "3600"},
		LogPath:  "sleeper.log",
		Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{},
			Seccomp:          prof,
		}},
	}
	t0 := time.Now()
	rp, err := c.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: pod})
	if err != nil {
		return 0, 0, 0, fmt.Errorf("RunPodSandbox %s: %w", name, err)
	}
	defer func() {
		if rerr := c.removePod(context.WithoutCancel(ctx), rp.PodSandboxId); err == nil {
			err = rerr
		}
	}()
	t1 := time.Now()
	cc, err := c.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: rp.PodSandboxId, Config: ctr, SandboxConfig: pod})
	if err != nil {
		return 0, 0, 0, fmt.Errorf("CreateContainer %s: %w", name, err)
	}
	t2 := time.Now()
	if _, err := c.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: cc.ContainerId}); err != nil {
		return 0, 0, 0, fmt.Errorf("StartContainer %s: %w", name, err)
	}
	t3 := time.Now()
	ms := func(a, b time.Time) float64 { return float64(b.Sub(a).Microseconds()) / 1000 }
	return ms(t0, t1), ms(t1, t2), ms(t2, t3), nil
}

// pct is the p-th percentile (nearest rank) of v.
func pct(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}
