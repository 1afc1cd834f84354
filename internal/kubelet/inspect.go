package kubelet

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// PodInspection is what `peapod inspect pod` shows: the runtime's side of a
// pod, which the Pod object does not carry (Kubernetes keeps sandbox IDs and
// host PIDs out of the API; crictl finds them in the runtime's verbose
// status, and so does this). PIDs are in the host's PID namespace, so that
// /proc/PID/ns/* of the infra process and of each container can be compared.
type PodInspection struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid"`
	// SandboxID is the pod's newest sandbox; empty before the first one.
	SandboxID string   `json:"sandboxID,omitempty"`
	Ready     bool     `json:"ready"`
	IPs       []string `json:"ips,omitempty"`
	// InfraPID is the sandbox's infra (pause) process, 0 when not running.
	InfraPID int    `json:"infraPID"`
	NetNS    string `json:"netns,omitempty"`
	// Containers are the newest container of each name in that sandbox,
	// by name.
	Containers []ContainerInspection `json:"containers"`
}

// ContainerInspection is one container of a PodInspection.
type ContainerInspection struct {
	Name         string `json:"name"`
	ID           string `json:"id"`
	State        string `json:"state"`
	RestartCount int    `json:"restartCount"`
	// PID is the container's main process, 0 when it is not running.
	PID int `json:"pid"`
}

// verboseInfo is the part of a runtime's verbose status info read here.
type verboseInfo struct {
	PID   int    `json:"pid"`
	NetNS string `json:"netns"`
}

func parseInfo(info map[string]string) verboseInfo {
	var v verboseInfo
	_ = json.Unmarshal([]byte(info["info"]), &v) // a runtime without info leaves zeros
	return v
}

// InspectPod returns the runtime's view of pod ns/name: its current
// sandbox, infra process and containers with their host PIDs.
func (k *Kubelet) InspectPod(ctx context.Context, ns, name string) (*PodInspection, error) {
	o, err := k.store.Get(ctx, "pods", ns, name)
	if err != nil {
		return nil, err
	}
	out := &PodInspection{Namespace: ns, Name: name, UID: string(o.GetUID()), Containers: []ContainerInspection{}}
	st, err := k.runtimeState(ctx, o.GetUID())
	if err != nil {
		return nil, fmt.Errorf("inspect pod %s/%s: %w", ns, name, err)
	}
	sb := st.current()
	if sb == nil {
		return out, nil
	}
	out.SandboxID, out.Ready, out.IPs = sb.id, sb.ready, sb.ips
	if resp, err := k.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: sb.id, Verbose: true}); err == nil {
		v := parseInfo(resp.GetInfo())
		if resp.GetStatus().GetState() == runtimeapi.PodSandboxState_SANDBOX_READY {
			out.InfraPID = v.PID
		}
		out.NetNS = v.NetNS
	}
	seen := map[string]bool{}
	for _, c := range st.containers {
		if c.sandboxID != sb.id || seen[c.name] {
			continue
		}
		seen[c.name] = true
		ci := ContainerInspection{Name: c.name, ID: c.id, State: c.state.String(), RestartCount: c.restartCount}
		if c.running() {
			if resp, err := k.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: c.id, Verbose: true}); err == nil {
				ci.PID = parseInfo(resp.GetInfo()).PID
			}
		}
		out.Containers = append(out.Containers, ci)
	}
	sort.Slice(out.Containers, func(i, j int) bool { return out.Containers[i].Name < out.Containers[j].Name })
	return out, nil
}
