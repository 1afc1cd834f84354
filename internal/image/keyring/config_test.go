package keyring

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestDecodeAuth(t *testing.T) {
	tests := []struct {
		field      string
		user, pass string
		bad        bool
	}{
		{field: "Zm9vOmJhcg==", user: "foo", pass: "bar"},
		{field: "Zm9vOmJhcg", user: "foo", pass: "bar"}, // unpadded
		{field: "Zm9vOmJhcjp6ZWQ=", user: "foo", pass: "bar:zed"},
		{field: "dXNlcjpwQHNzOncwcmQ=", user: "user", pass: "p@ss:w0rd"},
		{field: "YTpi", user: "a", pass: "b"},
		{field: "Og==", user: "", pass: ""}, // ":"
		{field: "Zm9v", bad: true},          // "foo": no colon
		{field: "not base64!", bad: true},
		{field: "Zm9vOmJhcg=", bad: true}, // wrong padding
	}
	for _, tt := range tests {
		user, pass, err := decodeAuth(tt.field)
		if tt.bad {
			if !errors.Is(err, errAuthField) {
				t.Errorf("decodeAuth(%q) = %q, %q, %v; want the auth field error", tt.field, user, pass, err)
			}
			continue
		}
		if err != nil || user != tt.user || pass != tt.pass {
			t.Errorf("decodeAuth(%q) = %q, %q, %v; want %q, %q", tt.field, user, pass, err, tt.user, tt.pass)
		}
	}
}

func TestEntryAuthOverridesUsernamePassword(t *testing.T) {
	tests := []struct {
		json       string
		user, pass string
	}{
		{`{"username":"u","password":"p"}`, "u", "p"},
		{`{"username":"u","password":"p","auth":"` + auth("a", "b") + `"}`, "a", "b"},
		{`{"auth":"` + auth("a", "b") + `","email":"x@y","identitytoken":"tok"}`, "a", "b"},
		{`{"username":"u","password":"p","auth":""}`, "u", "p"},
		{`{}`, "", ""},
	}
	for _, tt := range tests {
		got, err := parseDockercfg([]byte(`{"reg.io":` + tt.json + `}`))
		if err != nil {
			t.Errorf("%s: %v", tt.json, err)
			continue
		}
		if e := got["reg.io"]; e.Username != tt.user || e.Password != tt.pass {
			t.Errorf("%s: got %q/%q, want %q/%q", tt.json, e.Username, e.Password, tt.user, tt.pass)
		}
	}
}

func secret(ns, name string, typ corev1.SecretType, key, value string) corev1.Secret {
	return corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name)},
		Type:       typ,
		Data:       map[string][]byte{key: []byte(value)},
	}
}

func configJSON(entries ...string) string {
	return `{"auths":{` + strings.Join(entries, ",") + `}}`
}

func authEntry(key, user, pass string) string {
	return fmt.Sprintf("%q:{\"auth\":%q}", key, auth(user, pass))
}

func TestFromSecrets(t *testing.T) {
	secrets := []corev1.Secret{
		secret("apps", "json", corev1.SecretTypeDockerConfigJson, corev1.DockerConfigJsonKey,
			configJSON(authEntry("127.0.0.1:5000", "alice", "a-pw"), authEntry("https://index.docker.io/v1/", "hub", "h-pw"))),
		secret("apps", "cfg", corev1.SecretTypeDockercfg, corev1.DockerConfigKey,
			`{"127.0.0.1:5000/team":{"username":"bob","password":"b-pw"}}`),
		// Skipped silently: wrong type for the key, wrong key for the type,
		// empty data, unrelated types.
		secret("apps", "mismatch1", corev1.SecretTypeDockercfg, corev1.DockerConfigJsonKey, configJSON(authEntry("127.0.0.1:5000", "x", "x"))),
		secret("apps", "mismatch2", corev1.SecretTypeDockerConfigJson, corev1.DockerConfigKey, `{"127.0.0.1:5000":{"username":"x"}}`),
		secret("apps", "empty", corev1.SecretTypeDockerConfigJson, corev1.DockerConfigJsonKey, ""),
		secret("apps", "opaque", corev1.SecretTypeOpaque, corev1.DockerConfigJsonKey, "not even json"),
		secret("apps", "tls", corev1.SecretTypeTLS, "tls.crt", "x"),
		{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "nodata"}, Type: corev1.SecretTypeDockerConfigJson},
	}
	k, err := FromSecrets(secrets)
	if err != nil {
		t.Fatal(err)
	}
	if k.Len() != 3 {
		t.Errorf("Len = %d, want 3 (skipped secrets must add nothing)", k.Len())
	}

	got := k.Lookup("127.0.0.1:5000/team/app")
	if want := []string{"bob", "alice"}; !reflect.DeepEqual(users(got), want) {
		t.Fatalf("Lookup = %v, want %v (most specific first across secrets)", users(got), want)
	}
	if got[0].Password != "b-pw" || got[1].Password != "a-pw" {
		t.Errorf("passwords not decoded")
	}
	wantSrc := Source{Kind: SourceSecret, Namespace: "apps", Name: "cfg", UID: "uid-cfg"}
	if got[0].Source != wantSrc {
		t.Errorf("source = %+v, want %+v", got[0].Source, wantSrc)
	}
	if s := got[1].Source.String(); s != "secret apps/json" {
		t.Errorf("source string = %q", s)
	}
	if got := users(k.Lookup("docker.io/library/busybox")); !reflect.DeepEqual(got, []string{"hub"}) {
		t.Errorf("Docker Hub lookup = %v", got)
	}
	if got := k.Lookup("127.0.0.2:5000/team/app"); len(got) != 0 {
		t.Errorf("other host matched: %v", users(got))
	}
}

