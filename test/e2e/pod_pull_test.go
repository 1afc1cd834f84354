package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/peapod/peapod/internal/registrytest"
)

const privatePod = `apiVersion: v1
kind: Pod
metadata:
  name: private
  namespace: %s
spec:
  containers:
  - name: app
    image: %s
    imagePullPolicy: IfNotPresent
  imagePullSecrets:
  - name: regcred
`

// Issue 5, acceptance 1: the Kubernetes-docs manifests. With the Secret the
// pod pulls from the authenticated registry and runs; without it the pull
// is refused: ErrImagePull, then ImagePullBackOff in `get pods`, with the
// real error kept and an event naming the registry.
func TestPodPullsWithImagePullSecret(t *testing.T) {
	d := startPodDaemon(t)
	reg := busyboxRegistry(t, d, registrytest.Options{TLS: true, Htpasswd: map[string]string{"alice": "pw-4-alice"}}, "team/app:v1")
	ref := reg.Ref("team/app:v1")
	d.MustRun("create", "namespace", "other")
	cleanupPods(t, d, "default", "other")

	d.MustRun("create", "secret", "docker-registry", "regcred", "--docker-server="+reg.Host, "--docker-username=alice", "--docker-password=pw-4-alice")
	apply(t, d, "private.yaml", fmt.Sprintf(privatePod, "default", ref))
	row := waitStatus(t, d, "default", "private", "Running", 60*time.Second)
	if row[1] != "1/1" || row[3] != "0" {
		t.Errorf("get pods row %v, want READY 1/1 RESTARTS 0", row)
	}
	p := getPod(t, d, "default", "private")
	if p.Status.PodIP == "" || len(p.Status.ContainerStatuses) != 1 || !strings.HasPrefix(p.Status.ContainerStatuses[0].ContainerID, "peapod://") {
		t.Errorf("status %+v", p.Status)
	}
	ev := events(t, d, "default")
	for _, want := range []string{`Pulling image "` + ref + `"`, `Successfully pulled image "` + ref + `"`, "Created container: app", "Started container app"} {
		if !strings.Contains(ev, want) {
			t.Errorf("events lack %q:\n%s", want, ev)
		}
	}

	// Namespace "other" has no Secret regcred: the pull is tried anyway,
	// refused, and backs off; the event names the registry.
	apply(t, d, "other.yaml", fmt.Sprintf(privatePod, "other", ref))
	seen := map[string]bool{}
	waitFor(t, 60*time.Second, "ErrImagePull and then ImagePullBackOff", func() (bool, string) {
		row := podRow(t, d, "other", "private")
		seen[row[2]] = true
		return seen["ErrImagePull"] && seen["ImagePullBackOff"], fmt.Sprint(seen)
	})
	p = getPod(t, d, "other", "private")
	w := p.Status.ContainerStatuses[0].State.Waiting
	if w == nil || (w.Reason == "ImagePullBackOff" && !strings.HasPrefix(w.Message, `Back-off pulling image "`+ref+`": ErrImagePull: `)) ||
		!strings.Contains(w.Message, "unauthorized") {
		t.Errorf("waiting state %+v, want the real error kept", w)
	}
	if p.Status.Phase != "Pending" {
		t.Errorf("phase %s, want Pending", p.Status.Phase)
	}
	ev = events(t, d, "other")
	for _, want := range []string{
		`Unable to retrieve some image pull secrets ("regcred"); attempting to pull the image may not succeed.`,
		`namespace "default"`,
		`Failed to pull image "` + ref + `": `,
		reg.Host,
		"Error: ErrImagePull",
		`Back-off pulling image "` + ref + `"`,
	} {
		if !strings.Contains(ev, want) {
			t.Errorf("events of namespace other lack %q:\n%s", want, ev)
		}
	}
	if strings.Contains(d.Log(), "pw-4-alice") {
		t.Error("the daemon log contains the password")
	}
}
