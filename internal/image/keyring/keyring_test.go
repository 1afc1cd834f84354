package keyring

import (
	"encoding/base64"
	"fmt"
	"reflect"
	"testing"
)

func auth(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}

// configKeyring builds a keyring from a dockercfg-style JSON with one entry
// per key, each holding user "u-<key>" with password "p", the way a secret
// would.
func configKeyring(t *testing.T, keys ...string) *Keyring {
	t.Helper()
	k := &Keyring{}
	for _, key := range keys {
		if err := k.Add(key, Credential{Username: "u-" + key, Password: "p", Source: Source{Kind: SourceNode}}); err != nil {
			t.Fatalf("Add(%q): %v", key, err)
		}
	}
	return k
}

func users(cs []Credential) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, c.Username)
	}
	return out
}

func TestNormaliseKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"reg.example.com", "reg.example.com"},
		{"reg.example.com:5000", "reg.example.com:5000"},
		{"https://reg.example.com", "reg.example.com"},
		{"http://reg.example.com:5000", "reg.example.com:5000"},
		{"https://index.docker.io/v1/", "index.docker.io"},
		{"index.docker.io/v1/", "index.docker.io"},
		{"https://quay.io/v2/", "quay.io"},
		{"https://quay.io/v2/team", "quay.io/team"},
		{"https://quay.io/v1/team/app", "quay.io/team/app"},
		{"quay.io/", "quay.io"},
		{"quay.io/team", "quay.io/team"},
		{"quay.io/v3/team", "quay.io/v3/team"},
		{"*.example.com", "*.example.com"},
		{"127.0.0.1:5000", "127.0.0.1:5000"},
		{"localhost:5000/app", "localhost:5000/app"},
	}
	for _, tt := range tests {
		got, err := normaliseKey(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("normaliseKey(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	if _, err := normaliseKey("https://bad host/"); err == nil {
		t.Error("normaliseKey accepted a host with a space")
	}
}

// The glob-matching table of kubelet's TestUrlsMatch, in our words.
func TestURLsMatch(t *testing.T) {
	tests := []struct {
		glob, target string
		want         bool
	}{
		{"*.kubernetes.io", "prefix.kubernetes.io", true},
		{"prefix.*.io", "prefix.kubernetes.io", true},
		{"prefix.kubernetes.*", "prefix.kubernetes.io", true},
		{"*-good.kubernetes.io", "prefix-good.kubernetes.io", true},
		{"*.kubernetes.io/blah", "prefix.kubernetes.io/blah", true},
		{"prefix.*.io/foo", "prefix.kubernetes.io/foo/bar", true},
		{"*.kubernetes.io:1111/blah", "prefix.kubernetes.io:1111/blah", true},
		{"prefix.*.io:1111/foo", "prefix.kubernetes.io:1111/foo/bar", true},
		{"reg.io/foo", "reg.io/foobar/x", true}, // a string prefix, not a path prefix
		{"*.kubernetes.io", "kubernetes.io", false},
		{"*.*.kubernetes.io", "prefix.kubernetes.io", false},
		{"*.*.kubernetes.io", "kubernetes.io", false},
		{"*.kubernetes.io", "a.b.kubernetes.io", false},
		{"kubernetes.io", "kubernetes.com", false},
		{"k*.io", "quay.io", false},
		{"*.kubernetes.io:1234/blah", "prefix.kubernetes.io:1111/blah", false},
		{"prefix.*.io/foo", "prefix.kubernetes.io:1111/foo/bar", false},
		{"reg.io", "reg.io:443/app", false}, // no port is not :443
		{"reg.io/foo/bar", "reg.io/foo", false},
		{"[", "[", false}, // a bad glob matches nothing
	}
	for _, tt := range tests {
		g, err := parseSchemeless(tt.glob)
		if err != nil {
			if tt.want {
				t.Errorf("parse %q: %v", tt.glob, err)
			}
			continue
		}
		target, err := parseSchemeless(tt.target)
		if err != nil {
			if tt.want {
				t.Errorf("parse %q: %v", tt.target, err)
			}
			continue
		}
		if got := urlsMatch(g, target); got != tt.want {
			t.Errorf("urlsMatch(%q, %q) = %v, want %v", tt.glob, tt.target, got, tt.want)
		}
	}
}

// kubelet's TestDockerKeyringForGlob: each key, as written in a config
// file, finds its credential for an image below target.
func TestLookupGlobKeys(t *testing.T) {
	tests := []struct{ key, target string }{
		{"https://hello.kubernetes.io", "hello.kubernetes.io"},
		{"https://*.docker.io", "prefix.docker.io"},
		{"https://prefix.*.io", "prefix.docker.io"},
		{"https://prefix.docker.*", "prefix.docker.io"},
		{"https://*.docker.io/path", "prefix.docker.io/path"},
		{"https://prefix.*.io/path", "prefix.docker.io/path/subpath"},
		{"https://prefix.docker.*/path", "prefix.docker.io/path"},
		{"https://*.docker.io:8888", "prefix.docker.io:8888"},
		{"https://prefix.*.io:8888", "prefix.docker.io:8888"},
		{"https://prefix.docker.*:8888", "prefix.docker.io:8888"},
		{"https://*.docker.io/path:1111", "prefix.docker.io/path:1111"},
		{"https://*.docker.io/v1/", "prefix.docker.io/path:1111"},
		{"https://*.docker.io/v2/", "prefix.docker.io/path:1111"},
		{"https://prefix.docker.*/path:1111", "prefix.docker.io/path:1111"},
		{"prefix.docker.io:1111", "prefix.docker.io:1111/path"},
		{"*.docker.io:1111", "prefix.docker.io:1111/path"},
		{"http://127.0.0.1:5000", "127.0.0.1:5000"},
	}
	for _, tt := range tests {
		k := configKeyring(t, tt.key)
		got := k.Lookup(tt.target + "/foo/bar")
		if want := []string{"u-" + tt.key}; !reflect.DeepEqual(users(got), want) {
			t.Errorf("key %q, image %q: got %v, want %v", tt.key, tt.target+"/foo/bar", users(got), want)
		}
	}
}

// kubelet's TestKeyringMiss.
func TestLookupMiss(t *testing.T) {
	tests := []struct{ key, image string }{
		{"https://hello.kubernetes.io", "world.mesos.org/foo/bar"},
		{"https://*.docker.com", "prefix.docker.io/foo/bar"},
		{"https://suffix.*.io", "prefix.docker.io/foo/bar"},
		{"https://prefix.docker.c*", "prefix.docker.io/foo/bar"},
		{"https://prefix.*.io/path:1111", "prefix.docker.io/path/subpath:1111/foo/bar"},
		{"suffix.*.io", "prefix.docker.io/foo/bar"},
		{"127.0.0.1:5000", "127.0.0.1:5001/app"},
		{"127.0.0.1:5000", "127.0.0.1/app"},
		{"localhost:5000/team", "localhost:5000/other/app"},
	}
	for _, tt := range tests {
		k := configKeyring(t, tt.key)
		if got := k.Lookup(tt.image); len(got) != 0 {
			t.Errorf("key %q, image %q: got %v, want no match", tt.key, tt.image, users(got))
		}
	}
}

// kubelet's TestDockerKeyringLookup and TestIssue3797: most specific first,
// all matches returned.
func TestLookupOrder(t *testing.T) {
	k := configKeyring(t, "bar.example.com/pong", "bar.example.com", "https://quay.io/v1/",
		"reg.io", "reg.io/team", "reg.io/team/app", "*.reg.io")
	tests := []struct {
		image string
		want  []string
	}{
		{"bar.example.com", []string{"u-bar.example.com"}},
		{"bar.example.com/pong", []string{"u-bar.example.com/pong", "u-bar.example.com"}},
		{"bar.example.com/ping", []string{"u-bar.example.com"}},
		{"bar.example.com/pongz", []string{"u-bar.example.com/pong", "u-bar.example.com"}},
		{"bar.example.com/pong/pang", []string{"u-bar.example.com/pong", "u-bar.example.com"}},
		{"example.com", []string{}},
		{"foo.example.com", []string{}},
		{"quay.io", []string{"u-https://quay.io/v1/"}},
		{"quay.io/foo", []string{"u-https://quay.io/v1/"}},
		{"quay.io/foo/bar", []string{"u-https://quay.io/v1/"}},
		{"reg.io/team/app", []string{"u-reg.io/team/app", "u-reg.io/team", "u-reg.io"}},
		{"reg.io/team/other", []string{"u-reg.io/team", "u-reg.io"}},
		{"a.reg.io/team/app", []string{"u-*.reg.io"}},
	}
	for _, tt := range tests {
		if got := users(k.Lookup(tt.image)); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Lookup(%q) = %v, want %v", tt.image, got, tt.want)
		}
	}
}

