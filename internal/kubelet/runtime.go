package kubelet

import (
	"context"

	"k8s.io/apimachinery/pkg/watch"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/peapod/peapod/internal/objects"
	"github.com/peapod/peapod/internal/store"
)

// Owner is the runtime owner the kubelet's sandboxes belong to.
const Owner = "kubelet"

// Runtime is the part of the CRI RuntimeService the kubelet uses, with the
// CRI's own types (*runtime.View of owner "kubelet" implements it).
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
	ExecSync(context.Context, *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error)
	ReopenContainerLog(context.Context, *runtimeapi.ReopenContainerLogRequest) (*runtimeapi.ReopenContainerLogResponse, error)
}

// Store is what the kubelet needs from the object store (*store.Store).
type Store interface {
	Get(ctx context.Context, resource, ns, name string) (objects.Object, error)
	List(ctx context.Context, resource, ns string, opts store.ListOptions) ([]objects.Object, string, error)
	Watch(ctx context.Context, resource, ns string, opts store.ListOptions) (watch.Interface, error)
	Create(ctx context.Context, obj objects.Object, opts ...store.Option) (objects.Object, error)
	GuaranteedUpdate(ctx context.Context, resource, ns, name string, fn func(cur objects.Object) (objects.Object, error), opts ...store.Option) (objects.Object, error)
	Delete(ctx context.Context, resource, ns, name string, opts store.DeleteOptions) (objects.Object, bool, error)
}

var _ Store = (*store.Store)(nil)
