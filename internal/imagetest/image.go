package imagetest

import (
	"fmt"
	"runtime"
	"sort"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// DefaultPath is the PATH images get when their Config sets no PATH.
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// ImageOptions describe an image.
type ImageOptions struct {
	// Layers, bottom first.
	Layers []v1.Layer
	// MediaType picks OCI (the zero value) or Docker schema 2 manifests
	// and config media types.
	MediaType Format
	// Platform is the image's OS and architecture; nil means linux on this
	// machine's architecture, so the image runs here.
	Platform *v1.Platform
	// Config is the runtime configuration (Entrypoint, Cmd, Env,
	// WorkingDir, User, Labels, ExposedPorts, StopSignal...). DefaultPath
	// is added to Env when it sets no PATH.
	Config v1.Config
}

// created is every image's creation time, fixed so digests are stable.
var created = v1.Time{Time: modTime}

// Image builds an image. Layers made by this package get the media type
// that matches MediaType; other layers are used as they are.
func Image(opts ImageOptions) (v1.Image, error) {
	manifestMT, configMT := types.OCIManifestSchema1, types.OCIConfigJSON
	if opts.MediaType == Docker {
		manifestMT, configMT = types.DockerManifestSchema2, types.DockerConfigJSON
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, manifestMT), configMT)
	adds := make([]mutate.Addendum, 0, len(opts.Layers))
	for i, l := range opts.Layers {
		if l == nil {
			return nil, fmt.Errorf("build image: layer %d is nil", i)
		}
		if own, ok := l.(*layer); ok {
			l = own.withMediaType(layerMediaType(own.comp, opts.MediaType))
		}
		adds = append(adds, mutate.Addendum{Layer: l, History: v1.History{Created: created, CreatedBy: "imagetest"}})
	}
	img, err := mutate.Append(img, adds...)
	if err != nil {
		return nil, fmt.Errorf("build image: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("build image: %w", err)
	}
	cf = cf.DeepCopy()
	p := opts.Platform
	if p == nil {
		p = &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	}
	cf.OS, cf.Architecture, cf.Variant, cf.OSVersion, cf.OSFeatures = p.OS, p.Architecture, p.Variant, p.OSVersion, p.OSFeatures
	cf.Created = created
	cf.Config = *opts.Config.DeepCopy()
	if !hasPath(cf.Config.Env) {
		cf.Config.Env = append([]string{DefaultPath}, cf.Config.Env...)
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("build image: %w", err)
	}
	return img, nil
}

func hasPath(env []string) bool {
	for _, e := range env {
		if len(e) >= 5 && e[:5] == "PATH=" {
			return true
		}
	}
	return false
}

// Index builds a multi-platform index (OCI image index, or a Docker
// manifest list for Docker) from images keyed by platform strings as
// v1.ParsePlatform reads them ("linux/amd64", "linux/arm64/v8"). Entries
// are ordered by key, so the digest is stable.
func Index(images map[string]v1.Image, mediaType Format) (v1.ImageIndex, error) {
	mt := types.OCIImageIndex
	if mediaType == Docker {
		mt = types.DockerManifestList
	}
	keys := make([]string, 0, len(images))
	for k := range images {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	idx := mutate.IndexMediaType(empty.Index, mt)
	for _, k := range keys {
		p, err := v1.ParsePlatform(k)
		if err != nil {
			return nil, fmt.Errorf("build index: platform %q: %w", k, err)
		}
		img := images[k]
		imt, err := img.MediaType()
		if err != nil {
			return nil, fmt.Errorf("build index: image for %s: %w", k, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{MediaType: imt, Platform: p},
		})
	}
	return idx, nil
}

// MultiArch builds opts once per platform (each image's config names its
// own platform) and puts them in an index of opts.MediaType.
func MultiArch(opts ImageOptions, platforms ...string) (v1.ImageIndex, error) {
	images := map[string]v1.Image{}
	for _, s := range platforms {
		p, err := v1.ParsePlatform(s)
		if err != nil {
			return nil, fmt.Errorf("build index: platform %q: %w", s, err)
		}
		o := opts
		o.Platform = p
		if images[s], err = Image(o); err != nil {
			return nil, fmt.Errorf("build image for %s: %w", s, err)
		}
	}
	return Index(images, opts.MediaType)
}
