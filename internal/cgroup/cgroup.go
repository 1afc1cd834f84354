// Package cgroup makes and removes pod-level cgroups with the cgroupfs
// layout runc uses, on cgroup v1 (one directory per hierarchy) and v2 (one
// unified tree). The pod manager puts each pod's containers under one such
// cgroup, as kubelet does with cgroupsPerQOS, so the pod as a whole is held
// to the sum of its containers' limits and is accounted in one place.
package cgroup

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Resources are the limits written to a cgroup; zero means unset.
type Resources struct {
	MemoryLimit int64  // bytes
	CPUQuota    int64  // microseconds per CPUPeriod
	CPUPeriod   int64  // microseconds
	CPUShares   uint64 // cgroup v1 weight (2..262144); v2 gets the matching cpu.weight
}

// Mount is one mounted cgroup hierarchy.
type Mount struct {
	Path        string   // where it is mounted, e.g. /sys/fs/cgroup/memory
	V2          bool     // a cgroup2 (unified) hierarchy
	Controllers []string // v1: the controllers it holds (cpu, memory, name=systemd ...)
}

func (m Mount) has(c string) bool { return slices.Contains(m.Controllers, c) }

// Manager makes cgroups in every mounted hierarchy.
type Manager struct {
	Mounts []Mount
}

// New finds the host's cgroup hierarchies in /proc/self/mountinfo.
func New() (*Manager, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("cgroup mounts: %w", err)
	}
	defer f.Close()
	var ms []Mount
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		i := slices.Index(fields, "-")
		if i < 5 || len(fields) < i+4 {
			continue
		}
		fstype, super, mnt := fields[i+1], fields[i+3], fields[4]
		if seen[mnt] {
			continue
		}
		switch fstype {
		case "cgroup2":
			ms = append(ms, Mount{Path: mnt, V2: true})
		case "cgroup":
			var cs []string
			for _, o := range strings.Split(super, ",") {
				if o != "rw" && o != "ro" && !strings.HasPrefix(o, "relatime") && o != "noexec" && o != "nosuid" && o != "nodev" && o != "clone_children" {
					cs = append(cs, o)
				}
			}
			ms = append(ms, Mount{Path: mnt, Controllers: cs})
		default:
			continue
		}
		seen[mnt] = true
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cgroup mounts: %w", err)
	}
	if len(ms) == 0 {
		return nil, errors.New("cgroup mounts: no cgroup filesystem is mounted")
	}
	return &Manager{Mounts: ms}, nil
}

// check refuses names that are not absolute, clean cgroupfs paths.
func check(name string) error {
	if !path.IsAbs(name) || path.Clean(name) != name || name == "/" {
		return fmt.Errorf("cgroup %q: want an absolute, clean path below the root", name)
	}
	return nil
}

// Ensure makes the cgroup name (e.g. /peapod/kubepods/burstable/pod<UID>)
// in every hierarchy, with its parents, and writes the limits.
func (m *Manager) Ensure(name string, r Resources) error {
	if err := check(name); err != nil {
		return err
	}
	for _, mt := range m.Mounts {
		if err := m.ensure(mt, name, r); err != nil {
			return fmt.Errorf("cgroup %s in %s: %w", name, mt.Path, err)
		}
	}
	return nil
}

