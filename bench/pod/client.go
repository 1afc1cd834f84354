package main

import (
	"context"
	"errors"
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

func (c *criClient) version(ctx context.Context) error {
	_, err := c.rt.Version(ctx, &runtimeapi.VersionRequest{})
	return err
}

// removeAll stops and removes every sandbox the runtime lists.
func (c *criClient) removeAll(ctx context.Context) error {
	resp, err := c.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range resp.GetItems() {
		errs = append(errs, c.removePod(ctx, p.GetId()))
	}
	return errors.Join(errs...)
}

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

// grpcPodStart starts warmup+n one-container pods one after the other,
// timing RunPodSandbox → CreateContainer → StartContainer of each; a pod is
// stopped and removed (untimed) before the next one starts, so every start
// sees the same number of running pods.
func grpcPodStart(ctx context.Context, d daemon, mode string, warmup, n int, logRoot string) (grpcResult, error) {
	res := grpcResult{Runtime: d.name(), Seccomp: mode}
	prof, err := seccompProfile(mode)
	if err != nil {
		return res, err
	}
	c, err := dialCRI(d.endpoint())
	if err != nil {
		return res, err
	}
	defer c.close()
	if _, err := c.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: busyboxImage}}); err != nil {
		return res, fmt.Errorf("pull %s: %w", busyboxImage, err)
	}
	for i := range warmup + n {
		name := fmt.Sprintf("grpc-%s-%d", mode, i)
		logDir := filepath.Join(logRoot, d.name(), name)
		if err := os.MkdirAll(logDir, 0o755); err != nil {
			return res, err
		}
		pod := &runtimeapi.PodSandboxConfig{
			Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "bench-pod", Uid: fmt.Sprintf("%s-%d-%d", name, os.Getpid(), i)},
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
			return res, fmt.Errorf("RunPodSandbox %s: %w", name, err)
		}
		t1 := time.Now()
		cc, err := c.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: rp.PodSandboxId, Config: ctr, SandboxConfig: pod})
		if err != nil {
			c.removePod(ctx, rp.PodSandboxId)
			return res, fmt.Errorf("CreateContainer %s: %w", name, err)
		}
		t2 := time.Now()
		if _, err := c.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: cc.ContainerId}); err != nil {
			c.removePod(ctx, rp.PodSandboxId)
			return res, fmt.Errorf("StartContainer %s: %w", name, err)
		}
		t3 := time.Now()
		if err := c.removePod(ctx, rp.PodSandboxId); err != nil {
			return res, err
		}
		if i < warmup {
			continue
		}
		ms := func(a, b time.Time) float64 { return float64(b.Sub(a).Microseconds()) / 1000 }
		res.Run = append(res.Run, ms(t0, t1))
		res.Create = append(res.Create, ms(t1, t2))
		res.Start = append(res.Start, ms(t2, t3))
		res.Total = append(res.Total, ms(t0, t3))
	}
	return res, nil
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
