package registries

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/peapod/peapod/internal/image/reference"
)

func writeConf(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "registries.conf")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const testConf = `
unqualified-search-registries = ["docker.io", "quay.io"]
short-name-mode = "enforcing"

[[registry]]
prefix = "reg.io/foo"
location = "internal.example.net:5000/mirror/foo"

[[registry]]
location = "reg.io"
insecure = true

[[registry]]
prefix = "docker.io"
location = "docker.io"
[[registry.mirror]]
location = "mirror-a.local"
[[registry.mirror]]
location = "mirror-b.local:5000/hub/"
insecure = true
[[registry.mirror]]
location = "digests.local"
pull-from-mirror = "digest-only"
[[registry.mirror]]
location = "tags.local"
pull-from-mirror = "tag-only"
[[registry.mirror]]
location = "every.local"
pull-from-mirror = "all"

[[registry]]
prefix = "docker.io/library/busybox"
location = "bb.local/busybox"

[[registry]]
prefix = "quay.io"
mirror-by-digest-only = true
[[registry.mirror]]
location = "quay-mirror.local"

[[registry]]
prefix = "blocked.io"
blocked = true

[[registry]]
prefix = "airgap.io"
blocked = true
[[registry.mirror]]
location = "inside.local/airgap"

[[registry]]
prefix = "airgap-digests.io"
blocked = true
[[registry.mirror]]
location = "inside.local/by-digest"
pull-from-mirror = "digest-only"
[[registry.mirror]]
location = "blocked.io/also"
pull-from-mirror = "digest-only"

[[registry]]
prefix = "mirror-blocked.io"
[[registry.mirror]]
location = "blocked.io/m"

[[registry]]
prefix = "*.example.com"
insecure = true

[[registry]]
prefix = "*.corp.example.com"
[[registry.mirror]]
location = "corp-mirror.local"

[[registry]]
prefix = "exact.example.com"

[[registry]]
location = "insecure-mirror.local"
insecure = true

[[registry]]
prefix = "uses-insecure-mirror.io"
[[registry.mirror]]
location = "insecure-mirror.local/x"

[[registry]]
prefix = "gcr.io/proj/app:v1"
location = "pinned.local/app"

[[registry]]
location = "127.0.0.1:5000"
insecure = true

[[registry]]
prefix = "shrink.io/foo"
location = "other.io"
`

const dgst = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// show renders endpoints compactly: host/repo, then "!" for insecure and
// "+" for a mirror.
func show(eps []Endpoint) []string {
	var out []string
	for _, e := range eps {
		s := e.Host + "/" + e.Repository
		if e.Insecure {
			s += " !"
		}
		if e.Mirror {
			s += " +"
		}
		out = append(out, s)
	}
	return out
}

