package cri

import (
	"context"
	"encoding/base64"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/peapod/peapod/internal/registrytest"
)

// TestPullWithCredentials: a private registry refuses anonymous pulls with
// Unauthenticated and a message that says what to do; crictl pull --creds
// and --auth get in; no password ever shows in an answer or the log.
func TestPullWithCredentials(t *testing.T) {
	const user, pass = "alice", "pw-s3cr3t-9"
	reg := registrytest.Start(t, registrytest.Options{TLS: true, Htpasswd: map[string]string{user: pass}})
	ctx := context.Background()
	if err := reg.Push(ctx, "private/busybox:1", busyboxImage(t)); err != nil {
		t.Fatal(err)
	}
	certs := filepath.Join(t.TempDir(), "certs.d")
	if err := reg.WriteCertsDir(certs); err != nil {
		t.Fatal(err)
	}
	d := StartDaemon(t, DaemonOptions{CertsDir: certs})
	image := reg.Ref("private/busybox:1")

	_, errOut, err := d.Crictl("pull", image)
	if err == nil || !strings.Contains(errOut, "Unauthenticated") {
		t.Errorf("anonymous pull from a private registry: %v %s, want Unauthenticated", err, errOut)
	}
	_, errOut, err = d.Crictl("pull", "--creds", user+":wrong-"+pass, image)
	if err == nil || !strings.Contains(errOut, "Unauthenticated") || strings.Contains(errOut, pass) {
		t.Errorf("pull with a wrong password: %v %s, want Unauthenticated without the password", err, errOut)
	}
	out := d.MustCrictl("pull", "--creds", user+":"+pass, image)
	if !strings.Contains(out, "sha256:") {
		t.Errorf("crictl pull --creds printed %q, want the image ID", out)
	}
	d.MustCrictl("rmi", image)
	d.MustCrictl("pull", "--auth", base64.StdEncoding.EncodeToString([]byte(user+":"+pass)), image)
	if out := d.MustCrictl("images", "-q"); len(lines(out)) != 1 {
		t.Errorf("images after pull --auth: %q", out)
	}

	// The same through gRPC: the codes a kubelet acts on.
	_, err = d.IMG.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: reg.Ref("private/none:1")},
		Auth: &runtimeapi.AuthConfig{Username: user, Password: pass}})
	if status.Code(err) != codes.NotFound {
		t.Errorf("pull of a missing tag: %v, want NotFound", err)
	}
	reg.Stop()
	_, err = d.IMG.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: reg.Ref("private/busybox:2")}})
	if status.Code(err) != codes.Unavailable || !strings.HasPrefix(status.Convert(err).Message(), "RegistryUnavailable") {
		t.Errorf("pull from a stopped registry: %v, want Unavailable with the RegistryUnavailable prefix", err)
	}
	// Removing twice is fine (kubelet's image GC retries).
	for i := 0; i < 2; i++ {
		if _, err := d.IMG.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: image}}); err != nil {
			t.Errorf("RemoveImage #%d: %v", i+1, err)
		}
	}
	if strings.Contains(d.Log(), pass) {
		t.Error("the daemon log contains the password")
	}
}
