package unpack

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// tree is an unpacked layer under test.
type tree struct {
	t    *testing.T
	root string
}

func (tr tree) stat(name string) unix.Stat_t {
	tr.t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(tr.root, name), &st); err != nil {
		tr.t.Fatalf("lstat %s: %v", name, err)
	}
	return st
}

// want checks type, permission bits (with setuid/setgid/sticky) and owner.
func (tr tree) want(name string, typ uint32, perm uint32, uid, gid uint32) unix.Stat_t {
	tr.t.Helper()
	st := tr.stat(name)
	if st.Mode&unix.S_IFMT != typ {
		tr.t.Errorf("%s: type %o, want %o", name, st.Mode&unix.S_IFMT, typ)
	}
	if typ != unix.S_IFLNK && st.Mode&0o7777 != perm {
		tr.t.Errorf("%s: mode %04o, want %04o", name, st.Mode&0o7777, perm)
	}
	if st.Uid != uid || st.Gid != gid {
		tr.t.Errorf("%s: owner %d:%d, want %d:%d", name, st.Uid, st.Gid, uid, gid)
	}
	return st
}

func (tr tree) content(name, want string) {
	tr.t.Helper()
	b, err := os.ReadFile(filepath.Join(tr.root, name))
	if err != nil || string(b) != want {
		tr.t.Errorf("%s: content %q, %v; want %q", name, b, err, want)
	}
}

func (tr tree) absent(name string) {
	tr.t.Helper()
	if _, err := os.Lstat(filepath.Join(tr.root, name)); !errors.Is(err, os.ErrNotExist) {
		tr.t.Errorf("%s exists (%v); want it absent", name, err)
	}
}

func (tr tree) xattr(name, attr, want string) {
	tr.t.Helper()
	buf := make([]byte, 256)
	n, err := unix.Lgetxattr(filepath.Join(tr.root, name), attr, buf)
	if err != nil || string(buf[:n]) != want {
		tr.t.Errorf("%s: xattr %s = %q, %v; want %q", name, attr, buf[:max(n, 0)], err, want)
	}
}

func (tr tree) noXattr(name, attr string) {
	tr.t.Helper()
	_, err := unix.Lgetxattr(filepath.Join(tr.root, name), attr, make([]byte, 256))
	if !errors.Is(err, unix.ENODATA) {
		tr.t.Errorf("%s: xattr %s present or unreadable (%v); want none", name, attr, err)
	}
}

func (tr tree) mtime(name string, want time.Time) {
	tr.t.Helper()
	st := tr.stat(name)
	if got := time.Unix(st.Mtim.Unix()); !got.Equal(want) {
		tr.t.Errorf("%s: mtime %v, want %v", name, got.UTC(), want)
	}
}

// whiteout checks that name is an overlayfs whiteout: a 0:0 char device.
func (tr tree) whiteout(name string) {
	tr.t.Helper()
	st := tr.stat(name)
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		tr.t.Errorf("%s: mode %o rdev %d; want a 0:0 character device", name, st.Mode, st.Rdev)
	}
}

