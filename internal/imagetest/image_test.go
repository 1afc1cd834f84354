package imagetest

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/peapod/peapod/internal/registrytest"
)

func readTar(t *testing.T, r io.Reader) []*tar.Header {
	t.Helper()
	var hdrs []*tar.Header
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return hdrs
		}
		if err != nil {
			t.Fatal(err)
		}
		hdrs = append(hdrs, h)
	}
}

func TestTarKeepsHostileEntriesVerbatim(t *testing.T) {
	files := []File{
		{Name: "../escape", Content: []byte("x")},
		{Name: "/etc/abs", Content: []byte("y"), Mode: 0o4755, Uid: 1000, Gid: 1000},
		Symlink("link", "/etc"),
		{Name: "link/passwd", Content: []byte("through")},
		{Name: "hard", Type: tar.TypeLink, Linkname: "../../outside"},
		{Name: "dev/null", Type: tar.TypeChar, Devmajor: 1, Devminor: 3, Mode: 0o666},
		{Name: "fifo", Type: tar.TypeFifo},
		{Name: "nothing", Mode: ModeNone},
		{Name: "cap", Content: []byte("c"), Xattrs: map[string]string{"security.capability": "\x01\x00"}},
	}
	hdrs := readTar(t, bytes.NewReader(Tar(files)))
	if len(hdrs) != len(files) {
		t.Fatalf("%d entries, want %d", len(hdrs), len(files))
	}
	for i, f := range files {
		h := hdrs[i]
		if h.Name != f.Name || h.Linkname != f.Linkname {
			t.Errorf("entry %d = %q → %q, want %q → %q", i, h.Name, h.Linkname, f.Name, f.Linkname)
		}
	}
	if hdrs[1].Mode != 0o4755 || hdrs[1].Uid != 1000 {
		t.Errorf("mode/uid = %o/%d, want 4755/1000", hdrs[1].Mode, hdrs[1].Uid)
	}
	if hdrs[2].Typeflag != tar.TypeSymlink || hdrs[2].Mode != 0o777 {
		t.Errorf("symlink entry = %c %o", hdrs[2].Typeflag, hdrs[2].Mode)
	}
	if hdrs[5].Typeflag != tar.TypeChar || hdrs[5].Devmajor != 1 || hdrs[5].Devminor != 3 {
		t.Errorf("char device = %c %d:%d", hdrs[5].Typeflag, hdrs[5].Devmajor, hdrs[5].Devminor)
	}
	if hdrs[7].Mode != 0 {
		t.Errorf("ModeNone gave mode %o", hdrs[7].Mode)
	}
	if got := hdrs[8].PAXRecords["SCHILY.xattr.security.capability"]; got != "\x01\x00" {
		t.Errorf("xattr = %q", got)
	}
}

func TestWhiteouts(t *testing.T) {
	tests := []struct {
		f    File
		want string
	}{
		{Whiteout("etc/motd"), "etc/.wh.motd"},
		{Whiteout("top"), ".wh.top"},
		{Whiteout("var/cache/"), "var/.wh.cache"},
		{OpaqueDir("var/cache"), "var/cache/.wh..wh..opq"},
		{OpaqueDir("var/cache/"), "var/cache/.wh..wh..opq"},
	}
	for _, tc := range tests {
		if tc.f.Name != tc.want {
			t.Errorf("got %q, want %q", tc.f.Name, tc.want)
		}
	}
}

