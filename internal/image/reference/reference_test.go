package reference

import (
	"errors"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

const (
	hexA = "7cc4b5aefd1d0cadf8d97d4350462ba51c694ebca145b08d7d41b41acc8db5aa"
	dgA  = "sha256:" + hexA
)

func TestParse(t *testing.T) {
	tests := []struct {
		in                     string
		domain, path, tag, dig string
		str, familiar          string
	}{
		{"busybox", "docker.io", "library/busybox", "latest", "",
			"docker.io/library/busybox:latest", "busybox:latest"},
		{"busybox:1.36", "docker.io", "library/busybox", "1.36", "",
			"docker.io/library/busybox:1.36", "busybox:1.36"},
		{"library/busybox", "docker.io", "library/busybox", "latest", "",
			"docker.io/library/busybox:latest", "busybox:latest"},
		{"docker.io/busybox", "docker.io", "library/busybox", "latest", "",
			"docker.io/library/busybox:latest", "busybox:latest"},
		{"docker.io/library/busybox:latest", "docker.io", "library/busybox", "latest", "",
			"docker.io/library/busybox:latest", "busybox:latest"},
		{"index.docker.io/library/busybox", "docker.io", "library/busybox", "latest", "",
			"docker.io/library/busybox:latest", "busybox:latest"},
		{"someone/app", "docker.io", "someone/app", "latest", "",
			"docker.io/someone/app:latest", "someone/app:latest"},
		{"docker.io/library/a/b", "docker.io", "library/a/b", "latest", "",
			"docker.io/library/a/b:latest", "library/a/b:latest"},
		{"busybox@" + dgA, "docker.io", "library/busybox", "", dgA,
			"docker.io/library/busybox@" + dgA, "busybox@" + dgA},
		{"busybox:latest@" + dgA, "docker.io", "library/busybox", "latest", dgA,
			"docker.io/library/busybox:latest@" + dgA, "busybox:latest@" + dgA},
		{"host:5000/a/b:v1@" + dgA, "host:5000", "a/b", "v1", dgA,
			"host:5000/a/b:v1@" + dgA, "host:5000/a/b:v1@" + dgA},
		{"localhost:5000/x", "localhost:5000", "x", "latest", "",
			"localhost:5000/x:latest", "localhost:5000/x:latest"},
		{"localhost/x", "localhost", "x", "latest", "",
			"localhost/x:latest", "localhost/x:latest"},
		{"127.0.0.1:5000/app/x:V1_b-2.3", "127.0.0.1:5000", "app/x", "V1_b-2.3", "",
			"127.0.0.1:5000/app/x:V1_b-2.3", "127.0.0.1:5000/app/x:V1_b-2.3"},
		{"registry.k8s.io/pause:3.10.1", "registry.k8s.io", "pause", "3.10.1", "",
			"registry.k8s.io/pause:3.10.1", "registry.k8s.io/pause:3.10.1"},
		{"Example.COM/app", "Example.COM", "app", "latest", "",
			"Example.COM/app:latest", "Example.COM/app:latest"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			want := Reference{Domain: tt.domain, Path: tt.path, Tag: tt.tag, Digest: digest.Digest(tt.dig)}
			if r != want {
				t.Errorf("Parse(%q) = %+v, want %+v", tt.in, r, want)
			}
			if got := r.String(); got != tt.str {
				t.Errorf("String() = %q, want %q", got, tt.str)
			}
			if got := r.Familiar(); got != tt.familiar {
				t.Errorf("Familiar() = %q, want %q", got, tt.familiar)
			}
			if got, want := r.Name(), tt.domain+"/"+tt.path; got != want || r.Repository() != want {
				t.Errorf("Name() = %q, Repository() = %q, want %q", got, r.Repository(), want)
			}
			// The normalised and familiar forms must parse back to the same reference.
			for _, s := range []string{r.String(), r.Familiar()} {
				back, err := Parse(s)
				if err != nil || back != r {
					t.Errorf("Parse(%q) = %+v, %v; want %+v", s, back, err, r)
				}
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	tests := []struct {
		in   string
		want string // substring of the error after the input
	}{
		{"", "empty image reference"},
		{"Busybox", "repository name must be lowercase"},
		{"docker.io/Library/busybox", "repository name must be lowercase"},
		{"localhost:5000/App:v1", "repository name must be lowercase"},
		{":", "invalid reference format"},
		{":latest", "invalid reference format"},
		{"busybox:", "invalid reference format"},
		{"busybox@", "invalid reference format"},
		{"busybox@sha256:abc", "invalid reference format"},
		{"busybox@sha256:" + hexA[:40], "invalid digest"},
		{"busybox@md5:" + hexA, "invalid digest"},
		{"busybox@sha256:" + strings.ToUpper(hexA), "invalid digest"},
		{"busybox:" + strings.Repeat("t", 129), "invalid reference format"},
		{"a/" + strings.Repeat("b", 254), "must not be more than 255 characters"},
		{"busybox:bad tag", "invalid reference format"},
		{" busybox", "whitespace"},
		{"busybox\n", "whitespace"},
		{"http://registry/app", "invalid reference format"},
		{"a//b", "invalid reference format"},
		{"a/b/", "invalid reference format"},
		{"-a/b", "invalid reference format"},
		{"a___b", "invalid reference format"},
		{hexA, "image ID, not a repository name"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want an error", tt.in, r)
			}
			if !errors.Is(err, ErrInvalidImageName) {
				t.Errorf("error %v does not wrap ErrInvalidImageName", err)
			}
			prefix := "InvalidImageName: \"" + strings.ReplaceAll(tt.in, "\n", `\n`) + "\": "
			if !strings.HasPrefix(err.Error(), prefix) {
				t.Errorf("error %q does not start with %q", err, prefix)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
		})
	}
}

func TestParseErrorExactText(t *testing.T) {
	_, err := Parse("Busybox")
	if got, want := err.Error(), `InvalidImageName: "Busybox": repository name must be lowercase`; got != want {
		t.Errorf("error = %q, want %q", got, want)
	}
}

func TestWithTagWithDigest(t *testing.T) {
	r := MustParse("127.0.0.1:5000/app:v1")
	d := digest.Digest(dgA)

	pinned, err := r.WithDigest(d)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := pinned.String(), "127.0.0.1:5000/app:v1@"+dgA; got != want {
		t.Errorf("WithDigest = %q, want %q", got, want)
	}
	if got, want := pinned.TrimTag().String(), "127.0.0.1:5000/app@"+dgA; got != want {
		t.Errorf("TrimTag = %q, want %q", got, want)
	}
	if got := r.TrimTag(); got != r {
		t.Errorf("TrimTag without digest changed the reference: %+v", got)
	}
	if _, err := r.WithDigest("sha256:1234"); !errors.Is(err, ErrInvalidImageName) {
		t.Errorf("WithDigest(bad) error = %v, want ErrInvalidImageName", err)
	}

	retagged, err := pinned.WithTag("v2")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := retagged.String(), "127.0.0.1:5000/app:v2"; got != want {
		t.Errorf("WithTag = %q, want %q", got, want)
	}
	for _, bad := range []string{"", "has space", ".dot", strings.Repeat("x", 129)} {
		if _, err := r.WithTag(bad); !errors.Is(err, ErrInvalidImageName) {
			t.Errorf("WithTag(%q) error = %v, want ErrInvalidImageName", bad, err)
		}
	}
	if r.IsZero() || !(Reference{}).IsZero() {
		t.Error("IsZero wrong")
	}
}

func TestParseLengthLimit(t *testing.T) {
	// 255 characters of path (with "library/") is the limit, one more is refused.
	ok := strings.Repeat("b", 255-len("library/"))
	if _, err := Parse(ok); err != nil {
		t.Errorf("Parse(255-char path): %v", err)
	}
	if _, err := Parse(ok + "b"); !errors.Is(err, ErrInvalidImageName) {
		t.Errorf("Parse(256-char path) error = %v, want ErrInvalidImageName", err)
	}
}
