package imagetest

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Compression is how a layer's tar is stored.
type Compression int

const (
	Gzip Compression = iota
	Zstd
	Uncompressed
)

func (c Compression) String() string {
	switch c {
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	case Uncompressed:
		return "uncompressed"
	}
	return fmt.Sprintf("Compression(%d)", int(c))
}

// Format is the manifest family: OCI image spec or Docker schema 2.
type Format int

const (
	OCI Format = iota
	Docker
)

// layerMediaType is the media type of a layer in a manifest of format f.
// Docker schema 2 has no zstd type; moby pushes zstd layers with the OCI
// type inside Docker manifests, and so do we.
func layerMediaType(c Compression, f Format) types.MediaType {
	switch {
	case c == Zstd:
		return types.OCILayerZStd
	case c == Uncompressed && f == Docker:
		return types.DockerUncompressedLayer
	case c == Uncompressed:
		return types.OCIUncompressedLayer
	case f == Docker:
		return types.DockerLayer
	default:
		return types.OCILayer
	}
}

// Layer builds a layer holding Tar(files), compressed as asked, with the
// OCI media type. Image gives it the Docker media type when it goes into a
// Docker image (the bytes and digest stay the same).
func Layer(files []File, c Compression) (v1.Layer, error) {
	return FromTar(Tar(files), c, OCI)
}

// FromTar builds a layer from tar bytes (or any bytes: a layer that is
// not a tar is a test case too).
func FromTar(tarBytes []byte, c Compression, f Format) (v1.Layer, error) {
	var buf bytes.Buffer
	var w io.WriteCloser
	switch c {
	case Gzip:
		// Fixed header (no name, no mtime): stable digests.
		w, _ = gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	case Zstd:
		zw, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedFastest))
		if err != nil {
			return nil, fmt.Errorf("zstd writer: %w", err)
		}
		w = zw
	case Uncompressed:
		return &layer{compressed: tarBytes, digest: sha(tarBytes), diffID: sha(tarBytes), comp: c, mediaType: layerMediaType(c, f)}, nil
	default:
		return nil, fmt.Errorf("build layer: unknown %v", c)
	}
	if _, err := w.Write(tarBytes); err != nil {
		return nil, fmt.Errorf("compress layer (%v): %w", c, err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("compress layer (%v): %w", c, err)
	}
	b := buf.Bytes()
	return &layer{compressed: b, digest: sha(b), diffID: sha(tarBytes), comp: c, mediaType: layerMediaType(c, f)}, nil
}

func sha(b []byte) v1.Hash {
	s := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", s[:])}
}

// layer keeps only the compressed bytes (half the memory for the large
// benchmark layers) and decompresses when asked for the tar.
type layer struct {
	compressed     []byte
	digest, diffID v1.Hash
	comp           Compression
	mediaType      types.MediaType
}

func (l *layer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *layer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *layer) Size() (int64, error)                { return int64(len(l.compressed)), nil }
func (l *layer) MediaType() (types.MediaType, error) { return l.mediaType, nil }
func (l *layer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.compressed)), nil
}
func (l *layer) withMediaType(mt types.MediaType) *layer { c := *l; c.mediaType = mt; return &c }

func (l *layer) Uncompressed() (io.ReadCloser, error) {
	r := bytes.NewReader(l.compressed)
	switch l.comp {
	case Gzip:
		return gzip.NewReader(r)
	case Zstd:
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		return zr.IOReadCloser(), nil
	default:
		return io.NopCloser(r), nil
	}
}
