package image

import (
	"archive/tar"
	"bytes"
	"io"
	"testing"

	"github.com/google/go-containerregistry/pkg/compression"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// tfile is one tar entry of a test layer.
type tfile struct {
	Name string
	Type byte // tar.TypeReg when zero
	Body string
	Mode int64
	Link string
}

func tarOf(t *testing.T, files ...tfile) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, f := range files {
		h := &tar.Header{Name: f.Name, Typeflag: f.Type, Mode: f.Mode, Linkname: f.Link, Uname: "root", Gname: "root"}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(f.Body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			io.WriteString(tw, f.Body)
		}
	}
	tw.Close()
	return b.Bytes()
}

// testLayer builds a layer compressed with "gzip" or "zstd", with OCI or
// Docker media types.
func testLayer(t *testing.T, comp string, oci bool, files ...tfile) v1.Layer {
	t.Helper()
	data := tarOf(t, files...)
	opener := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	opts := []tarball.LayerOption{}
	switch {
	case comp == "zstd":
		opts = append(opts, tarball.WithCompression(compression.ZStd), tarball.WithMediaType(types.OCILayerZStd))
	case oci:
		opts = append(opts, tarball.WithMediaType(types.OCILayer))
	default:
		opts = append(opts, tarball.WithMediaType(types.DockerLayer))
	}
	l, err := tarball.LayerFromOpener(opener, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func testImage(t *testing.T, oci bool, arch string, layers ...v1.Layer) v1.Image {
	t.Helper()
	img := empty.Image
	if oci {
		img = mutate.MediaType(img, types.OCIManifestSchema1)
		img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	}
	img, err := mutate.AppendLayers(img, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Config.Env = []string{"PATH=/bin", "ARCH=" + arch}
	cf.Config.Entrypoint = []string{"/bin/app"}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func testIndex(t *testing.T, imgs map[string]v1.Image) v1.ImageIndex {
	t.Helper()
	var idx v1.ImageIndex = mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for arch, img := range imgs {
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	return idx
}

func mustDigest(t *testing.T, f func() (v1.Hash, error)) string {
	t.Helper()
	h, err := f()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}
