package spec

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/peapod/peapod/internal/container/runc/runctest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	runctest.RemoveLayer()
	os.Exit(code)
}

// runInRunc generates a container spec for a host-network pod, runs it to
// completion with the real runc and returns its output.
func runInRunc(t *testing.T, script string, seccomp *runtime.SecurityProfile) string {
	t.Helper()
	runctest.Require(t, runctest.Runc, runctest.Busybox)
	host, err := DetectHost()
	if err != nil {
		t.Fatal(err)
	}
	id := runctest.ID(t)
	layer := runctest.Layer(t)
	pod := podConfig(func(c *runtime.PodSandboxConfig) {
		c.Linux.CgroupParent = "/"
		c.Linux.SecurityContext.NamespaceOptions = &runtime.NamespaceOption{Network: runtime.NamespaceMode_NODE, Ipc: runtime.NamespaceMode_NODE}
	})
	s, err := Container(ContainerParams{
		ID:        id,
		SandboxID: "sb-" + id,
		Config: &runtime.ContainerConfig{
			Metadata: &runtime.ContainerMetadata{Name: "probe"},
			Command:  []string{"/bin/sh", "-c", script},
			Linux: &runtime.LinuxContainerConfig{SecurityContext: &runtime.LinuxContainerSecurityContext{
				Seccomp:          seccomp,
				NamespaceOptions: &runtime.NamespaceOption{Network: runtime.NamespaceMode_NODE, Ipc: runtime.NamespaceMode_NODE, Pid: runtime.NamespaceMode_CONTAINER},
			}},
		},
		SandboxConfig: pod,
		Image:         ocispec.ImageConfig{Env: []string{"PATH=/bin"}},
		RootfsPath:    layer,
		Host:          host,
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.Linux.CgroupsPath != runctest.CgroupPath(id) {
		t.Fatalf("cgroups path %q, the test helper cleans up %q", s.Linux.CgroupsPath, runctest.CgroupPath(id))
	}
	s.Root.Path = "rootfs" // the bundle's overlay of the layer
	bundle := runctest.Bundle(t, s)
	t.Cleanup(func() {
		_ = exec.Command(runctest.Runc, "delete", "-f", id).Run()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, runctest.Runc, "run", "--bundle", bundle, id)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("runc run: %v\n%s", err, out.String())
	}
	return out.String()
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// The RuntimeDefault profile must let busybox do its everyday work and
// still refuse a user namespace, which the kernel would allow to root even
// without capabilities; Unconfined shows the refusal is seccomp's.
func TestRuntimeDefaultSeccompUnderRunc(t *testing.T) {
	port := freePort(t)
	script := fmt.Sprintf(`
sleep 0.1 && echo sleep=ok
echo hello > /tmp/page && cat /tmp/page
httpd -p 127.0.0.1:%d -h /tmp
for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O - http://127.0.0.1:%d/page && break; sleep 0.2; done
echo wget=$?
kill $(pidof httpd) 2>/dev/null
id -u
unshare -U true 2>/dev/null; echo unshare=$?
`, port, port)

	out := runInRunc(t, script, &runtime.SecurityProfile{ProfileType: runtime.SecurityProfile_RuntimeDefault})
	t.Logf("RuntimeDefault output:\n%s", out)
	for _, want := range []string{"sleep=ok", "hello\nhello", "wget=0", "\n0\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("RuntimeDefault: output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "unshare=0") || !strings.Contains(out, "unshare=") {
		t.Errorf("RuntimeDefault let unshare through:\n%s", out)
	}

	out = runInRunc(t, "unshare -U true; echo unshare=$?", &runtime.SecurityProfile{ProfileType: runtime.SecurityProfile_Unconfined})
	if !strings.Contains(out, "unshare=0") {
		t.Errorf("Unconfined: unshare should work, the kernel allows it:\n%s", out)
	}
}
