package kubelet

import (
	"context"
	"sort"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// podState is what the runtime has for one pod, newest first.
type podState struct {
	sandboxes  []*sandboxState
	containers []*containerState
}

type sandboxState struct {
	id      string
	attempt uint32
	ready   bool
	created time.Time
	ips     []string
}

type containerState struct {
	id, sandboxID, name string
	restartCount        int
	hash                string
	state               runtimeapi.ContainerState
	created, started    time.Time
	finished            time.Time
	exitCode            int32
	reason, message     string
	imageRef            string
	logPath             string
}

func (c *containerState) running() bool {
	return c.state == runtimeapi.ContainerState_CONTAINER_RUNNING
}
func (c *containerState) exited() bool { return c.state == runtimeapi.ContainerState_CONTAINER_EXITED }

func nanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// runtimeState reads the pod's sandboxes and containers.
func (k *Kubelet) runtimeState(ctx context.Context, uid types.UID) (*podState, error) {
	sel := map[string]string{LabelPodUID: string(uid)}
	sbs, err := k.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{LabelSelector: sel}})
	if err != nil {
		return nil, err
	}
	st := &podState{}
	for _, sb := range sbs.GetItems() {
		s := &sandboxState{
			id: sb.GetId(), attempt: sb.GetMetadata().GetAttempt(),
			ready:   sb.GetState() == runtimeapi.PodSandboxState_SANDBOX_READY,
			created: nanos(sb.GetCreatedAt()),
		}
		if s.ready {
			if resp, err := k.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: sb.GetId()}); err == nil {
				s.ready = resp.GetStatus().GetState() == runtimeapi.PodSandboxState_SANDBOX_READY
				if n := resp.GetStatus().GetNetwork(); n != nil && n.GetIp() != "" {
					s.ips = append(s.ips, n.GetIp())
					for _, ip := range n.GetAdditionalIps() {
						s.ips = append(s.ips, ip.GetIp())
					}
				}
			}
		}
		st.sandboxes = append(st.sandboxes, s)
	}
	sort.Slice(st.sandboxes, func(i, j int) bool {
		a, b := st.sandboxes[i], st.sandboxes[j]
		if a.attempt != b.attempt {
			return a.attempt > b.attempt
		}
		return a.created.After(b.created)
	})
	cs, err := k.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{LabelSelector: sel}})
	if err != nil {
		return nil, err
	}
	for _, c := range cs.GetContainers() {
		resp, err := k.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: c.GetId()})
		if err != nil {
			continue // removed meanwhile
		}
		s := resp.GetStatus()
		rc, _ := strconv.Atoi(s.GetAnnotations()[AnnotationRestartCount])
		st.containers = append(st.containers, &containerState{
			id: c.GetId(), sandboxID: c.GetPodSandboxId(), name: s.GetMetadata().GetName(),
			restartCount: rc, hash: s.GetAnnotations()[AnnotationContainerHash],
			state:   s.GetState(),
			created: nanos(s.GetCreatedAt()), started: nanos(s.GetStartedAt()), finished: nanos(s.GetFinishedAt()),
			exitCode: s.GetExitCode(), reason: s.GetReason(), message: s.GetMessage(),
			imageRef: s.GetImageRef(), logPath: s.GetLogPath(),
		})
	}
	sort.Slice(st.containers, func(i, j int) bool {
		a, b := st.containers[i], st.containers[j]
		if a.restartCount != b.restartCount {
			return a.restartCount > b.restartCount
		}
		return a.created.After(b.created)
	})
	return st, nil
}

// current is the newest sandbox, nil when there is none.
func (s *podState) current() *sandboxState {
	if len(s.sandboxes) == 0 {
		return nil
	}
	return s.sandboxes[0]
}

// latest is the newest container of a name in any sandbox.
func (s *podState) latest(name string) *containerState {
	for _, c := range s.containers {
		if c.name == name {
			return c
		}
	}
	return nil
}

// previous is the container of a name before the latest one.
func (s *podState) previous(name string) *containerState {
	seen := false
	for _, c := range s.containers {
		if c.name == name {
			if seen {
				return c
			}
			seen = true
		}
	}
	return nil
}

// in is the newest container of a name in sandbox id.
func (s *podState) in(sandboxID, name string) *containerState {
	for _, c := range s.containers {
		if c.name == name && c.sandboxID == sandboxID {
			return c
		}
	}
	return nil
}
