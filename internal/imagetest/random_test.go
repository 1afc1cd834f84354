package imagetest

import "testing"

// BenchmarkRandomImage builds the benchmark-sized image: 8 layers of 25 MB.
func BenchmarkRandomImage(b *testing.B) {
	for b.Loop() {
		img, err := RandomImage(1, 8, 25<<20, OCI)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := img.Digest(); err != nil {
			b.Fatal(err)
		}
	}
}
