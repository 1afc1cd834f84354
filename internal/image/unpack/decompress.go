package unpack

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// maxZstdWindow bounds the memory a zstd frame may ask the decoder for.
// zstd's own --long and --ultra modes stay within 128 MiB windows; a layer
// that declares more is far more likely an attempt to exhaust memory.
const maxZstdWindow = 256 << 20

var (
	magicGzip  = []byte{0x1f, 0x8b}
	magicZstd  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicXz    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
	magicBzip2 = []byte{'B', 'Z', 'h'}
)

// Decompress returns the uncompressed stream of a layer blob. The format is
// recognised by its magic bytes rather than taken from the manifest's media
// type, because registries and old tools label layers inconsistently (a
// Docker "tar.gzip" media type on a zstd blob, or a "tar" that is gzip).
// gzip and zstd are decompressed, anything else is passed through as an
// uncompressed tar; xz and bzip2 (legal in very old Docker images, never in
// OCI) are refused by name so the error says what the layer is.
//
// Closing the result releases the decoder; it does not close r.
func Decompress(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(512)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("decompress layer: read header: %w", err)
	}
	switch {
	case len(head) >= 262 && string(head[257:262]) == "ustar":
		// A tar whose first file name happens to start with a magic.
		return io.NopCloser(br), nil
	case bytes.HasPrefix(head, magicGzip):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("decompress gzip layer: %w", err)
		}
		return zr, nil
	case bytes.HasPrefix(head, magicZstd):
		zr, err := zstd.NewReader(br, zstd.WithDecoderMaxWindow(maxZstdWindow))
		if err != nil {
			return nil, fmt.Errorf("decompress zstd layer: %w", err)
		}
		return zstdCloser{zr}, nil
	case bytes.HasPrefix(head, magicXz):
		return nil, errors.New("decompress layer: xz compression is not supported (OCI layers are uncompressed, gzip or zstd)")
	case bytes.HasPrefix(head, magicBzip2):
		return nil, errors.New("decompress layer: bzip2 compression is not supported (OCI layers are uncompressed, gzip or zstd)")
	}
	return io.NopCloser(br), nil
}

// zstdCloser adapts zstd.Decoder, whose Close returns nothing.
type zstdCloser struct{ d *zstd.Decoder }

func (z zstdCloser) Read(p []byte) (int, error) { return z.d.Read(p) }
func (z zstdCloser) Close() error               { z.d.Close(); return nil }
