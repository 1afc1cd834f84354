package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/peapod/peapod/internal/cgroup"
	"github.com/peapod/peapod/internal/registrytest"
)

const cgroupPod = `apiVersion: v1
kind: Pod
metadata:
  name: %s
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: a
    image: %s
    command: ["sleep", "3600"]
    resources:
      limits: {memory: 64Mi, cpu: 500m}
  - name: b
    image: %s
    command: ["sleep", "3600"]
    resources:
      limits: {memory: 32Mi, cpu: 250m}
`

// The pod's containers run inside its pod cgroup
// (/peapod/kubepods/pod<UID> for this Guaranteed pod), which holds the
// pod's memory limit (the sum of the containers'); the cgroup is gone
// once the pod is deleted.
func TestPodCgroup(t *testing.T) {
	d := startPodDaemon(t)
	reg := busyboxRegistry(t, d, registrytest.Options{TLS: true}, "busybox:1")
	img := reg.Ref("busybox:1")
	cleanupPods(t, d, "default")
	m, err := cgroup.New()
	if err != nil {
		t.Fatal(err)
	}

	apply(t, d, "cg.yaml", fmt.Sprintf(cgroupPod, "cg", img, img))
	waitStatus(t, d, "default", "cg", "Running", 60*time.Second)
	p := getPod(t, d, "default", "cg")
	name := d.CgroupRoot + "/kubepods/pod" + string(p.UID)
	t.Cleanup(func() { _ = m.Remove(name) })
	if p.Status.QOSClass != "Guaranteed" {
		t.Errorf("qosClass %s, want Guaranteed", p.Status.QOSClass)
	}

	for _, c := range []string{"a", "b"} {
		out := d.MustRun("exec", "cg", "-c", c, "--", "cat", "/proc/self/cgroup")
		found := false
		for _, l := range strings.Split(out, "\n") {
			f := strings.SplitN(l, ":", 3)
			if len(f) == 3 && (f[1] == "memory" || f[1] == "") {
				found = found || strings.HasPrefix(f[2], name+"/")
			}
		}
		if !found {
			t.Errorf("container %s is not below %s:\n%s", c, name, out)
		}
	}
	var limit string
	for _, mt := range m.Mounts {
		for _, f := range []string{"memory.limit_in_bytes", "memory.max"} {
			if b, err := os.ReadFile(filepath.Join(mt.Path, name, f)); err == nil {
				limit = strings.TrimSpace(string(b))
			}
		}
	}
	if limit != fmt.Sprint(96<<20) {
		t.Errorf("pod memory limit %q, want %d (64Mi + 32Mi)", limit, 96<<20)
	}

	d.MustRun("delete", "pod", "cg", "--grace-period=0")
	waitFor(t, 30*time.Second, "the pod cgroup to be removed", func() (bool, string) {
		return !m.Exists(name), name
	})
}
