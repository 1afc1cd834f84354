package imagetest

import (
	"fmt"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// PauseEntrypoint runs catatonit as a pod's pause process: -P makes it
// only sleep and reap the zombies it inherits (it is PID 1 of the pod when
// the PID namespace is shared), exiting cleanly on SIGTERM/SIGINT.
var PauseEntrypoint = []string{"/catatonit", "-P"}

// PauseFiles is a root filesystem holding only /catatonit, a copy of
// Debian's static CatatonitBinary, so it needs no libraries.
func PauseFiles() ([]File, error) {
	b, err := os.ReadFile(CatatonitBinary)
	if err != nil {
		return nil, fmt.Errorf("%s is missing: install it with `make deps`", CatatonitBinary)
	}
	return []File{{Name: "catatonit", Mode: 0o755, Content: b}}, nil
}

// Pause is a pause image for tests: PauseFiles as one layer, entrypoint
// PauseEntrypoint, user 65535 as the Kubernetes pause image, in the given
// manifest format. The runtime builds its own pause image on the node;
// this one is for pushing to a test registry (a configured pause image).
func Pause(f Format) (v1.Image, error) {
	files, err := PauseFiles()
	if err != nil {
		return nil, err
	}
	l, err := Layer(files, Gzip)
	if err != nil {
		return nil, err
	}
	return Image(ImageOptions{
		Layers:    []v1.Layer{l},
		MediaType: f,
		Config:    v1.Config{Entrypoint: PauseEntrypoint, User: "65535:65535"},
	})
}
