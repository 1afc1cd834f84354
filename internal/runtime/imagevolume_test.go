package runtime

import (
	"context"
	"os"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// An image volume shows the image's files read-only at the container path
// (or one directory of it with a sub path), a sub path leaving the image is
// refused, and removing the container unmounts the image.
func TestImageVolume(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	pod := f.podConfig("imgvol")
	sb := f.runPod(f.v, pod)

	cfg := ctrConfig("imgvol", "sleep", "3600")
	cfg.Mounts = []*runtimeapi.Mount{
		{ContainerPath: "/vol", Image: &runtimeapi.ImageSpec{Image: busyboxRef}, Readonly: true},
		{ContainerPath: "/sub", Image: &runtimeapi.ImageSpec{Image: busyboxRef}, ImageSubPath: "bin", Readonly: true},
	}
	id := f.start(f.v, sb, pod, cfg)
	f.execOK(f.v, id, "test", "-x", "/vol/bin/busybox")
	f.execOK(f.v, id, "test", "-x", "/sub/busybox")
	if out, code := f.exec(f.v, id, "touch", "/vol/x"); code == 0 {
		t.Errorf("image volume is writable: %s", out)
	}
	st, err := f.v.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range st.GetStatus().GetMounts() {
		if ref := m.GetImage().GetImageRef(); !strings.HasPrefix(ref, "sha256:") {
			t.Errorf("status mount %s: image_ref = %q, want the image ID", m.GetContainerPath(), ref)
		}
	}

	for _, tt := range []struct {
		name string
		m    *runtimeapi.Mount
	}{
		{"sub path leaving the image", &runtimeapi.Mount{ContainerPath: "/vol", Image: &runtimeapi.ImageSpec{Image: busyboxRef}, ImageSubPath: "../../etc", Readonly: true}},
		{"missing sub path", &runtimeapi.Mount{ContainerPath: "/vol", Image: &runtimeapi.ImageSpec{Image: busyboxRef}, ImageSubPath: "nope", Readonly: true}},
		{"writable", &runtimeapi.Mount{ContainerPath: "/vol", Image: &runtimeapi.ImageSpec{Image: busyboxRef}}},
	} {
		bad := ctrConfig("imgvol-bad", "sleep", "3600")
		bad.Mounts = []*runtimeapi.Mount{tt.m}
		if _, err := f.v.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: sb, Config: bad, SandboxConfig: pod}); err == nil {
			t.Errorf("%s: image volume accepted", tt.name)
		}
	}

	if _, err := f.v.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.v.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(mi), "\n") {
		if strings.Contains(l, id) && strings.Contains(l, imageVolumesDir) {
			t.Errorf("image volume still mounted after removal: %s", l)
		}
	}
}
