package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/peapod/peapod/internal/container/rootfs"
)

// imageVolumesDir holds, inside a container's bundle, one read-only overlay
// of the layers of each image a CRI Mount.image names (Kubernetes image
// volumes). They live in the bundle so that removing the container, which
// unmounts and deletes the bundle, removes them too.
const imageVolumesDir = "image-volumes"

// mountImageVolumes mounts the image of every image mount in cfg read-only
// under the bundle and returns a copy of cfg whose image mounts are plain
// read-only bind mounts of those overlays (or of image_sub_path inside
// one). The image must already be in the store: the caller (kubelet)
// pulls it, as for the container's own image. cfg is returned unchanged
// when it has no image mount.
func (r *Runtime) mountImageVolumes(bundle string, cfg *runtimeapi.ContainerConfig) (*runtimeapi.ContainerConfig, error) {
	has := false
	for _, m := range cfg.GetMounts() {
		has = has || m.GetImage() != nil
	}
	if !has {
		return cfg, nil
	}
	out := proto.Clone(cfg).(*runtimeapi.ContainerConfig)
	for i, m := range out.GetMounts() {
		if m.GetImage() == nil {
			continue
		}
		if !m.GetReadonly() {
			// The kubelet always asks for image volumes read-only; the CRI
			// says a runtime should refuse anything else.
			return nil, fmt.Errorf("image volume %s: must be read-only: %w", m.GetContainerPath(), ErrInvalidArgument)
		}
		ref := m.GetImage().GetImage()
		img, err := r.opts.Images.Status(ref)
		if err != nil {
			return nil, fmt.Errorf("image volume %s: image %s: %w", m.GetContainerPath(), ref, err)
		}
		lowers, err := r.opts.Images.LayerDirs(img.ID.String())
		if err != nil {
			return nil, fmt.Errorf("image volume %s: layers of %s: %w", m.GetContainerPath(), ref, err)
		}
		// overlayfs needs two lower layers when it has no upper one; a
		// single-layer image is its layer directory, bound read-only.
		dir := lowers[0]
		if len(lowers) > 1 {
			dir = filepath.Join(bundle, imageVolumesDir, strconv.Itoa(i))
			if err := rootfs.Mount(dir, "", "", lowers, true); err != nil {
				return nil, fmt.Errorf("image volume %s: %w", m.GetContainerPath(), err)
			}
		}
		src := dir
		if sub := m.GetImageSubPath(); sub != "" {
			clean := filepath.Clean("/" + sub)
			if filepath.IsAbs(sub) || strings.Contains("/"+sub+"/", "/../") {
				return nil, fmt.Errorf("image volume %s: sub path %q must be relative and stay inside the image", m.GetContainerPath(), sub)
			}
			src = filepath.Join(dir, clean)
			// A symbolic link inside the image must not lead out of it.
			real, err := filepath.EvalSymlinks(src)
			if err != nil {
				return nil, fmt.Errorf("image volume %s: sub path %q: %w", m.GetContainerPath(), sub, err)
			}
			if real != dir && !strings.HasPrefix(real, dir+"/") {
				return nil, fmt.Errorf("image volume %s: sub path %q leaves the image", m.GetContainerPath(), sub)
			}
			src = real
		}
		out.Mounts[i] = &runtimeapi.Mount{
			ContainerPath: m.GetContainerPath(),
			HostPath:      src,
			Readonly:      true,
			Propagation:   runtimeapi.MountPropagation_PROPAGATION_PRIVATE,
		}
	}
	return out, nil
}

// unmountImageVolumes undoes mountImageVolumes; it is idempotent and
// tolerates a bundle that never had image volumes.
func unmountImageVolumes(bundle string) error {
	entries, err := os.ReadDir(filepath.Join(bundle, imageVolumesDir))
	if os.IsNotExist(err) {
		return nil
	} else if err != nil {
		return fmt.Errorf("unmount image volumes: %w", err)
	}
	for _, e := range entries {
		if err := rootfs.Unmount(filepath.Join(bundle, imageVolumesDir, e.Name())); err != nil {
			return fmt.Errorf("unmount image volume: %w", err)
		}
	}
	return nil
}

// statusMounts is the container's mounts as ContainerStatus reports them:
// an image volume names the image it was resolved to (image_ref, the ID
// PullImage returned) when the image is still in the store.
func (r *Runtime) statusMounts(cfg *runtimeapi.ContainerConfig) []*runtimeapi.Mount {
	ms := slices.Clone(cfg.GetMounts())
	for i, m := range ms {
		if m.GetImage() == nil || m.GetImage().GetImageRef() != "" {
			continue
		}
		img, err := r.opts.Images.Status(m.GetImage().GetImage())
		if err != nil {
			continue
		}
		m = proto.Clone(m).(*runtimeapi.Mount)
		m.Image.ImageRef = img.ID.String()
		ms[i] = m
	}
	return ms
}
