package testdaemon

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// ScratchFS makes a fresh ext4 filesystem (mkfs defaults, with a journal)
// in a sparse file of size bytes under dir and mounts it on dir/fs, for
// the roots of daemons under measurement. A filesystem of their own keeps
// the numbers free of what other programs did to the shared one: on ext4
// without a journal (this VM's root filesystem) the inode allocator skips
// inodes freed in the last minutes and reads inode tables to find them, so
// creating thousands of files right after anyone deleted thousands costs
// seconds of kernel CPU (see bench/README.md). The returned function
// unmounts it; the loop device goes with the mount (autoclear).
func ScratchFS(ctx context.Context, dir string, size int64) (string, func(), error) {
	img, mnt := filepath.Join(dir, "fs.img"), filepath.Join(dir, "fs")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return "", nil, fmt.Errorf("scratch filesystem: %w", err)
	}
	f, err := os.Create(img)
	if err != nil {
		return "", nil, fmt.Errorf("scratch filesystem: %w", err)
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", nil, fmt.Errorf("scratch filesystem image: %w", err)
	}
	if out, err := exec.CommandContext(ctx, "mkfs.ext4", "-q", "-F", img).CombinedOutput(); err != nil {
		return "", nil, fmt.Errorf("mkfs.ext4 %s: %w: %s", img, err, strings.TrimSpace(string(out)))
	}
	if out, err := exec.CommandContext(ctx, "mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		return "", nil, fmt.Errorf("mount %s: %w: %s", img, err, strings.TrimSpace(string(out)))
	}
	return mnt, func() {
		Unmount(mnt)
		if err := syscall.Unmount(mnt, 0); err != nil {
			_ = syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
	}, nil
}
