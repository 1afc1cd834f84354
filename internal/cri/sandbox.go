package cri

import (
	"context"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// RunPodSandbox creates and starts a pod sandbox: network namespace, CNI
// network, and the infra container.
func (s *Server) RunPodSandbox(ctx context.Context, req *runtimeapi.RunPodSandboxRequest) (*runtimeapi.RunPodSandboxResponse, error) {
	md := req.GetConfig().GetMetadata()
	if md == nil || md.GetName() == "" || md.GetNamespace() == "" || md.GetUid() == "" {
		return nil, invalid("RunPodSandbox: config.metadata needs name, namespace and uid")
	}
	if h := req.GetRuntimeHandler(); h != "" {
		return nil, invalid("RunPodSandbox: unknown runtime handler %q: peapod has only the default handler (\"\")", h)
	}
	resp, err := s.rt.RunPodSandbox(ctx, req)
	if err != nil {
		return nil, s.fail("RunPodSandbox", err)
	}
	return resp, nil
}

// StopPodSandbox stops every container and the infra container and tears
// the network down. Stopping a sandbox that is gone is not an error: the
// kubelet calls this repeatedly.
func (s *Server) StopPodSandbox(ctx context.Context, req *runtimeapi.StopPodSandboxRequest) (*runtimeapi.StopPodSandboxResponse, error) {
	if req.GetPodSandboxId() == "" {
		return nil, invalid("StopPodSandbox: no pod_sandbox_id")
	}
	resp, err := s.rt.StopPodSandbox(ctx, req)
	if isNotFound(err) {
		return &runtimeapi.StopPodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, s.fail("StopPodSandbox", err)
	}
	return resp, nil
}

// RemovePodSandbox removes a sandbox and its containers (stopping them
// first). Removing one that is gone is not an error.
func (s *Server) RemovePodSandbox(ctx context.Context, req *runtimeapi.RemovePodSandboxRequest) (*runtimeapi.RemovePodSandboxResponse, error) {
	if req.GetPodSandboxId() == "" {
		return nil, invalid("RemovePodSandbox: no pod_sandbox_id")
	}
	resp, err := s.rt.RemovePodSandbox(ctx, req)
	if isNotFound(err) {
		return &runtimeapi.RemovePodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, s.fail("RemovePodSandbox", err)
	}
	return resp, nil
}

// PodSandboxStatus reports a sandbox; with verbose, "info" is a JSON
// object whose "pid" is the infra process (as containerd's).
func (s *Server) PodSandboxStatus(ctx context.Context, req *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	if req.GetPodSandboxId() == "" {
		return nil, invalid("PodSandboxStatus: no pod_sandbox_id")
	}
	resp, err := s.rt.PodSandboxStatus(ctx, req)
	if err != nil {
		return nil, s.fail("PodSandboxStatus", err)
	}
	return resp, nil
}

// ListPodSandbox lists the CRI's sandboxes (never the pod manager's),
// filtered by id (or id prefix), state and labels.
func (s *Server) ListPodSandbox(ctx context.Context, req *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	resp, err := s.rt.ListPodSandbox(ctx, req)
	if err != nil {
		return nil, s.fail("ListPodSandbox", err)
	}
	return resp, nil
}

// StreamPodSandboxes is ListPodSandbox in one message.
func (s *Server) StreamPodSandboxes(req *runtimeapi.StreamPodSandboxesRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamPodSandboxesResponse]) error {
	resp, err := s.ListPodSandbox(stream.Context(), &runtimeapi.ListPodSandboxRequest{Filter: req.GetFilter()})
	if err != nil || len(resp.Items) == 0 {
		return err
	}
	return stream.Send(&runtimeapi.StreamPodSandboxesResponse{PodSandboxes: resp.Items})
}
