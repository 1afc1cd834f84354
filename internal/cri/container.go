package cri

import (
	"context"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// CreateContainer creates a container in a sandbox from the image the
// kubelet has pulled; the log goes to sandbox LogDirectory + LogPath.
func (s *Server) CreateContainer(ctx context.Context, req *runtimeapi.CreateContainerRequest) (*runtimeapi.CreateContainerResponse, error) {
	if req.GetPodSandboxId() == "" {
		return nil, invalid("CreateContainer: no pod_sandbox_id")
	}
	cfg := req.GetConfig()
	if cfg.GetMetadata().GetName() == "" {
		return nil, invalid("CreateContainer: config.metadata.name is empty")
	}
	if cfg.GetImage().GetImage() == "" {
		return nil, invalid("CreateContainer: config.image.image is empty")
	}
	// A group alone would run as the image's user with a group the pod
	// did not pair with it; containerd refuses it the same way.
	if sc := cfg.GetLinux().GetSecurityContext(); sc.GetRunAsGroup() != nil && sc.GetRunAsUser() == nil && sc.GetRunAsUsername() == "" {
		return nil, invalid("CreateContainer: run_as_group %d is set without run_as_user or run_as_username", sc.GetRunAsGroup().GetValue())
	}
	resp, err := s.rt.CreateContainer(ctx, req)
	if err != nil {
		return nil, s.fail("CreateContainer", err)
	}
	return resp, nil
}

// StartContainer starts a created container.
func (s *Server) StartContainer(ctx context.Context, req *runtimeapi.StartContainerRequest) (*runtimeapi.StartContainerResponse, error) {
	if req.GetContainerId() == "" {
		return nil, invalid("StartContainer: no container_id")
	}
	resp, err := s.rt.StartContainer(ctx, req)
	if err != nil {
		return nil, s.fail("StartContainer", err)
	}
	return resp, nil
}

// StopContainer stops a container with a grace period (SIGTERM or the
// image's stop signal, then SIGKILL). A container that is gone or already
// stopped is not an error.
func (s *Server) StopContainer(ctx context.Context, req *runtimeapi.StopContainerRequest) (*runtimeapi.StopContainerResponse, error) {
	if req.GetContainerId() == "" {
		return nil, invalid("StopContainer: no container_id")
	}
	if req.GetTimeout() < 0 {
		return nil, invalid("StopContainer: negative timeout %d", req.GetTimeout())
	}
	resp, err := s.rt.StopContainer(ctx, req)
	if isNotFound(err) {
		return &runtimeapi.StopContainerResponse{}, nil
	}
	if err != nil {
		return nil, s.fail("StopContainer", err)
	}
	return resp, nil
}

// RemoveContainer removes a container, killing it if it runs. A container
// that is gone is not an error.
func (s *Server) RemoveContainer(ctx context.Context, req *runtimeapi.RemoveContainerRequest) (*runtimeapi.RemoveContainerResponse, error) {
	if req.GetContainerId() == "" {
		return nil, invalid("RemoveContainer: no container_id")
	}
	resp, err := s.rt.RemoveContainer(ctx, req)
	if isNotFound(err) {
		return &runtimeapi.RemoveContainerResponse{}, nil
	}
	if err != nil {
		return nil, s.fail("RemoveContainer", err)
	}
	return resp, nil
}

// ContainerStatus reports a container; with verbose, "info" is a JSON
// object whose "pid" is the container's main process (crictl inspect
// reads info.pid).
func (s *Server) ContainerStatus(ctx context.Context, req *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	if req.GetContainerId() == "" {
		return nil, invalid("ContainerStatus: no container_id")
	}
	resp, err := s.rt.ContainerStatus(ctx, req)
	if err != nil {
		return nil, s.fail("ContainerStatus", err)
	}
	if resp.GetStatus() != nil && resp.Status.User == nil {
		resp.Status.User = s.containerUser(ctx, resp.Status.Id)
	}
	return resp, nil
}

// containerUser is the identity the container's process runs with, from
// its OCI spec: what SupplementalGroupsPolicy made of the image's groups,
// which the kubelet reports in the pod status. Nil when unknown.
func (s *Server) containerUser(ctx context.Context, id string) *runtimeapi.ContainerUser {
	_, info, err := s.container(ctx, id)
	if err != nil {
		return nil
	}
	proc, err := processSpec(info.Bundle)
	if err != nil {
		return nil
	}
	u := proc.User
	groups := make([]int64, 0, len(u.AdditionalGids))
	for _, g := range u.AdditionalGids {
		groups = append(groups, int64(g))
	}
	return &runtimeapi.ContainerUser{Linux: &runtimeapi.LinuxContainerUser{
		Uid: int64(u.UID), Gid: int64(u.GID), SupplementalGroups: groups,
	}}
}

// ListContainers lists the CRI's containers, filtered by id (or prefix),
// state, sandbox and labels.
func (s *Server) ListContainers(ctx context.Context, req *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	resp, err := s.rt.ListContainers(ctx, req)
	if err != nil {
		return nil, s.fail("ListContainers", err)
	}
	return resp, nil
}

// StreamContainers is ListContainers in one message.
func (s *Server) StreamContainers(req *runtimeapi.StreamContainersRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamContainersResponse]) error {
	resp, err := s.ListContainers(stream.Context(), &runtimeapi.ListContainersRequest{Filter: req.GetFilter()})
	if err != nil || len(resp.Containers) == 0 {
		return err
	}
	return stream.Send(&runtimeapi.StreamContainersResponse{Containers: resp.Containers})
}

// UpdateContainerResources changes a running container's cgroup limits.
func (s *Server) UpdateContainerResources(ctx context.Context, req *runtimeapi.UpdateContainerResourcesRequest) (*runtimeapi.UpdateContainerResourcesResponse, error) {
	if req.GetContainerId() == "" {
		return nil, invalid("UpdateContainerResources: no container_id")
	}
	resp, err := s.rt.UpdateContainerResources(ctx, req)
	if err != nil {
		return nil, s.fail("UpdateContainerResources", err)
	}
	return resp, nil
}

// ReopenContainerLog makes the container's monitor reopen its log file
// after the kubelet rotated it.
func (s *Server) ReopenContainerLog(ctx context.Context, req *runtimeapi.ReopenContainerLogRequest) (*runtimeapi.ReopenContainerLogResponse, error) {
	if req.GetContainerId() == "" {
		return nil, invalid("ReopenContainerLog: no container_id")
	}
	resp, err := s.rt.ReopenContainerLog(ctx, req)
	if err != nil {
		return nil, s.fail("ReopenContainerLog", err)
	}
	return resp, nil
}
