package unpack

import (
	"bytes"
	"crypto/sha256"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

func TestDecompress(t *testing.T) {
	requireRoot(t)
	raw := tarBytes(t, dir("etc/"), file("etc/hostname", "peapod\n"))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw)
	zw.Close()
	var zs bytes.Buffer
	sw, err := zstd.NewWriter(&zs)
	if err != nil {
		t.Fatal(err)
	}
	sw.Write(raw)
	sw.Close()

	for name, blob := range map[string][]byte{"uncompressed": raw, "gzip": gz.Bytes(), "zstd": zs.Bytes()} {
		t.Run(name, func(t *testing.T) {
			rc, err := Decompress(bytes.NewReader(blob))
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			// What the caller hashes for the diffID must be the raw tar.
			h := sha256.New()
			root := t.TempDir()
			if _, err := Apply(t.Context(), root, io.TeeReader(rc, h)); err != nil {
				t.Fatal(err)
			}
			if want := sha256.Sum256(raw); !bytes.Equal(h.Sum(nil), want[:]) {
				t.Errorf("uncompressed stream hashes differently from the tar that was compressed")
			}
			tree{t, root}.content("etc/hostname", "peapod\n")
		})
	}

	t.Run("zstd CLI", func(t *testing.T) {
		zstdBin, err := exec.LookPath("zstd")
		if err != nil {
			t.Fatalf("zstd not found: install it with `make deps`")
		}
		cmd := exec.Command(zstdBin, "-q", "-c", "-19")
		cmd.Stdin = bytes.NewReader(raw)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("zstd: %v", err)
		}
		rc, err := Decompress(bytes.NewReader(out))
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		got, err := io.ReadAll(rc)
		if err != nil || !bytes.Equal(got, raw) {
			t.Errorf("zstd CLI output decompressed to %d bytes (%v), want the %d-byte tar", len(got), err, len(raw))
		}
	})

	for name, blob := range map[string][]byte{
		"xz":    {0xfd, '7', 'z', 'X', 'Z', 0, 0, 4},
		"bzip2": []byte("BZh91AY&SY"),
	} {
		t.Run(name+" refused", func(t *testing.T) {
			_, err := Decompress(bytes.NewReader(blob))
			if err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("Decompress(%s) = %v, want an error naming %s", name, err, name)
			}
		})
	}

	t.Run("corrupt gzip", func(t *testing.T) {
		bad := slices.Clone(gz.Bytes())
		bad[len(bad)-5] ^= 0xff // CRC
		rc, err := Decompress(bytes.NewReader(bad))
		if err == nil {
			_, err = Apply(t.Context(), t.TempDir(), rc)
		}
		if err == nil {
			t.Error("a gzip layer with a bad CRC unpacked without error")
		}
	})
}

// TestOverlayOfUnpackedLayers mounts three unpacked layers as overlayfs
// lower directories and checks the merged tree the container would see.
func TestOverlayOfUnpackedLayers(t *testing.T) {
	requireRoot(t)
	base := t.TempDir()
	layers := [][]entry{
		{ // bottom
			file("etc/passwd", "root:x:0:0::/root:/bin/sh\n"),
			file("etc/old.conf", "old"),
			file("var/cache/a", "a"), file("var/cache/b", "b"),
			file("keep", "kept"),
			file("tmp/gone-later", "x"),
		},
		{
			file("etc/.wh.old.conf", ""),
			dir("var/cache/"), file("var/cache/.wh..wh..opq", ""), file("var/cache/fresh", "fresh"),
			file("etc/new.conf", "new"),
		},
		{ // top
			file("tmp/.wh.gone-later", ""),
			file("etc/old.conf", "back again"), // recreated above a whiteout
		},
	}
	var lowers []string // topmost first, as overlayfs wants them
	for i, entries := range layers {
		dir := filepath.Join(base, "layer"+string(rune('0'+i)))
		if _, err := Apply(t.Context(), dir, bytes.NewReader(tarBytes(t, entries...))); err != nil {
			t.Fatalf("layer %d: %v", i, err)
		}
		lowers = append([]string{dir}, lowers...)
	}
	merged := filepath.Join(base, "merged")
	if err := os.Mkdir(merged, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("overlay", merged, "overlay", unix.MS_RDONLY, "lowerdir="+strings.Join(lowers, ":")); err != nil {
		t.Fatalf("mount overlay: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(merged, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", merged, err)
		}
	})

	m := tree{t, merged}
	m.content("etc/passwd", "root:x:0:0::/root:/bin/sh\n")
	m.content("etc/new.conf", "new")
	m.content("etc/old.conf", "back again")
	m.content("keep", "kept")
	m.absent("tmp/gone-later")
	m.content("var/cache/fresh", "fresh")
	if names := readDir(t, filepath.Join(merged, "var/cache")); !slices.Equal(names, []string{"fresh"}) {
		t.Errorf("opaque var/cache lists %v, want only [fresh]", names)
	}
	if names := readDir(t, filepath.Join(merged, "tmp")); len(names) != 0 {
		t.Errorf("tmp lists %v, want it empty", names)
	}
	// Without the top layer, old.conf is deleted by the middle one.
	mid := filepath.Join(base, "mid")
	if err := os.Mkdir(mid, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("overlay", mid, "overlay", unix.MS_RDONLY, "lowerdir="+strings.Join(lowers[1:], ":")); err != nil {
		t.Fatalf("mount overlay: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(mid, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", mid, err)
		}
	})
	tree{t, mid}.absent("etc/old.conf")
	if names := readDir(t, filepath.Join(mid, "etc")); !slices.Equal(names, []string{"new.conf", "passwd"}) {
		t.Errorf("etc of the two lower layers lists %v, want [new.conf passwd]", names)
	}
}

func readDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}
