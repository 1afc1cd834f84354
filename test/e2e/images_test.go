package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/peapod/peapod/internal/api"
	"github.com/peapod/peapod/internal/imagetest"
	"github.com/peapod/peapod/internal/registrytest"
)

// privateRegistry starts a TLS registry with basic auth holding one image,
// and a daemon that trusts its CA.
func privateRegistry(t *testing.T, user, pass string) (*Daemon, *registrytest.Registry, string) {
	t.Helper()
	reg := registrytest.Start(t, registrytest.Options{TLS: true, Htpasswd: map[string]string{user: pass}})
	img, err := imagetest.BusyboxImage(context.Background(), imagetest.ImageOptions{Config: v1.Config{Cmd: []string{"sleep", "3600"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Push(context.Background(), "team/app:v1", img); err != nil {
		t.Fatal(err)
	}
	d := StartDaemon(t, DaemonOptions{})
	if err := reg.WriteCertsDir(filepath.Join(d.Dir, "certs.d")); err != nil {
		t.Fatal(err)
	}
	return d, reg, reg.Ref("team/app:v1")
}

func TestLoginPullListRemove(t *testing.T) {
	const user, pass = "alice", "s3cret-Pa55"
	d, reg, ref := privateRegistry(t, user, pass)
	authFile := filepath.Join(d.Dir, "login.json")

	// A wrong password is refused by the registry and nothing is saved.
	_, stderr, err := d.RunInput("wrong\n", "login", reg.Host, "-u", user, "--password-stdin", "--authfile", authFile)
	if err == nil || !strings.Contains(stderr, "unauthorized") {
		t.Fatalf("login with a wrong password: err=%v stderr=%s", err, stderr)
	}
	if _, err := os.Stat(authFile); !os.IsNotExist(err) {
		t.Fatalf("a refused login must not write the login file (stat: %v)", err)
	}

	// Without credentials the pull fails and says which registry refused.
	_, stderr, err = d.Run("pull", "--authfile", authFile, ref)
	if err == nil || !strings.Contains(stderr, "unauthorized") || !strings.Contains(stderr, reg.Host) {
		t.Fatalf("anonymous pull: err=%v stderr=%s", err, stderr)
	}

	out, stderr, err := d.RunInput(pass+"\n", "login", reg.Host, "-u", user, "--password-stdin", "--authfile", authFile)
	if err != nil || !strings.Contains(out, "Login Succeeded") {
		t.Fatalf("login: err=%v out=%s stderr=%s", err, out, stderr)
	}
	st, err := os.Stat(authFile)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("login file must exist with mode 0600: %v %v", st, err)
	}

	id := strings.TrimSpace(d.MustRun("pull", "--authfile", authFile, ref))
	if !strings.HasPrefix(id, "sha256:") {
		t.Fatalf("pull should print the image ID, got %q", id)
	}
	list := d.MustRun("images")
	if !strings.Contains(list, reg.Host+"/team/app") || !strings.Contains(list, "v1") || !strings.Contains(list, id[7:19]) {
		t.Fatalf("images does not list the pulled image:\n%s", list)
	}
	if q := strings.TrimSpace(d.MustRun("images", "-q")); q != id[7:19] {
		t.Fatalf("images -q = %q, want %q", q, id[7:19])
	}

	var img api.Image
	if err := json.Unmarshal([]byte(d.MustRun("inspect", "image", ref)), &img); err != nil {
		t.Fatal(err)
	}
	if len(img.Pulls) != 1 || img.Pulls[0].Anonymous || !strings.Contains(img.Pulls[0].Credential, authFile) || img.Pulls[0].CredentialHash == "" {
		t.Fatalf("the pull record should name the login file's credential: %+v", img.Pulls)
	}

	// The password is in no output, log or file of the daemon.
	if strings.Contains(d.Log(), pass) {
		t.Fatal("the daemon log contains the password")
	}
	assertNotInTree(t, d.Root, pass)

	d.MustRun("rmi", ref)
	if out := d.MustRun("images", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("after rmi the store should be empty, images -q says %q", out)
	}
	if _, stderr, err := d.Run("rmi", ref); err == nil || !strings.Contains(stderr, "not found") {
		t.Fatalf("rmi of a missing image should fail with not found: err=%v stderr=%s", err, stderr)
	}

	d.MustRun("logout", reg.Host, "--authfile", authFile)
	if _, stderr, err := d.Run("logout", reg.Host, "--authfile", authFile); err == nil || !strings.Contains(stderr, "not logged in") {
		t.Fatalf("second logout: err=%v stderr=%s", err, stderr)
	}
}

func TestPullWithCredsFlagAndBadReference(t *testing.T) {
	const user, pass = "bob", "another-s3cret"
	d, _, ref := privateRegistry(t, user, pass)
	d.MustRun("pull", "--creds", user+":"+pass, ref)
	if _, stderr, err := d.Run("pull", "--creds", user+":nope", ref); err == nil || !strings.Contains(stderr, "unauthorized") || strings.Contains(stderr, "nope") {
		t.Fatalf("wrong --creds: err=%v stderr=%s (must say unauthorized, never echo the password)", err, stderr)
	}
	if _, stderr, err := d.Run("pull", "Not/A/Valid:Ref:"); err == nil || !strings.Contains(stderr, "InvalidImageName") {
		t.Fatalf("bad reference: err=%v stderr=%s", err, stderr)
	}
}

func assertNotInTree(t *testing.T, root, secret string) {
	t.Helper()
	err := filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil || !info.Mode().IsRegular() || info.Size() > 64<<20 {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), secret) {
			t.Errorf("%s contains the secret", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
