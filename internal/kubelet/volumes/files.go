package volumes

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// file is one file of a volume: its content and mode.
type file struct {
	data []byte
	mode os.FileMode
}

func modeOf(item *int32, def *int32) os.FileMode {
	switch {
	case item != nil:
		return os.FileMode(*item) & 0o7777
	case def != nil:
		return os.FileMode(*def) & 0o7777
	}
	return os.FileMode(DefaultMode)
}

// project maps an object's data to files: every key, or only the listed
// items (a missing item key is an error unless the source is optional).
func project(kind, ns, name string, data map[string][]byte, items []corev1.KeyToPath, def *int32, optional *bool) (map[string]file, error) {
	out := map[string]file{}
	if len(items) == 0 {
		for k, v := range data {
			out[k] = file{data: v, mode: modeOf(nil, def)}
		}
		return out, nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			if optional != nil && *optional {
				continue
			}
			return nil, fmt.Errorf("configuration error: couldn't find key %s in %s %s/%s", it.Key, kind, ns, name)
		}
		if err := checkRelPath(it.Path); err != nil {
			return nil, err
		}
		out[it.Path] = file{data: v, mode: modeOf(it.Mode, def)}
	}
	return out, nil
}

func checkRelPath(p string) error {
	if p == "" || filepath.IsAbs(p) || strings.HasPrefix(p, "..") || strings.Contains(p, "/../") {
		return fmt.Errorf("item path %q must be relative and may not contain '..'", p)
	}
	return nil
}

func (m *Manager) secretFiles(ctx context.Context, ns, name string, items []corev1.KeyToPath, def *int32, optional *bool) (map[string]file, error) {
	s, err := m.Objects.Secret(ctx, ns, name)
	if err != nil {
		if optionalMissing(err, optional) {
			return map[string]file{}, nil
		}
		return nil, err
	}
	return project("Secret", ns, name, s.Data, items, def, optional)
}

func (m *Manager) configMapFiles(ctx context.Context, ns, name string, items []corev1.KeyToPath, def *int32, optional *bool) (map[string]file, error) {
	cm, err := m.Objects.ConfigMap(ctx, ns, name)
	if err != nil {
		if optionalMissing(err, optional) {
			return map[string]file{}, nil
		}
		return nil, err
	}
	data := map[string][]byte{}
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return project("ConfigMap", ns, name, data, items, def, optional)
}

func downwardFiles(pod *corev1.Pod, items []corev1.DownwardAPIVolumeFile, def *int32) (map[string]file, error) {
	out := map[string]file{}
	for _, it := range items {
		if err := checkRelPath(it.Path); err != nil {
			return nil, err
		}
		var v string
		switch {
		case it.FieldRef != nil:
			var err error
			v, err = FieldValue(pod, it.FieldRef.FieldPath)
			if err != nil {
				return nil, err
			}
		case it.ResourceFieldRef != nil:
			c := findContainer(pod, it.ResourceFieldRef.ContainerName)
			if c == nil {
				return nil, fmt.Errorf("resourceFieldRef: no container %q", it.ResourceFieldRef.ContainerName)
			}
			var err error
			v, err = ResourceValue(c, it.ResourceFieldRef)
			if err != nil {
				return nil, err
			}
		}
		out[it.Path] = file{data: []byte(v), mode: modeOf(it.Mode, def)}
	}
	return out, nil
}

func findContainer(pod *corev1.Pod, name string) *corev1.Container {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i]
		}
	}
	return nil
}

// FieldValue is a pod field for a downward API fieldRef (metadata.name,
// metadata.namespace, metadata.uid, metadata.labels, metadata.annotations,
// metadata.labels['k'], metadata.annotations['k'], spec.nodeName,
// spec.serviceAccountName, status.hostIP, status.hostIPs, status.podIP,
// status.podIPs).
func FieldValue(pod *corev1.Pod, path string) (string, error) {
	if k, ok := subscript(path, "metadata.labels"); ok {
		return pod.Labels[k], nil
	}
	if k, ok := subscript(path, "metadata.annotations"); ok {
		return pod.Annotations[k], nil
	}
	ips := func(list []corev1.PodIP) string {
		var s []string
		for _, ip := range list {
			s = append(s, ip.IP)
		}
		return strings.Join(s, ",")
	}
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP":
		return pod.Status.HostIP, nil
	case "status.hostIPs":
		var s []string
		for _, ip := range pod.Status.HostIPs {
			s = append(s, ip.IP)
		}
		return strings.Join(s, ","), nil
	case "status.podIP":
		return pod.Status.PodIP, nil
	case "status.podIPs":
		return ips(pod.Status.PodIPs), nil
	}
	return "", fmt.Errorf("unsupported fieldPath: %s", path)
}

