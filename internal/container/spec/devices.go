package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// deviceFromPath describes the device node at path (symbolic links followed)
// as it should appear at containerPath.
func deviceFromPath(path, containerPath string) (specs.LinuxDevice, bool, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return specs.LinuxDevice{}, false, fmt.Errorf("stat device %s: %w", path, err)
	}
	var typ string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFBLK:
		typ = "b"
	case unix.S_IFCHR:
		typ = "c"
	default:
		return specs.LinuxDevice{}, false, nil
	}
	mode := os.FileMode(st.Mode & 0o777)
	uid, gid := st.Uid, st.Gid
	return specs.LinuxDevice{
		Path:     containerPath,
		Type:     typ,
		Major:    int64(unix.Major(uint64(st.Rdev))),
		Minor:    int64(unix.Minor(uint64(st.Rdev))),
		FileMode: &mode,
		UID:      &uid,
		GID:      &gid,
	}, true, nil
}

// skippedDevDirs are never copied from the host's /dev: they are
// filesystems the container gets its own of, or tool state.
var skippedDevDirs = map[string]bool{"pts": true, "shm": true, "fd": true, "mqueue": true, ".lxc": true, ".lxd-mounts": true, ".udev": true}

// devicesUnder lists the device nodes at or below hostPath, placed under
// containerPath. A directory is walked (without following links out of it);
// the console is left to runc.
func devicesUnder(hostPath, containerPath string) ([]specs.LinuxDevice, error) {
	resolved, err := filepath.EvalSymlinks(hostPath)
	if err != nil {
		return nil, fmt.Errorf("device %s: %w", hostPath, err)
	}
	fi, err := os.Stat(resolved)
	if err != nil {
		return nil, fmt.Errorf("device %s: %w", hostPath, err)
	}
	if !fi.IsDir() {
		d, ok, err := deviceFromPath(resolved, containerPath)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("device %s: not a device node", hostPath)
		}
		return []specs.LinuxDevice{d}, nil
	}
	entries, err := os.ReadDir(resolved)
	if err != nil {
		return nil, fmt.Errorf("device directory %s: %w", hostPath, err)
	}
	var out []specs.LinuxDevice
	for _, e := range entries {
		name := e.Name()
		switch {
		case e.IsDir():
			if skippedDevDirs[name] {
				continue
			}
			sub, err := devicesUnder(filepath.Join(resolved, name), filepath.Join(containerPath, name))
			if err != nil {
				return nil, err
			}
			out = append(out, sub...)
		case name == "console", e.Type()&os.ModeSymlink != 0:
			continue
		default:
			d, ok, err := deviceFromPath(filepath.Join(resolved, name), filepath.Join(containerPath, name))
			if err != nil {
				// Devices come and go (hotplug); one vanishing while we
				// walk is not the container's problem.
				if os.IsNotExist(err) {
					continue
				}
				return nil, err
			}
			if ok {
				out = append(out, d)
			}
		}
	}
	return out, nil
}

// criDevices adds the request's devices: the nodes, and cgroup rules that
// allow exactly the requested access ("rwm" or a subset).
func criDevices(devs []*runtime.Device) ([]specs.LinuxDevice, []specs.LinuxDeviceCgroup, error) {
	var nodes []specs.LinuxDevice
	var rules []specs.LinuxDeviceCgroup
	for _, d := range devs {
		perm := d.GetPermissions()
		if perm == "" {
			perm = "rwm"
		}
		if strings.Trim(perm, "rwm") != "" {
			return nil, nil, fmt.Errorf("device %s: permissions %q: only r, w and m are allowed", d.GetHostPath(), perm)
		}
		cp := d.GetContainerPath()
		if cp == "" {
			cp = d.GetHostPath()
		}
		if !filepath.IsAbs(cp) {
			return nil, nil, fmt.Errorf("device %s: container path %q must be absolute", d.GetHostPath(), cp)
		}
		found, err := devicesUnder(d.GetHostPath(), cp)
		if err != nil {
			return nil, nil, err
		}
		for _, n := range found {
			major, minor := n.Major, n.Minor
			nodes = append(nodes, n)
			rules = append(rules, specs.LinuxDeviceCgroup{Allow: true, Type: n.Type, Major: &major, Minor: &minor, Access: perm})
		}
	}
	return nodes, rules, nil
}
