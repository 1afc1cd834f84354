package cri

import (
	"context"
	"encoding/json"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Version names peapod and the CRI version it speaks.
func (s *Server) Version(ctx context.Context, req *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	v := s.opts.Version
	if v == "" {
		v = "dev"
	}
	return &runtimeapi.VersionResponse{
		Version:           kubeAPIVersion,
		RuntimeName:       RuntimeName,
		RuntimeVersion:    v,
		RuntimeApiVersion: RuntimeAPIVersion,
	}, nil
}

// Reasons for a condition that is not met, in the CamelCase kubelet shows.
const (
	reasonNetworkNotReady = "NetworkPluginNotReady"
)

// Status reports the runtime and network conditions. The network is ready
// when the CNI configuration can set up a pod; otherwise the condition
// carries the CNI's own reason, which is what a node's Ready condition
// then shows.
func (s *Server) Status(ctx context.Context, req *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	runtimeCond := &runtimeapi.RuntimeCondition{Type: runtimeapi.RuntimeReady, Status: true}
	netCond := &runtimeapi.RuntimeCondition{Type: runtimeapi.NetworkReady, Status: true}
	if s.opts.NetworkReady != nil {
		if err := s.opts.NetworkReady(ctx); err != nil {
			netCond.Status = false
			netCond.Reason = reasonNetworkNotReady
			netCond.Message = "Network plugin returns error: " + err.Error()
		}
	}
	resp := &runtimeapi.StatusResponse{
		Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{runtimeCond, netCond}},
		RuntimeHandlers: []*runtimeapi.RuntimeHandler{{
			Name:     "",
			Features: &runtimeapi.RuntimeHandlerFeatures{RecursiveReadOnlyMounts: true},
		}},
		// The OCI spec generator applies SupplementalGroupsPolicy Strict
		// (image groups ignored) as well as Merge.
		Features: &runtimeapi.RuntimeFeatures{SupplementalGroupsPolicy: true},
	}
	if req.GetVerbose() {
		info, _ := json.Marshal(map[string]any{
			"runtimeName":   RuntimeName,
			"streamURL":     s.StreamURL(),
			"imageFsDir":    s.opts.ImageFsDir,
			"pinnedImages":  s.opts.PinnedImages,
			"cgroupDriver":  "cgroupfs",
			"networkStatus": netCond,
		})
		resp.Info = map[string]string{"config": string(info)}
	}
	return resp, nil
}

// RuntimeConfig tells the kubelet which cgroup driver to use: peapod
// manages cgroups through the filesystem (runc's cgroupfs driver), so a
// kubelet must run with cgroupDriver: cgroupfs.
func (s *Server) RuntimeConfig(ctx context.Context, req *runtimeapi.RuntimeConfigRequest) (*runtimeapi.RuntimeConfigResponse, error) {
	return &runtimeapi.RuntimeConfigResponse{
		Linux: &runtimeapi.LinuxRuntimeConfiguration{CgroupDriver: runtimeapi.CgroupDriver_CGROUPFS},
	}, nil
}

// UpdateRuntimeConfig receives the node's pod CIDR. The CNI configuration
// names its own subnet, so there is nothing to apply; the call succeeds as
// with containerd when no CNI template is configured.
func (s *Server) UpdateRuntimeConfig(ctx context.Context, req *runtimeapi.UpdateRuntimeConfigRequest) (*runtimeapi.UpdateRuntimeConfigResponse, error) {
	if cidr := req.GetRuntimeConfig().GetNetworkConfig().GetPodCidr(); cidr != "" {
		s.log.Info("kubelet announced the pod CIDR; the CNI configuration decides addresses", "podCIDR", cidr)
	}
	return &runtimeapi.UpdateRuntimeConfigResponse{}, nil
}

// CheckpointContainer is not supported: runc's checkpoint needs CRIU,
// which peapod does not use.
func (s *Server) CheckpointContainer(ctx context.Context, req *runtimeapi.CheckpointContainerRequest) (*runtimeapi.CheckpointContainerResponse, error) {
	return nil, status.Error(codes.Unimplemented, "CheckpointContainer: peapod does not checkpoint containers (no CRIU support)")
}

// CheckpointPod is not supported, as CheckpointContainer.
func (s *Server) CheckpointPod(ctx context.Context, req *runtimeapi.CheckpointPodRequest) (*runtimeapi.CheckpointPodResponse, error) {
	return nil, status.Error(codes.Unimplemented, "CheckpointPod: peapod does not checkpoint pods (no CRIU support)")
}

// RestorePod is not supported, as CheckpointContainer.
func (s *Server) RestorePod(ctx context.Context, req *runtimeapi.RestorePodRequest) (*runtimeapi.RestorePodResponse, error) {
	return nil, status.Error(codes.Unimplemented, "RestorePod: peapod does not restore checkpoints (no CRIU support)")
}

// GetContainerEvents is the evented PLEG stream. peapod emits no events
// (the kubelet then relists, its default), so the call is Unimplemented,
// which the kubelet takes as "use the generic PLEG".
func (s *Server) GetContainerEvents(req *runtimeapi.GetEventsRequest, stream grpc.ServerStreamingServer[runtimeapi.ContainerEventResponse]) error {
	return status.Error(codes.Unimplemented, "GetContainerEvents: peapod has no evented PLEG; run the kubelet without the EventedPLEG feature gate")
}

// UpdatePodSandboxResources is best effort for the kubelet; the pod-level
// cgroup is the kubelet's, so there is nothing for peapod to change.
func (s *Server) UpdatePodSandboxResources(ctx context.Context, req *runtimeapi.UpdatePodSandboxResourcesRequest) (*runtimeapi.UpdatePodSandboxResourcesResponse, error) {
	if req.GetPodSandboxId() == "" {
		return nil, invalid("UpdatePodSandboxResources: no pod_sandbox_id")
	}
	if _, err := s.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: req.GetPodSandboxId()}); err != nil {
		return nil, s.fail("UpdatePodSandboxResources", err)
	}
	return &runtimeapi.UpdatePodSandboxResourcesResponse{}, nil
}
