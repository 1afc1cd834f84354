package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// scratchFS makes a fresh ext4 filesystem (with a journal, mkfs defaults)
// in a sparse file under dir and mounts it on dir/fs, for the runtimes'
// roots. A filesystem of its own keeps the numbers free of what other
// programs on the machine did to the shared one: on ext4 without a journal
// (this VM's root filesystem) the inode allocator skips inodes freed in the
// last 60 to 300 seconds and reads inode tables to find them, so creating
// the image's ~8,500 files right after anyone deleted thousands costs
// seconds of kernel CPU. The returned function unmounts it; the loop device
// goes with the mount (autoclear).
func scratchFS(ctx context.Context, dir string, size int64) (string, func(), error) {
	img := filepath.Join(dir, "fs.img")
	mnt := filepath.Join(dir, "fs")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return "", nil, err
	}
	f, err := os.Create(img)
	if err != nil {
		return "", nil, err
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
		unmountUnder(mnt + "/")
		if err := syscall.Unmount(mnt, 0); err != nil {
			_ = syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
	}, nil
}
