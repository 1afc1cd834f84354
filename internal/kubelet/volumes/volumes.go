// Package volumes prepares a pod's volumes on the node the way kubelet's
// volume plugins do, under kubelet's directory layout
// (ROOT/pods/<uid>/volumes/kubernetes.io~<plugin>/<name>), and turns a
// container's volumeMounts into CRI mounts of those directories.
//
// emptyDir is a directory (medium Memory: a tmpfs, sized by sizeLimit);
// hostPath is the host path itself after kubelet's type checks; secret,
// configMap, downwardAPI and projected volumes are files written with an
// atomic-writer layout (a timestamped directory, a "..data" symlink to it,
// and one symlink per key), so a container never sees half an update.
// Secret, downwardAPI and projected volumes live on a tmpfs, as in kubelet,
// so secret data never touches the disk. TearDown unmounts and removes all
// of it.
package volumes

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Kubelet's plugin directory names.
const (
	PluginEmptyDir    = "kubernetes.io~empty-dir"
	PluginSecret      = "kubernetes.io~secret"
	PluginConfigMap   = "kubernetes.io~configmap"
	PluginDownwardAPI = "kubernetes.io~downward-api"
	PluginProjected   = "kubernetes.io~projected"
)

// DefaultMode is the file mode of secret, configMap, downwardAPI and
// projected files when the pod names none (0644).
const DefaultMode int32 = 0o644

// Objects reads the Secrets and ConfigMaps volumes refer to. Errors are the
// API's (NotFound for a missing object).
type Objects interface {
	Secret(ctx context.Context, ns, name string) (*corev1.Secret, error)
	ConfigMap(ctx context.Context, ns, name string) (*corev1.ConfigMap, error)
}

// Manager sets up and tears down pod volumes under Root (ROOT/pods).
type Manager struct {
	Root    string
	Objects Objects
}

// PodDir is ROOT/pods/<uid>.
func (m *Manager) PodDir(uid types.UID) string { return filepath.Join(m.Root, string(uid)) }

func (m *Manager) volumeDir(uid types.UID, plugin, name string) string {
	return filepath.Join(m.PodDir(uid), "volumes", plugin, name)
}

// Error is a failed volume set-up, with kubelet's event message.
type Error struct {
	Volume string
	Err    error
}

