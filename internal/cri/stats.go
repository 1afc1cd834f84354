package cri

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/peapod/peapod/internal/runtime"
)

// ContainerStats reports one container's CPU, memory and writable-layer
// usage.
func (s *Server) ContainerStats(ctx context.Context, req *runtimeapi.ContainerStatsRequest) (*runtimeapi.ContainerStatsResponse, error) {
	if req.GetContainerId() == "" {
		return nil, invalid("ContainerStats: no container_id")
	}
	if sp, ok := s.rt.(StatsProvider); ok {
		resp, err := sp.ContainerStats(ctx, req)
		if err != nil {
			return nil, s.fail("ContainerStats", err)
		}
		return resp, nil
	}
	st, err := s.ownContainerStats(ctx, req.GetContainerId())
	if err != nil {
		return nil, s.fail("ContainerStats", err)
	}
	return &runtimeapi.ContainerStatsResponse{Stats: st}, nil
}

// ListContainerStats reports the containers matching the filter.
func (s *Server) ListContainerStats(ctx context.Context, req *runtimeapi.ListContainerStatsRequest) (*runtimeapi.ListContainerStatsResponse, error) {
	if sp, ok := s.rt.(StatsProvider); ok {
		resp, err := sp.ListContainerStats(ctx, req)
		if err != nil {
			return nil, s.fail("ListContainerStats", err)
		}
		return resp, nil
	}
	stats, err := s.ownListContainerStats(ctx, req.GetFilter())
	if err != nil {
		return nil, s.fail("ListContainerStats", err)
	}
	return &runtimeapi.ListContainerStatsResponse{Stats: stats}, nil
}

// StreamContainerStats is ListContainerStats in one message.
func (s *Server) StreamContainerStats(req *runtimeapi.StreamContainerStatsRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamContainerStatsResponse]) error {
	resp, err := s.ListContainerStats(stream.Context(), &runtimeapi.ListContainerStatsRequest{Filter: req.GetFilter()})
	if err != nil || len(resp.Stats) == 0 {
		return err
	}
	return stream.Send(&runtimeapi.StreamContainerStatsResponse{ContainerStats: resp.Stats})
}

// PodSandboxStats reports a sandbox and its containers.
func (s *Server) PodSandboxStats(ctx context.Context, req *runtimeapi.PodSandboxStatsRequest) (*runtimeapi.PodSandboxStatsResponse, error) {
	if req.GetPodSandboxId() == "" {
		return nil, invalid("PodSandboxStats: no pod_sandbox_id")
	}
	if sp, ok := s.rt.(StatsProvider); ok {
		resp, err := sp.PodSandboxStats(ctx, req)
		if err != nil {
			return nil, s.fail("PodSandboxStats", err)
		}
		return resp, nil
	}
	st, err := s.ownPodSandboxStats(ctx, req.GetPodSandboxId())
	if err != nil {
		return nil, s.fail("PodSandboxStats", err)
	}
	return &runtimeapi.PodSandboxStatsResponse{Stats: st}, nil
}

// ListPodSandboxStats reports the sandboxes matching the filter.
func (s *Server) ListPodSandboxStats(ctx context.Context, req *runtimeapi.ListPodSandboxStatsRequest) (*runtimeapi.ListPodSandboxStatsResponse, error) {
	if sp, ok := s.rt.(StatsProvider); ok {
		resp, err := sp.ListPodSandboxStats(ctx, req)
		if err != nil {
			return nil, s.fail("ListPodSandboxStats", err)
		}
		return resp, nil
	}
	f := req.GetFilter()
	list, err := s.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{
		Id: f.GetId(), LabelSelector: f.GetLabelSelector()}})
	if err != nil {
		return nil, s.fail("ListPodSandboxStats", err)
	}
	resp := &runtimeapi.ListPodSandboxStatsResponse{}
	for _, sb := range list.Items {
		st, err := s.ownPodSandboxStats(ctx, sb.Id)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return nil, s.fail("ListPodSandboxStats", err)
		}
		resp.Stats = append(resp.Stats, st)
	}
	return resp, nil
}