func TestEndpoints(t *testing.T) {
	c, err := Load(writeConf(t, testConf))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, ref string
		want      []string
		err       error  // errors.Is
		errHas    string // substring of the error
	}{
		{"no matching table: the ref's own registry, secure", "ghcr.io/o/app:1", []string{"ghcr.io/o/app"}, nil, ""},
		{"location rewrites the matched prefix", "reg.io/foo/app:1", []string{"internal.example.net:5000/mirror/foo/app"}, nil, ""},
		{"prefix equal to the whole name", "reg.io/foo:1", []string{"internal.example.net:5000/mirror/foo"}, nil, ""},
		{"prefix matches whole components only", "reg.io/foobar/app", []string{"reg.io/foobar/app !"}, nil, ""},
		{"host prefix does not match another port", "reg.io:5000/foo/app", []string{"reg.io:5000/foo/app"}, nil, ""},
		{"longest prefix wins and its mirrors only", "busybox:1.36", []string{"bb.local/busybox"}, nil, ""},
		{"tag pull: all, tag-only mirrors in order, then the registry", "alpine:3", []string{
			"mirror-a.local/library/alpine +",
			"mirror-b.local:5000/hub/library/alpine ! +",
			"tags.local/library/alpine +",
			"every.local/library/alpine +",
			"docker.io/library/alpine",
		}, nil, ""},
		{"digest pull: all, digest-only mirrors", "alpine@" + dgst, []string{
			"mirror-a.local/library/alpine +",
			"mirror-b.local:5000/hub/library/alpine ! +",
			"digests.local/library/alpine +",
			"every.local/library/alpine +",
			"docker.io/library/alpine",
		}, nil, ""},
		{"tag and digest is a digest pull", "alpine:3@" + dgst, []string{
			"mirror-a.local/library/alpine +",
			"mirror-b.local:5000/hub/library/alpine ! +",
			"digests.local/library/alpine +",
			"every.local/library/alpine +",
			"docker.io/library/alpine",
		}, nil, ""},
		{"mirror-by-digest-only skips mirrors for tags", "quay.io/x/y:v1", []string{"quay.io/x/y"}, nil, ""},
		{"mirror-by-digest-only uses mirrors for digests", "quay.io/x/y@" + dgst, []string{"quay-mirror.local/x/y +", "quay.io/x/y"}, nil, ""},
		{"blocked", "blocked.io/x/app:1", nil, ErrBlocked, `blocked.io/x/app`},
		{"blocked registry reached only through its mirror", "airgap.io/app:1", []string{"inside.local/airgap/app +"}, nil, ""},
		{"blocked registry, tag pull, digest-only mirror", "airgap-digests.io/app:1", nil, ErrBlocked, `prefix "airgap-digests.io"`},
		{"blocked registry, digest pull, one mirror blocked too", "airgap-digests.io/app@" + dgst, []string{"inside.local/by-digest/app +"}, nil, ""},
		{"mirror under a blocked prefix is left out", "mirror-blocked.io/app", []string{"mirror-blocked.io/app"}, nil, ""},
		{"wildcard matches a subdomain", "foo.example.com/app", []string{"foo.example.com/app !"}, nil, ""},
		{"wildcard matches nested subdomains and ports", "a.b.example.com:5000/app", []string{"a.b.example.com:5000/app !"}, nil, ""},
		{"wildcard does not match the bare domain", "example.com/app", []string{"example.com/app"}, nil, ""},
		{"wildcard does not match a longer domain", "notexample.com/app", []string{"notexample.com/app"}, nil, ""},
		{"more specific wildcard wins, its mirror rewrites the host", "x.corp.example.com/team/app", []string{"corp-mirror.local/team/app +", "x.corp.example.com/team/app"}, nil, ""},
		{"exact host beats a wildcard", "exact.example.com/app", []string{"exact.example.com/app"}, nil, ""},
		{"mirror is insecure when its host's own table says so", "uses-insecure-mirror.io/app", []string{"insecure-mirror.local/x/app ! +", "uses-insecure-mirror.io/app"}, nil, ""},
		{"prefix with a tag matches that tag", "gcr.io/proj/app:v1", []string{"pinned.local/app"}, nil, ""},
		{"prefix with a tag does not match another tag", "gcr.io/proj/app:v2", []string{"gcr.io/proj/app"}, nil, ""},
		{"insecure local registry", "127.0.0.1:5000/app:v1", []string{"127.0.0.1:5000/app !"}, nil, ""},
		{"rewrite to no repository is an error", "shrink.io/foo", nil, nil, `names no repository`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			eps, err := c.Endpoints(reference.MustParse(tc.ref))
			if tc.err != nil || tc.errHas != "" {
				if err == nil {
					t.Fatalf("Endpoints(%s) = %v, want an error", tc.ref, show(eps))
				}
				if tc.err != nil && !errors.Is(err, tc.err) {
					t.Errorf("error %q does not wrap %v", err, tc.err)
				}
				if !strings.Contains(err.Error(), tc.errHas) {
					t.Errorf("error %q does not contain %q", err, tc.errHas)
				}
				return
			}
			if err != nil {
				t.Fatalf("Endpoints(%s): %v", tc.ref, err)
			}
			if got := show(eps); !slices.Equal(got, tc.want) {
				t.Errorf("Endpoints(%s)\n got  %q\n want %q", tc.ref, got, tc.want)
			}
		})
	}
}

func TestBlockedErrorNamesRegistryAndFile(t *testing.T) {
	p := writeConf(t, "[[registry]]\nprefix = \"blocked.io\"\nblocked = true\n")
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Endpoints(reference.MustParse("blocked.io/app:1"))
	if !errors.Is(err, ErrBlocked) || !strings.Contains(err.Error(), `"blocked.io"`) || !strings.Contains(err.Error(), p) {
		t.Fatalf("error %v: want ErrBlocked naming the prefix and %s", err, p)
	}
}

func TestLoadEmpty(t *testing.T) {
	for name, path := range map[string]string{
		"missing file": filepath.Join(t.TempDir(), "nope.conf"),
		"empty path":   "",
		"empty file":   writeConf(t, ""),
	} {
		t.Run(name, func(t *testing.T) {
			c, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			eps, err := c.Endpoints(reference.MustParse("busybox"))
			if err != nil || !slices.Equal(show(eps), []string{"docker.io/library/busybox"}) {
				t.Errorf("Endpoints(busybox) = %q, %v; want docker.io/library/busybox, secure", show(eps), err)
			}
		})
	}
	var nilConf *Config
	if eps, err := nilConf.Endpoints(reference.MustParse("127.0.0.1:5000/a")); err != nil || !slices.Equal(show(eps), []string{"127.0.0.1:5000/a"}) {
		t.Errorf("nil Config: %q, %v", show(eps), err)
	}
}

