package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/peapod/peapod/internal/container/rootfs"
	"github.com/peapod/peapod/internal/image"
)

// pauseImage is the infra container's image as a sandbox uses it.
type pauseImage struct {
	Name   string
	Config ocispec.ImageConfig
	// Rootfs is the shared local root filesystem; empty for a configured
	// image, whose Lowers are mounted per sandbox.
	Rootfs string
	Lowers []string
}

// pause returns the pause image, building the local one or pulling the
// configured one on first use.
func (r *Runtime) pause(ctx context.Context) (*pauseImage, error) {
	r.pauseMu.Lock()
	defer r.pauseMu.Unlock()
	if r.opts.PauseImage == "" {
		dir, err := r.localPause()
		if err != nil {
			return nil, fmt.Errorf("pause image: %w", err)
		}
		return &pauseImage{
			Name:   LocalPauseImage,
			Config: ocispec.ImageConfig{Entrypoint: []string{"/catatonit", "-P"}, User: "65535:65535"},
			Rootfs: dir,
		}, nil
	}
	ref := r.opts.PauseImage
	img, err := r.opts.Images.Status(ref)
	if errors.Is(err, image.ErrNotFound) {
		img, err = r.opts.Images.Pull(ctx, ref, nil, image.PullOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("pause image %s: %w", ref, err)
	}
	lowers, err := r.opts.Images.LayerDirs(img.ID.String())
	if err != nil {
		return nil, fmt.Errorf("pause image %s: %w", ref, err)
	}
	return &pauseImage{Name: ref, Config: img.Config.Config, Lowers: lowers}, nil
}

// localPause makes ROOT/runtime/pause/rootfs once: /catatonit and the mount
// points runc needs, so that runc never writes into the shared directory.
// It is built beside and renamed into place, so a crash never leaves half a
// root filesystem.
func (r *Runtime) localPause() (string, error) {
	dir := filepath.Join(r.dirs.pause, "rootfs")
	if _, err := os.Stat(filepath.Join(dir, "catatonit")); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(r.dirs.pause, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(r.dirs.pause, "tmp-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", err
	}
	for _, d := range []string{"proc", "dev", "sys", "etc"} {
		if err := os.Mkdir(filepath.Join(tmp, d), 0o755); err != nil {
			return "", err
		}
	}
	src, err := os.Open(CatatonitBinary)
	if err != nil {
		return "", fmt.Errorf("%s is missing (install it with `make deps`): %w", CatatonitBinary, err)
	}
	defer src.Close()
	dst, err := os.OpenFile(filepath.Join(tmp, "catatonit"), os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return "", err
	}
	if err := dst.Close(); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	return dir, nil
}

// mountPause mounts a configured pause image for one sandbox under dir.
func mountPause(dir string, lowers []string) (string, error) {
	target := filepath.Join(dir, "rootfs")
	if err := os.MkdirAll(target, 0o755); err != nil {
		return "", err
	}
	if err := rootfs.Mount(target, filepath.Join(dir, "upper"), filepath.Join(dir, "work"), lowers, false); err != nil {
		return "", err
	}
	return target, nil
}
