package main

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
)

// imageSpec says what image to generate. The same spec and seed give the
// same bytes, hence the same digests, on every run.
type imageSpec struct {
	Layers  int
	SizeMiB int // uncompressed file data over all layers
	Seed    uint64
}

// imageFacts describe the generated image, for the report.
type imageFacts struct {
	Layers            int    `json:"layers"`
	Files             int    `json:"files"`
	UncompressedBytes int64  `json:"uncompressed_bytes"`
	CompressedBytes   int64  `json:"compressed_bytes"`
	Digest            string `json:"digest"`
}

// mtime is the fixed modification time of every entry, so the layers are
// reproducible.
var mtime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// buildImage writes the layers as gzip files under dir and returns the
// image (Docker schema 2 manifest, gzip layers, linux/amd64 config).
//
// Each layer looks like a slice of a real root filesystem rather than one
// big blob, because unpacking cost depends on the number of files as much
// as on bytes: about 16% of its bytes in ~4 KiB files (a thousand of them
// per 25 MiB), 24% in ~256 KiB files, the rest in one large file, plus
// directories and symlinks. File contents are pseudo-random, so gzip cannot
// shrink them and the download is as large as the unpacked data.
func buildImage(dir string, spec imageSpec) (v1.Image, imageFacts, error) {
	facts := imageFacts{Layers: spec.Layers}
	var layers []v1.Layer
	perLayer := int64(spec.SizeMiB) << 20 / int64(spec.Layers)
	for i := range spec.Layers {
		path := filepath.Join(dir, fmt.Sprintf("layer-%d.tar.gz", i))
		l, files, err := writeLayer(path, i, perLayer, spec.Seed)
		if err != nil {
			return nil, facts, err
		}
		facts.Files += files
		facts.UncompressedBytes += perLayer
		facts.CompressedBytes += l.size
		layers = append(layers, l)
	}
	cfg := &v1.ConfigFile{
		Architecture: "amd64",
		OS:           "linux",
		Created:      v1.Time{Time: mtime},
		Config:       v1.Config{Cmd: []string{"/bin/sh"}, Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}},
	}
	img, err := mutate.ConfigFile(empty.Image, cfg)
	if err != nil {
		return nil, facts, err
	}
	img = mutate.MediaType(img, types.DockerManifestSchema2)
	img = mutate.ConfigMediaType(img, types.DockerConfigJSON)
	for _, l := range layers {
		if img, err = mutate.Append(img, mutate.Addendum{Layer: l, MediaType: types.DockerLayer}); err != nil {
			return nil, facts, err
		}
	}
	d, err := img.Digest()
	if err != nil {
		return nil, facts, err
	}
	facts.Digest = d.String()
	return img, facts, nil
}

// writeLayer writes layer i (about size bytes of file data) gzip-compressed
// to path, hashing the tar stream and the gzip stream on the way.
func writeLayer(path string, i int, size int64, seed uint64) (*fileLayer, int, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	zsum, tsum := sha256.New(), sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, zsum)}
	zw, err := gzip.NewWriterLevel(cw, gzip.DefaultCompression)
	if err != nil {
		return nil, 0, err
	}
	tw := tar.NewWriter(io.MultiWriter(zw, tsum))

	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	binary.LittleEndian.PutUint64(key[8:], uint64(i))
	rng := rand.NewChaCha8(key)
	files := 0
	root := fmt.Sprintf("usr/lib/bench%d", i)
	dirs := []string{"usr/", "usr/lib/", root + "/"}
	for d := range 20 {
		dirs = append(dirs, fmt.Sprintf("%s/d%02d/", root, d))
	}
	for _, d := range dirs {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: mtime, Format: tar.FormatPAX}); err != nil {
			return nil, 0, err
		}
	}
	buf := make([]byte, 1<<20)
	file := func(name string, n int64) error {
		files++
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: n, ModTime: mtime, Format: tar.FormatPAX}); err != nil {
			return err
		}
		for n > 0 {
			c := min(n, int64(len(buf)))
			rng.Read(buf[:c])
			if _, err := tw.Write(buf[:c]); err != nil {
				return err
			}
			n -= c
		}
		return nil
	}
	small, medium := size*16/100, size*24/100
	left := size
	for k := 0; small > 0; k++ {
		n := min(small, 512+int64(rng.Uint64()%7168)) // 0.5 to 7.5 KiB
		if err := file(fmt.Sprintf("%s/d%02d/s%05d.so", root, k%20, k), n); err != nil {
			return nil, 0, err
		}
		small -= n
		left -= n
	}
	for k := 0; medium > 0; k++ {
		n := min(medium, 128<<10+int64(rng.Uint64()%(256<<10))) // 128 to 384 KiB
		if err := file(fmt.Sprintf("%s/d%02d/m%03d.bin", root, k%20, k), n); err != nil {
			return nil, 0, err
		}
		medium -= n
		left -= n
	}
	if err := file(root+"/large.dat", left); err != nil {
		return nil, 0, err
	}
	for k := range 10 {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: fmt.Sprintf("%s/link%d", root, k),
			Linkname: "large.dat", Mode: 0o777, ModTime: mtime, Format: tar.FormatPAX}); err != nil {
			return nil, 0, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, 0, err
	}
	if err := zw.Close(); err != nil {
		return nil, 0, err
	}
	if err := f.Close(); err != nil {
		return nil, 0, err
	}
	return &fileLayer{
		path:   path,
		digest: v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", zsum.Sum(nil))},
		diffID: v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", tsum.Sum(nil))},
		size:   cw.n,
	}, files, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// fileLayer is a gzip layer on disk whose digests were computed while it
// was written, so pushing it reads it once.
type fileLayer struct {
	path           string
	digest, diffID v1.Hash
	size           int64
}

func (l *fileLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *fileLayer) Size() (int64, error)                { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error) { return types.DockerLayer, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error)  { return os.Open(l.path) }
func (l *fileLayer) Uncompressed() (io.ReadCloser, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{zr, f}, nil
}
