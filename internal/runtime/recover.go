package runtime

import (
	"context"
	"fmt"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/peapod/peapod/internal/container/conmon"
)

// recover rebuilds the in-memory view from the records of an earlier run:
// conmon handles are loaded again from the bundles, exits that happened
// while no daemon watched are read from conmon's exit files, and the image
// layers of every container are leased again.
func (r *Runtime) recover(ctx context.Context) error {
	ss, cs, err := r.load()
	if err != nil {
		return err
	}
	for _, rec := range ss {
		cfg := &runtimeapi.PodSandboxConfig{}
		if err := unmarshalProto(rec.Config, cfg); err != nil {
			return fmt.Errorf("sandbox %s: config: %w", rec.ID, err)
		}
		sb := &sandbox{owner: rec.Owner, id: rec.ID, rec: rec, config: cfg}
		r.sandboxes[rec.ID] = sb
		if rec.Ready && !alive(rec.PausePID, rec.PauseStart) {
			r.log.Info("sandbox's pause process died while the daemon was down", "sandbox", rec.ID, "pod", podName(cfg))
		}
	}
	for _, rec := range cs {
		cfg := &runtimeapi.ContainerConfig{}
		if err := unmarshalProto(rec.Config, cfg); err != nil {
			return fmt.Errorf("container %s: config: %w", rec.ID, err)
		}
		c := &container{owner: rec.Owner, id: rec.ID, sandboxID: rec.SandboxID, rec: rec, config: cfg}
		if rec.State != int32(runtimeapi.ContainerState_CONTAINER_UNKNOWN) {
			h, err := conmon.Load(rec.Bundle)
			if err != nil {
				r.log.Warn("container lost its conmon state", "container", rec.ID, "err", err)
				c.rec.State = int32(runtimeapi.ContainerState_CONTAINER_UNKNOWN)
			} else {
				c.handle = h
			}
		}
		c.lease = r.leaseLayers(rec.Layers)
		r.refresh(c)
		r.containers[rec.ID] = c
	}
	return nil
}
