// Package unpack applies one image layer, a tar stream from a registry, to
// a fresh directory that later serves as one read-only lower directory of an
// overlay mount.
//
// This is where hostile input meets the host filesystem, so the package is
// built to be safe by construction rather than by checking names alone:
// every path is resolved with openat2(2) and RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS from a descriptor of the layer directory, and the
// final component is then created or changed with a *at call that does not
// follow symlinks. Neither a "../" name, an absolute name, a symlink planted
// by an earlier entry ("a -> /" then "a/etc/passwd"), nor a hardlink to a
// host file can make Apply touch anything outside the layer directory.
// Symlinks themselves may point anywhere: they are only ever resolved inside
// the container, never by Apply.
//
// Docker/OCI whiteouts are translated to the overlayfs format on the way:
// ".wh.NAME" becomes a 0:0 character device NAME, and ".wh..wh..opq" in a
// directory becomes the xattr trusted.overlay.opaque=y on that directory.
package unpack

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ErrUnsafe is wrapped by every error about an entry that tries to reach
// outside the layer directory (escaping or absolute names, writes through a
// symlink, hardlinks to files that are not entries of this layer). Such a
// layer is hostile or broken; it must not be retried from a mirror as if the
// network had failed.
var ErrUnsafe = errors.New("unsafe layer entry")

const (
	whiteoutPrefix = ".wh."
	// whiteoutMeta prefixes AUFS bookkeeping entries (".wh..wh.plnk" and
	// friends); overlayfs has no use for them.
	whiteoutMeta   = ".wh..wh."
	whiteoutOpaque = ".wh..wh..opq"

	xattrOpaque = "trusted.overlay.opaque"
	// overlayXattrPrefix: attributes in this namespace steer overlayfs
	// itself (redirects, metacopy, opaque). A layer only gets to express
	// what the OCI format can express (whiteouts), so these are never
	// copied from a tar.
	overlayXattrPrefix = "trusted.overlay."
	paxXattrPrefix     = "SCHILY.xattr."
)

// Stats describes an applied layer.
type Stats struct {
	// Size is the number of bytes of regular file content written: the
	// layer's unpacked size as "crictl images" and disk accounting see it.
	Size int64
	// Entries counts the tar entries read, whiteouts included.
	Entries int
}

// Apply unpacks the uncompressed tar stream r into dir, creating dir (0755)
// if it does not exist. dir should be empty: Apply does not clear it.
//
// Apply reads r to its very end, past the tar end-of-archive marker, so that
// a caller hashing r (to check the layer's diffID) covers every byte.
//
// Owners, modes (setuid, setgid and sticky included), modification times
// and extended attributes are restored; Apply must therefore run as root.
// A later entry replaces an earlier one of the same name (a directory merges
// into an existing directory). Directories the tar implies but does not
// contain are created root-owned with mode 0755.
//
// Extended attributes: trusted.overlay.* attributes in the tar are ignored
// (see overlayXattrPrefix). An attribute the filesystem does not support
// (ENOTSUP) is skipped, as is a security.* attribute the kernel refuses
// (EPERM, EACCES, EINVAL: typically an LSM label such as security.selinux
// on a host running a different LSM), because the host's security module,
// not the image, decides labels; security.capability is applied like any
// other attribute. Any other failure is an error.
//
// On error Apply stops and returns what it has applied so far; dir is then
// in an undefined state and the caller must remove it (os.RemoveAll), never
// use it as a layer.
func Apply(ctx context.Context, dir string, r io.Reader) (Stats, error) {
	var st Stats
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return st, fmt.Errorf("unpack layer into %s: %w", dir, err)
	}
	root, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return st, fmt.Errorf("unpack layer into %s: open: %w", dir, err)
	}
	defer unix.Close(root)

	a := &applier{
		ctx:      ctx,
		root:     root,
		files:    make(map[string]bool),
		dirTimes: make(map[string]times),
		buf:      make([]byte, 128<<10),
	}
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return st, fmt.Errorf("unpack layer into %s: %w", dir, err)
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return st, fmt.Errorf("unpack layer into %s: read tar: %w", dir, err)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		n, err := a.apply(tr, hdr)
		st.Size += n
		if err != nil {
			return st, fmt.Errorf("unpack layer into %s: entry %q: %w", dir, hdr.Name, err)
		}
		st.Entries++
	}
	if err := a.finishDirs(); err != nil {
		return st, fmt.Errorf("unpack layer into %s: %w", dir, err)
	}
	// Tar writers pad the archive to a record size (10 KiB for GNU tar)
	// after the end marker; the diffID covers that padding too.
	if _, err := io.Copy(io.Discard, ctxReader{ctx, r}); err != nil {
		return st, fmt.Errorf("unpack layer into %s: read to end of stream: %w", dir, err)
	}
	return st, nil
}

