package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/internal/registrytest"
)

const execTTYPod = `apiVersion: v1
kind: Pod
metadata:
  name: exectty
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: %s
    command: ["sleep", "3600"]
`

// TestPodExecTTYWindowSize runs `peapod exec -it` from a local terminal:
// the command's terminal has the local terminal's size from its first
// instruction on, and follows a resize of the local terminal.
func TestPodExecTTYWindowSize(t *testing.T) {
	d := startPodDaemon(t)
	reg := busyboxRegistry(t, d, registrytest.Options{TLS: true}, "busybox:exectty")
	cleanupPods(t, d, "default")
	apply(t, d, "exectty.yaml", fmt.Sprintf(execTTYPod, reg.Ref("busybox:exectty")))
	waitStatus(t, d, "default", "exectty", "Running", 90*time.Second)

	cmd, master, out := startOnPty(t, d, 27, 93, "exec", "-it", "exectty", "--", "sh", "-c", "stty size; while read b; do stty size; done")
	var waitErr error
	waited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(waited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-waited })
	var seen strings.Builder
	read := func(wait time.Duration) {
		select {
		case s := <-out:
			seen.WriteString(s)
		case <-time.After(wait):
		}
	}
	// The first `stty size` runs before any input: it must already see
	// the local size.
	waitFor(t, 30*time.Second, "the exec's first stty size", func() (bool, string) {
		read(200 * time.Millisecond)
		return strings.Contains(seen.String(), "\n"), seen.String()
	})
	if first, _, _ := strings.Cut(seen.String(), "\n"); strings.TrimSpace(first) != "27 93" {
		t.Fatalf("first stty size in exec -it = %q, want the local terminal's 27 93", first)
	}
	if err := unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 41, Col: 131}); err != nil {
		t.Fatal(err)
	}
	// The resize travels beside the input, not in order with it: ask
	// for the size until the new one shows.
	waitFor(t, 20*time.Second, "the exec's terminal to follow the resize", func() (bool, string) {
		if _, err := master.WriteString("x\r"); err != nil {
			t.Fatal(err)
		}
		read(200 * time.Millisecond)
		return strings.Contains(seen.String(), "41 131"), seen.String()
	})
	if _, err := master.WriteString("\x04"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-waited:
		if waitErr != nil {
			t.Errorf("exec -it after ^D: %v, want exit 0", waitErr)
		}
	case <-time.After(20 * time.Second):
		t.Errorf("exec -it did not end after ^D")
	}
}
