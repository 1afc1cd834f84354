package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/peapod/peapod/internal/registrytest"
)

// A pod applied without spec.nodeName is bound to this node (the host
// name by default), as the scheduler would; one bound to another node is
// not run and says why.
func TestPodNodeName(t *testing.T) {
	d := startPodDaemon(t)
	reg := busyboxRegistry(t, d, registrytest.Options{TLS: true}, "busybox:1")
	img := reg.Ref("busybox:1")
	cleanupPods(t, d, "default")
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}

	apply(t, d, "here.yaml", fmt.Sprintf(onePod, "here", "Always", img, "sleep 3600"))
	waitStatus(t, d, "default", "here", "Running", 60*time.Second)
	if p := getPod(t, d, "default", "here"); p.Spec.NodeName != host {
		t.Errorf("spec.nodeName %q, want the host name %q", p.Spec.NodeName, host)
	}
	wide := d.MustRun("get", "pod", "here", "-o", "wide")
	if lines := strings.Split(strings.TrimSpace(wide), "\n"); len(lines) != 2 || !strings.Contains(lines[1], " "+host+" ") {
		t.Errorf("get -o wide has no NODE %s:\n%s", host, wide)
	}
	if y := d.MustRun("get", "pod", "here", "-o", "yaml"); !strings.Contains(y, "nodeName: "+host) {
		t.Errorf("-o yaml lacks nodeName: %s", host)
	}

	// Applying the same manifest again keeps the binding (the three-way
	// merge leaves a field the manifest never set).
	apply(t, d, "here.yaml", fmt.Sprintf(onePod, "here", "Always", img, "sleep 3600"))
	if p := getPod(t, d, "default", "here"); p.Spec.NodeName != host {
		t.Errorf("after a second apply spec.nodeName %q, want %q", p.Spec.NodeName, host)
	}

	elsewhere := strings.Replace(fmt.Sprintf(onePod, "there", "Always", img, "sleep 3600"), "spec:\n", "spec:\n  nodeName: other-node\n", 1)
	apply(t, d, "there.yaml", elsewhere)
	waitStatus(t, d, "default", "there", "NodeMismatch", 30*time.Second)
	time.Sleep(2 * time.Second)
	p := getPod(t, d, "default", "there")
	if p.Status.Phase != "Pending" || len(p.Status.ContainerStatuses) != 0 || !strings.Contains(p.Status.Message, `bound to node "other-node"`) {
		t.Errorf("pod bound elsewhere: phase %s message %q containers %v", p.Status.Phase, p.Status.Message, p.Status.ContainerStatuses)
	}
	if ev := events(t, d, "default"); !strings.Contains(ev, "NodeMismatch") {
		t.Errorf("no NodeMismatch event:\n%s", ev)
	}
}
