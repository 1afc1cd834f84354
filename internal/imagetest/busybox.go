package imagetest

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"sort"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Host binaries the runnable layers are made from.
const (
	// BusyboxBinary is Debian's dynamic busybox. The static one
	// (busybox-static) runs applets in-process instead of exec'ing
	// /bin/NAME, which hides what a container really executes.
	BusyboxBinary = "/usr/bin/busybox"
	// CatatonitBinary is Debian's static catatonit, the pause process.
	CatatonitBinary = "/usr/bin/catatonit"
)

// ipcTools come from util-linux (Essential in Debian): Debian's busybox
// has no ipcs/ipcmk applets, and the IPC namespace tests need them.
var ipcTools = []string{"/usr/bin/ipcs", "/usr/bin/ipcmk", "/usr/bin/ipcrm"}

// Users and groups in the busybox root filesystem.
const (
	AppUser  = "app"
	AppUID   = 1000
	AppGID   = 1000
	UsersGID = 100 // group "users", which lists app as a member
)

const passwd = `root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
`

const group = `root:x:0:
users:x:100:app
app:x:1000:
nogroup:x:65534:
`

var (
	busyboxMu    sync.Mutex
	busyboxCache []File
)

// BusyboxFiles returns a runnable root filesystem: /bin/busybox with an
// applet link for each applet it has (at the place `busybox --list-full`
// names: /bin/sh, /bin/ls, /usr/bin/wget, /usr/sbin/httpd, ...), util-linux
// ipcs/ipcmk/ipcrm, the shared libraries ldd lists for them at the paths
// the loader looks (/lib64/ld-linux-x86-64.so.2, /lib/x86_64-linux-gnu/…),
// /etc/passwd and /etc/group with root, app (1000:1000, also in group
// users 100) and nobody, /tmp (1777), /root and /home/app. The result is
// cached; callers may append to the returned copy.
func BusyboxFiles(ctx context.Context) ([]File, error) {
	busyboxMu.Lock()
	defer busyboxMu.Unlock()
	if busyboxCache == nil {
		files, err := busyboxFiles(ctx)
		if err != nil {
			return nil, err
		}
		busyboxCache = files
	}
	return append([]File(nil), busyboxCache...), nil
}

func busyboxFiles(ctx context.Context) ([]File, error) {
	if _, err := os.Stat(BusyboxBinary); err != nil {
		return nil, fmt.Errorf("%s is missing: install it with `make deps`", BusyboxBinary)
	}
	fs := newTree()
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "etc", "dev", "proc", "sys", "run", "var/tmp", "home"} {
		fs.dir(d, 0o755, 0, 0)
	}
	fs.dir("tmp", 0o1777, 0, 0)
	fs.dir("root", 0o700, 0, 0)
	fs.dir("home/app", 0o755, AppUID, AppGID)
	fs.add(File{Name: "etc/passwd", Content: []byte(passwd)})
	fs.add(File{Name: "etc/group", Content: []byte(group)})
	fs.add(File{Name: "etc/nsswitch.conf", Content: []byte("passwd: files\ngroup: files\nhosts: files dns\n")})

	binaries := map[string]string{"bin/busybox": BusyboxBinary}
	for _, p := range ipcTools {
		if _, err := os.Stat(p); err == nil {
			binaries[strings.TrimPrefix(p, "/")] = p
		}
	}
	libs := map[string]bool{}
	for name, src := range binaries {
		b, err := os.ReadFile(src)
		if err != nil {
			return nil, fmt.Errorf("busybox rootfs: %w", err)
		}
		fs.add(File{Name: name, Mode: 0o755, Content: b})
		deps, err := sharedLibraries(ctx, src)
		if err != nil {
			return nil, err
		}
		for _, d := range deps {
			libs[d] = true
		}
	}
	for lib := range libs {
		// Read through symlinks (/lib64/ld-linux… points into
		// /lib/x86_64-linux-gnu) and store a plain file where ldd saw it.
		b, err := os.ReadFile(lib)
		if err != nil {
			return nil, fmt.Errorf("busybox rootfs: %w", err)
		}
		fs.add(File{Name: strings.TrimPrefix(lib, "/"), Mode: 0o755, Content: b})
	}

	out, err := exec.CommandContext(ctx, BusyboxBinary, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("list busybox applets: %w", err)
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "bin/busybox" || fs.has(applet) {
			continue
		}
		fs.add(File{Name: applet, Type: tar.TypeSymlink, Linkname: "/bin/busybox"})
	}
	return fs.sorted(), nil
}

// sharedLibraries lists the absolute paths ldd prints for bin.
func sharedLibraries(ctx context.Context, bin string) ([]string, error) {
	out, err := exec.CommandContext(ctx, "ldd", bin).Output()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w", bin, err)
	}
	var libs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		// "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or
		// "/lib64/ld-linux-x86-64.so.2 (0x…)"; the vdso has no path.
		line := strings.TrimSpace(sc.Text())
		if _, after, ok := strings.Cut(line, "=> "); ok {
			line = after
		}
		if p, _, _ := strings.Cut(line, " "); strings.HasPrefix(p, "/") {
			libs = append(libs, p)
		}
	}
	return libs, nil
}

// tree collects entries and adds the parent directories each one needs.
type tree struct{ files map[string]File }

func newTree() *tree { return &tree{files: map[string]File{}} }

func (t *tree) has(name string) bool { _, ok := t.files[strings.TrimSuffix(name, "/")]; return ok }

func (t *tree) dir(name string, mode int64, uid, gid int) {
	t.parents(name)
	t.files[name] = File{Name: name + "/", Type: tar.TypeDir, Mode: mode, Uid: uid, Gid: gid}
}

func (t *tree) add(f File) {
	t.parents(f.Name)
	t.files[f.Name] = f
}

func (t *tree) parents(name string) {
	for d := path.Dir(name); d != "." && d != "/"; d = path.Dir(d) {
		if !t.has(d) {
			t.files[d] = File{Name: d + "/", Type: tar.TypeDir, Mode: 0o755}
		}
	}
}

// sorted orders entries by path, so parents come before children and the
// tar is the same on every run.
func (t *tree) sorted() []File {
	names := make([]string, 0, len(t.files))
	for n := range t.files {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]File, 0, len(names))
	for _, n := range names {
		out = append(out, t.files[n])
	}
	return out
}

// Busybox is BusyboxFiles as one gzip layer.
func Busybox(ctx context.Context) (v1.Layer, error) {
	files, err := BusyboxFiles(ctx)
	if err != nil {
		return nil, err
	}
	return Layer(files, Gzip)
}

// BusyboxImage is an image whose bottom layer is Busybox, below
// opts.Layers. Without an Entrypoint or Cmd it runs "sh".
func BusyboxImage(ctx context.Context, opts ImageOptions) (v1.Image, error) {
	bb, err := Busybox(ctx)
	if err != nil {
		return nil, err
	}
	opts.Layers = append([]v1.Layer{bb}, opts.Layers...)
	if len(opts.Config.Entrypoint) == 0 && len(opts.Config.Cmd) == 0 {
		opts.Config.Cmd = []string{"sh"}
	}
	return Image(opts)
}
