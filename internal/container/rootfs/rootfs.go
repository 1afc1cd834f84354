// Package rootfs mounts a container's root filesystem: an overlay of the
// image's shared, read-only layer directories plus a per-container upper and
// work directory, so that many containers share one unpacked copy of an image.
//
// An image with many layers makes the classic mount(2) option string
// ("lowerdir=a:b:c,upperdir=...,workdir=...") longer than the one page the
// kernel accepts. Mount therefore prefers the new mount API (fsopen/fsconfig),
// which hands the kernel one layer at a time ("lowerdir+", Linux 6.5+) with
// no total length limit and no path escaping. On older kernels it falls back
// to mount(2) and reports a clear error when the option string is too long.
package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// maxMountData is the size of the page the kernel copies mount(2) data into;
// the option string and its terminating NUL must fit in it.
var maxMountData = os.Getpagesize()

// Mount mounts an overlay filesystem at target. lowers are the image layer
// directories, topmost first. upper and work are the container's own
// directories (created if missing, on the same filesystem); when both are
// empty the overlay has no writable layer. readOnly mounts the result
// read-only, which Kubernetes' readOnlyRootFilesystem needs.
func Mount(target, upper, work string, lowers []string, readOnly bool) error {
	if len(lowers) == 0 {
		return fmt.Errorf("mount overlay at %s: no lower layer", target)
	}
	if (upper == "") != (work == "") {
		return fmt.Errorf("mount overlay at %s: upper and work directories go together", target)
	}
	for _, dir := range []string{target, upper, work} {
		if dir == "" {
			continue
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("mount overlay at %s: %w", target, err)
		}
	}
	err := mountFS(target, upper, work, lowers, readOnly)
	if errors.Is(err, errNoNewAPI) {
		err = mountLegacy(target, upper, work, lowers, readOnly)
	}
	if err != nil {
		return fmt.Errorf("mount overlay at %s (%d layers): %w", target, len(lowers), err)
	}
	return nil
}

var errNoNewAPI = errors.New("new mount API or lowerdir+ unsupported")

// mountFS mounts with fsopen/fsconfig/fsmount/move_mount.
func mountFS(target, upper, work string, lowers []string, readOnly bool) error {
	fsfd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
			return errNoNewAPI
		}
		return fmt.Errorf("fsopen overlay: %w", err)
	}
	defer unix.Close(fsfd)
	for i, l := range lowers {
		if err := unix.FsconfigSetString(fsfd, "lowerdir+", l); err != nil {
			if i == 0 && errors.Is(err, unix.EINVAL) {
				// Kernels before 6.5 do not know "lowerdir+".
				return errNoNewAPI
			}
			return fmt.Errorf("lower layer %s: %w", l, withFSLog(fsfd, err))
		}
	}
	if upper != "" {
		if err := unix.FsconfigSetString(fsfd, "upperdir", upper); err != nil {
			return fmt.Errorf("upper dir %s: %w", upper, withFSLog(fsfd, err))
		}
		if err := unix.FsconfigSetString(fsfd, "workdir", work); err != nil {
			return fmt.Errorf("work dir %s: %w", work, withFSLog(fsfd, err))
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return fmt.Errorf("create overlay: %w", withFSLog(fsfd, err))
	}
	var attr int
	if readOnly {
		attr |= unix.MOUNT_ATTR_RDONLY
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, attr)
	if err != nil {
		return fmt.Errorf("fsmount: %w", withFSLog(fsfd, err))
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount: %w", err)
	}
	return nil
}

// withFSLog adds the kernel's explanation, which the filesystem context
// keeps as messages readable from the fs fd, to err.
func withFSLog(fsfd int, err error) error {
	var msgs []string
	buf := make([]byte, 1024)
	for {
		n, rerr := unix.Read(fsfd, buf)
		if rerr != nil || n <= 0 {
			break
		}
		msgs = append(msgs, strings.TrimSpace(string(buf[:n])))
	}
	if len(msgs) == 0 {
		return err
	}
	return fmt.Errorf("%w (%s)", err, strings.Join(msgs, "; "))
}

// mountLegacy mounts with mount(2) and a comma-separated option string.
func mountLegacy(target, upper, work string, lowers []string, readOnly bool) error {
	esc := make([]string, len(lowers))
	for i, l := range lowers {
		esc[i] = escape(l)
	}
	data := "lowerdir=" + strings.Join(esc, ":")
	if upper != "" {
		data += ",upperdir=" + escape(upper) + ",workdir=" + escape(work)
	}
	if len(data)+1 > maxMountData {
		return fmt.Errorf("overlay options are %d bytes, over the kernel's %d-byte limit for mount(2), and this kernel lacks the new mount API with lowerdir+ (Linux 6.5): flatten the image or use shorter layer paths", len(data), maxMountData-1)
	}
	var flags uintptr
	if readOnly {
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount("overlay", target, "overlay", flags, data); err != nil {
		return fmt.Errorf("mount(2): %w", err)
	}
	return nil
}

// escape protects the characters overlayfs treats as separators.
func escape(p string) string {
	r := strings.NewReplacer(`\`, `\\`, `:`, `\:`, `,`, `\,`)
	return r.Replace(p)
}

// Unmount unmounts target. It is idempotent: a target that is not mounted,
// or no longer exists, is success. A busy mount is detached lazily so that
// a leftover process holding it cannot block removal of the container.
func Unmount(target string) error {
	for i := 0; i < 8; i++ { // a few stacked mounts at most
		mounted, err := IsMountPoint(target)
		if err != nil || !mounted {
			return err
		}
		err = unix.Unmount(target, 0)
		if errors.Is(err, unix.EBUSY) {
			err = unix.Unmount(target, unix.MNT_DETACH)
		}
		switch {
		case err == nil:
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
			return nil
		default:
			return fmt.Errorf("unmount %s: %w", target, err)
		}
	}
	return fmt.Errorf("unmount %s: still mounted after repeated unmounts", target)
}

// IsMountPoint reports whether path is the root of a mount, by comparing its
// mount ID with that of its parent. A missing path is not a mount point.
func IsMountPoint(path string) (bool, error) {
	path = filepath.Clean(path)
	id, err := mountID(path)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("stat %s: %w", path, err)
	}
	if path == "/" {
		return true, nil
	}
	pid, err := mountID(filepath.Dir(path))
	if err != nil {
		return false, fmt.Errorf("stat %s: %w", filepath.Dir(path), err)
	}
	return id != pid, nil
}

func mountID(path string) (uint64, error) {
	var stx unix.Statx_t
	err := unix.Statx(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW|unix.AT_NO_AUTOMOUNT, unix.STATX_MNT_ID, &stx)
	if err != nil {
		return 0, err
	}
	return stx.Mnt_id, nil
}
