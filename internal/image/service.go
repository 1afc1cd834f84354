// Package image is peapod's image service: it pulls images from registries
// (mirrors, insecure registries, private registries with credentials),
// verifies and unpacks them into the store, and answers status, list and
// remove. The daemon, the CRI server and the pod manager all go through
// Service; the pull-policy decision and the choice of credentials live above
// it (packages policy and keyring), as in Kubernetes.
package image

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/peapod/peapod/internal/image/reference"
	"github.com/peapod/peapod/internal/image/registries"
	"github.com/peapod/peapod/internal/image/store"
)

// Defaults for Options.
const (
	DefaultMaxParallelPulls       = 3
	DefaultMaxConcurrentDownloads = 3
)

// Options configure a Service.
type Options struct {
	// Root is the peapod root; images live under Root/image.
	Root string
	// RegistriesConfig is a containers-registries.conf v2 file. Empty or
	// missing: no mirrors, nothing insecure, nothing blocked.
	RegistriesConfig string
	// CertsDir holds per-registry TLS material (CertsDir/HOST[:PORT]/).
	CertsDir string
	// MaxParallelPulls bounds how many pulls run at once (different images
	// run side by side, so one slow image does not block the others).
	// Zero means DefaultMaxParallelPulls.
	MaxParallelPulls int
	// MaxConcurrentDownloads bounds the layers one pull downloads at once.
	// Zero means DefaultMaxConcurrentDownloads.
	MaxConcurrentDownloads int
	// Platform is what an index resolves to. Zero means this host
	// (runtime.GOOS/GOARCH).
	Platform v1.Platform
	// Logger receives one record per pull; nil means slog.Default().
	Logger *slog.Logger
}

// Service pulls and keeps images. It is safe for concurrent use.
type Service struct {
	opts    Options
	store   *store.Store
	log     *slog.Logger
	pulls   chan struct{} // semaphore of MaxParallelPulls slots
	flights flights
}

// New opens the image store under opts.Root and reads the registries
// configuration.
func New(ctx context.Context, opts Options) (*Service, error) {
	if opts.Root == "" {
		return nil, errors.New("image service: no root directory")
	}
	if opts.MaxParallelPulls <= 0 {
		opts.MaxParallelPulls = DefaultMaxParallelPulls
	}
	if opts.MaxConcurrentDownloads <= 0 {
		opts.MaxConcurrentDownloads = DefaultMaxConcurrentDownloads
	}
	if opts.Platform.OS == "" {
		opts.Platform.OS = runtime.GOOS
	}
	if opts.Platform.Architecture == "" {
		opts.Platform.Architecture = runtime.GOARCH
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	// Fail early on a broken file; pulls read it again so edits apply
	// without a restart, as with CRI-O.
	if _, err := registries.Load(opts.RegistriesConfig); err != nil {
		return nil, fmt.Errorf("image service: %w", err)
	}
	st, err := store.Open(opts.Root)
	if err != nil {
		return nil, fmt.Errorf("image service: %w", err)
	}
	return &Service{
		opts:  opts,
		store: st,
		log:   log,
		pulls: make(chan struct{}, opts.MaxParallelPulls),
	}, nil
}

// Close releases the store.
func (s *Service) Close() error { return s.store.Close() }

// Store gives read access to the underlying store (layer directories,
// content), for the runtime and for tests.
func (s *Service) Store() *store.Store { return s.store }

// Status returns the image named by a full or familiar name, an ID or an
// ID prefix (at least 12 hex digits), or a repo digest. It wraps ErrNotFound
// when there is none.
func (s *Service) Status(nameOrID string) (*store.Image, error) {
	return s.store.Get(nameOrID)
}

// List returns every image.
func (s *Service) List() ([]*store.Image, error) {
	return s.store.List()
}

// Remove removes a name, or the whole image when named by ID or when its
// last tag goes, then deletes layers and content no image uses any more.
// It wraps ErrNotFound when nothing matches.
func (s *Service) Remove(nameOrID string) error {
	_, err := s.RemoveImage(nameOrID)
	return err
}

// RemoveImage is Remove, also saying which names went and whether the image
// was deleted (for `peapod rmi` output).
func (s *Service) RemoveImage(nameOrID string) (store.Removal, error) {
	rm, err := s.store.Remove(nameOrID)
	if err == nil {
		s.log.Info("removed image", "image", nameOrID, "untagged", rm.Untagged, "deleted", rm.Deleted)
	}
	return rm, err
}

// LayerDirs returns the unpacked layer directories of an image, TOP LAYER
// FIRST, which is the order overlayfs wants: lowerdir=strings.Join(dirs, ":").
func (s *Service) LayerDirs(nameOrID string) ([]string, error) {
	img, err := s.store.Get(nameOrID)
	if err != nil {
		return nil, err
	}
	dirs := make([]string, 0, len(img.Layers))
	for i := len(img.Layers) - 1; i >= 0; i-- {
		d := img.Layers[i]
		if !s.store.HasLayer(d) {
			return nil, fmt.Errorf("image %s: layer %s missing from the store: remove the image and pull it again", img.ID, d)
		}
		dirs = append(dirs, s.store.LayerDir(d))
	}
	return dirs, nil
}

// acquire takes a pull slot, or gives up when ctx ends.
func (s *Service) acquire(ctx context.Context) (func(), error) {
	select {
	case s.pulls <- struct{}{}:
		return func() { <-s.pulls }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for a pull slot (max_parallel_pulls = %d): %w", cap(s.pulls), ctx.Err())
	}
}

// endpoints reads registries.conf and returns where to pull ref from.
func (s *Service) endpoints(ref reference.Reference) ([]registries.Endpoint, error) {
	regs, err := registries.Load(s.opts.RegistriesConfig)
	if err != nil {
		return nil, err
	}
	return regs.Endpoints(ref)
}
