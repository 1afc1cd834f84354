// Package reference parses image references the way Docker and Kubernetes
// do, so that "busybox", "docker.io/library/busybox:latest" and
// "index.docker.io/library/busybox" all name the same image.
//
// The grammar comes from github.com/distribution/reference; this package
// adds the Docker Hub normalisation, the implicit ":latest" tag and errors
// that name the bad input, because a user who typed "Busybox" in a pod spec
// wants to read which reference was refused and why, not "invalid reference
// format".
package reference

import (
	"errors"
	"fmt"
	"strings"

	dref "github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
)

// ErrInvalidImageName is wrapped by every parse error. Its text is the
// kubelet's reason string, so a pod manager can surface it unchanged.
var ErrInvalidImageName = errors.New("InvalidImageName")

const (
	// DefaultDomain is the registry of names without a domain.
	DefaultDomain = "docker.io"
	// DefaultTag is implied when a reference has neither tag nor digest.
	DefaultTag = "latest"
	// officialRepoPrefix is where Docker Hub keeps single-component names.
	officialRepoPrefix = "library/"
)

// Reference is a parsed, normalised image reference. A reference may carry
// both a tag and a digest (Docker accepts "name:tag@digest"); the digest is
// what identifies the content, the tag is kept because Kubernetes' pull
// policy defaulting looks at it.
type Reference struct {
	Domain string        // e.g. "docker.io", "127.0.0.1:5000"
	Path   string        // e.g. "library/busybox"
	Tag    string        // "" only when Digest is set and no tag was given
	Digest digest.Digest // "" when the reference is by tag only
}

// Parse parses s and normalises it: a missing domain becomes docker.io, a
// single-component Docker Hub name gains "library/", and a reference with
// neither tag nor digest gets the tag "latest". A reference with a digest
// but no tag stays without a tag.
func Parse(s string) (Reference, error) {
	if s == "" {
		return Reference{}, invalid(s, "empty image reference")
	}
	if strings.TrimSpace(s) != s {
		return Reference{}, invalid(s, "leading or trailing whitespace")
	}
	named, err := dref.ParseNormalizedNamed(s)
	if err != nil {
		return Reference{}, invalid(s, reason(s, err))
	}
	r := Reference{Domain: dref.Domain(named), Path: dref.Path(named)}
	if t, ok := named.(dref.Tagged); ok {
		r.Tag = t.Tag()
	}
	if d, ok := named.(dref.Digested); ok {
		r.Digest = d.Digest()
	}
	if r.Tag == "" && r.Digest == "" {
		r.Tag = DefaultTag
	}
	return r, nil
}

// MustParse is Parse for references known at compile time; it panics on
// error.
func MustParse(s string) Reference {
	r, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return r
}

func invalid(s, why string) error {
	return fmt.Errorf("%w: %q: %s", ErrInvalidImageName, s, why)
}

// reason turns the library's error into a short statement of what is wrong;
// the library repeats the input in some messages and not in others, and we
// print the input ourselves.
func reason(s string, err error) string {
	switch {
	case errors.Is(err, dref.ErrNameContainsUppercase),
		strings.Contains(err.Error(), "must be lowercase"):
		return "repository name must be lowercase"
	case errors.Is(err, dref.ErrNameTooLong):
		return err.Error()
	case errors.Is(err, dref.ErrNameEmpty):
		return "repository name must have at least one component"
	case errors.Is(err, dref.ErrDigestInvalidFormat),
		errors.Is(err, digest.ErrDigestInvalidFormat),
		errors.Is(err, digest.ErrDigestInvalidLength),
		errors.Is(err, digest.ErrDigestUnsupported):
		return "invalid digest: " + err.Error()
	case strings.Contains(err.Error(), "64-byte hexadecimal"):
		return "a 64-character hexadecimal string is an image ID, not a repository name"
	}
	if strings.Contains(s, "@") {
		return "invalid reference format (expected [domain/]path[:tag][@algorithm:hex])"
	}
	return "invalid reference format"
}

// Name is the normalised repository without tag or digest, e.g.
// "docker.io/library/busybox". It is what credentials are matched against.
func (r Reference) Name() string {
	if r.Domain == "" {
		return r.Path
	}
	return r.Domain + "/" + r.Path
}

// Repository is the same as Name.
func (r Reference) Repository() string { return r.Name() }

// String is the full normalised reference: name[:tag][@digest].
func (r Reference) String() string {
	return r.Name() + r.suffix()
}

// Familiar is the short form Docker prints: "busybox:latest",
// "someone/app:v1", "127.0.0.1:5000/app:v1".
func (r Reference) Familiar() string {
	return r.FamiliarName() + r.suffix()
}

// FamiliarName is Familiar without tag and digest.
func (r Reference) FamiliarName() string {
	if r.Domain != DefaultDomain {
		return r.Name()
	}
	if rest, ok := strings.CutPrefix(r.Path, officialRepoPrefix); ok && !strings.Contains(rest, "/") {
		return rest
	}
	return r.Path
}

func (r Reference) suffix() string {
	s := ""
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest.String()
	}
	return s
}

// WithTag returns r with its tag replaced and its digest dropped, since a
// digest belongs to one content and a new tag may name another.
func (r Reference) WithTag(tag string) (Reference, error) {
	n, err := dref.WithName(r.Name())
	if err == nil {
		_, err = dref.WithTag(n, tag)
	}
	if err != nil {
		return Reference{}, invalid(r.Name()+":"+tag, reason(tag, err))
	}
	r.Tag, r.Digest = tag, ""
	return r, nil
}

// WithDigest returns r pinned to d. The tag is kept, as Docker does with
// "name:tag@digest"; use TrimTag to drop it.
func (r Reference) WithDigest(d digest.Digest) (Reference, error) {
	if err := d.Validate(); err != nil {
		return Reference{}, invalid(r.Name()+"@"+d.String(), "invalid digest: "+err.Error())
	}
	r.Digest = d
	return r, nil
}

// TrimTag returns r without its tag when it has a digest; a reference
// without a digest is returned unchanged, because it would name nothing.
func (r Reference) TrimTag() Reference {
	if r.Digest != "" {
		r.Tag = ""
	}
	return r
}

// IsZero reports whether r is the zero Reference.
func (r Reference) IsZero() bool { return r == Reference{} }