func TestLayerCompressions(t *testing.T) {
	files := []File{Dir("etc"), Reg("etc/motd", "hello\n")}
	magic := map[Compression][]byte{Gzip: {0x1f, 0x8b}, Zstd: {0x28, 0xb5, 0x2f, 0xfd}, Uncompressed: []byte("etc/")}
	tests := []struct {
		c           Compression
		oci, docker types.MediaType
	}{
		{Gzip, types.OCILayer, types.DockerLayer},
		{Zstd, types.OCILayerZStd, types.OCILayerZStd},
		{Uncompressed, types.OCIUncompressedLayer, types.DockerUncompressedLayer},
	}
	for _, tc := range tests {
		t.Run(tc.c.String(), func(t *testing.T) {
			l, err := Layer(files, tc.c)
			if err != nil {
				t.Fatal(err)
			}
			if err := verifyLayer(l); err != nil {
				t.Fatalf("layer does not verify: %v", err)
			}
			rc, _ := l.Compressed()
			b, _ := io.ReadAll(rc)
			if !bytes.HasPrefix(b, magic[tc.c]) {
				t.Errorf("compressed bytes start % x, want % x", b[:4], magic[tc.c])
			}
			rc, _ = l.Uncompressed()
			if hdrs := readTar(t, rc); len(hdrs) != 2 || hdrs[1].Name != "etc/motd" {
				t.Errorf("uncompressed tar has %v", hdrs)
			}
			again, _ := Layer(files, tc.c)
			if d1, d2 := digest(t, l), digest(t, again); d1 != d2 {
				t.Errorf("digest not stable: %s then %s", d1, d2)
			}
			for f, want := range map[Format]types.MediaType{OCI: tc.oci, Docker: tc.docker} {
				img, err := Image(ImageOptions{Layers: []v1.Layer{l}, MediaType: f})
				if err != nil {
					t.Fatal(err)
				}
				m, _ := img.Manifest()
				if got := m.Layers[0].MediaType; got != want {
					t.Errorf("format %d: layer media type %s, want %s", f, got, want)
				}
				if m.Layers[0].Digest != digest(t, l) {
					t.Errorf("format %d changed the layer digest", f)
				}
			}
		})
	}
}

