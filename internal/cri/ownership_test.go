package cri

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/peapod/peapod/internal/config"
	"github.com/peapod/peapod/internal/runtime"
)

// A kubelet removes every sandbox it does not know. The CRI must therefore
// never list, describe, stop or remove a sandbox of the pod manager (owner
// "kubelet"), which runs beside it in the same runtime.
func TestCRINeverSeesThePodManagersSandboxes(t *testing.T) {
	for _, bin := range []string{"runc", "conmon", "/usr/bin/catatonit", "/usr/lib/cni/bridge"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is missing: install it with `make deps`", bin)
		}
	}
	ctx := context.Background()
	dir := t.TempDir()
	images := newTestImages(t)
	bridge := fmt.Sprintf("ppo%08x", rand.Uint32())
	rt, err := runtime.New(ctx, runtime.Options{
		Root: filepath.Join(dir, "r"), State: filepath.Join(dir, "s"),
		Network: config.Network{
			CNIConfDir: filepath.Join(dir, "cni"), CNIBinDirs: []string{"/usr/lib/cni"},
			Bridge: bridge, Subnet: fmt.Sprintf("10.%d.%d.0/24", 230+rand.IntN(20), rand.IntN(256)),
		},
		Images: images, Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		rt.Close()
		_ = exec.Command("ip", "link", "del", bridge).Run()
	})
	mgr := rt.For("kubelet")
	sb, err := mgr.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: "managed", Namespace: "default", Uid: "uid-managed"},
		Linux:    &runtimeapi.LinuxPodSandboxConfig{},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = mgr.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.PodSandboxId})
		if _, err := mgr.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.PodSandboxId}); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})

	_, c, _ := serve(t, Options{Runtime: rt.For(Owner), Images: images})
	list, err := c.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil || len(list.Items) != 0 {
		t.Errorf("CRI ListPodSandbox = %v, %v; want nothing of the pod manager's", list, err)
	}
	if _, err := c.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: sb.PodSandboxId}); status.Code(err) != codes.NotFound {
		t.Errorf("CRI PodSandboxStatus of the pod manager's sandbox: %v, want NotFound", err)
	}
	// Stop and remove are idempotent (OK), and must not touch it.
	if _, err := c.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.PodSandboxId}); err != nil {
		t.Errorf("CRI StopPodSandbox: %v", err)
	}
	if _, err := c.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.PodSandboxId}); err != nil {
		t.Errorf("CRI RemovePodSandbox: %v", err)
	}
	st, err := mgr.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: sb.PodSandboxId})
	if err != nil || st.GetStatus().GetState() != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Errorf("the pod manager's sandbox after the CRI's stop/remove: %v, %v; want it untouched and ready", st, err)
	}
	// And the other way round: the CRI's sandboxes are not the manager's.
	own, err := c.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: "managed", Namespace: "default", Uid: "uid-cri"},
		Linux:    &runtimeapi.LinuxPodSandboxConfig{},
	}})
	if err != nil {
		t.Fatalf("CRI RunPodSandbox with the same name as the manager's pod: %v", err)
	}
	t.Cleanup(func() {
		_, _ = c.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: own.PodSandboxId})
		if _, err := c.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: own.PodSandboxId}); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	mlist, err := mgr.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil || len(mlist.Items) != 1 || mlist.Items[0].Id != sb.PodSandboxId {
		t.Errorf("pod manager's list = %v, %v; want only its own sandbox", mlist, err)
	}
	list, err = c.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil || len(list.Items) != 1 || list.Items[0].Id != own.PodSandboxId {
		t.Errorf("CRI list = %v, %v; want only the CRI's sandbox", list, err)
	}
}