func TestLookupDockerHubFallback(t *testing.T) {
	hub := configKeyring(t, "https://index.docker.io/v1/")
	tests := []struct {
		image string
		want  bool
	}{
		{"docker.io/library/busybox", true},
		{"docker.io/google/docker-registry", true},
		{"index.docker.io/library/busybox", true},
		{"google/docker-registry", true},
		{"jenkins", true},
		{"world.mesos.org/foo/bar", false},
		{"127.0.0.1:5000/app", false},
		{"localhost:5000/app", false},
		{"myhostdocker.io/foo/bar", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := len(hub.Lookup(tt.image)) == 1; got != tt.want {
			t.Errorf("Docker Hub credentials for %q: %v, want %v", tt.image, got, tt.want)
		}
	}

	// The fallback applies only when nothing else matched.
	both := configKeyring(t, "https://index.docker.io/v1/", "docker.io/team")
	if got, want := users(both.Lookup("docker.io/team/app")), []string{"u-docker.io/team"}; !reflect.DeepEqual(got, want) {
		t.Errorf("with a direct match: %v, want %v", got, want)
	}
	if got, want := users(both.Lookup("docker.io/library/busybox")), []string{"u-https://index.docker.io/v1/"}; !reflect.DeepEqual(got, want) {
		t.Errorf("without a direct match: %v, want %v", got, want)
	}

	// A plain "docker.io" key matches Docker Hub images directly.
	direct := configKeyring(t, "docker.io")
	if got, want := users(direct.Lookup("docker.io/library/busybox")), []string{"u-docker.io"}; !reflect.DeepEqual(got, want) {
		t.Errorf("docker.io key: %v, want %v", got, want)
	}
}

// kubelet's TestIsDefaultRegistryMatch.
func TestIsDefaultRegistryMatch(t *testing.T) {
	for image, want := range map[string]bool{
		"foo/bar":                 true,
		"docker.io/foo/bar":       true,
		"index.docker.io/foo/bar": true,
		"foo":                     true,
		"":                        false,
		"/foo":                    false,
		"registry.tld/foo/bar":    false,
		"registry:5000/foo/bar":   false,
		"myhostdocker.io/foo/bar": false,
		"localhost/foo":           true, // no "." or ":", so a Docker Hub user name
	} {
		if got := isDefaultRegistryMatch(image); got != want {
			t.Errorf("isDefaultRegistryMatch(%q) = %v, want %v", image, got, want)
		}
	}
}

func TestUnion(t *testing.T) {
	a := configKeyring(t, "reg.io")
	b := configKeyring(t, "reg.io/team", "https://index.docker.io/v1/")
	c := configKeyring(t, "docker.io")
	u := Union(a, nil, Union(b, c))

	// Within a keyring the most specific key comes first; across keyrings
	// the Union order wins, even over specificity.
	if got, want := users(u.Lookup("reg.io/team/app")), []string{"u-reg.io", "u-reg.io/team"}; !reflect.DeepEqual(got, want) {
		t.Errorf("union lookup = %v, want %v", got, want)
	}
	// b's Docker Hub fallback applies in b even though c matches directly.
	if got, want := users(u.Lookup("docker.io/library/busybox")), []string{"u-https://index.docker.io/v1/", "u-docker.io"}; !reflect.DeepEqual(got, want) {
		t.Errorf("union hub lookup = %v, want %v", got, want)
	}
	if got := u.Len(); got != 4 {
		t.Errorf("Len = %d, want 4", got)
	}
	if got, want := u.Keys(), []string{"reg.io", "reg.io/team", "index.docker.io", "docker.io"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Keys = %v, want %v", got, want)
	}
	if err := u.Add("x.io", Credential{}); err == nil {
		t.Error("Add to a union succeeded")
	}
	if got := Union().Lookup("reg.io/x"); len(got) != 0 {
		t.Errorf("empty union found %v", got)
	}
	var nilRing *Keyring
	if nilRing.Lookup("reg.io/x") != nil || nilRing.Len() != 0 || nilRing.Keys() != nil {
		t.Error("nil keyring is not empty")
	}
	var zero Keyring
	if zero.Lookup("docker.io/library/busybox") != nil {
		t.Error("zero keyring is not empty")
	}
}

// Lookup must not hand out its internal slice: appending to a result must
// not change the next result.
func TestLookupResultIsACopy(t *testing.T) {
	k := configKeyring(t, "https://index.docker.io/v1/")
	got := k.Lookup("busybox")
	got[0].Username = "mallory"
	_ = append(got[:0], Credential{Username: "eve"})
	if again := users(k.Lookup("busybox")); !reflect.DeepEqual(again, []string{"u-https://index.docker.io/v1/"}) {
		t.Errorf("keyring changed through a lookup result: %v", again)
	}
}

func TestSameKeyKeepsEveryCredential(t *testing.T) {
	k := &Keyring{}
	for i, key := range []string{"reg.io", "https://reg.io", "https://reg.io/v2/", "reg.io"} {
		if err := k.Add(key, Credential{Username: "same", Password: "same", Source: Source{Kind: SourceSecret, Name: fmt.Sprint(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	got := k.Lookup("reg.io/app")
	if len(got) != 4 {
		t.Fatalf("got %d credentials, want all 4", len(got))
	}
	for i, c := range got {
		if c.Source.Name != fmt.Sprint(i) {
			t.Errorf("credential %d from %q, want insertion order", i, c.Source.Name)
		}
	}
	if got := k.Keys(); !reflect.DeepEqual(got, []string{"reg.io"}) {
		t.Errorf("Keys = %v, want one key", got)
	}
}
