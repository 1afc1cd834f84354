package imagetest

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Random is a gzip layer holding one file of size incompressible bytes
// derived from seed: the same seed gives the same layer, different seeds
// different ones, and compression saves nothing, so transfer and unpack
// costs in benchmarks are the size asked for.
func Random(seed uint64, size int64) (v1.Layer, error) {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	b := make([]byte, size)
	rand.NewChaCha8(key).Read(b) //nolint:errcheck // never fails
	return FromTar(Tar([]File{{Name: fmt.Sprintf("random-%d", seed), Content: b}}), Gzip, OCI)
}

// RandomImage has n Random layers of size bytes each, seeded seed,
// seed+1, …, for pull benchmarks (8 × 25 MB is a typical application).
func RandomImage(seed uint64, n int, size int64, f Format) (v1.Image, error) {
	layers := make([]v1.Layer, n)
	for i := range layers {
		l, err := Random(seed+uint64(i), size)
		if err != nil {
			return nil, fmt.Errorf("random layer %d: %w", i, err)
		}
		layers[i] = l
	}
	return Image(ImageOptions{Layers: layers, MediaType: f, Config: v1.Config{Cmd: []string{"/bin/true"}}})
}