func digest(t *testing.T, d interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	h, err := d.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestImageFormatsAndConfig(t *testing.T) {
	l, err := Layer([]File{Reg("hello", "hi")}, Gzip)
	if err != nil {
		t.Fatal(err)
	}
	cfg := v1.Config{Entrypoint: []string{"/bin/sh"}, Cmd: []string{"-c", "true"}, Env: []string{"A=b"}, WorkingDir: "/srv", User: "1000:1000"}
	for _, tc := range []struct {
		f                Format
		manifest, config types.MediaType
	}{
		{OCI, types.OCIManifestSchema1, types.OCIConfigJSON},
		{Docker, types.DockerManifestSchema2, types.DockerConfigJSON},
	} {
		opts := ImageOptions{Layers: []v1.Layer{l}, MediaType: tc.f, Config: cfg, Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}
		img, err := Image(opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := verifyImage(img); err != nil {
			t.Fatalf("image does not verify: %v", err)
		}
		m, _ := img.Manifest()
		if m.MediaType != tc.manifest || m.Config.MediaType != tc.config {
			t.Errorf("media types %s / %s, want %s / %s", m.MediaType, m.Config.MediaType, tc.manifest, tc.config)
		}
		cf, _ := img.ConfigFile()
		if cf.Architecture != "arm64" || cf.Variant != "v8" || cf.OS != "linux" {
			t.Errorf("platform %s/%s/%s", cf.OS, cf.Architecture, cf.Variant)
		}
		c := cf.Config
		if c.Entrypoint[0] != "/bin/sh" || c.WorkingDir != "/srv" || c.User != "1000:1000" || len(c.Env) != 2 || c.Env[0] != DefaultPath {
			t.Errorf("config = %+v", c)
		}
		again, _ := Image(opts)
		if digest(t, img) != digest(t, again) {
			t.Error("image digest not stable")
		}
	}
}

func TestMultiArchIndex(t *testing.T) {
	l, _ := Layer([]File{Reg("x", "x")}, Gzip)
	for _, tc := range []struct {
		f  Format
		mt types.MediaType
	}{{OCI, types.OCIImageIndex}, {Docker, types.DockerManifestList}} {
		idx, err := MultiArch(ImageOptions{Layers: []v1.Layer{l}, MediaType: tc.f}, "linux/amd64", "linux/arm64/v8")
		if err != nil {
			t.Fatal(err)
		}
		if err := verifyIndex(idx); err != nil {
			t.Fatalf("index does not verify: %v", err)
		}
		im, _ := idx.IndexManifest()
		if im.MediaType != tc.mt || len(im.Manifests) != 2 {
			t.Fatalf("index %s with %d manifests", im.MediaType, len(im.Manifests))
		}
		seen := map[string]bool{}
		for _, d := range im.Manifests {
			seen[d.Platform.String()] = true
			img, _ := idx.Image(d.Digest)
			cf, _ := img.ConfigFile()
			if cf.Architecture != d.Platform.Architecture {
				t.Errorf("%s image config says %s", d.Platform, cf.Architecture)
			}
		}
		if !seen["linux/amd64"] || !seen["linux/arm64/v8"] {
			t.Errorf("platforms %v", seen)
		}
	}
}

func TestPushRoundTrip(t *testing.T) {
	r := registrytest.Start(t, registrytest.Options{})
	l, _ := Layer([]File{Reg("hello", "hi")}, Zstd)
	idx, err := MultiArch(ImageOptions{Layers: []v1.Layer{l}}, "linux/amd64", "linux/arm64")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Push(t.Context(), "multi:v1", idx); err != nil {
		t.Fatal(err)
	}
	ref, _ := r.Reference("multi:v1")
	got, err := remote.Index(ref, r.RemoteOptions(t.Context(), nil)...)
	if err != nil {
		t.Fatal(err)
	}
	if digest(t, got) != digest(t, idx) {
		t.Errorf("pulled index %s, pushed %s", digest(t, got), digest(t, idx))
	}
	if err := verifyIndex(got); err != nil {
		t.Errorf("pulled index does not verify: %v", err)
	}
}

// verifyLayer checks that the layer's bytes hash to its digest, diff ID and
// size, as a puller would.
func verifyLayer(l v1.Layer) error {
	rc, err := l.Compressed()
	if err != nil {
		return err
	}
	d, n, err := v1.SHA256(rc)
	if err != nil {
		return err
	}
	if want, _ := l.Digest(); d != want {
		return fmt.Errorf("compressed bytes hash to %s, digest says %s", d, want)
	}
	if want, _ := l.Size(); n != want {
		return fmt.Errorf("%d compressed bytes, size says %d", n, want)
	}
	rc, err = l.Uncompressed()
	if err != nil {
		return err
	}
	diff, _, err := v1.SHA256(rc)
	if err != nil {
		return err
	}
	if want, _ := l.DiffID(); diff != want {
		return fmt.Errorf("tar hashes to %s, diff ID says %s", diff, want)
	}
	return nil
}

// verifyImage checks the manifest, config and layers against each other.
func verifyImage(img v1.Image) error {
	m, err := img.Manifest()
	if err != nil {
		return err
	}
	raw, _ := img.RawConfigFile()
	if d, _, _ := v1.SHA256(bytes.NewReader(raw)); d != m.Config.Digest {
		return fmt.Errorf("config hashes to %s, manifest says %s", d, m.Config.Digest)
	}
	cf, _ := img.ConfigFile()
	layers, _ := img.Layers()
	if len(layers) != len(m.Layers) || len(cf.RootFS.DiffIDs) != len(m.Layers) {
		return fmt.Errorf("%d layers, %d in manifest, %d diff IDs", len(layers), len(m.Layers), len(cf.RootFS.DiffIDs))
	}
	for i, l := range layers {
		if err := verifyLayer(l); err != nil {
			return fmt.Errorf("layer %d: %w", i, err)
		}
		if d, _ := l.Digest(); d != m.Layers[i].Digest {
			return fmt.Errorf("layer %d is %s, manifest says %s", i, d, m.Layers[i].Digest)
		}
		if d, _ := l.DiffID(); d != cf.RootFS.DiffIDs[i] {
			return fmt.Errorf("layer %d diff ID %s, config says %s", i, d, cf.RootFS.DiffIDs[i])
		}
	}
	return nil
}

// verifyIndex checks every child image.
func verifyIndex(idx v1.ImageIndex) error {
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			return err
		}
		if got, _ := img.Digest(); got != d.Digest {
			return fmt.Errorf("child %s hashes to %s", d.Digest, got)
		}
		if err := verifyImage(img); err != nil {
			return fmt.Errorf("child %s: %w", d.Platform, err)
		}
	}
	return nil
}
