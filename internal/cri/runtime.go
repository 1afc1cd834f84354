package cri

import (
	"context"

	"github.com/peapod/peapod/internal/image"
	"github.com/peapod/peapod/internal/image/keyring"
	"github.com/peapod/peapod/internal/image/store"
	"github.com/peapod/peapod/internal/runtime"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Runtime is what the server needs from the sandbox and container runtime:
// the CRI's own calls with the CRI's own types, over one owner's sandboxes
// only (the daemon passes runtime.For("cri")). Errors are plain Go errors;
// the server maps them to status codes (see errors.go).
type Runtime interface {
	RunPodSandbox(context.Context, *runtimeapi.RunPodSandboxRequest) (*runtimeapi.RunPodSandboxResponse, error)
	StopPodSandbox(context.Context, *runtimeapi.StopPodSandboxRequest) (*runtimeapi.StopPodSandboxResponse, error)
	RemovePodSandbox(context.Context, *runtimeapi.RemovePodSandboxRequest) (*runtimeapi.RemovePodSandboxResponse, error)
	PodSandboxStatus(context.Context, *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error)
	ListPodSandbox(context.Context, *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error)

	CreateContainer(context.Context, *runtimeapi.CreateContainerRequest) (*runtimeapi.CreateContainerResponse, error)
	StartContainer(context.Context, *runtimeapi.StartContainerRequest) (*runtimeapi.StartContainerResponse, error)
	StopContainer(context.Context, *runtimeapi.StopContainerRequest) (*runtimeapi.StopContainerResponse, error)
	RemoveContainer(context.Context, *runtimeapi.RemoveContainerRequest) (*runtimeapi.RemoveContainerResponse, error)
	ContainerStatus(context.Context, *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error)
	ListContainers(context.Context, *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error)
	UpdateContainerResources(context.Context, *runtimeapi.UpdateContainerResourcesRequest) (*runtimeapi.UpdateContainerResourcesResponse, error)
	ReopenContainerLog(context.Context, *runtimeapi.ReopenContainerLogRequest) (*runtimeapi.ReopenContainerLogResponse, error)
	ExecSync(context.Context, *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error)
}

// Verbose status info. The server reads, from the "info" JSON of a verbose
// ContainerStatus: "pid" (the container's process) and "bundle" (its OCI
// bundle directory, where conmon keeps its files); of a verbose
// PodSandboxStatus: "pid" (the infra process) and "netns" (the pinned
// network namespace, "" with host networking).

// StatsProvider answers the stats calls. A Runtime that implements it is
// used; otherwise the server reads the cgroups and writable layers itself.
type StatsProvider interface {
	ContainerStats(context.Context, *runtimeapi.ContainerStatsRequest) (*runtimeapi.ContainerStatsResponse, error)
	ListContainerStats(context.Context, *runtimeapi.ListContainerStatsRequest) (*runtimeapi.ListContainerStatsResponse, error)
	PodSandboxStats(context.Context, *runtimeapi.PodSandboxStatsRequest) (*runtimeapi.PodSandboxStatsResponse, error)
	ListPodSandboxStats(context.Context, *runtimeapi.ListPodSandboxStatsRequest) (*runtimeapi.ListPodSandboxStatsResponse, error)
}

// Images is what the server needs from the image service
// (*image.Service).
type Images interface {
	Pull(ctx context.Context, ref string, creds []keyring.Credential, opts image.PullOptions) (*store.Image, error)
	Status(nameOrID string) (*store.Image, error)
	List() ([]*store.Image, error)
	Remove(nameOrID string) error
}

var (
	_ Images  = (*image.Service)(nil)
	_ Runtime = (*runtime.View)(nil)
)

// Owner is the runtime owner of the CRI's sandboxes: the daemon passes
// runtime.For(Owner), and nothing else uses that owner.
const Owner = "cri"
