package volumes

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

type objs struct {
	secrets map[string]*corev1.Secret
	cms     map[string]*corev1.ConfigMap
}

func (o objs) Secret(_ context.Context, ns, name string) (*corev1.Secret, error) {
	if s, ok := o.secrets[name]; ok {
		return s, nil
	}
	return nil, apierrors.NewNotFound(corev1.Resource("secret"), name)
}

func (o objs) ConfigMap(_ context.Context, ns, name string) (*corev1.ConfigMap, error) {
	if c, ok := o.cms[name]; ok {
		return c, nil
	}
	return nil, apierrors.NewNotFound(corev1.Resource("configmap"), name)
}

func mode(m int32) *int32 { return &m }

func testPod(vols ...corev1.Volume) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: types.UID("uid-" + strings.ReplaceAll(vols[0].Name, "/", "")),
		Labels: map[string]string{"app": "web", "tier": "a"}}, Spec: corev1.PodSpec{Volumes: vols}}
}

func TestSecretConfigMapAndDownward(t *testing.T) {
	m := &Manager{Root: t.TempDir(), Objects: objs{
		secrets: map[string]*corev1.Secret{"creds": {Data: map[string][]byte{"password": []byte("s3cret"), "user": []byte("admin")}}},
		cms:     map[string]*corev1.ConfigMap{"settings": {Data: map[string]string{"app.conf": "mode=fast", "other": "x"}}},
	}}
	pod := testPod(
		corev1.Volume{Name: "secret", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds", DefaultMode: mode(0o400)}}},
		corev1.Volume{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "settings"},
			Items:                []corev1.KeyToPath{{Key: "app.conf", Path: "conf/app.conf", Mode: mode(0o640)}},
		}}},
		corev1.Volume{Name: "info", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
			{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
			{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}},
		}}}},
		corev1.Volume{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		corev1.Volume{Name: "mem", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: resource.NewQuantity(1<<20, resource.BinarySI)}}},
	)
	t.Cleanup(func() { _ = m.TearDown(pod.UID) })
	paths, err := m.Setup(context.Background(), pod)
	if err != nil {
		t.Fatal(err)
	}
	check := func(path, content string, perm os.FileMode) {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil || string(b) != content {
			t.Errorf("%s = %q, %v; want %q", path, b, err, content)
		}
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != perm {
			t.Errorf("%s mode %v, want %v", path, fi.Mode().Perm(), perm)
		}
	}
	check(filepath.Join(paths["secret"], "password"), "s3cret", 0o400)
	check(filepath.Join(paths["config"], "conf/app.conf"), "mode=fast", 0o640)
	check(filepath.Join(paths["info"], "labels"), "app=\"web\"\ntier=\"a\"", 0o644)
	check(filepath.Join(paths["info"], "name"), "p", 0o644)
	if _, err := os.Stat(filepath.Join(paths["config"], "other")); err == nil {
		t.Error("a configMap key not in items was written")
	}
	if target, err := os.Readlink(filepath.Join(paths["secret"], "password")); err != nil || target != "..data/password" {
		t.Errorf("secret file is %q (%v), want a symlink through ..data", target, err)
	}
	if !strings.Contains(paths["scratch"], "/volumes/kubernetes.io~empty-dir/scratch") {
		t.Errorf("emptyDir path %s", paths["scratch"])
	}
	for _, v := range []string{"secret", "mem"} {
		if mounted, _ := isMountPoint(paths[v]); !mounted {
			t.Errorf("%s volume is not a tmpfs mount", v)
		}
	}

	// An update of the secret shows up; an unchanged one is not rewritten.
	data, _ := os.Readlink(filepath.Join(paths["secret"], "..data"))
	if _, err := m.Setup(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.Readlink(filepath.Join(paths["secret"], "..data")); again != data {
		t.Error("unchanged secret rewritten")
	}
	m.Objects.(objs).secrets["creds"].Data["password"] = []byte("rotated")
	if _, err := m.Setup(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	check(filepath.Join(paths["secret"], "password"), "rotated", 0o400)

	if err := m.TearDown(pod.UID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(m.PodDir(pod.UID)); !os.IsNotExist(err) {
		t.Errorf("pod dir left after TearDown: %v", err)
	}
}

func TestSetupErrors(t *testing.T) {
	m := &Manager{Root: t.TempDir(), Objects: objs{secrets: map[string]*corev1.Secret{"s": {Data: map[string][]byte{"a": nil}}}}}
	optional := true
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	dirType := corev1.HostPathDirectory
	tests := []struct {
		vol  corev1.Volume
		want string // "" for success
	}{
		{corev1.Volume{Name: "missing", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "nope"}}},
			`MountVolume.SetUp failed for volume "missing" : secret "nope" not found`},
		{corev1.Volume{Name: "optional", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "nope", Optional: &optional}}}, ""},
		{corev1.Volume{Name: "key", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s", Items: []corev1.KeyToPath{{Key: "b", Path: "b"}}}}},
			"couldn't find key b in Secret ns/s"},
		{corev1.Volume{Name: "hp", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: file, Type: &dirType}}},
			"hostPath type check failed: " + file + " is not a directory"},
		{corev1.Volume{Name: "escape", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s", Items: []corev1.KeyToPath{{Key: "a", Path: "../x"}}}}},
			"must be relative"},
	}
	for _, tt := range tests {
		pod := testPod(tt.vol)
		_, err := m.Setup(context.Background(), pod)
		_ = m.TearDown(pod.UID)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.vol.Name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: error %v, want %q", tt.vol.Name, err, tt.want)
		}
	}
}

func TestMounts(t *testing.T) {
	c := &corev1.Container{Name: "c", VolumeMounts: []corev1.VolumeMount{
		{Name: "data", MountPath: "/data", ReadOnly: true},
		{Name: "data", MountPath: "/sub", SubPath: "a/b"},
	}}
	root := t.TempDir()
	ms, err := Mounts(c, map[string]string{"data": root})
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].HostPath != root || !ms[0].Readonly || ms[1].HostPath != filepath.Join(root, "a/b") {
		t.Errorf("mounts %v", ms)
	}
	if _, err := Mounts(&corev1.Container{Name: "c", VolumeMounts: []corev1.VolumeMount{{Name: "x", MountPath: "/x"}}}, nil); err == nil {
		t.Error("a mount of an unknown volume was accepted")
	}
	if _, err := Mounts(&corev1.Container{Name: "c", VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/x", SubPath: "../../etc"}}}, map[string]string{"data": root}); err == nil {
		t.Error("a subPath leaving the volume was accepted")
	}
}