type times struct{ atime, mtime time.Time }

// applier holds the state of one Apply.
type applier struct {
	ctx  context.Context
	root int // O_PATH descriptor of the layer directory
	// files are the names of the non-directory entries this layer created:
	// the only things a hardlink entry may point at.
	files map[string]bool
	// dirTimes are set once all entries are in, because creating an entry
	// changes its parent's mtime.
	dirTimes map[string]times
	buf      []byte
}

// apply applies one entry and returns the bytes of content it wrote.
func (a *applier) apply(tr io.Reader, hdr *tar.Header) (int64, error) {
	name, err := cleanName(hdr.Name)
	if err != nil {
		return 0, err
	}
	dir, base := splitName(name)
	if (strings.HasPrefix(base, whiteoutMeta) && base != whiteoutOpaque) ||
		strings.HasPrefix(dir, whiteoutMeta) || strings.Contains(dir, "/"+whiteoutMeta) {
		return 0, nil
	}
	if strings.HasPrefix(base, whiteoutPrefix) {
		return 0, a.whiteout(dir, base)
	}
	if name == "." {
		if hdr.Typeflag != tar.TypeDir {
			return 0, fmt.Errorf("%w: a %s would replace the layer's root directory", ErrUnsafe, typeName(hdr.Typeflag))
		}
		return 0, a.dirEntry(name, a.root, ".", hdr)
	}

	var linkDir int
	var linkBase string
	if hdr.Typeflag == tar.TypeLink {
		// Resolve the target before anything is removed, and only among
		// this layer's own entries: a hardlink to a host file (or to a
		// file of a lower layer that is not here) must never be made.
		target, err := cleanName(hdr.Linkname)
		if err != nil {
			return 0, fmt.Errorf("hardlink target %q: %w", hdr.Linkname, err)
		}
		if target == name {
			return 0, fmt.Errorf("hardlink to itself")
		}
		if !a.files[target] {
			return 0, fmt.Errorf("%w: hardlink target %q is not an earlier file of this layer", ErrUnsafe, hdr.Linkname)
		}
		td, tb := splitName(target)
		linkDir, err = a.openDir(td, false)
		if err != nil {
			return 0, fmt.Errorf("hardlink target %q: %w", hdr.Linkname, err)
		}
		defer unix.Close(linkDir)
		linkBase = tb
	}

	pfd, err := a.openDir(dir, true)
	if err != nil {
		return 0, err
	}
	defer unix.Close(pfd)

	if hdr.Typeflag == tar.TypeDir {
		return 0, a.dirEntry(name, pfd, base, hdr)
	}
	if err := removeAt(pfd, base); err != nil {
		return 0, fmt.Errorf("replace existing entry: %w", err)
	}

	var n int64
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeGNUSparse: // the reader turns TypeRegA into TypeReg
		n, err = a.regular(pfd, base, tr)
	case tar.TypeSymlink:
		err = unix.Symlinkat(hdr.Linkname, pfd, base)
		if err != nil {
			err = fmt.Errorf("symlink to %q: %w", hdr.Linkname, err)
		}
	case tar.TypeLink:
		var st unix.Stat_t
		if err := unix.Fstatat(linkDir, linkBase, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return 0, fmt.Errorf("hardlink target %q: %w", hdr.Linkname, err)
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return 0, fmt.Errorf("hardlink target %q is a directory", hdr.Linkname)
		}
		// flags 0: a hardlink to a symlink links the symlink itself.
		if err := unix.Linkat(linkDir, linkBase, pfd, base, 0); err != nil {
			return 0, fmt.Errorf("hardlink to %q: %w", hdr.Linkname, err)
		}
		// The inode already carries the target's owner, mode and times.
		a.files[name] = true
		return 0, nil
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		err = a.node(pfd, base, hdr)
	default:
		return 0, fmt.Errorf("unsupported tar entry type %s", typeName(hdr.Typeflag))
	}
	if err != nil {
		return n, err
	}
	a.files[name] = true
	if err := a.setMeta(pfd, base, hdr); err != nil {
		return n, err
	}
	t := entryTimes(hdr)
	ts := []unix.Timespec{timespec(t.atime), timespec(t.mtime)}
	if err := unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return n, fmt.Errorf("set times: %w", err)
	}
	return n, nil
}