// StreamPodSandboxStats is ListPodSandboxStats in one message.
func (s *Server) StreamPodSandboxStats(req *runtimeapi.StreamPodSandboxStatsRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamPodSandboxStatsResponse]) error {
	resp, err := s.ListPodSandboxStats(stream.Context(), &runtimeapi.ListPodSandboxStatsRequest{Filter: req.GetFilter()})
	if err != nil || len(resp.Stats) == 0 {
		return err
	}
	return stream.Send(&runtimeapi.StreamPodSandboxStatsResponse{PodSandboxStats: resp.Stats})
}

// MetricsProvider serves the CRI metrics (*runtime.View does). With a
// Runtime that does not implement it the metrics calls are Unimplemented,
// which a kubelet and critest take to mean "use the stats calls".
type MetricsProvider interface {
	ListPodSandboxMetrics(context.Context, *runtimeapi.ListPodSandboxMetricsRequest) (*runtimeapi.ListPodSandboxMetricsResponse, error)
}

var _ MetricsProvider = (*runtime.View)(nil)

// ListMetricDescriptors names the cAdvisor-style metrics that
// ListPodSandboxMetrics reports, with their help and label keys.
func (s *Server) ListMetricDescriptors(ctx context.Context, req *runtimeapi.ListMetricDescriptorsRequest) (*runtimeapi.ListMetricDescriptorsResponse, error) {
	if _, ok := s.rt.(MetricsProvider); !ok {
		return nil, status.Error(codes.Unimplemented, "ListMetricDescriptors: this runtime serves no CRI metrics; use the stats calls")
	}
	return &runtimeapi.ListMetricDescriptorsResponse{Descriptors: runtime.MetricDescriptors()}, nil
}

// ListPodSandboxMetrics reports the metrics of every ready sandbox and its
// running containers.
func (s *Server) ListPodSandboxMetrics(ctx context.Context, req *runtimeapi.ListPodSandboxMetricsRequest) (*runtimeapi.ListPodSandboxMetricsResponse, error) {
	mp, ok := s.rt.(MetricsProvider)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "ListPodSandboxMetrics: this runtime serves no CRI metrics; use the stats calls")
	}
	resp, err := mp.ListPodSandboxMetrics(ctx, req)
	if err != nil {
		return nil, s.fail("ListPodSandboxMetrics", err)
	}
	return resp, nil
}

// StreamPodSandboxMetrics is ListPodSandboxMetrics in one message.
func (s *Server) StreamPodSandboxMetrics(req *runtimeapi.StreamPodSandboxMetricsRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamPodSandboxMetricsResponse]) error {
	resp, err := s.ListPodSandboxMetrics(stream.Context(), &runtimeapi.ListPodSandboxMetricsRequest{})
	if err != nil || len(resp.PodMetrics) == 0 {
		return err
	}
	return stream.Send(&runtimeapi.StreamPodSandboxMetricsResponse{PodSandboxMetrics: resp.PodMetrics})
}

// ImageFsInfo reports the filesystem of the image store (and of the
// containers' writable layers): the bytes and inodes peapod uses there,
// which the kubelet's image garbage collector weighs against capacity.
func (s *Server) ImageFsInfo(ctx context.Context, req *runtimeapi.ImageFsInfoRequest) (*runtimeapi.ImageFsInfoResponse, error) {
	if s.opts.ImageFsDir == "" {
		return &runtimeapi.ImageFsInfoResponse{}, nil
	}
	img, err := s.fsCache.usage(s.opts.ImageFsDir)
	if err != nil {
		return nil, s.fail("ImageFsInfo", err)
	}
	resp := &runtimeapi.ImageFsInfoResponse{ImageFilesystems: []*runtimeapi.FilesystemUsage{img}}
	if s.opts.ContainerFsDir != s.opts.ImageFsDir {
		c, err := s.fsCache.usage(s.opts.ContainerFsDir)
		if err != nil {
			return nil, s.fail("ImageFsInfo", err)
		}
		resp.ContainerFilesystems = []*runtimeapi.FilesystemUsage{c}
	} else {
		resp.ContainerFilesystems = []*runtimeapi.FilesystemUsage{img}
	}
	return resp, nil
}

// fsUsageCache is the server's cache of directory walks (see
// runtime.FsUsageCache).
type fsUsageCache struct{ runtime.FsUsageCache }

func (c *fsUsageCache) usage(dir string) (*runtimeapi.FilesystemUsage, error) {
	return c.Usage(dir)
}
