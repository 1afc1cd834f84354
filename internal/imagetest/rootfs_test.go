package imagetest

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// extract writes a trusted layer (one this package built) into dir.
func extract(t *testing.T, l v1.Layer, dir string) {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err = os.MkdirAll(p, 0o755); err == nil {
				err = syscall.Chmod(p, uint32(h.Mode)) // keeps the sticky bit
			}
		case tar.TypeSymlink:
			err = os.Symlink(h.Linkname, p)
		case tar.TypeReg:
			var b []byte
			if b, err = io.ReadAll(tr); err == nil {
				err = os.WriteFile(p, b, os.FileMode(h.Mode).Perm())
			}
		default:
			t.Fatalf("unexpected entry %s type %c", h.Name, h.Typeflag)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// inRoot runs argv chrooted into root and returns its combined output.
func inRoot(t *testing.T, root string, argv ...string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("running a root filesystem needs root (chroot)")
	}
	cmd := exec.CommandContext(t.Context(), argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
	cmd.Dir = "/"
	cmd.Env = []string{DefaultPath}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v in the image: %v\n%s", argv, err, out)
	}
	return string(out)
}

func TestBusyboxRuns(t *testing.T) {
	l, err := Busybox(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	extract(t, l, root)
	tests := []struct {
		argv []string
		want string
	}{
		{[]string{"/bin/sh", "-c", "echo hello from $0"}, "hello from /bin/sh"},
		{[]string{"/bin/sh", "-c", "id app"}, "uid=1000(app) gid=1000(app) groups=1000(app),100(users)"},
		{[]string{"/bin/sh", "-c", "id -un nobody"}, "nobody"},
		// Applets are files the shell execs, not in-process builtins.
		{[]string{"/bin/sh", "-c", "readlink /bin/ls; for a in wget httpd nc hostname unshare; do command -v $a; done"}, "/bin/busybox\n/usr/bin/wget\n/usr/sbin/httpd\n/usr/bin/nc\n/bin/hostname\n/usr/bin/unshare"},
		{[]string{"/usr/bin/ipcmk", "--help"}, "ipcmk"},
		{[]string{"/bin/sh", "-c", "stat -c %a /tmp"}, "1777"},
	}
	for _, tc := range tests {
		if got := inRoot(t, root, tc.argv...); !strings.Contains(got, tc.want) {
			t.Errorf("%q printed %q, want %q", tc.argv, got, tc.want)
		}
	}
	img, err := BusyboxImage(t.Context(), ImageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	if len(cf.Config.Cmd) != 1 || cf.Config.Cmd[0] != "sh" {
		t.Errorf("busybox image Cmd = %q, want [sh]", cf.Config.Cmd)
	}
	again, _ := Busybox(t.Context())
	if digest(t, l) != digest(t, again) {
		t.Error("busybox layer digest not stable")
	}
}

func TestPauseImage(t *testing.T) {
	img, err := Pause(OCI)
	if err != nil {
		t.Fatal(err)
	}
	if err := verifyImage(img); err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	if strings.Join(cf.Config.Entrypoint, " ") != "/catatonit -P" {
		t.Errorf("entrypoint %q", cf.Config.Entrypoint)
	}
	layers, _ := img.Layers()
	root := t.TempDir()
	extract(t, layers[0], root)
	if got := inRoot(t, root, "/catatonit", "-V"); !strings.Contains(got, "catatonit") {
		t.Errorf("catatonit -V printed %q", got)
	}
}

func TestRandom(t *testing.T) {
	const size = 1 << 20
	a, err := Random(7, size)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Random(7, size)
	c, _ := Random(8, size)
	if digest(t, a) != digest(t, b) {
		t.Error("same seed, different layers")
	}
	if digest(t, a) == digest(t, c) {
		t.Error("different seeds, same layer")
	}
	if n, _ := a.Size(); n < size {
		t.Errorf("compressed to %d bytes from %d: data is compressible", n, size)
	}
	if err := verifyLayer(a); err != nil {
		t.Error(err)
	}
	img, err := RandomImage(1, 3, 4096, Docker)
	if err != nil {
		t.Fatal(err)
	}
	if err := verifyImage(img); err != nil {
		t.Error(err)
	}
	if ls, _ := img.Layers(); len(ls) != 3 {
		t.Errorf("%d layers, want 3", len(ls))
	}
}