// dirEntry creates (or merges into) the directory base in pfd.
func (a *applier) dirEntry(name string, pfd int, base string, hdr *tar.Header) error {
	var st unix.Stat_t
	err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR:
		// Merge: a directory may appear more than once.
	case err == nil || errors.Is(err, unix.ENOENT):
		if err := removeAt(pfd, base); err != nil {
			return fmt.Errorf("replace existing entry: %w", err)
		}
		if err := unix.Mkdirat(pfd, base, 0o700); err != nil {
			return fmt.Errorf("mkdir: %w", err)
		}
	default:
		return fmt.Errorf("stat: %w", err)
	}
	if err := a.setMeta(pfd, base, hdr); err != nil {
		return err
	}
	a.dirTimes[name] = entryTimes(hdr)
	return nil
}

// regular writes a regular file's content.
func (a *applier) regular(pfd int, base string, tr io.Reader) (int64, error) {
	fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return 0, fmt.Errorf("create: %w", err)
	}
	f := os.NewFile(uintptr(fd), base)
	n, err := io.CopyBuffer(onlyWriter{f}, ctxReader{a.ctx, tr}, a.buf)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("write content: %w", err)
	}
	return n, nil
}

// node creates a device node or fifo. Device nodes are allowed because a
// layer legitimately ships /dev entries; whether a container may use them
// is the runtime's device policy, and they can only be created beneath the
// layer directory.
func (a *applier) node(pfd int, base string, hdr *tar.Header) error {
	mode := uint32(unix.S_IFIFO)
	dev := 0
	switch hdr.Typeflag {
	case tar.TypeChar, tar.TypeBlock:
		if hdr.Devmajor < 0 || hdr.Devmajor > math.MaxUint32 || hdr.Devminor < 0 || hdr.Devminor > math.MaxUint32 {
			return fmt.Errorf("device number %d:%d out of range", hdr.Devmajor, hdr.Devminor)
		}
		mode = unix.S_IFCHR
		if hdr.Typeflag == tar.TypeBlock {
			mode = unix.S_IFBLK
		}
		dev = int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))
	}
	if err := unix.Mknodat(pfd, base, mode|0o600, dev); err != nil {
		return fmt.Errorf("mknod: %w", err)
	}
	return nil
}

// whiteout applies a whiteout entry in the directory dir.
func (a *applier) whiteout(dir, base string) error {
	pfd, err := a.openDir(dir, true)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	if base == whiteoutOpaque {
		if err := unix.Setxattr(procPath(pfd, ""), xattrOpaque, []byte("y"), 0); err != nil {
			return fmt.Errorf("mark directory %q opaque: %w", dir, err)
		}
		return nil
	}
	target := strings.TrimPrefix(base, whiteoutPrefix)
	if target == "" || target == "." || target == ".." {
		return fmt.Errorf("%w: whiteout of %q", ErrUnsafe, target)
	}
	if err := removeAt(pfd, target); err != nil {
		return fmt.Errorf("replace existing entry: %w", err)
	}
	// overlayfs treats a character device 0:0 as "deleted in this layer".
	if err := unix.Mknodat(pfd, target, unix.S_IFCHR, 0); err != nil {
		return fmt.Errorf("create whiteout: %w", err)
	}
	delete(a.files, path.Join(dir, target))
	return nil
}

// setMeta sets owner, then mode (chown clears setuid/setgid), then xattrs
// (chown also clears security.capability), never following a symlink.
func (a *applier) setMeta(pfd int, base string, hdr *tar.Header) error {
	if hdr.Uid < 0 || hdr.Uid >= math.MaxUint32 || hdr.Gid < 0 || hdr.Gid >= math.MaxUint32 {
		return fmt.Errorf("owner %d:%d out of range", hdr.Uid, hdr.Gid)
	}
	if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown %d:%d: %w", hdr.Uid, hdr.Gid, err)
	}
	if hdr.Typeflag != tar.TypeSymlink {
		// Linux symlinks have no mode of their own.
		mode := uint32(hdr.Mode) & 0o7777
		if err := chmodAt(pfd, base, mode); err != nil {
			return fmt.Errorf("chmod %04o: %w", mode, err)
		}
	}
	return a.setXattrs(pfd, base, hdr)
}

