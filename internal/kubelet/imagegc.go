package kubelet

import (
	"context"
	"fmt"
	"sort"
	"time"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	imagestore "github.com/peapod/peapod/internal/image/store"
)

// ImageStore is what image garbage collection needs from the image
// service (*image.Service implements it).
type ImageStore interface {
	List() ([]*imagestore.Image, error)
	Status(nameOrID string) (*imagestore.Image, error)
	Remove(nameOrID string) error
}

// ContainerLister lists a runtime's containers: the kubelet's own view and
// the other owners' (the CRI's), whose images are in use just the same.
type ContainerLister interface {
	ListContainers(context.Context, *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error)
}

// StatfsUsage reports the usage of the filesystem holding dir.
func StatfsUsage(dir string) func() (used, capacity uint64, err error) {
	return func() (uint64, uint64, error) {
		var s unix.Statfs_t
		if err := unix.Statfs(dir, &s); err != nil {
			return 0, 0, fmt.Errorf("statfs %s: %w", dir, err)
		}
		bs := uint64(s.Bsize)
		return (s.Blocks - s.Bfree) * bs, s.Blocks * bs, nil
	}
}

// imageGC is kubelet's image garbage collector: when the image
// filesystem is fuller than the high threshold, images no container of
// any owner uses are removed, least recently used first, until usage is
// below the low threshold. Pinned images (the pause image) are never
// removed, nor images younger than the minimum age (a pod may be about to
// use an image it just pulled).
type imageGC struct {
	k      *Kubelet
	images ImageStore
	users  []ContainerLister
	usage  func() (used, capacity uint64, err error)
	pinned []string

	lastUsed map[string]time.Time // image ID -> last time a container used it
}

// inUse is the set of image IDs that containers (any state) refer to.
func (g *imageGC) inUse(ctx context.Context) (map[string]bool, error) {
	used := map[string]bool{}
	for _, rt := range g.users {
		resp, err := rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
		if err != nil {
			return nil, fmt.Errorf("list containers: %w", err)
		}
		for _, c := range resp.GetContainers() {
			for _, ref := range []string{c.GetImage().GetImage(), c.GetImageRef()} {
				if ref == "" {
					continue
				}
				if img, err := g.images.Status(ref); err == nil {
					used[img.ID.String()] = true
				}
			}
		}
	}
	for _, p := range g.pinned {
		if img, err := g.images.Status(p); err == nil {
			used[img.ID.String()] = true
		}
	}
	return used, nil
}

// run is one round: note which images are used, then free space if the
// filesystem is above the high threshold.
func (g *imageGC) run(ctx context.Context) error {
	k := g.k
	now := k.clock.Now()
	used, err := g.inUse(ctx)
	if err != nil {
		return err
	}
	imgs, err := g.images.List()
	if err != nil {
		return fmt.Errorf("list images: %w", err)
	}
	present := map[string]bool{}
	for _, img := range imgs {
		id := img.ID.String()
		present[id] = true
		if used[id] {
			g.lastUsed[id] = now
		}
	}
	for id := range g.lastUsed {
		if !present[id] {
			delete(g.lastUsed, id)
		}
	}

	usedBytes, capacity, err := g.usage()
	if err != nil {
		return err
	}
	if capacity == 0 {
		return nil
	}
	pct := int(usedBytes * 100 / capacity)
	if pct < k.opts.ImageGCHighThresholdPercent {
		return nil
	}
	want := int64(usedBytes) - int64(capacity*uint64(k.opts.ImageGCLowThresholdPercent)/100)
	k.log.Info("image filesystem usage above the high threshold, removing unused images",
		"usage", pct, "highThresholdPercent", k.opts.ImageGCHighThresholdPercent,
		"lowThresholdPercent", k.opts.ImageGCLowThresholdPercent, "bytesToFree", want)

	type candidate struct {
		img      *imagestore.Image
		lastUsed time.Time
	}
	var cands []candidate
	for _, img := range imgs {
		id := img.ID.String()
		if used[id] {
			continue
		}
		if now.Sub(img.Created) < k.opts.ImageMinimumGCAge {
			k.log.Debug("image garbage collection: image too new to remove", "image", id, "created", img.Created)
			continue
		}
		last, ok := g.lastUsed[id]
		if !ok {
			last = img.Created
		}
		cands = append(cands, candidate{img, last})
	}
	sort.SliceStable(cands, func(i, j int) bool {
		if !cands[i].lastUsed.Equal(cands[j].lastUsed) {
			return cands[i].lastUsed.Before(cands[j].lastUsed)
		}
		return cands[i].img.Created.Before(cands[j].img.Created)
	})
	var freed int64
	for _, c := range cands {
		if freed >= want {
			break
		}
		id := c.img.ID.String()
		if err := g.images.Remove(id); err != nil {
			k.log.Warn("image garbage collection: remove image", "image", id, "err", err)
			continue
		}
		delete(g.lastUsed, id)
		freed += c.img.Size
		k.log.Info("image garbage collection: removed unused image", "image", id, "tags", c.img.RepoTags,
			"size", c.img.Size, "lastUsed", c.lastUsed)
	}
	if freed < want {
		k.log.Warn(fmt.Sprintf("Failed to garbage collect required amount of images. Attempted to free %d bytes, but only found %d bytes eligible to free.", want, freed))
	}
	return nil
}
