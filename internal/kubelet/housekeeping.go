package kubelet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/peapod/peapod/internal/store"
)

// Kubelet's housekeeping defaults (KubeletConfiguration v1beta1).
const (
	DefaultContainerLogMaxSize         = 10 * 1024 * 1024 // "10Mi"
	DefaultContainerLogMaxFiles        = 5
	DefaultLogRotateInterval           = 10 * time.Second
	DefaultImageGCHighThresholdPercent = 85
	DefaultImageGCLowThresholdPercent  = 80
	DefaultImageMinimumGCAge           = 2 * time.Minute
	DefaultImageGCPeriod               = 5 * time.Minute
	DefaultContainerGCPeriod           = time.Minute
)

func housekeepingDefaults(o *Options) error {
	if o.ContainerLogMaxSize <= 0 {
		o.ContainerLogMaxSize = DefaultContainerLogMaxSize
	}
	if o.ContainerLogMaxFiles == 0 {
		o.ContainerLogMaxFiles = DefaultContainerLogMaxFiles
	}
	if o.ContainerLogMaxFiles < 2 {
		return fmt.Errorf("containerLogMaxFiles must be at least 2, got %d", o.ContainerLogMaxFiles)
	}
	if o.LogRotateInterval <= 0 {
		o.LogRotateInterval = DefaultLogRotateInterval
	}
	if o.ImageGCHighThresholdPercent == 0 && o.ImageGCLowThresholdPercent == 0 {
		o.ImageGCHighThresholdPercent, o.ImageGCLowThresholdPercent = DefaultImageGCHighThresholdPercent, DefaultImageGCLowThresholdPercent
	}
	if h, l := o.ImageGCHighThresholdPercent, o.ImageGCLowThresholdPercent; h < 0 || h > 100 || l < 0 || l > 100 || l >= h {
		return fmt.Errorf("image GC thresholds: want 0 <= low (%d) < high (%d) <= 100", l, h)
	}
	if o.ImageMinimumGCAge == 0 {
		o.ImageMinimumGCAge = DefaultImageMinimumGCAge
	}
	if o.ImageGCPeriod <= 0 {
		o.ImageGCPeriod = DefaultImageGCPeriod
	}
	if o.ContainerGCPeriod <= 0 {
		o.ContainerGCPeriod = DefaultContainerGCPeriod
	}
	if o.ImageStore == nil {
		if s, ok := o.Images.(ImageStore); ok {
			o.ImageStore = s
		}
	}
	if o.ImageFsUsage == nil {
		o.ImageFsUsage = StatfsUsage(o.Root)
	}
	return nil
}

// startHousekeeping starts the node-level loops, owned by Run: log
// rotation, garbage collection of what gone pods left, image GC.
func (k *Kubelet) startHousekeeping(ctx context.Context) {
	loop := func(period time.Duration, fn func(context.Context)) {
		k.wg.Add(1)
		go func() {
			defer k.wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case <-k.clock.After(period):
				}
				fn(ctx)
			}
		}()
	}
	loop(k.opts.LogRotateInterval, k.rotateLogs)
	loop(k.opts.ContainerGCPeriod, k.gcPods)
	if k.imageGC != nil {
		loop(k.opts.ImageGCPeriod, func(ctx context.Context) {
			if err := k.imageGC.run(ctx); err != nil && ctx.Err() == nil {
				k.log.Warn("image garbage collection", "err", err)
			}
		})
	}
}

// gcPods is the node-level part of kubelet's container garbage collection
// (each pod worker already removes its own dead containers beyond the
// current and previous one): sandboxes of pods that are no longer in the
// store are stopped and removed, and the volume and log directories of
// pods that are gone are deleted.
func (k *Kubelet) gcPods(ctx context.Context) {
	list, _, err := k.store.List(ctx, "pods", "", store.ListOptions{})
	if err != nil {
		k.log.Warn("container gc: list pods", "err", err)
		return
	}
	live := map[types.UID]bool{}
	for _, o := range list {
		live[o.(*corev1.Pod).UID] = true
	}
	k.removeOrphans(ctx, live)

	resp, err := k.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		k.log.Warn("container gc: list sandboxes", "err", err)
		return
	}
	for _, sb := range resp.GetItems() {
		live[types.UID(sb.GetMetadata().GetUid())] = true
	}
	entries, err := os.ReadDir(k.podsDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		// ROOT/pods/<uid> (volumes) or ROOT/pods/<ns>_<name>_<uid> (logs).
		name := e.Name()
		uid := types.UID(name[strings.LastIndex(name, "_")+1:])
		if live[uid] || !looksLikeUID(string(uid)) {
			continue
		}
		k.mu.Lock()
		_, hasWorker := k.workers[uid]
		k.mu.Unlock()
		if hasWorker {
			continue
		}
		if uid == types.UID(name) {
			err = k.volumes.TearDown(uid)
		} else {
			err = os.RemoveAll(filepath.Join(k.podsDir, name))
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			k.log.Warn("container gc: remove what a gone pod left", "dir", name, "err", err)
			continue
		}
		k.log.Info("container gc: removed the directory of a pod that is gone", "dir", name)
	}
}

// looksLikeUID: a pod UID is a UUID; anything else under ROOT/pods is not
// a pod's and is left alone.
func looksLikeUID(s string) bool {
	return len(s) == 36 && strings.Count(s, "-") == 4
}