func (a *applier) setXattrs(pfd int, base string, hdr *tar.Header) error {
	var keys []string
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, paxXattrPrefix) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	sort.Strings(keys)
	// lsetxattr of "<the directory's descriptor>/<base>" resolves base
	// inside the already-opened directory and does not follow it.
	p := procPath(pfd, base)
	for _, k := range keys {
		attr := strings.TrimPrefix(k, paxXattrPrefix)
		if strings.HasPrefix(attr, overlayXattrPrefix) {
			slog.DebugContext(a.ctx, "layer xattr ignored", "entry", hdr.Name, "xattr", attr)
			continue
		}
		err := unix.Lsetxattr(p, attr, []byte(hdr.PAXRecords[k]), 0)
		if err == nil {
			continue
		}
		if errors.Is(err, unix.ENOTSUP) ||
			(strings.HasPrefix(attr, "security.") && (errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.EINVAL))) {
			slog.DebugContext(a.ctx, "layer xattr not applied", "entry", hdr.Name, "xattr", attr, "err", err)
			continue
		}
		return fmt.Errorf("set xattr %s: %w", attr, err)
	}
	return nil
}

// finishDirs sets directory times, now that nothing more is created in
// them. A directory replaced by a later entry is skipped.
func (a *applier) finishDirs() error {
	names := make([]string, 0, len(a.dirTimes))
	for n := range a.dirTimes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		t := a.dirTimes[name]
		dir, base := splitName(name)
		if name == "." {
			dir, base = ".", "."
		}
		pfd, err := a.openDir(dir, false)
		if err != nil {
			continue
		}
		var st unix.Stat_t
		if unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			ts := []unix.Timespec{timespec(t.atime), timespec(t.mtime)}
			err = unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW)
		}
		unix.Close(pfd)
		if err != nil {
			return fmt.Errorf("directory %q: set times: %w", name, err)
		}
	}
	return nil
}

// resolve is how every path beneath the layer is opened: no component may
// be a symlink, no ".." may climb out, no mount may be crossed.
var resolve = &unix.OpenHow{
	Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
	Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
}

func openBeneath(dirfd int, name string) (int, error) {
	for {
		fd, err := unix.Openat2(dirfd, name, resolve)
		// EAGAIN: a concurrent rename somewhere on the system; retry.
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		return fd, err
	}
}

// openDir opens the directory dir ("." for the layer root) beneath the
// layer root as an O_PATH descriptor. With create, missing directories are
// created root-owned 0755, as the tar implies them.
func (a *applier) openDir(dir string, create bool) (int, error) {
	fd, err := openBeneath(a.root, dir)
	if err == nil {
		return fd, nil
	}
	if !errors.Is(err, unix.ENOENT) || !create {
		// Walk once more, one component at a time, to say which
		// component is at fault.
		return -1, a.explain(dir, err)
	}
	fd, err = openBeneath(a.root, ".")
	if err != nil {
		return -1, err
	}
	for _, c := range strings.Split(dir, "/") {
		next, err := openBeneath(fd, c)
		if errors.Is(err, unix.ENOENT) {
			if err := unix.Mkdirat(fd, c, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
				unix.Close(fd)
				return -1, fmt.Errorf("create parent directory %q: %w", c, err)
			}
			// Independent of the process umask and of a setgid parent.
			if err := unix.Fchownat(fd, c, 0, 0, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				unix.Close(fd)
				return -1, fmt.Errorf("create parent directory %q: %w", c, err)
			}
			if err := chmodAt(fd, c, 0o755); err != nil {
				unix.Close(fd)
				return -1, fmt.Errorf("create parent directory %q: %w", c, err)
			}
			next, err = openBeneath(fd, c)
		}
		unix.Close(fd)
		if err != nil {
			return -1, describe(dir, c, err)
		}
		fd = next
	}
	return fd, nil
}

// explain finds the first component of dir that cannot be opened.
func (a *applier) explain(dir string, orig error) error {
	fd, err := openBeneath(a.root, ".")
	if err != nil {
		return err
	}
	for _, c := range strings.Split(dir, "/") {
		next, err := openBeneath(fd, c)
		unix.Close(fd)
		if err != nil {
			return describe(dir, c, err)
		}
		fd = next
	}
	unix.Close(fd)
	return fmt.Errorf("open %q: %w", dir, orig)
}