func TestFromSecretsStringData(t *testing.T) {
	s := corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "sd"},
		Type:       corev1.SecretTypeDockerConfigJson,
		StringData: map[string]string{corev1.DockerConfigJsonKey: configJSON(authEntry("reg.io", "u", "p"))},
	}
	k, err := FromSecrets([]corev1.Secret{s})
	if err != nil {
		t.Fatal(err)
	}
	if got := users(k.Lookup("reg.io/app")); !reflect.DeepEqual(got, []string{"u"}) {
		t.Errorf("Lookup = %v", got)
	}
}

func TestFromSecretsMalformed(t *testing.T) {
	const password = "hunter2-SECRET"
	tests := []struct {
		name  string
		typ   corev1.SecretType
		key   string
		value string
		want  string
	}{
		{"syntax", corev1.SecretTypeDockerConfigJson, corev1.DockerConfigJsonKey,
			`{"auths":{"reg.io":{"password":"` + password + `"`, "malformed JSON"},
		{"syntax-cfg", corev1.SecretTypeDockercfg, corev1.DockerConfigKey,
			`{"reg.io": ` + password, "malformed JSON"},
		{"type", corev1.SecretTypeDockerConfigJson, corev1.DockerConfigJsonKey,
			`{"auths":{"reg.io":{"password":["` + password + `"]}}}`, "malformed JSON"},
		{"array", corev1.SecretTypeDockerConfigJson, corev1.DockerConfigJsonKey,
			`["` + password + `"]`, "malformed JSON"},
		{"auth-nocolon", corev1.SecretTypeDockerConfigJson, corev1.DockerConfigJsonKey,
			configJSON(`"reg.io":{"auth":"` + b64(password) + `"}`),
			`entry "reg.io": unable to parse auth field, must be formatted as base64(username:password)`},
		{"auth-notb64", corev1.SecretTypeDockercfg, corev1.DockerConfigKey,
			`{"reg.io":{"auth":"` + password + `"}}`,
			`entry "reg.io": unable to parse auth field`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			good := secret("apps", "good", corev1.SecretTypeDockerConfigJson, corev1.DockerConfigJsonKey, configJSON(authEntry("reg.io", "u", "p")))
			bad := secret("apps", "regcred", tt.typ, tt.key, tt.value)
			k, err := FromSecrets([]corev1.Secret{good, bad})
			if err == nil {
				t.Fatalf("no error, keyring with %d credentials", k.Len())
			}
			msg := err.Error()
			if !strings.Contains(msg, "apps/regcred") || !strings.Contains(msg, tt.want) {
				t.Errorf("error %q should name apps/regcred and say %q", msg, tt.want)
			}
			if strings.Contains(msg, password) || strings.Contains(msg, b64(password)) {
				t.Errorf("error %q leaks the secret's content", msg)
			}
		})
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestFromConfigFile(t *testing.T) {
	dir := t.TempDir()

	k, err := FromConfigFile(filepath.Join(dir, "missing.json"))
	if err != nil || k.Len() != 0 {
		t.Fatalf("missing file: %v, %d credentials; want an empty keyring", err, k.Len())
	}

	empty := filepath.Join(dir, "empty.json")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if k, err := FromConfigFile(empty); err != nil || k.Len() != 0 {
		t.Errorf("empty file: %v, %d credentials", err, k.Len())
	}

	path := filepath.Join(dir, "config.json")
	cfg := `{"auths":{"127.0.0.1:5000":{"auth":"` + auth("node", "n-pw") + `"},
		"https://index.docker.io/v1/":{"username":"hub","password":"h"}},
		"credsStore":"desktop","HttpHeaders":{"User-Agent":"x"}}`
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err = FromConfigFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := k.Lookup("127.0.0.1:5000/app")
	if len(got) != 1 || got[0].Username != "node" || got[0].Password != "n-pw" {
		t.Fatalf("Lookup = %v", got)
	}
	if want := (Source{Kind: SourceNode, Path: path}); got[0].Source != want {
		t.Errorf("source = %+v, want %+v", got[0].Source, want)
	}
	if s := got[0].Source.String(); s != "node config "+path {
		t.Errorf("source string = %q", s)
	}

	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"auths":`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := FromConfigFile(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("malformed file: error %v should name %s", err, bad)
	}
	if _, err := FromConfigFile(dir); err == nil {
		t.Error("a directory read as a config file without error")
	}
}

// Pod secrets come before the node's config, as in kubelet.
func TestSecretsBeforeNode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, []byte(configJSON(authEntry("reg.io/team/app", "node", "n"))), 0o600); err != nil {
		t.Fatal(err)
	}
	node, err := FromConfigFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pod, err := FromSecrets([]corev1.Secret{secret("apps", "s", corev1.SecretTypeDockerConfigJson, corev1.DockerConfigJsonKey, configJSON(authEntry("reg.io", "pod", "p")))})
	if err != nil {
		t.Fatal(err)
	}
	got := Union(pod, node).Lookup("reg.io/team/app")
	if want := []string{"pod", "node"}; !reflect.DeepEqual(users(got), want) {
		t.Errorf("Lookup = %v, want %v", users(got), want)
	}
}

func TestCredentialHash(t *testing.T) {
	c := Credential{Username: "foo", Password: "bar", Source: Source{Kind: SourceSecret, Namespace: "a", Name: "b"}}
	// sha256 of {"username":"foo","password":"bar"}, which is also what
	// kubelet's hashAuthConfig gives for this login.
	const want = "2b1903504aba33bb6158bf1aa76cb588f05cd150de5047f1cfed339bc621d92b"
	if got := c.Hash(); got != want {
		t.Errorf("Hash = %s, want %s", got, want)
	}
	other := c
	other.Source = Source{Kind: SourceNode, Path: "/x"}
	if other.Hash() != c.Hash() {
		t.Error("hash depends on the source")
	}
	for _, d := range []Credential{
		{Username: "foo", Password: "baz"},
		{Username: "fo", Password: "obar"},
		{Username: "foo", Password: "bar", IdentityToken: "t"},
		{Username: "foo", Password: "bar", RegistryToken: "t"},
	} {
		if d.Hash() == c.Hash() {
			t.Errorf("%#v hashes like foo/bar", d)
		}
	}
}

func TestCredentialNeverPrintsSecrets(t *testing.T) {
	c := Credential{
		Username: "alice", Password: "PW-secret", IdentityToken: "ID-secret", RegistryToken: "RT-secret",
		Source: Source{Kind: SourceSecret, Namespace: "awesomeapps", Name: "regcred"},
	}
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	logger.Info("pull", "cred", c)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("pull", "cred", c, "creds", []Credential{c})

	out := strings.Join([]string{
		c.String(), fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s %q", c, c, c, c, c),
		fmt.Sprintf("%v", []Credential{c}), fmt.Sprintf("%+v", &c), logs.String(),
	}, "\n")
	for _, secret := range []string{"PW-secret", "ID-secret", "RT-secret"} {
		if strings.Contains(out, secret) {
			t.Errorf("output leaks %q:\n%s", secret, out)
		}
	}
	if !strings.Contains(logs.String(), "awesomeapps/regcred") || !strings.Contains(logs.String(), "alice") {
		t.Errorf("log lacks source or user:\n%s", logs.String())
	}
	if got, want := (Credential{Username: "alice", Password: "x", Source: c.Source}).String(), `user "alice" from secret awesomeapps/regcred`; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}

func TestSourceString(t *testing.T) {
	for src, want := range map[Source]string{
		{Kind: SourceSecret, Namespace: "awesomeapps", Name: "regcred", UID: "u"}: "secret awesomeapps/regcred",
		{Kind: SourceNode, Path: "/var/lib/peapod/config.json"}:                   "node config /var/lib/peapod/config.json",
		{Kind: SourceCLI}: "cli credentials",
		{Kind: SourceCLI, Path: "/root/.docker/config.json"}: "cli config /root/.docker/config.json",
		{Kind: SourceCRI}: "CRI request auth",
		{}:                "no source",
	} {
		if got := src.String(); got != want {
			t.Errorf("%+v.String() = %q, want %q", src, got, want)
		}
	}
}
