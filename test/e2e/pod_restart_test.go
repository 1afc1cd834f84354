package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/peapod/peapod/internal/registrytest"
)

// Issue 5, acceptance 7: a restarted daemon adopts its running pods without
// restarting them; after every container was killed (a reboot) the
// restarted daemon brings the pods back.
func TestPodsSurviveDaemonRestartAndReboot(t *testing.T) {
	d := startPodDaemon(t)
	reg := busyboxRegistry(t, d, registrytest.Options{TLS: true}, "busybox:1")
	cleanupPods(t, d, "default")
	apply(t, d, "pod.yaml", fmt.Sprintf(onePod, "steady", "Always", reg.Ref("busybox:1"), "echo started; sleep 3600"))
	waitStatus(t, d, "default", "steady", "Running", 60*time.Second)
	before := containerStatus(getPod(t, d, "default", "steady"), "c")

	restartDaemon(d)
	time.Sleep(3 * time.Second) // a few syncs of the new daemon
	after := containerStatus(getPod(t, d, "default", "steady"), "c")
	if after.ContainerID != before.ContainerID || after.RestartCount != 0 || after.State.Running == nil ||
		!after.State.Running.StartedAt.Equal(&before.State.Running.StartedAt) {
		t.Fatalf("after a daemon restart: %+v, want the same running container %s", after, before.ContainerID)
	}

	// Reboot: the daemon is down and every container process dies.
	d.Stop()
	runcRoot := filepath.Join(d.State, "runtime", "runc")
	out, err := exec.Command("runc", "--root", runcRoot, "list", "-q").Output()
	if err != nil {
		t.Fatalf("runc list: %v", err)
	}
	ids := strings.Fields(string(out))
	if len(ids) < 2 {
		t.Fatalf("runc lists %v, want the pause and the app container", ids)
	}
	for _, id := range ids {
		if err := exec.Command("runc", "--root", runcRoot, "kill", id, "KILL").Run(); err != nil {
			t.Logf("runc kill %s: %v", id, err)
		}
	}
	time.Sleep(time.Second)
	d.start()
	waitFor(t, 60*time.Second, "the pod to come back", func() (bool, string) {
		s := containerStatus(getPod(t, d, "default", "steady"), "c")
		return s.State.Running != nil && s.ContainerID != before.ContainerID, fmt.Sprintf("%+v", s)
	})
	s := containerStatus(getPod(t, d, "default", "steady"), "c")
	if s.RestartCount != 1 {
		t.Errorf("restartCount %d after the reboot, want 1", s.RestartCount)
	}
	if ev := events(t, d, "default"); !strings.Contains(ev, "Pod sandbox changed, it will be killed and re-created.") {
		t.Errorf("no SandboxChanged event:\n%s", ev)
	}
}
