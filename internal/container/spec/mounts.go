package spec

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// shmSize is the size of a pod's /dev/shm when the sandbox has its own
// (Docker's, containerd's and kubelet's 64 MiB).
const shmSize = "size=65536k"

// baseMounts are the filesystems every container gets (containerd's defaults
// without /run, which containerd's CRI plugin drops too, and with the
// read-only cgroup filesystem it adds). /dev/shm is not here: a pod's
// containers share the sandbox's.
func baseMounts() []specs.Mount {
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
	}
}

// SandboxFiles are the per-pod files and directories the sandbox prepared on
// the host and every container bind-mounts. An empty path is not mounted
// (the image's own file, or the base /dev/shm tmpfs, stays).
type SandboxFiles struct {
	Hosts      string // mounted at /etc/hosts
	ResolvConf string // mounted at /etc/resolv.conf
	Hostname   string // mounted at /etc/hostname
	Shm        string // the pod's /dev/shm (a tmpfs the sandbox mounted); ignored with host IPC
}

// podMounts turns the sandbox files into CRI mounts (so that they obey the
// same override and ordering rules as the request's). The /etc files are
// read-only when the root filesystem is.
func podMounts(f SandboxFiles, readonlyRootfs, hostIPC bool) []*runtime.Mount {
	var out []*runtime.Mount
	add := func(dst, src string, ro bool) {
		if src != "" {
			out = append(out, &runtime.Mount{ContainerPath: dst, HostPath: src, Readonly: ro})
		}
	}
	add("/etc/hostname", f.Hostname, readonlyRootfs)
	add("/etc/hosts", f.Hosts, readonlyRootfs)
	add("/etc/resolv.conf", f.ResolvConf, readonlyRootfs)
	if hostIPC {
		add("/dev/shm", "/dev/shm", false)
	} else {
		add("/dev/shm", f.Shm, false)
	}
	return out
}

// mountSources is how bind mount sources are checked; tests replace it.
type mountSources struct {
	// mountinfo is the path of a mountinfo table ("/proc/self/mountinfo").
	mountinfo string
	// create makes a missing source directory, as containerd and CRI-O do
	// for hostPath volumes kubelet did not create.
	create bool
}

// containerMounts builds the mount list: the base mounts minus those a
// request mount replaces (and minus everything under /dev if /dev itself is
// replaced), then the request's and the pod's mounts, sorted so that a parent
// directory is mounted before anything beneath it. It also returns the root
// propagation that the bind mounts need.
func containerMounts(req, pod []*runtime.Mount, src mountSources) ([]specs.Mount, string, error) {
	all := slices.Clone(req)
	for _, p := range pod {
		if !slices.ContainsFunc(req, func(m *runtime.Mount) bool { return cleanDst(m) == cleanDst(p) }) {
			all = append(all, p)
		}
	}
	seen := map[string]bool{}
	for _, m := range all {
		dst := cleanDst(m)
		if !filepath.IsAbs(m.GetContainerPath()) {
			return nil, "", fmt.Errorf("mount %q: container path must be absolute", m.GetContainerPath())
		}
		if seen[dst] {
			return nil, "", fmt.Errorf("mount %q: duplicate container path", dst)
		}
		seen[dst] = true
	}
	slices.SortStableFunc(all, func(a, b *runtime.Mount) int { return depth(cleanDst(a)) - depth(cleanDst(b)) })

	var out []specs.Mount
	for _, m := range baseMounts() {
		if seen[m.Destination] || (seen["/dev"] && strings.HasPrefix(m.Destination, "/dev/")) {
			continue
		}
		out = append(out, m)
	}
	propagation := ""
	for _, m := range all {
		bind, rootProp, err := bindMount(m, src)
		if err != nil {
			return nil, "", err
		}
		switch {
		case rootProp == "rshared":
			propagation = "rshared"
		case rootProp == "rslave" && propagation == "":
			propagation = "rslave"
		}
		out = append(out, bind)
	}
	return out, propagation, nil
}

func cleanDst(m *runtime.Mount) string { return filepath.Clean(m.GetContainerPath()) }

func depth(p string) int {
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}

