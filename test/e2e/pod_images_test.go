package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/peapod/peapod/internal/imagetest"
	"github.com/peapod/peapod/internal/registrytest"
)

const policyPod = `apiVersion: v1
kind: Pod
metadata:
  name: %s
  namespace: %s
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: c
    image: %s
    imagePullPolicy: %s
    command: ["sleep", "3600"]
%s`

// Issue 5, acceptance 2: IfNotPresent keeps the local image after the tag
// moved, Always gets the new one, Never with the image absent is
// ErrImageNeverPull.
func TestPodPullPolicies(t *testing.T) {
	d := startPodDaemon(t)
	reg := busyboxRegistry(t, d, registrytest.Options{TLS: true}, "app:v1")
	ref := reg.Ref("app:v1")
	cleanupPods(t, d, "default")

	apply(t, d, "first.yaml", fmt.Sprintf(policyPod, "first", "default", ref, "IfNotPresent", ""))
	waitStatus(t, d, "default", "first", "Running", 60*time.Second)
	oldID := containerStatus(getPod(t, d, "default", "first"), "c").ImageID

	// Move the tag to a different image.
	img2, err := imagetest.BusyboxImage(context.Background(), imagetest.ImageOptions{Config: v1.Config{Cmd: []string{"sleep", "3600"}, Env: []string{"VERSION=2"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Push(context.Background(), "app:v1", img2); err != nil {
		t.Fatal(err)
	}
	apply(t, d, "stale.yaml", fmt.Sprintf(policyPod, "stale", "default", ref, "IfNotPresent", ""))
	apply(t, d, "fresh.yaml", fmt.Sprintf(policyPod, "fresh", "default", ref, "Always", ""))
	waitStatus(t, d, "default", "stale", "Running", 60*time.Second)
	waitStatus(t, d, "default", "fresh", "Running", 60*time.Second)
	staleID := containerStatus(getPod(t, d, "default", "stale"), "c").ImageID
	freshID := containerStatus(getPod(t, d, "default", "fresh"), "c").ImageID
	if staleID != oldID || freshID == oldID || !strings.HasPrefix(freshID, reg.Host+"/app@sha256:") {
		t.Errorf("imageIDs: first %s, IfNotPresent %s, Always %s; want IfNotPresent = first != Always", oldID, staleID, freshID)
	}

	absent := reg.Ref("absent:v1")
	apply(t, d, "never.yaml", fmt.Sprintf(policyPod, "never", "default", absent, "Never", ""))
	waitStatus(t, d, "default", "never", "ErrImageNeverPull", 30*time.Second)
	w := containerStatus(getPod(t, d, "default", "never"), "c").State.Waiting
	if want := fmt.Sprintf("Container image %q is not present with pull policy of Never", absent); w == nil || w.Message != want {
		t.Errorf("waiting %+v, want message %q", w, want)
	}
}

// Issue 5, acceptance 8 (KEP-2535): an image pulled with namespace a's
// Secret is refused to a pod in namespace b without credentials even under
// IfNotPresent (and under Never it is "not present"); a pod in b with the
// same credential gets it without a new download.
func TestPodEnsureSecretPulledImages(t *testing.T) {
	d := startPodDaemon(t)
	reg := busyboxRegistry(t, d, registrytest.Options{TLS: true, Htpasswd: map[string]string{"alice": "pw-alice-8"}}, "private:v1")
	proxy := registrytest.NewProxy(t, reg.Host, registrytest.ProxyOptions{TLS: true, Transport: reg.Transport()})
	conf := fmt.Sprintf("[[registry]]\nlocation = %q\ninsecure = true\n", proxy.Host)
	if err := os.WriteFile(filepath.Join(d.Dir, "registries.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	ref := proxy.Host + "/private:v1"
	d.MustRun("create", "namespace", "a")
	d.MustRun("create", "namespace", "b")
	cleanupPods(t, d, "a", "b")
	secret := "imagePullSecrets:\n  - name: regcred\n"
	d.MustRun("create", "secret", "docker-registry", "regcred", "-n", "a", "--docker-server="+proxy.Host, "--docker-username=alice", "--docker-password=pw-alice-8")

	apply(t, d, "a.yaml", fmt.Sprintf(policyPod, "owner", "a", ref, "IfNotPresent", "  "+secret))
	waitStatus(t, d, "a", "owner", "Running", 60*time.Second)
	blobs := strings.Count(strings.Join(proxy.Requests(), "\n"), "/blobs/")
	if blobs == 0 {
		t.Fatalf("no blob downloaded for the first pull; requests %v", proxy.Requests())
	}

	apply(t, d, "thief.yaml", fmt.Sprintf(policyPod, "thief", "b", ref, "IfNotPresent", ""))
	apply(t, d, "peek.yaml", fmt.Sprintf(policyPod, "peek", "b", ref, "Never", ""))
	waitFor(t, 60*time.Second, "the pod without credentials to be refused", func() (bool, string) {
		row := podRow(t, d, "b", "thief")
		return row[2] == "ErrImagePull" || row[2] == "ImagePullBackOff", strings.Join(row, " ")
	})
	if w := containerStatus(getPod(t, d, "b", "thief"), "c").State.Waiting; w == nil || !strings.Contains(w.Message, "unauthorized") {
		t.Errorf("refused pod waiting %+v, want the registry's unauthorized", w)
	}
	waitStatus(t, d, "b", "peek", "ErrImageNeverPull", 30*time.Second)
	if w := containerStatus(getPod(t, d, "b", "peek"), "c").State.Waiting; w == nil || w.Message != fmt.Sprintf("Container image %q is not present with pull policy of Never", ref) {
		t.Errorf("Never without credentials: %+v, want the not-present message", w)
	}

	// The same credential in b's own Secret: the image is handed over.
	d.MustRun("create", "secret", "docker-registry", "mycopy", "-n", "b", "--docker-server="+proxy.Host, "--docker-username=alice", "--docker-password=pw-alice-8")
	before := len(proxy.Requests())
	apply(t, d, "friend.yaml", fmt.Sprintf(policyPod, "friend", "b", ref, "IfNotPresent", "  imagePullSecrets:\n  - name: mycopy\n"))
	waitStatus(t, d, "b", "friend", "Running", 60*time.Second)
	if after := proxy.Requests()[before:]; strings.Contains(strings.Join(after, "\n"), "/blobs/") {
		t.Errorf("the pod with the same credential downloaded again: %v", after)
	}
	if ev := events(t, d, "b"); !strings.Contains(ev, "already present on machine and can be accessed by the pod") {
		t.Errorf("events of b:\n%s", ev)
	}
}