func (e *Error) Error() string {
	return fmt.Sprintf("MountVolume.SetUp failed for volume %q : %v", e.Volume, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Setup makes every volume of the pod ready and returns the host path of
// each by volume name. It is idempotent: called on every sync, it refreshes
// secret and configMap contents that changed.
func (m *Manager) Setup(ctx context.Context, pod *corev1.Pod) (map[string]string, error) {
	paths := map[string]string{}
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		p, err := m.setupVolume(ctx, pod, v)
		if err != nil {
			return nil, &Error{Volume: v.Name, Err: err}
		}
		paths[v.Name] = p
	}
	return paths, nil
}

func (m *Manager) setupVolume(ctx context.Context, pod *corev1.Pod, v *corev1.Volume) (string, error) {
	switch {
	case v.EmptyDir != nil:
		dir := m.volumeDir(pod.UID, PluginEmptyDir, v.Name)
		if v.EmptyDir.Medium == corev1.StorageMediumMemory {
			opts := "mode=0777"
			if v.EmptyDir.SizeLimit != nil && !v.EmptyDir.SizeLimit.IsZero() {
				opts += fmt.Sprintf(",size=%d", v.EmptyDir.SizeLimit.Value())
			}
			return dir, ensureTmpfs(dir, opts)
		}
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return "", err
		}
		// emptyDir is world-writable so that any user in the pod can use it.
		return dir, os.Chmod(dir, 0o777)
	case v.HostPath != nil:
		return v.HostPath.Path, checkHostPath(v.HostPath)
	case v.Secret != nil:
		files, err := m.secretFiles(ctx, pod.Namespace, v.Secret.SecretName, v.Secret.Items, v.Secret.DefaultMode, v.Secret.Optional)
		if err != nil {
			return "", err
		}
		return m.writeTmpfsVolume(pod.UID, PluginSecret, v.Name, files)
	case v.ConfigMap != nil:
		files, err := m.configMapFiles(ctx, pod.Namespace, v.ConfigMap.Name, v.ConfigMap.Items, v.ConfigMap.DefaultMode, v.ConfigMap.Optional)
		if err != nil {
			return "", err
		}
		dir := m.volumeDir(pod.UID, PluginConfigMap, v.Name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", err
		}
		return dir, writeAtomic(dir, files)
	case v.DownwardAPI != nil:
		files, err := downwardFiles(pod, v.DownwardAPI.Items, v.DownwardAPI.DefaultMode)
		if err != nil {
			return "", err
		}
		return m.writeTmpfsVolume(pod.UID, PluginDownwardAPI, v.Name, files)
	case v.Projected != nil:
		files := map[string]file{}
		for _, src := range v.Projected.Sources {
			var (
				part map[string]file
				err  error
			)
			switch {
			case src.Secret != nil:
				part, err = m.secretFiles(ctx, pod.Namespace, src.Secret.Name, src.Secret.Items, v.Projected.DefaultMode, src.Secret.Optional)
			case src.ConfigMap != nil:
				part, err = m.configMapFiles(ctx, pod.Namespace, src.ConfigMap.Name, src.ConfigMap.Items, v.Projected.DefaultMode, src.ConfigMap.Optional)
			case src.DownwardAPI != nil:
				part, err = downwardFiles(pod, src.DownwardAPI.Items, v.Projected.DefaultMode)
			default:
				err = errors.New("projected source not supported by peapod (only secret, configMap and downwardAPI)")
			}
			if err != nil {
				return "", err
			}
			for k, f := range part {
				files[k] = f
			}
		}
		return m.writeTmpfsVolume(pod.UID, PluginProjected, v.Name, files)
	}
	return "", fmt.Errorf("volume type not supported by peapod (emptyDir, hostPath, secret, configMap, downwardAPI and projected are)")
}

func (m *Manager) writeTmpfsVolume(uid types.UID, plugin, name string, files map[string]file) (string, error) {
	dir := m.volumeDir(uid, plugin, name)
	if err := ensureTmpfs(dir, "mode=0755"); err != nil {
		return "", err
	}
	return dir, writeAtomic(dir, files)
}

// ensureTmpfs mounts a tmpfs on dir unless one is there already.
func ensureTmpfs(dir, opts string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	if mounted, err := isMountPoint(dir); err != nil || mounted {
		return err
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", dir, err)
	}
	return nil
}

// isMountPoint compares dir's device with its parent's.
func isMountPoint(dir string) (bool, error) {
	var st, parent unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return false, err
	}
	if err := unix.Lstat(filepath.Dir(dir), &parent); err != nil {
		return false, err
	}
	return st.Dev != parent.Dev, nil
}

