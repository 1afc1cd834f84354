package authfile

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/peapod/peapod/internal/image/keyring"
)

func TestKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", DockerHubKey},
		{"docker.io", DockerHubKey},
		{"index.docker.io", DockerHubKey},
		{"registry-1.docker.io", DockerHubKey},
		{"https://index.docker.io/v1/", DockerHubKey},
		{"https://registry-1.docker.io", DockerHubKey},
		{"127.0.0.1:5000", "127.0.0.1:5000"},
		{"http://127.0.0.1:5000/", "127.0.0.1:5000"},
		{"https://reg.example.com/v2/", "reg.example.com"},
		{"reg.example.com/team/app", "reg.example.com"},
		{"localhost:5000", "localhost:5000"},
		{" quay.io ", "quay.io"},
	}
	for _, tt := range tests {
		got, err := Key(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("Key(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"user@reg.io", "reg io"} {
		if _, err := Key(bad); err == nil {
			t.Errorf("Key(%q) accepted", bad)
		}
	}
}

func TestLoadMissingAndEmpty(t *testing.T) {
	dir := t.TempDir()
	f, err := Load(filepath.Join(dir, "nope", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Registries()) != 0 {
		t.Errorf("missing file has entries %v", f.Registries())
	}
	for _, content := range []string{"", "  \n", "null", `{"auths":null}`, `{}`} {
		p := filepath.Join(dir, "c.json")
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := Load(p)
		if err != nil {
			t.Errorf("Load(%q): %v", content, err)
			continue
		}
		if err := f.Set("reg.io", "u", "p"); err != nil {
			t.Errorf("Set after Load(%q): %v", content, err)
		}
	}
}

func TestLoadMalformedDoesNotQuoteTheFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config.json")
	for _, content := range []string{
		`{"auths":{"reg.io":{"auth":"c2VjcmV0LXB3`,
		`{"auths":["c2VjcmV0LXB3"]}`,
		`["c2VjcmV0LXB3"]`,
	} {
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(p)
		if err == nil {
			t.Errorf("Load(%q) succeeded", content)
			continue
		}
		if !strings.Contains(err.Error(), p) || strings.Contains(err.Error(), "c2VjcmV0LXB3") {
			t.Errorf("error %q should name the file and not quote it", err)
		}
	}
}

func TestSetGetRemoveSave(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", ".docker")
	path := filepath.Join(dir, "config.json")
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Set("127.0.0.1:5000", "alice", "pa:ss w0rd"); err != nil {
		t.Fatal(err)
	}
	if err := f.Set("docker.io", "hub", "h"); err != nil {
		t.Fatal(err)
	}
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}

	for p, want := range map[string]os.FileMode{dir: 0o700, filepath.Dir(dir): 0o700, path: 0o600} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode().Perm(); got != want {
			t.Errorf("%s mode %o, want %o", p, got, want)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d files, want only config.json (temp file left behind?)", len(entries))
	}

	var onDisk struct {
		Auths map[string]map[string]string `json:"auths"`
	}
	raw, _ := os.ReadFile(path)
	if err := json.Unmarshal(raw, &onDisk); err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]string{
		"127.0.0.1:5000": {"auth": "YWxpY2U6cGE6c3MgdzByZA=="}, // alice:pa:ss w0rd
		DockerHubKey:     {"auth": "aHViOmg="},                 // hub:h
	}
	if !reflect.DeepEqual(onDisk.Auths, want) {
		t.Errorf("auths on disk = %v, want %v", onDisk.Auths, want)
	}

	g, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if u, p, ok := g.Get("http://127.0.0.1:5000/"); !ok || u != "alice" || p != "pa:ss w0rd" {
		t.Errorf("Get = %q, %q, %v", u, p, ok)
	}
	if u, _, ok := g.Get("index.docker.io"); !ok || u != "hub" {
		t.Errorf("Get(Docker Hub) = %q, %v", u, ok)
	}
	if _, _, ok := g.Get("127.0.0.1:5001"); ok {
		t.Error("Get found a registry never logged in to")
	}
	if !g.Remove("127.0.0.1:5000") {
		t.Error("Remove reported nothing removed")
	}
	if g.Remove("127.0.0.1:5000") {
		t.Error("second Remove reported a removal")
	}
	if err := g.Save(); err != nil {
		t.Fatal(err)
	}
	h, _ := Load(path)
	if got := h.Registries(); !reflect.DeepEqual(got, []string{DockerHubKey}) {
		t.Errorf("after logout: %v", got)
	}
}

