package image

import (
	"strings"
	"testing"

	"github.com/peapod/peapod/internal/imagetest"
	"github.com/peapod/peapod/internal/registrytest"
)

// A layer whose tar names lib/foo.so, above a layer that made lib a symlink
// to usr/lib, gets a directory lib of its own: layers are unpacked
// standalone (stored by diffID, shared by every image that has them), and
// the container sees that directory hide the lower symlink. This is what
// containerd's overlayfs snapshotter and Docker's overlay2 produce too (they
// apply a layer into its own upper directory; see docs/design.md), so images
// behave the same on peapod as there. The test pins the behaviour through a
// real overlay mount, so a change to it is a decision, not an accident.
func TestLayerBelowDirectorySymlinkIsHiddenLikeOverlaySnapshotters(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	lower := layer(t, imagetest.Gzip,
		imagetest.Dir("usr"),
		imagetest.Dir("usr/lib"),
		imagetest.Reg("usr/lib/base.so", "base"),
		imagetest.Symlink("lib", "usr/lib"),
	)
	upper := layer(t, imagetest.Gzip, imagetest.Reg("lib/foo.so", "foo"))
	push(t, reg, "usrmerge:v1", testImage(t, imagetest.OCI, lower, upper))
	s, _ := testService(t, Options{RegistriesConfig: insecureConf(t, reg.Host)})
	image := reg.Host + "/usrmerge:v1"
	if _, err := s.Pull(t.Context(), image, nil, PullOptions{}); err != nil {
		t.Fatal(err)
	}
	dirs, err := s.LayerDirs(image)
	if err != nil {
		t.Fatal(err)
	}
	tree := mergedTree(t, dirs)
	for path, wantType := range map[string]string{
		"/lib":             "d", // the upper layer's directory, not the symlink
		"/lib/foo.so":      "f",
		"/usr/lib/base.so": "f",
	} {
		got, ok := tree[path]
		if !ok || !strings.HasPrefix(got, wantType+" ") {
			t.Errorf("%s in the container: %q, want type %s", path, got, wantType)
		}
	}
	for _, absent := range []string{"/lib/base.so", "/usr/lib/foo.so"} {
		if got, ok := tree[absent]; ok {
			t.Errorf("%s visible (%s): the upper layer was written through the lower symlink", absent, got)
		}
	}
}