func TestLoadKeepsSettings(t *testing.T) {
	c, err := Load(writeConf(t, testConf))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.UnqualifiedSearchRegistries, []string{"docker.io", "quay.io"}) || c.ShortNameMode != "enforcing" {
		t.Errorf("global settings = %q, %q", c.UnqualifiedSearchRegistries, c.ShortNameMode)
	}
	r := c.Registries[1]
	if r.Prefix != "reg.io" || r.Location != "reg.io" || !r.Insecure {
		t.Errorf("registry without prefix = %+v; want prefix = location = reg.io, insecure", r)
	}
	m := c.Registries[2].Mirrors[1]
	if m.Location != "mirror-b.local:5000/hub" || !m.Insecure {
		t.Errorf("mirror = %+v; want trailing slash trimmed, insecure", m)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name, conf string
		want       []string // substrings of the error
	}{
		{"TOML syntax", "[[registry]\nlocation = \"a.io\"", []string{"registries config"}},
		{"unknown top-level key", "unqualified-search-registry = [\"docker.io\"]", []string{`unknown key "unqualified-search-registry"`}},
		{"misspelt registry key", "[[registry]]\nlocation = \"a.io\"\ninsecur = true", []string{`unknown key "registry.insecur"`}},
		{"misspelt mirror key", "[[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\nlocaton = \"m.io\"", []string{`unknown key "registry.mirror.locaton"`}},
		{"version 1 tables", "[registries.search]\nregistries = [\"a.io\"]", []string{"registries.search", "not supported", "[[registry]]"}},
		{"proxy", "[[registry]]\nlocation = \"a.io\"\nproxy = \"http://p:3128\"", []string{`"registry.proxy" is not supported`, "HTTPS_PROXY"}},
		{"aliases", "[aliases]\n\"app\" = \"a.io/app\"", []string{"aliases", "not supported"}},
		{"credential helpers", "credential-helpers = [\"secretservice\"]", []string{"credential-helpers", "not supported"}},
		{"no prefix, no location", "[[registry]]\ninsecure = true", []string{"[[registry]] #1", "needs a prefix or a location"}},
		{"URL scheme", "[[registry]]\nlocation = \"https://a.io\"", []string{"no URL scheme"}},
		{"bad host", "[[registry]]\nlocation = \"a io\"", []string{`"a io"`, "host[:port]"}},
		{"uppercase path", "[[registry]]\nlocation = \"a.io/Team\"", []string{"a.io/Team"}},
		{"wildcard with location", "[[registry]]\nprefix = \"*.example.com\"\nlocation = \"m.io\"", []string{"cannot rewrite a wildcard prefix"}},
		{"wildcard with path", "[[registry]]\nprefix = \"*.example.com/foo\"", []string{`only "*.domain"`}},
		{"wildcard with port", "[[registry]]\nprefix = \"*.example.com:5000\"", []string{`only "*.domain"`}},
		{"inner wildcard", "[[registry]]\nprefix = \"example.*.com\"", []string{"wildcard"}},
		{"wildcard location", "[[registry]]\nprefix = \"a.io\"\nlocation = \"*.b.io\"", []string{"wildcard"}},
		{"location with tag", "[[registry]]\nprefix = \"a.io/app\"\nlocation = \"b.io/app:v1\"", []string{"not a tag or digest"}},
		{"mirror without location", "[[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\ninsecure = true", []string{"[[registry.mirror]] #1", "needs a location"}},
		{"bad pull-from-mirror", "[[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\nlocation = \"m.io\"\npull-from-mirror = \"digests\"", []string{`pull-from-mirror "digests"`}},
		{"pull-from-mirror with mirror-by-digest-only", "[[registry]]\nlocation = \"a.io\"\nmirror-by-digest-only = true\n[[registry.mirror]]\nlocation = \"m.io\"\npull-from-mirror = \"tag-only\"", []string{"cannot be combined"}},
		{"duplicate prefix", "[[registry]]\nlocation = \"a.io\"\n[[registry]]\nprefix = \"a.io\"\nlocation = \"b.io\"", []string{"[[registry]] #2", `prefix "a.io" is already used by [[registry]] #1`}},
		{"search registry with a path", "unqualified-search-registries = [\"docker.io/library\"]", []string{`"docker.io/library"`}},
		{"bad short-name-mode", "short-name-mode = \"strict\"", []string{`short-name-mode "strict"`}},
		{"wrong type", "[[registry]]\nlocation = \"a.io\"\ninsecure = \"yes\"", []string{"insecure"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := writeConf(t, tc.conf)
			_, err := Load(p)
			if err == nil {
				t.Fatalf("Load accepted:\n%s", tc.conf)
			}
			for _, w := range append(tc.want, p) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