func TestSetRejects(t *testing.T) {
	f, _ := Load(filepath.Join(t.TempDir(), "c.json"))
	for _, tt := range []struct{ reg, user, pass string }{
		{"reg.io", "", "PW-1"},
		{"reg.io", "a:b", "PW-2"},
		{"reg.io", "u", ""},
		{"u@reg.io", "u", "PW-3"},
	} {
		if err := f.Set(tt.reg, tt.user, tt.pass); err == nil {
			t.Errorf("Set(%q, %q, %q) accepted", tt.reg, tt.user, tt.pass)
		} else if tt.pass != "" && strings.Contains(err.Error(), tt.pass) {
			t.Errorf("error %q shows the password", err)
		}
	}
	if len(f.Registries()) != 0 {
		t.Errorf("rejected Set stored %v", f.Registries())
	}
}

// Unknown top-level fields and other registries' entries survive a
// login/logout round trip untouched; variants of the same registry are
// replaced, path-scoped entries are not.
func TestPreservesWhatItDoesNotOwn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	orig := `{
	"auths": {
		"https://127.0.0.1:5000": {"auth": "b2xkOm9sZA==", "identitytoken": "stale"},
		"127.0.0.1:5000/team": {"auth": "dGVhbTp0"},
		"other.io": {"auth": "b3RoZXI6bw==", "email": "o@other.io"}
	},
	"credHelpers": {"gcr.io": "gcloud"},
	"HttpHeaders": {"User-Agent": "x"},
	"psFormat": "table {{.ID}}"
}`
	if err := os.WriteFile(path, []byte(orig), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if u, p, ok := f.Get("127.0.0.1:5000"); !ok || u != "old" || p != "old" {
		t.Errorf("Get of an https:// entry = %q, %q, %v", u, p, ok)
	}
	if err := f.Set("127.0.0.1:5000", "new", "n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}

	var got map[string]any
	raw, _ := os.ReadFile(path)
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	if err := json.Unmarshal([]byte(`{
	"auths": {
		"127.0.0.1:5000": {"auth": "bmV3Om4="},
		"127.0.0.1:5000/team": {"auth": "dGVhbTp0"},
		"other.io": {"auth": "b3RoZXI6bw==", "email": "o@other.io"}
	},
	"credHelpers": {"gcr.io": "gcloud"},
	"HttpHeaders": {"User-Agent": "x"},
	"psFormat": "table {{.ID}}"
}`), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("saved file:\n%s\nwant the equivalent of:\n%v", raw, want)
	}
}

// What peapod login writes is a valid .dockerconfigjson: kubelet's rules
// (package keyring) find the credential in a Secret made of its bytes.
func TestUsableAsDockerConfigJSONSecret(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	f, _ := Load(path)
	if err := f.Set("http://127.0.0.1:5000", "alice", "s3cr:et"); err != nil {
		t.Fatal(err)
	}
	if err := f.Set("docker.io", "hub", "h"); err != nil {
		t.Fatal(err)
	}
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	secret := corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "awesomeapps", Name: "regcred", UID: "u1"},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: data},
	}
	k, err := keyring.FromSecrets([]corev1.Secret{secret})
	if err != nil {
		t.Fatal(err)
	}
	creds := k.Lookup("127.0.0.1:5000/app/x")
	if len(creds) != 1 || creds[0].Username != "alice" || creds[0].Password != "s3cr:et" {
		t.Fatalf("Lookup(127.0.0.1:5000/app/x) = %v", creds)
	}
	if got := creds[0].Source.String(); got != "secret awesomeapps/regcred" {
		t.Errorf("source = %q", got)
	}
	hub := k.Lookup("docker.io/library/busybox")
	if len(hub) != 1 || hub[0].Username != "hub" {
		t.Errorf("Lookup(docker.io/library/busybox) = %v", hub)
	}
	if other := k.Lookup("127.0.0.1:5001/app/x"); len(other) != 0 {
		t.Errorf("another port matched: %v", other)
	}

	// And as the node's config file.
	node, err := keyring.FromConfigFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := node.Lookup("127.0.0.1:5000/app/x"); len(got) != 1 || got[0].Username != "alice" {
		t.Errorf("node Lookup = %v", got)
	}
}

func TestDefaultPath(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", "/etc/peapod-test-docker")
	if got, err := DefaultPath(); err != nil || got != "/etc/peapod-test-docker/config.json" {
		t.Errorf("with DOCKER_CONFIG: %q, %v", got, err)
	}
	t.Setenv("DOCKER_CONFIG", "")
	t.Setenv("HOME", "/home/someone")
	if got, err := DefaultPath(); err != nil || got != "/home/someone/.docker/config.json" {
		t.Errorf("with HOME: %q, %v", got, err)
	}
}
