package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/peapod/peapod/internal/imagetest"
	"github.com/peapod/peapod/internal/registrytest"
)

// podTestBackOff shortens the pod manager's back-offs through its
// documented test setting, so that ImagePullBackOff and CrashLoopBackOff
// come and go within seconds.
const podTestBackOff = "PEAPOD_TEST_BACKOFF=1s,4s"

// startPodDaemon starts a daemon for pod tests.
func startPodDaemon(t *testing.T) *Daemon {
	t.Helper()
	return StartDaemon(t, DaemonOptions{Env: []string{podTestBackOff}})
}

// busyboxRegistry starts a registry (TLS and basic auth when user is set)
// holding busybox as repo:tag, and makes the daemon trust it.
func busyboxRegistry(t *testing.T, d *Daemon, opts registrytest.Options, repoTags ...string) *registrytest.Registry {
	t.Helper()
	reg := registrytest.Start(t, opts)
	img, err := imagetest.BusyboxImage(context.Background(), imagetest.ImageOptions{Config: v1.Config{Cmd: []string{"sleep", "3600"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range repoTags {
		if err := reg.Push(context.Background(), rt, img); err != nil {
			t.Fatal(err)
		}
	}
	if opts.TLS {
		if err := reg.WriteCertsDir(d.Dir + "/certs.d"); err != nil {
			t.Fatal(err)
		}
	}
	return reg
}

// getPod reads a pod through the CLI.
func getPod(t *testing.T, d *Daemon, ns, name string) *corev1.Pod {
	t.Helper()
	out := d.MustRun("get", "pod", name, "-n", ns, "-o", "json")
	var p corev1.Pod
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("get pod %s: %v\n%s", name, err, out)
	}
	return &p
}

// podRow is the pod's line of `get pods` as a field list (NAME READY
// STATUS RESTARTS AGE).
func podRow(t *testing.T, d *Daemon, ns, name string) []string {
	t.Helper()
	out := d.MustRun("get", "pods", "-n", ns)
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && f[0] == name {
			return f
		}
	}
	t.Fatalf("get pods has no row for %s:\n%s", name, out)
	return nil
}

// waitFor polls cond until it is true or timeout passes; the test fails
// with the last description cond gave.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, desc := cond()
		if ok {
			return
		}
		last = desc
		time.Sleep(150 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s; last: %s", timeout, what, last)
}

// waitStatus waits until the pod's STATUS column is want.
func waitStatus(t *testing.T, d *Daemon, ns, name, want string, timeout time.Duration) []string {
	t.Helper()
	var row []string
	waitFor(t, timeout, fmt.Sprintf("pod %s/%s to show %s", ns, name, want), func() (bool, string) {
		row = podRow(t, d, ns, name)
		return row[2] == want, strings.Join(row, " ")
	})
	return row
}

// events returns `get events -n ns` output.
func events(t *testing.T, d *Daemon, ns string) string {
	t.Helper()
	return d.MustRun("get", "events", "-n", ns)
}

func apply(t *testing.T, d *Daemon, name, manifest string) {
	t.Helper()
	p := writeFile(t, d, name, manifest)
	d.MustRun("apply", "-f", p)
}

// cleanupPods deletes every pod of the test's namespaces at the end so the
// daemon's containers are gone before its directories are removed.
func cleanupPods(t *testing.T, d *Daemon, namespaces ...string) {
	t.Cleanup(func() {
		for _, ns := range namespaces {
			out, _, _ := d.Run("get", "pods", "-n", ns, "-o", "name")
			for _, n := range strings.Fields(out) {
				_, _, _ = d.Run("delete", n, "-n", ns, "--grace-period=0")
			}
		}
		// The pod manager removes ROOT/pods/<...> last, once the sandbox
		// is gone.
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			left, _ := os.ReadDir(filepath.Join(d.Root, "pods"))
			if len(left) == 0 {
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Errorf("pods not cleaned up within 30s")
	})
}

// restartDaemon stops the daemon (its pods keep running) and starts it
// again on the same directories.
func restartDaemon(d *Daemon) {
	d.Stop()
	d.start()
}

// containerLog returns the CRI log file of a pod's container run
// (ROOT/pods/<ns>_<name>_<uid>/<container>/<restart>.log) as text, or ""
// while it does not exist.
func containerLog(t *testing.T, d *Daemon, p *corev1.Pod, container string, restart int) string {
	t.Helper()
	path := filepath.Join(d.Root, "pods", p.Namespace+"_"+p.Name+"_"+string(p.UID), container, fmt.Sprintf("%d.log", restart))
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	var out strings.Builder
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.SplitN(l, " ", 4)
		if len(f) < 3 {
			continue
		}
		if len(f) == 4 {
			out.WriteString(f[3])
		}
		if f[2] != "P" { // "P": a partial line the next entry continues
			out.WriteString("\n")
		}
	}
	return out.String()
}

// waitLog waits until the container's log contains want.
func waitLog(t *testing.T, d *Daemon, ns, name, container, want string) string {
	t.Helper()
	var got string
	waitFor(t, 60*time.Second, fmt.Sprintf("log of %s/%s %s to contain %q", ns, name, container, want), func() (bool, string) {
		p := getPod(t, d, ns, name)
		got = containerLog(t, d, p, container, 0)
		return strings.Contains(got, want), got
	})
	return got
}

// containerStatus returns the pod's status of one container (init or app).
func containerStatus(p *corev1.Pod, name string) corev1.ContainerStatus {
	for _, s := range append(append([]corev1.ContainerStatus(nil), p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if s.Name == name {
			return s
		}
	}
	return corev1.ContainerStatus{}
}