// bindMount converts one CRI mount. SELinux relabelling is ignored (this
// host has no SELinux); features runc 1.1 lacks are refused by name.
// A recursive read-only mount becomes runc's "rro" option (mount_setattr
// on the whole tree, so submounts of the host path are read-only too); the
// CRI requires it to be read-only and private, since a later propagated
// mount would not inherit the attribute.
func bindMount(m *runtime.Mount, src mountSources) (specs.Mount, string, error) {
	dst := cleanDst(m)
	switch {
	case m.GetImage() != nil:
		return specs.Mount{}, "", fmt.Errorf("mount %s: image volumes are not supported", dst)
	case len(m.GetUidMappings()) > 0 || len(m.GetGidMappings()) > 0:
		return specs.Mount{}, "", fmt.Errorf("mount %s: ID-mapped mounts are not supported (no user namespaces with runc 1.1)", dst)
	case m.GetRecursiveReadOnly() && !m.GetReadonly():
		return specs.Mount{}, "", fmt.Errorf("mount %s: a recursive read-only mount must be read-only", dst)
	case m.GetRecursiveReadOnly() && m.GetPropagation() != runtime.MountPropagation_PROPAGATION_PRIVATE:
		return specs.Mount{}, "", fmt.Errorf("mount %s: a recursive read-only mount needs private propagation", dst)
	case m.GetHostPath() == "":
		return specs.Mount{}, "", fmt.Errorf("mount %s: empty host path", dst)
	}
	host, err := mountSource(m.GetHostPath(), src.create)
	if err != nil {
		return specs.Mount{}, "", fmt.Errorf("mount %s: %w", dst, err)
	}
	opts := []string{"rbind"}
	rootProp := ""
	switch m.GetPropagation() {
	case runtime.MountPropagation_PROPAGATION_PRIVATE:
		opts = append(opts, "rprivate")
	case runtime.MountPropagation_PROPAGATION_HOST_TO_CONTAINER:
		if err := requirePropagation(host, src.mountinfo, false); err != nil {
			return specs.Mount{}, "", fmt.Errorf("mount %s (host-to-container propagation): %w", dst, err)
		}
		opts = append(opts, "rslave")
		rootProp = "rslave"
	case runtime.MountPropagation_PROPAGATION_BIDIRECTIONAL:
		if err := requirePropagation(host, src.mountinfo, true); err != nil {
			return specs.Mount{}, "", fmt.Errorf("mount %s (bidirectional propagation): %w", dst, err)
		}
		opts = append(opts, "rshared")
		rootProp = "rshared"
	default:
		return specs.Mount{}, "", fmt.Errorf("mount %s: unknown propagation %d", dst, m.GetPropagation())
	}
	if m.GetReadonly() {
		opts = append(opts, "ro")
		if m.GetRecursiveReadOnly() {
			opts = append(opts, "rro")
		}
	} else {
		opts = append(opts, "rw")
	}
	opts = append(opts, m.GetMountOptions()...)
	return specs.Mount{Destination: dst, Type: "bind", Source: host, Options: opts}, rootProp, nil
}

// mountSource resolves symbolic links in a host path (runc would otherwise
// mount whatever the link points at when it runs, not when we checked) and
// creates it as a directory when missing and create is set.
func mountSource(p string, create bool) (string, error) {
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("host path %q must be absolute", p)
	}
	if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
		if !create {
			return "", fmt.Errorf("host path %s: %w", p, err)
		}
		if err := os.MkdirAll(p, 0o755); err != nil {
			return "", fmt.Errorf("create host path: %w", err)
		}
	} else if err != nil {
		return "", fmt.Errorf("host path: %w", err)
	}
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", fmt.Errorf("host path: %w", err)
	}
	return r, nil
}

// requirePropagation checks that the mount holding p propagates: shared for
// bidirectional, shared or slave for host-to-container. Without it the
// kernel would silently give the container a private mount.
func requirePropagation(p, mountinfo string, shared bool) error {
	if mountinfo == "" {
		return nil
	}
	point, optional, err := mountOf(p, mountinfo)
	if err != nil {
		return err
	}
	for _, o := range optional {
		if strings.HasPrefix(o, "shared:") || (!shared && strings.HasPrefix(o, "master:")) {
			return nil
		}
	}
	if shared {
		return fmt.Errorf("%s is on mount %s, which is not shared", p, point)
	}
	return fmt.Errorf("%s is on mount %s, which is neither shared nor a slave", p, point)
}

// mountOf finds the mount point holding p in a mountinfo table and returns
// its optional fields (shared:N, master:N, ...).
func mountOf(p, mountinfo string) (string, []string, error) {
	f, err := os.Open(mountinfo)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	best, bestOpt := "", []string(nil)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 7 {
			continue
		}
		point := unescapeMountinfo(fields[4])
		var opt []string
		for _, o := range fields[6:] {
			if o == "-" {
				break
			}
			opt = append(opt, o)
		}
		if (p == point || point == "/" || strings.HasPrefix(p, point+"/")) && len(point) >= len(best) {
			best, bestOpt = point, opt
		}
	}
	if err := sc.Err(); err != nil {
		return "", nil, err
	}
	if best == "" {
		return "", nil, fmt.Errorf("no mount holds %s", p)
	}
	return best, bestOpt, nil
}

// unescapeMountinfo undoes the octal escapes (\040 for space...) of mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, ok := octal(s[i+1 : i+4]); ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func octal(s string) (byte, bool) {
	if len(s) != 3 {
		return 0, false
	}
	var v int
	for _, c := range s {
		if c < '0' || c > '7' {
			return 0, false
		}
		v = v*8 + int(c-'0')
	}
	return byte(v), v < 256
}