func subscript(path, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(path, prefix+"['")
	if !ok {
		return "", false
	}
	return strings.CutSuffix(rest, "']")
}

// formatMap is kubelet's k="v" lines, sorted by key.
func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%s=%q", k, m[k])
	}
	return b.String()
}

// ResourceValue is a container's resource for a resourceFieldRef
// (limits.cpu, limits.memory, requests.cpu, requests.memory,
// limits/requests.ephemeral-storage), in units of the divisor, rounded up
// as kubelet does. An unset limit is reported as 0 here (kubelet reports
// the node's allocatable; peapod does not track it).
func ResourceValue(c *corev1.Container, ref *corev1.ResourceFieldSelector) (string, error) {
	list, name, ok := strings.Cut(ref.Resource, ".")
	if !ok {
		return "", fmt.Errorf("unsupported container resource: %s", ref.Resource)
	}
	var rl corev1.ResourceList
	switch list {
	case "limits":
		rl = c.Resources.Limits
	case "requests":
		rl = c.Resources.Requests
	default:
		return "", fmt.Errorf("unsupported container resource: %s", ref.Resource)
	}
	q := rl[corev1.ResourceName(name)]
	div := ref.Divisor
	if div.IsZero() {
		div = resource.MustParse("1")
	}
	if name == "cpu" {
		v := (q.MilliValue() + div.MilliValue() - 1) / div.MilliValue()
		return fmt.Sprint(v), nil
	}
	v := (q.Value() + div.Value() - 1) / div.Value()
	return fmt.Sprint(v), nil
}

// writeAtomic lays files out as kubelet's AtomicWriter does: the content in
// a fresh "..<timestamp>" directory, "..data" pointing at it (switched by
// one rename), and a symlink per top-level entry through "..data". Nothing
// is written when the content is unchanged.
func writeAtomic(dir string, files map[string]file) error {
	if same(dir, files) {
		return nil
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	tsName := ".." + time.Now().UTC().Format("2006_01_02_15_04_05.000000000") + "_" + hex.EncodeToString(b)
	ts := filepath.Join(dir, tsName)
	if err := os.Mkdir(ts, 0o755); err != nil {
		return err
	}
	top := map[string]bool{}
	for p, f := range files {
		full := filepath.Join(ts, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, f.data, f.mode); err != nil {
			return err
		}
		if err := os.Chmod(full, f.mode); err != nil { // WriteFile's mode passes the umask
			return err
		}
		first, _, _ := strings.Cut(p, "/")
		top[first] = true
	}
	tmp := filepath.Join(dir, "..data_tmp")
	_ = os.Remove(tmp)
	if err := os.Symlink(tsName, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		return err
	}
	for name := range top {
		link := filepath.Join(dir, name)
		if target, err := os.Readlink(link); err == nil && target == filepath.Join("..data", name) {
			continue
		}
		_ = os.RemoveAll(link)
		if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, "..") {
			if n != "..data" && n != tsName {
				_ = os.RemoveAll(filepath.Join(dir, n))
			}
			continue
		}
		if !top[n] {
			_ = os.RemoveAll(filepath.Join(dir, n))
		}
	}
	return nil
}

// same reports whether dir already holds exactly files.
func same(dir string, files map[string]file) bool {
	data := filepath.Join(dir, "..data")
	if _, err := os.Stat(data); err != nil {
		return false
	}
	n := 0
	err := filepath.Walk(data+"/", func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		n++
		rel, _ := filepath.Rel(data, p)
		f, ok := files[rel]
		if !ok || fi.Mode().Perm() != f.mode.Perm() {
			return fmt.Errorf("differs")
		}
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, f.data) {
			return fmt.Errorf("differs")
		}
		return nil
	})
	return err == nil && n == len(files)
}
