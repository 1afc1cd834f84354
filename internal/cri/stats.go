package cri

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
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

// ListMetricDescriptors: peapod does not serve the CRI metrics (the
// kubelet then keeps to cAdvisor and the stats calls); Unimplemented is
// the answer a kubelet and critest take to mean exactly that.
func (s *Server) ListMetricDescriptors(ctx context.Context, req *runtimeapi.ListMetricDescriptorsRequest) (*runtimeapi.ListMetricDescriptorsResponse, error) {
	return nil, status.Error(codes.Unimplemented, "ListMetricDescriptors: peapod serves no CRI metrics; use the stats calls")
}

// ListPodSandboxMetrics: see ListMetricDescriptors.
func (s *Server) ListPodSandboxMetrics(ctx context.Context, req *runtimeapi.ListPodSandboxMetricsRequest) (*runtimeapi.ListPodSandboxMetricsResponse, error) {
	return nil, status.Error(codes.Unimplemented, "ListPodSandboxMetrics: peapod serves no CRI metrics; use the stats calls")
}

// StreamPodSandboxMetrics: see ListMetricDescriptors.
func (s *Server) StreamPodSandboxMetrics(req *runtimeapi.StreamPodSandboxMetricsRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamPodSandboxMetricsResponse]) error {
	return status.Error(codes.Unimplemented, "StreamPodSandboxMetrics: peapod serves no CRI metrics; use the stats calls")
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

// fsUsageTTL bounds how often a directory tree is walked: the kubelet asks
// every few seconds, and a big image store takes a while to walk.
const fsUsageTTL = 10 * time.Second

// fsUsageCache remembers the last walk of each directory.
type fsUsageCache struct {
	mu      sync.Mutex
	entries map[string]*runtimeapi.FilesystemUsage
}

func (c *fsUsageCache) usage(dir string) (*runtimeapi.FilesystemUsage, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if u, ok := c.entries[dir]; ok && time.Since(time.Unix(0, u.Timestamp)) < fsUsageTTL {
		return u, nil
	}
	u, err := DirUsage(dir)
	if err != nil {
		return nil, err
	}
	if c.entries == nil {
		c.entries = map[string]*runtimeapi.FilesystemUsage{}
	}
	c.entries[dir] = u
	return u, nil
}

// DirUsage walks dir and counts the bytes of disk blocks and the inodes
// used under it (each hard-linked inode once, as du does). A missing
// directory uses nothing.
func DirUsage(dir string) (*runtimeapi.FilesystemUsage, error) {
	now := time.Now().UnixNano()
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	u := &runtimeapi.FilesystemUsage{
		Timestamp:  now,
		FsId:       &runtimeapi.FilesystemIdentifier{Mountpoint: abs},
		UsedBytes:  &runtimeapi.UInt64Value{},
		InodesUsed: &runtimeapi.UInt64Value{},
	}
	seen := map[uint64]bool{}
	err = filepath.WalkDir(abs, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		info, err := d.Info()
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		if st.Nlink > 1 {
			if seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
		}
		u.InodesUsed.Value++
		u.UsedBytes.Value += uint64(st.Blocks) * 512
		return nil
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}