func TestApplyLayers(t *testing.T) {
	requireRoot(t)
	t2001 := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	t2003 := time.Date(2003, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		entries []entry
		check   func(tree)
	}{
		{
			name: "owner, mode, xattr, mtime, implied parents",
			entries: []entry{
				file("etc/app/conf", "k=v").with(func(e *entry) {
					e.uid, e.gid, e.mode, e.mtime = 1000, 2000, 0o640, t2001
					e.xattrs = map[string]string{"user.peapod.test": "yes", "user.other": "2"}
				}),
			},
			check: func(tr tree) {
				tr.want("etc", unix.S_IFDIR, 0o755, 0, 0)
				tr.want("etc/app", unix.S_IFDIR, 0o755, 0, 0)
				tr.want("etc/app/conf", unix.S_IFREG, 0o640, 1000, 2000)
				tr.content("etc/app/conf", "k=v")
				tr.xattr("etc/app/conf", "user.peapod.test", "yes")
				tr.xattr("etc/app/conf", "user.other", "2")
				tr.mtime("etc/app/conf", t2001)
			},
		},
		{
			name: "setuid, setgid, sticky survive chown",
			entries: []entry{
				file("bin/su", "su").with(func(e *entry) { e.mode = 0o4755 }),
				file("bin/mine", "m").with(func(e *entry) { e.mode, e.uid, e.gid = 0o6750, 1000, 1000 }),
				file("bin/wall", "w").with(func(e *entry) { e.mode, e.gid = 0o2755, 5 }),
				dir("tmp/").with(func(e *entry) { e.mode = 0o1777 }),
				dir("shared/").with(func(e *entry) { e.mode, e.gid = 0o2775, 50 }),
			},
			check: func(tr tree) {
				tr.want("bin/su", unix.S_IFREG, 0o4755, 0, 0)
				tr.want("bin/mine", unix.S_IFREG, 0o6750, 1000, 1000)
				tr.want("bin/wall", unix.S_IFREG, 0o2755, 0, 5)
				tr.want("tmp", unix.S_IFDIR, 0o1777, 0, 0)
				tr.want("shared", unix.S_IFDIR, 0o2775, 0, 50)
			},
		},
		{
			name: "implied parent in a setgid directory is still root 0755",
			entries: []entry{
				dir("shared/").with(func(e *entry) { e.mode, e.gid = 0o2775, 50 }),
				file("shared/a/b", "x"),
			},
			check: func(tr tree) {
				tr.want("shared/a", unix.S_IFDIR, 0o755, 0, 0)
			},
		},
		{
			name: "directory metadata and mtime set after its children",
			entries: []entry{
				dir("d/").with(func(e *entry) { e.mode, e.uid, e.gid, e.mtime = 0o750, 7, 8, t2001 }),
				file("d/f", "x"),
				dir("d/sub/").with(func(e *entry) { e.mtime = t2003 }),
				file("d/sub/g", "y"),
				dir("./").with(func(e *entry) { e.mode, e.mtime = 0o755, t2003 }),
			},
			check: func(tr tree) {
				tr.want("d", unix.S_IFDIR, 0o750, 7, 8)
				tr.mtime("d", t2001)
				tr.mtime("d/sub", t2003)
				tr.mtime(".", t2003)
			},
		},
		{
			name: "symlinks keep any target, own owner and mtime",
			entries: []entry{
				symlink("bin/sh", "/bin/busybox").with(func(e *entry) { e.uid, e.gid, e.mtime = 5, 6, t2001 }),
				symlink("lib", "usr/lib"),
				symlink("up", "../../../.."),
			},
			check: func(tr tree) {
				tr.want("bin/sh", unix.S_IFLNK, 0, 5, 6)
				tr.mtime("bin/sh", t2001)
				for name, want := range map[string]string{"bin/sh": "/bin/busybox", "lib": "usr/lib", "up": "../../../.."} {
					if got, err := os.Readlink(filepath.Join(tr.root, name)); err != nil || got != want {
						tr.t.Errorf("%s -> %q, %v; want %q", name, got, err, want)
					}
				}
			},
		},
		{
			name: "hardlinks share the inode",
			entries: []entry{
				file("bin/busybox", "bb").with(func(e *entry) { e.mode = 0o755 }),
				hardlink("bin/ls", "bin/busybox"),
				hardlink("sbin/init", "./bin/busybox"),
				symlink("s", "bin/busybox"),
				hardlink("s2", "s"),
			},
			check: func(tr tree) {
				bb := tr.want("bin/busybox", unix.S_IFREG, 0o755, 0, 0)
				for _, n := range []string{"bin/ls", "sbin/init"} {
					if st := tr.stat(n); st.Ino != bb.Ino {
						tr.t.Errorf("%s: inode %d, want %d (bin/busybox)", n, st.Ino, bb.Ino)
					}
				}
				if bb.Nlink != 3 {
					tr.t.Errorf("bin/busybox: %d links, want 3", bb.Nlink)
				}
				if tr.stat("s2").Ino != tr.stat("s").Ino {
					tr.t.Errorf("s2 is not a hardlink of the symlink s")
				}
			},
		},
		{
			name: "device nodes and fifos",
			entries: []entry{
				chardev("dev/null", 1, 3).with(func(e *entry) { e.mode = 0o666 }),
				{name: "dev/loop9", typ: tar.TypeBlock, major: 7, minor: 9, mode: 0o660, gid: 6},
				{name: "run/fifo", typ: tar.TypeFifo, mode: 0o620},
			},
			check: func(tr tree) {
				if st := tr.want("dev/null", unix.S_IFCHR, 0o666, 0, 0); unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
					tr.t.Errorf("dev/null: device %d:%d, want 1:3", unix.Major(st.Rdev), unix.Minor(st.Rdev))
				}
				if st := tr.want("dev/loop9", unix.S_IFBLK, 0o660, 0, 6); unix.Major(st.Rdev) != 7 || unix.Minor(st.Rdev) != 9 {
					tr.t.Errorf("dev/loop9: device %d:%d, want 7:9", unix.Major(st.Rdev), unix.Minor(st.Rdev))
				}
				tr.want("run/fifo", unix.S_IFIFO, 0o620, 0, 0)
			},
		},
		{
			name: "whiteouts become 0:0 character devices",
			entries: []entry{
				file(".wh.gone", ""),
				file("etc/.wh.passwd", ""),
				file("f", "replaced later"),
				file(".wh.f", ""),
			},
			check: func(tr tree) {
				tr.whiteout("gone")
				tr.whiteout("etc/passwd")
				tr.whiteout("f")
				tr.absent(".wh.gone")
				tr.absent("etc/.wh.passwd")
				tr.absent(".wh.f")
			},
		},
		{
			name: "opaque directory marker",
			entries: []entry{
				dir("var/"),
				dir("var/cache/"),
				file("var/cache/.wh..wh..opq", ""),
				file("var/cache/new", "n"),
				file("implied/.wh..wh..opq", ""),
			},
			check: func(tr tree) {
				tr.xattr("var/cache", "trusted.overlay.opaque", "y")
				tr.xattr("implied", "trusted.overlay.opaque", "y")
				tr.noXattr("var", "trusted.overlay.opaque")
				tr.content("var/cache/new", "n")
				tr.absent("var/cache/.wh..wh..opq")
			},
		},
		{
			name: "AUFS bookkeeping entries are skipped",
			entries: []entry{
				dir(".wh..wh.plnk/"),
				file(".wh..wh.plnk/123.456", "x"),
				file(".wh..wh.aufs", ""),
			},
			check: func(tr tree) {
				tr.absent(".wh..wh.plnk")
				tr.absent(".wh..wh.aufs")
				tr.absent("plnk")
			},
		},
		{
			name: "later entries replace earlier ones",
			entries: []entry{
				dir("a/"), file("a/child", "c"), file("a", "file now"),
				file("b", "file"), dir("b/"), file("b/child", "c"),
				symlink("c", "/etc/passwd"), file("c", "own content"),
				file("d", "old"), file("d", "new").with(func(e *entry) { e.mode = 0o600 }),
				dir("e/").with(func(e *entry) { e.mode = 0o700 }), file("e/keep", "k"), dir("e/").with(func(e *entry) { e.mode = 0o755 }),
				file("g", "x"), symlink("g", "target"),
			},
			check: func(tr tree) {
				tr.want("a", unix.S_IFREG, 0o644, 0, 0)
				tr.content("a", "file now")
				tr.want("b", unix.S_IFDIR, 0o755, 0, 0)
				tr.content("b/child", "c")
				tr.want("c", unix.S_IFREG, 0o644, 0, 0)
				tr.content("c", "own content")
				tr.want("d", unix.S_IFREG, 0o600, 0, 0)
				tr.content("d", "new")
				tr.want("e", unix.S_IFDIR, 0o755, 0, 0)
				tr.content("e/keep", "k")
				tr.want("g", unix.S_IFLNK, 0, 0, 0)
			},
		},
		{
			name: "overlay xattrs in the tar are not applied",
			entries: []entry{
				dir("d/").with(func(e *entry) {
					e.xattrs = map[string]string{"trusted.overlay.redirect": "/etc", "trusted.overlay.opaque": "y", "user.kept": "1"}
				}),
			},
			check: func(tr tree) {
				tr.noXattr("d", "trusted.overlay.redirect")
				tr.noXattr("d", "trusted.overlay.opaque")
				tr.xattr("d", "user.kept", "1")
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "layer")
			if _, err := Apply(t.Context(), root, bytes.NewReader(tarBytes(t, tc.entries...))); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			tc.check(tree{t, root})
		})
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// TestApplyStatsAndDrain checks the reported sizes and that the whole
// stream, record padding after the end-of-archive marker included, is read:
// the caller's diffID hash depends on it.
func TestApplyStatsAndDrain(t *testing.T) {
	requireRoot(t)
	b := tarBytes(t,
		dir("d/"),
		file("d/a", "hello"),
		file("d/b", string(make([]byte, 300<<10))),
		symlink("s", "d/a"),
		hardlink("h", "d/a"),
		file(".wh.old", ""),
	)
	// GNU tar pads archives to a 10 KiB record.
	b = append(b, make([]byte, 10240-len(b)%10240)...)
	cr := &countingReader{r: bytes.NewReader(b)}
	st, err := Apply(t.Context(), t.TempDir(), cr)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(5 + 300<<10); st.Size != want {
		t.Errorf("Size = %d, want %d", st.Size, want)
	}
	if st.Entries != 6 {
		t.Errorf("Entries = %d, want 6", st.Entries)
	}
	if cr.n != len(b) {
		t.Errorf("Apply read %d of %d bytes; the rest would be missing from the diffID", cr.n, len(b))
	}
}

func TestApplyStopsWhenContextEnds(t *testing.T) {
	requireRoot(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := Apply(ctx, t.TempDir(), bytes.NewReader(tarBytes(t, file("a", "x"))))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Apply with a cancelled context: %v, want context.Canceled", err)
	}
}

func TestApplyRejectsCorruptTar(t *testing.T) {
	requireRoot(t)
	b := tarBytes(t, file("a", "some content here"))
	b[148] ^= 0xff // header checksum
	_, err := Apply(t.Context(), t.TempDir(), bytes.NewReader(b))
	if err == nil {
		t.Fatal("Apply accepted a tar with a broken header checksum")
	}
}