func checkHostPath(h *corev1.HostPathVolumeSource) error {
	t := corev1.HostPathUnset
	if h.Type != nil {
		t = *h.Type
	}
	p := h.Path
	fi, err := os.Stat(p)
	switch t {
	case corev1.HostPathUnset:
		return nil
	case corev1.HostPathDirectoryOrCreate:
		if errors.Is(err, os.ErrNotExist) {
			return os.MkdirAll(p, 0o755)
		}
		if err == nil && !fi.IsDir() {
			return fmt.Errorf("hostPath type check failed: %s is not a directory", p)
		}
		return err
	case corev1.HostPathFileOrCreate:
		if errors.Is(err, os.ErrNotExist) {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				return err
			}
			return f.Close()
		}
		if err == nil && !fi.Mode().IsRegular() {
			return fmt.Errorf("hostPath type check failed: %s is not a file", p)
		}
		return err
	}
	if err != nil {
		return fmt.Errorf("hostPath type check failed: %s does not exist", p)
	}
	m := fi.Mode()
	ok := map[corev1.HostPathType]bool{
		corev1.HostPathDirectory: m.IsDir(),
		corev1.HostPathFile:      m.IsRegular(),
		corev1.HostPathSocket:    m&os.ModeSocket != 0,
		corev1.HostPathCharDev:   m&os.ModeCharDevice != 0,
		corev1.HostPathBlockDev:  m&os.ModeDevice != 0 && m&os.ModeCharDevice == 0,
	}
	what := map[corev1.HostPathType]string{
		corev1.HostPathDirectory: "a directory", corev1.HostPathFile: "a file", corev1.HostPathSocket: "a socket file",
		corev1.HostPathCharDev: "a character device", corev1.HostPathBlockDev: "a block device",
	}
	good, known := ok[t]
	if !known {
		return fmt.Errorf("hostPath type %q is not one of DirectoryOrCreate, Directory, FileOrCreate, File, Socket, CharDevice, BlockDevice", t)
	}
	if !good {
		return fmt.Errorf("hostPath type check failed: %s is not %s", p, what[t])
	}
	return nil
}

// Mounts returns the CRI mounts of a container's volumeMounts, given the
// volume paths Setup returned.
func Mounts(c *corev1.Container, paths map[string]string) ([]*runtimeapi.Mount, error) {
	var out []*runtimeapi.Mount
	for _, vm := range c.VolumeMounts {
		host, ok := paths[vm.Name]
		if !ok {
			return nil, fmt.Errorf("container %s: volumeMount %q names no volume of the pod", c.Name, vm.Name)
		}
		if vm.SubPath != "" {
			if filepath.IsAbs(vm.SubPath) || strings.HasPrefix(filepath.Clean(vm.SubPath), "..") {
				return nil, fmt.Errorf("container %s: subPath %q must be a relative path inside the volume", c.Name, vm.SubPath)
			}
			sub := filepath.Join(host, vm.SubPath)
			real, err := filepath.EvalSymlinks(filepath.Dir(sub))
			if err == nil {
				rootReal, _ := filepath.EvalSymlinks(host)
				if real != rootReal && !strings.HasPrefix(real, rootReal+"/") {
					return nil, fmt.Errorf("container %s: subPath %q leaves the volume", c.Name, vm.SubPath)
				}
			}
			if _, err := os.Lstat(sub); errors.Is(err, os.ErrNotExist) {
				if err := os.MkdirAll(sub, 0o755); err != nil {
					return nil, err
				}
			}
			host = sub
		}
		m := &runtimeapi.Mount{ContainerPath: vm.MountPath, HostPath: host, Readonly: vm.ReadOnly}
		if vm.MountPropagation != nil {
			switch *vm.MountPropagation {
			case corev1.MountPropagationHostToContainer:
				m.Propagation = runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER
			case corev1.MountPropagationBidirectional:
				m.Propagation = runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL
			}
		}
		out = append(out, m)
	}
	return out, nil
}

// TearDown unmounts and removes everything the pod had under ROOT/pods/<uid>.
func (m *Manager) TearDown(uid types.UID) error {
	dir := m.PodDir(uid)
	vols := filepath.Join(dir, "volumes")
	plugins, err := os.ReadDir(vols)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	var errs []error
	for _, p := range plugins {
		names, err := os.ReadDir(filepath.Join(vols, p.Name()))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, n := range names {
			d := filepath.Join(vols, p.Name(), n.Name())
			if mounted, _ := isMountPoint(d); mounted {
				if err := unix.Unmount(d, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
					errs = append(errs, fmt.Errorf("unmount %s: %w", d, err))
				}
			}
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return os.RemoveAll(dir)
}

// optionalMissing reports whether err is a NotFound for an optional source.
func optionalMissing(err error, optional *bool) bool {
	return apierrors.IsNotFound(err) && optional != nil && *optional
}
