package runtime

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/peapod/peapod/internal/imagetest"
)

// A configured pause image is pulled on first use and mounted per sandbox;
// removing the sandbox unmounts it. Without one, no image is involved: the
// local catatonit rootfs is shared by every sandbox.
func TestPauseImage(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	img, err := imagetest.Pause(imagetest.OCI)
	if err != nil {
		t.Fatal(err)
	}
	ref := registry.Ref("pause-" + randHex(t, 4) + ":test")
	if err := registry.Push(ctx, strings.TrimPrefix(ref, registry.Host+"/"), img); err != nil {
		t.Fatal(err)
	}

	// The default: the local pause, shared and read-only.
	pod := f.podConfig("local")
	sb := f.runPod(f.v, pod)
	if st, _ := f.sandboxInfo(f.v, sb); st.State != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Fatalf("local pause sandbox is %s", st.State)
	}
	if m := mountsUnder(filepath.Join(f.opts.Root, "runtime", "pause")); len(m) != 0 {
		t.Errorf("the local pause rootfs is mounted: %v", m)
	}

	f.rt.Close()
	f.opts.PauseImage = ref
	f.rt = f.open()
	v := f.view("test")
	pod = f.podConfig("pulled")
	pod.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
	sb = f.runPod(v, pod)
	if _, err := images.Status(ref); err != nil {
		t.Fatalf("the configured pause image was not pulled: %v", err)
	}
	cfg := ctrConfig("c", "sleep", "3600")
	cfg.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
	c := f.start(v, sb, pod, cfg)
	if got := f.execOK(v, c, "cat", "/proc/1/cmdline"); !strings.HasPrefix(got, "/catatonit\x00-P") {
		t.Errorf("PID 1 of the pod = %q, want the pulled image's /catatonit -P", got)
	}
	dir := filepath.Join(f.opts.Root, "runtime", "sandboxes", sb)
	if len(mountsUnder(filepath.Join(dir, "rootfs"))) != 1 {
		t.Errorf("the pulled pause image is not mounted for the sandbox")
	}
	if _, err := v.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb}); err != nil {
		t.Fatal(err)
	}
	if m := mountsUnder(dir); len(m) != 0 {
		t.Errorf("mounts left after RemovePodSandbox: %v", m)
	}
}