func (m *Manager) ensure(mt Mount, name string, r Resources) error {
	parts := strings.Split(strings.TrimPrefix(name, "/"), "/")
	dir := mt.Path
	v2Controllers := mt.V2 && len(controllersV2(mt.Path)) > 0
	for _, p := range parts {
		if v2Controllers {
			// Children get only the controllers their parent hands down.
			want := controllersV2(dir)
			var enable []string
			for _, c := range []string{"cpu", "memory", "pids"} {
				if slices.Contains(want, c) {
					enable = append(enable, "+"+c)
				}
			}
			if len(enable) > 0 {
				_ = os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte(strings.Join(enable, " ")), 0o644)
			}
		}
		parent := dir
		dir = filepath.Join(dir, p)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		if !mt.V2 && mt.has("cpuset") {
			// A v1 cpuset cgroup takes no task until it has cpus and mems.
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				if cur, _ := os.ReadFile(filepath.Join(dir, f)); strings.TrimSpace(string(cur)) == "" {
					if v, err := os.ReadFile(filepath.Join(parent, f)); err == nil {
						if err := os.WriteFile(filepath.Join(dir, f), v, 0o644); err != nil {
							return err
						}
					}
				}
			}
		}
	}
	var writes [][2]string
	switch {
	case mt.V2 && v2Controllers:
		have := controllersV2(dir)
		if r.MemoryLimit > 0 && slices.Contains(have, "memory") {
			writes = append(writes, [2]string{"memory.max", strconv.FormatInt(r.MemoryLimit, 10)})
		}
		if r.CPUQuota > 0 && slices.Contains(have, "cpu") {
			writes = append(writes, [2]string{"cpu.max", fmt.Sprintf("%d %d", r.CPUQuota, period(r))})
		}
		if r.CPUShares > 0 && slices.Contains(have, "cpu") {
			writes = append(writes, [2]string{"cpu.weight", strconv.FormatUint(SharesToWeight(r.CPUShares), 10)})
		}
	case !mt.V2 && mt.has("memory"):
		if r.MemoryLimit > 0 {
			writes = append(writes, [2]string{"memory.limit_in_bytes", strconv.FormatInt(r.MemoryLimit, 10)})
		}
	case !mt.V2 && mt.has("cpu"):
		if r.CPUShares > 0 {
			writes = append(writes, [2]string{"cpu.shares", strconv.FormatUint(r.CPUShares, 10)})
		}
		if r.CPUQuota > 0 {
			writes = append(writes, [2]string{"cpu.cfs_period_us", strconv.FormatInt(period(r), 10)},
				[2]string{"cpu.cfs_quota_us", strconv.FormatInt(r.CPUQuota, 10)})
		}
	}
	for _, w := range writes {
		if err := os.WriteFile(filepath.Join(dir, w[0]), []byte(w[1]), 0o644); err != nil {
			return fmt.Errorf("write %s=%s: %w", w[0], w[1], err)
		}
	}
	return nil
}

func period(r Resources) int64 {
	if r.CPUPeriod > 0 {
		return r.CPUPeriod
	}
	return 100000
}

// controllersV2 lists the controllers available in a v2 cgroup directory
// (none on a hybrid host's controller-less cgroup2 mount).
func controllersV2(dir string) []string {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return nil
	}
	return strings.Fields(string(b))
}

// SharesToWeight maps cgroup v1 cpu.shares to v2 cpu.weight as runc and
// kubelet do.
func SharesToWeight(shares uint64) uint64 {
	if shares == 0 {
		return 0
	}
	shares = min(max(shares, 2), 262144)
	return 1 + ((shares-2)*9999)/262142
}

// Remove deletes the cgroup name, and any child cgroups left in it, from
// every hierarchy; a cgroup that is already gone is not an error. The
// processes must have ended: the kernel refuses to remove a cgroup in use.
func (m *Manager) Remove(name string) error {
	if err := check(name); err != nil {
		return err
	}
	var errs []error
	for _, mt := range m.Mounts {
		if err := removeTree(filepath.Join(mt.Path, name)); err != nil {
			errs = append(errs, fmt.Errorf("remove cgroup %s in %s: %w", name, mt.Path, err))
		}
	}
	return errors.Join(errs...)
}

// removeTree removes a cgroup directory and its child cgroups, leaves
// first (cgroupfs directories hold only control files, removed with them).
func removeTree(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.IsDir() {
			if err := removeTree(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Exists reports whether the cgroup is present in any hierarchy.
func (m *Manager) Exists(name string) bool {
	for _, mt := range m.Mounts {
		if _, err := os.Stat(filepath.Join(mt.Path, name)); err == nil {
			return true
		}
	}
	return false
}
