package runtime

import (
	"context"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Acceptance 6: a daemon that dies (here: the Runtime is dropped without
// stopping anything, as kill -9 would) leaves its pods running; the next
// one finds them, with the exit code of a container that ended meanwhile,
// and reports a sandbox whose pause died meanwhile as NOTREADY.
func TestDaemonRestartFindsPods(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	pod := f.podConfig("survivor")
	sb := f.runPod(f.v, pod)
	a := f.start(f.v, sb, pod, ctrConfig("a", "sleep", "3600"))
	b := f.start(f.v, sb, pod, ctrConfig("b", "sh", "-c", "sleep 1; exit 3"))
	_, ai := f.containerInfo(f.v, a)
	_, si := f.sandboxInfo(f.v, sb)
	died := time.Now()

	f.rt.Close() // the daemon is gone; conmon and pause are not its children
	f.rt = nil
	time.Sleep(2 * time.Second)

	f.rt = f.open()
	v := f.view("test")
	st, i := f.containerInfo(v, a)
	if st.State != runtimeapi.ContainerState_CONTAINER_RUNNING || i.Pid != ai.Pid {
		t.Errorf("after restart A is %s with pid %d, want RUNNING with pid %d", st.State, i.Pid, ai.Pid)
	}
	if out := f.execOK(v, a, "echo", "still here"); out != "still here\n" {
		t.Errorf("exec in A after restart = %q", out)
	}
	st, _ = f.containerInfo(v, b)
	if st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != 3 || st.Reason != ReasonError {
		t.Errorf("B after restart: %s exit %d reason %q, want EXITED 3 Error", st.State, st.ExitCode, st.Reason)
	}
	if fin := time.Unix(0, st.FinishedAt); fin.Before(died) || fin.After(time.Now()) {
		t.Errorf("B finished at %s, want between the daemon's death (%s) and now", fin, died)
	}
	if sst, _ := f.sandboxInfo(v, sb); sst.State != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Errorf("sandbox after restart is %s, want READY", sst.State)
	}

	// Down again; this time the pause process dies meanwhile.
	f.rt.Close()
	f.rt = nil
	if err := syscall.Kill(si.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() error {
		if _, err := procStart(si.Pid); err == nil {
			return errFrom("pause still alive")
		}
		return nil
	})
	f.rt = f.open()
	v = f.view("test")
	if sst, _ := f.sandboxInfo(v, sb); sst.State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Errorf("sandbox whose pause died is %s, want NOTREADY", sst.State)
	}
	if _, err := v.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: a, Timeout: 1}); err != nil {
		t.Fatalf("StopContainer after restart: %v", err)
	}
	// sleep is PID 1 of its namespace and ignores SIGTERM: the grace
	// period ends with SIGKILL, as in Kubernetes.
	st, _ = f.containerInfo(v, a)
	if st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != 128+int32(syscall.SIGKILL) {
		t.Errorf("A after stop: %s exit %d, want EXITED %d (SIGKILL after the grace period)", st.State, st.ExitCode, 128+syscall.SIGKILL)
	}
}

type errFrom string

func (e errFrom) Error() string { return string(e) }
