package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("overlay mounts need root: run the tests as root")
	}
}

// layer makes a lower directory holding files name→content.
func layer(t *testing.T, dir string, files map[string]string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func mountForTest(t *testing.T, target, upper, work string, lowers []string, ro bool) {
	t.Helper()
	if err := Mount(target, upper, work, lowers, ro); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := Unmount(target); err != nil {
			t.Error(err)
		}
	})
}

func TestMountLayersTopFirstAndWritesGoToUpper(t *testing.T) {
	requireRoot(t)
	d := t.TempDir()
	top := layer(t, filepath.Join(d, "l1"), map[string]string{"a": "top"})
	bottom := layer(t, filepath.Join(d, "l0"), map[string]string{"a": "bottom", "b": "bottom"})
	target, upper, work := filepath.Join(d, "root"), filepath.Join(d, "upper"), filepath.Join(d, "work")
	mountForTest(t, target, upper, work, []string{top, bottom}, false)

	for name, want := range map[string]string{"a": "top", "b": "bottom"} {
		got, err := os.ReadFile(filepath.Join(target, name))
		if err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", name, got, err, want)
		}
	}
	if err := os.WriteFile(filepath.Join(target, "c"), []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(upper, "c")); err != nil {
		t.Errorf("write did not land in the upper dir: %v", err)
	}
	if _, err := os.Stat(filepath.Join(top, "c")); err == nil {
		t.Errorf("write changed a shared lower layer")
	}
}

func TestMountReadOnly(t *testing.T) {
	requireRoot(t)
	d := t.TempDir()
	l := layer(t, filepath.Join(d, "l0"), map[string]string{"a": "x"})
	target := filepath.Join(d, "root")
	mountForTest(t, target, filepath.Join(d, "upper"), filepath.Join(d, "work"), []string{l}, true)
	err := os.WriteFile(filepath.Join(target, "b"), nil, 0o644)
	if !errors.Is(err, unix.EROFS) {
		t.Fatalf("write to read-only rootfs: %v, want EROFS", err)
	}
}

// TestMountManyLayersBeyondOnePage mounts an image whose option string would
// exceed the page mount(2) accepts.
func TestMountManyLayersBeyondOnePage(t *testing.T) {
	requireRoot(t)
	d := t.TempDir()
	var lowers []string
	long := strings.Repeat("x", 60)
	for i := 0; i < 120; i++ {
		lowers = append(lowers, layer(t, filepath.Join(d, fmt.Sprintf("%s-%03d", long, i)), map[string]string{fmt.Sprintf("f%03d", i): "v"}))
	}
	if n := len(strings.Join(lowers, ":")); n < maxMountData {
		t.Fatalf("test layers too short: %d bytes", n)
	}
	target := filepath.Join(d, "root")
	mountForTest(t, target, filepath.Join(d, "upper"), filepath.Join(d, "work"), lowers, false)
	for _, f := range []string{"f000", "f119"} {
		if _, err := os.Stat(filepath.Join(target, f)); err != nil {
			t.Errorf("file of layer missing: %v", err)
		}
	}
}

func TestLegacyMountTooLongSaysWhy(t *testing.T) {
	lowers := []string{strings.Repeat("/l", maxMountData)}
	err := mountLegacy(t.TempDir(), "", "", lowers, false)
	if err == nil || !strings.Contains(err.Error(), "limit for mount(2)") {
		t.Fatalf("err = %v, want a clear length error", err)
	}
}

func TestLegacyMountEscapesSeparators(t *testing.T) {
	requireRoot(t)
	d := t.TempDir()
	l1 := layer(t, filepath.Join(d, "a:b,c"), map[string]string{"a": "1"})
	l2 := layer(t, filepath.Join(d, "plain"), map[string]string{"b": "2"})
	target := filepath.Join(d, "root")
	if err := os.MkdirAll(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := mountLegacy(target, "", "", []string{l1, l2}, false); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = Unmount(target) })
	if _, err := os.Stat(filepath.Join(target, "a")); err != nil {
		t.Error(err)
	}
}

func TestUnmountIsIdempotent(t *testing.T) {
	requireRoot(t)
	d := t.TempDir()
	l := layer(t, filepath.Join(d, "l0"), map[string]string{"a": "x"})
	target := filepath.Join(d, "root")
	if err := Mount(target, filepath.Join(d, "u"), filepath.Join(d, "w"), []string{l}, false); err != nil {
		t.Fatal(err)
	}
	// A process with its cwd inside keeps the mount busy: a plain umount
	// fails with EBUSY and Unmount must detach it instead.
	busy, err := os.Open(target)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for i := 0; i < 2; i++ {
		if err := Unmount(target); err != nil {
			t.Fatalf("unmount #%d: %v", i+1, err)
		}
	}
	if m, err := IsMountPoint(target); err != nil || m {
		t.Fatalf("still mounted: %v %v", m, err)
	}
	if err := Unmount(filepath.Join(d, "missing")); err != nil {
		t.Fatalf("unmount of missing path: %v", err)
	}
}

func TestMountRejectsBadArguments(t *testing.T) {
	d := t.TempDir()
	for name, tc := range map[string]struct {
		upper, work string
		lowers      []string
	}{
		"no lowers":          {lowers: nil},
		"upper without work": {upper: filepath.Join(d, "u"), lowers: []string{d}},
	} {
		if err := Mount(filepath.Join(d, "t"), tc.upper, tc.work, tc.lowers, false); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