func describe(dir, component string, err error) error {
	switch {
	case errors.Is(err, unix.ELOOP):
		return fmt.Errorf("%w: path %q goes through symlink %q; a layer may not write through a symlink", ErrUnsafe, dir, component)
	case errors.Is(err, unix.EXDEV):
		return fmt.Errorf("%w: path %q leaves the layer directory at %q", ErrUnsafe, dir, component)
	case errors.Is(err, unix.ENOTDIR):
		return fmt.Errorf("path %q: %q is not a directory", dir, component)
	}
	return fmt.Errorf("open %q at %q: %w", dir, component, err)
}

// chmodAt changes the mode of base in dirfd without following a symlink:
// fchmodat2 (Linux 6.6+), or on older kernels chmod through an O_PATH
// descriptor of base itself.
func chmodAt(dirfd int, base string, mode uint32) error {
	err := unix.Fchmodat(dirfd, base, mode, unix.AT_SYMLINK_NOFOLLOW)
	if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.ENOSYS) {
		return err
	}
	fd, err := unix.Openat(dirfd, base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return unix.EOPNOTSUPP
	}
	return unix.Chmod(procPath(fd, ""), mode)
}

// removeAt removes base in dirfd, recursively if it is a directory, without
// following symlinks. A missing base is not an error.
func removeAt(dirfd int, base string) error {
	err := unix.Unlinkat(dirfd, base, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) {
		return fmt.Errorf("remove %q: %w", base, err)
	}
	fd, err := unix.Openat(dirfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("remove %q: %w", base, err)
	}
	f := os.NewFile(uintptr(fd), base)
	names, err := f.Readdirnames(-1)
	if err == nil {
		for _, n := range names {
			if err = removeAt(int(f.Fd()), n); err != nil {
				break
			}
		}
	}
	f.Close()
	if err != nil {
		return fmt.Errorf("remove %q: %w", base, err)
	}
	if err := unix.Unlinkat(dirfd, base, unix.AT_REMOVEDIR); err != nil {
		return fmt.Errorf("remove %q: %w", base, err)
	}
	return nil
}

// cleanName turns a tar entry name into a clean path relative to the layer
// root, or refuses it.
func cleanName(raw string) (string, error) {
	switch {
	case raw == "":
		return "", fmt.Errorf("%w: empty name", ErrUnsafe)
	case strings.IndexByte(raw, 0) >= 0:
		return "", fmt.Errorf("%w: NUL byte in name", ErrUnsafe)
	case strings.HasPrefix(raw, "/"):
		return "", fmt.Errorf("%w: absolute name", ErrUnsafe)
	}
	c := path.Clean(raw)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("%w: name escapes the layer directory", ErrUnsafe)
	}
	return c, nil
}

// splitName splits a clean relative name into its directory ("." for the
// root) and base.
func splitName(name string) (dir, base string) {
	dir, base = path.Split(name)
	if dir == "" {
		return ".", base
	}
	return strings.TrimSuffix(dir, "/"), base
}

// procPath names base inside the directory open as fd, through procfs; the
// directory part is the descriptor itself, so nothing can be swapped in
// between.
func procPath(fd int, base string) string {
	p := fmt.Sprintf("/proc/self/fd/%d", fd)
	if base != "" {
		p += "/" + base
	}
	return p
}

func entryTimes(hdr *tar.Header) times {
	t := times{atime: hdr.AccessTime, mtime: hdr.ModTime}
	if t.atime.IsZero() {
		t.atime = t.mtime
	}
	return t
}

func timespec(t time.Time) unix.Timespec {
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}

func typeName(t byte) string {
	switch t {
	case tar.TypeReg:
		return "regular file"
	case tar.TypeLink:
		return "hardlink"
	case tar.TypeSymlink:
		return "symlink"
	case tar.TypeChar:
		return "character device"
	case tar.TypeBlock:
		return "block device"
	case tar.TypeDir:
		return "directory"
	case tar.TypeFifo:
		return "fifo"
	}
	return fmt.Sprintf("type %q", t)
}

// ctxReader stops a long copy when the context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// onlyWriter hides os.File's ReadFrom so CopyBuffer uses our buffer.
type onlyWriter struct{ w io.Writer }

func (o onlyWriter) Write(p []byte) (int, error) { return o.w.Write(p) }
