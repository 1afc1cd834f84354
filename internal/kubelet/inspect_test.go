package kubelet

import (
	"context"
	"encoding/json"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// verboseRuntime adds the verbose info a real runtime View gives (host
// PIDs) to the fake's statuses: the sandbox's infra process is 100, a
// container's process 200 + its position in pids.
type verboseRuntime struct {
	Runtime
	pids map[string]int
}

func (v *verboseRuntime) info(pid int) map[string]string {
	b, _ := json.Marshal(map[string]any{"pid": pid, "netns": "/run/netns/x"})
	return map[string]string{"info": string(b)}
}

func (v *verboseRuntime) PodSandboxStatus(ctx context.Context, r *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	resp, err := v.Runtime.PodSandboxStatus(ctx, r)
	if err == nil && r.GetVerbose() {
		resp.Info = v.info(100)
	}
	return resp, err
}

func (v *verboseRuntime) ContainerStatus(ctx context.Context, r *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	resp, err := v.Runtime.ContainerStatus(ctx, r)
	if err == nil && r.GetVerbose() {
		if _, ok := v.pids[r.GetContainerId()]; !ok {
			v.pids[r.GetContainerId()] = 200 + len(v.pids)
		}
		resp.Info = v.info(v.pids[r.GetContainerId()])
	}
	return resp, err
}

func TestInspectPodGivesSandboxAndHostPIDs(t *testing.T) {
	h := newHarness(t)
	h.create(simplePod("web", corev1.RestartPolicyAlways, "b", "a"))
	h.k.rt = &verboseRuntime{Runtime: h.rt, pids: map[string]int{}}

	in, err := h.k.InspectPod(h.ctx, "default", "web")
	if err != nil {
		t.Fatal(err)
	}
	if in.SandboxID != "" || in.InfraPID != 0 || len(in.Containers) != 0 || in.UID == "" {
		t.Errorf("before its first sync the pod has no sandbox or containers, got %+v", in)
	}

	h.sync("web")
	in, err = h.k.InspectPod(h.ctx, "default", "web")
	if err != nil {
		t.Fatal(err)
	}
	if in.SandboxID == "" || !in.Ready || in.InfraPID != 100 || in.NetNS != "/run/netns/x" {
		t.Errorf("sandbox %q ready %v infra pid %d netns %q", in.SandboxID, in.Ready, in.InfraPID, in.NetNS)
	}
	if len(in.Containers) != 2 || in.Containers[0].Name != "a" || in.Containers[1].Name != "b" {
		t.Fatalf("want containers a and b, by name, got %+v", in.Containers)
	}
	for _, c := range in.Containers {
		if c.ID == "" || c.State != "CONTAINER_RUNNING" || c.PID < 200 {
			t.Errorf("container %+v: want an ID, running, with its host PID", c)
		}
	}
	if in.Containers[0].PID == in.Containers[1].PID {
		t.Errorf("both containers have PID %d", in.Containers[0].PID)
	}

	if _, err := h.k.InspectPod(h.ctx, "default", "nope"); !apierrors.IsNotFound(err) {
		t.Errorf("inspect of a missing pod: %v, want NotFound", err)
	}
}
