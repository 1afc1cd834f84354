// Package registries decides where an image is pulled from and how the
// connection is secured: the containers-registries.conf (version 2) file
// that podman, CRI-O and buildah read (mirrors, location rewrites, insecure
// and blocked registries), and Docker's certs.d directories (extra CAs and
// client certificates per registry host).
//
// Using the format those tools already use means a node's existing
// /etc/containers/registries.conf works here unchanged, and an air-gapped
// site can point docker.io at its own mirror without editing pod specs.
//
// Differences from containers/image, on purpose:
//   - Unknown keys are errors, not silently ignored: a misspelt
//     "insecure" must not quietly leave a registry unreachable.
//   - Settings peapod does not implement (proxy, aliases,
//     credential-helpers, the version 1 [registries.*] tables) are errors
//     that say so, rather than being ignored.
//   - unqualified-search-registries and short-name-mode are parsed and
//     kept but have no effect: peapod resolves short names ("busybox") to
//     docker.io, as Docker and the kubelet do, so that a pod's image means
//     the same thing on every node.
//   - A prefix matches on whole components: "example.com" does not match
//     "example.com:5000/app", and "reg.io/foo" does not match
//     "reg.io/foobar".
//   - location may be left out; it then equals prefix.
package registries

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"strings"

	"github.com/BurntSushi/toml"
	dref "github.com/distribution/reference"
	"github.com/opencontainers/go-digest"

	"github.com/peapod/peapod/internal/image/reference"
)

// ErrBlocked is wrapped by Endpoints when the configuration forbids every
// place the image could be pulled from.
var ErrBlocked = errors.New("registry blocked")

// Values of Mirror.PullFromMirror.
const (
	PullFromMirrorAll        = "all"
	PullFromMirrorDigestOnly = "digest-only"
	PullFromMirrorTagOnly    = "tag-only"
)

// Config is a parsed registries.conf. The zero value (and a nil *Config)
// has no rules: every image is pulled from its own registry over TLS.
type Config struct {
	// UnqualifiedSearchRegistries is kept for inspection only; see the
	// package comment.
	UnqualifiedSearchRegistries []string `toml:"unqualified-search-registries"`
	// ShortNameMode is kept for inspection only.
	ShortNameMode string `toml:"short-name-mode"`
	// Registries are the [[registry]] tables, in file order.
	Registries []Registry `toml:"registry"`

	path string
}

// Registry is one [[registry]] table.
type Registry struct {
	// Prefix selects the images this table applies to: host[:port],
	// optionally followed by /namespace.../repo and then :tag or @digest,
	// or a wildcard "*.example.com" matching every subdomain. Empty means
	// Location.
	Prefix string `toml:"prefix"`
	// Location replaces the matched prefix when pulling. Empty means
	// Prefix (no rewrite). It cannot be set for a wildcard prefix.
	Location string `toml:"location"`
	// Insecure allows plain HTTP and unverified TLS.
	Insecure bool `toml:"insecure"`
	// Blocked forbids pulling from Location; mirrors are still used.
	Blocked bool `toml:"blocked"`
	// MirrorByDigestOnly uses the mirrors only for references with a
	// digest.
	MirrorByDigestOnly bool `toml:"mirror-by-digest-only"`
	// Mirrors are tried in order before Location.
	Mirrors []Mirror `toml:"mirror"`

	wildcard bool   // Prefix is "*.domain"
	match    prefix // parsed Prefix (for a wildcard: domain = ".domain")
}

// Mirror is one [[registry.mirror]] table.
type Mirror struct {
	// Location replaces the matched prefix, like Registry.Location; under
	// a wildcard prefix it replaces the image's whole host[:port]
	// ("x.corp.example.com/team/app" with mirror "m.local" pulls
	// "m.local/team/app").
	Location string `toml:"location"`
	// Insecure allows plain HTTP and unverified TLS to this mirror.
	Insecure bool `toml:"insecure"`
	// PullFromMirror is "", "all", "digest-only" or "tag-only": which
	// references this mirror is used for. It cannot be combined with the
	// registry's mirror-by-digest-only.
	PullFromMirror string `toml:"pull-from-mirror"`
}

// Endpoint is one place to pull an image from.
type Endpoint struct {
	Host       string // host[:port], e.g. "docker.io" or "127.0.0.1:5000"
	Repository string // repository path on Host, e.g. "library/busybox"
	Insecure   bool   // plain HTTP and unverified TLS allowed
	Mirror     bool   // a mirror, not the registry itself
}

// prefix is a parsed prefix or location.
type prefix struct {
	domain string // host[:port]
	path   string // "" for a whole registry
	tag    string
	digest digest.Digest
}

func (p prefix) name() string {
	if p.path == "" {
		return p.domain
	}
	return p.domain + "/" + p.path
}

// Keys of the format peapod knowingly does not implement.
var unsupportedKeys = map[string]string{
	"credential-helpers":                 "credentials come from imagePullSecrets and the node's config.json",
	"additional-layer-store-auth-helper": "peapod has no additional layer store",
	"aliases":                            "short names always resolve to docker.io",
	"registries":                         "the version 1 [registries.search/insecure/block] tables are not supported; use [[registry]] tables",
	"registry.proxy":                     "per-registry proxies are not supported; set HTTPS_PROXY for the daemon",
	"registry.mirror.proxy":              "per-mirror proxies are not supported; set HTTPS_PROXY for the daemon",
}

// Load reads a registries.conf file. A missing file, or an empty path, is
// an empty configuration. Errors name the file and the offending key or
// table.
func Load(path string) (*Config, error) {
	c := &Config{path: path}
	if path == "" {
		return c, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("registries config: %w", err)
	}
	md, err := toml.Decode(string(b), c)
	if err != nil {
		return nil, fmt.Errorf("registries config %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		reported := map[string]bool{}
		var msgs []string
		for _, k := range und {
			key := k.String()
			if parentReported(reported, k) {
				continue
			}
			reported[key] = true
			generic := genericKey(k)
			if why, ok := unsupportedKeys[generic]; ok {
				msgs = append(msgs, fmt.Sprintf("%q is not supported (%s)", key, why))
			} else if why, ok := unsupportedKeys[k[0]]; ok {
				msgs = append(msgs, fmt.Sprintf("%q is not supported (%s)", key, why))
			} else {
				msgs = append(msgs, fmt.Sprintf("unknown key %q", key))
			}
		}
		return nil, fmt.Errorf("registries config %s: %s", path, strings.Join(dedupe(msgs), "; "))
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("registries config %s: %w", path, err)
	}
	return c, nil
}

// parentReported says whether a table enclosing k is already reported, so
// that an unsupported table is named once, not once per key in it.
func parentReported(reported map[string]bool, k toml.Key) bool {
	for i := 1; i < len(k); i++ {
		if reported[k[:i].String()] {
			return true
		}
	}
	return false
}

// genericKey is a TOML key path without array indexes ("registry.mirror.proxy").
func genericKey(k toml.Key) string {
	return strings.Join(k, ".")
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	out := s[:0]
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

var (
	anchoredDomain = regexp.MustCompile(`^(?:` + dref.DomainRegexp.String() + `)$`)
	// wildcardDomain is a domain without port for "*.".
	wildcardDomain = regexp.MustCompile(`^[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*$`)
)

// validate checks the configuration and fills in the parsed fields.
func (c *Config) validate() error {
	for _, s := range c.UnqualifiedSearchRegistries {
		if !anchoredDomain.MatchString(s) {
			return fmt.Errorf("unqualified-search-registries entry %q: want host[:port]", s)
		}
	}
	switch c.ShortNameMode {
	case "", "enforcing", "permissive", "disabled":
	default:
		return fmt.Errorf("short-name-mode %q: want enforcing, permissive or disabled", c.ShortNameMode)
	}
	seen := map[string]int{}
	for i := range c.Registries {
		r := &c.Registries[i]
		where := fmt.Sprintf("[[registry]] #%d", i+1)
		switch {
		case r.Prefix != "":
			where += fmt.Sprintf(" (prefix %q)", r.Prefix)
		case r.Location != "":
			where += fmt.Sprintf(" (location %q)", r.Location)
		}
		if err := r.validate(); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		if j, dup := seen[r.Prefix]; dup {
			return fmt.Errorf("%s: prefix %q is already used by [[registry]] #%d", where, r.Prefix, j+1)
		}
		seen[r.Prefix] = i
	}
	return nil
}

func (r *Registry) validate() error {
	r.Prefix = strings.TrimRight(r.Prefix, "/")
	r.Location = strings.TrimRight(r.Location, "/")
	if r.Prefix == "" && r.Location == "" {
		return errors.New("needs a prefix or a location")
	}
	if strings.HasPrefix(r.Prefix, "*") {
		d, ok := strings.CutPrefix(r.Prefix, "*.")
		if !ok || !wildcardDomain.MatchString(d) {
			return fmt.Errorf("wildcard prefix %q: only \"*.domain\" is allowed (no port, path, tag or inner wildcard)", r.Prefix)
		}
		if r.Location != "" {
			return fmt.Errorf("location %q cannot rewrite a wildcard prefix; leave it out", r.Location)
		}
		r.wildcard = true
		r.match = prefix{domain: "." + d}
	} else {
		if r.Location != "" {
			if _, err := parsePrefix(r.Location, false); err != nil {
				return fmt.Errorf("location: %w", err)
			}
		}
		if r.Prefix == "" {
			r.Prefix = r.Location
		}
		p, err := parsePrefix(r.Prefix, true)
		if err != nil {
			return fmt.Errorf("prefix: %w", err)
		}
		r.match = p
		if r.Location == "" {
			r.Location = p.name()
		}
	}
	for j := range r.Mirrors {
		m := &r.Mirrors[j]
		m.Location = strings.TrimRight(m.Location, "/")
		if m.Location == "" {
			return fmt.Errorf("[[registry.mirror]] #%d: needs a location", j+1)
		}
		if _, err := parsePrefix(m.Location, false); err != nil {
			return fmt.Errorf("[[registry.mirror]] #%d: location: %w", j+1, err)
		}
		switch m.PullFromMirror {
		case "", PullFromMirrorAll, PullFromMirrorDigestOnly, PullFromMirrorTagOnly:
		default:
			return fmt.Errorf("[[registry.mirror]] #%d: pull-from-mirror %q: want all, digest-only or tag-only", j+1, m.PullFromMirror)
		}
		if m.PullFromMirror != "" && r.MirrorByDigestOnly {
			return fmt.Errorf("[[registry.mirror]] #%d: pull-from-mirror cannot be combined with the registry's mirror-by-digest-only", j+1)
		}
	}
	return nil
}

// parsePrefix parses host[:port][/path][:tag|@digest]. A tag or digest is
// only allowed when allowSuffix (prefixes, not locations: an endpoint has
// no tag of its own).
func parsePrefix(s string, allowSuffix bool) (prefix, error) {
	if strings.Contains(s, "://") {
		return prefix{}, fmt.Errorf("%q: no URL scheme here, just host[:port][/path] (insecure = true allows plain HTTP)", s)
	}
	if strings.Contains(s, "*") {
		return prefix{}, fmt.Errorf("%q: a wildcard is only allowed as \"*.domain\" in a prefix", s)
	}
	domain, _, hasPath := strings.Cut(s, "/")
	if !anchoredDomain.MatchString(domain) {
		return prefix{}, fmt.Errorf("%q: %q is not a valid host[:port]", s, domain)
	}
	p := prefix{domain: domain}
	if !hasPath {
		return p, nil
	}
	parsed, err := dref.Parse(s)
	if err != nil {
		return prefix{}, fmt.Errorf("%q: %w", s, err)
	}
	named, ok := parsed.(dref.Named)
	if !ok || !strings.HasPrefix(named.Name(), domain+"/") {
		return prefix{}, fmt.Errorf("%q: not host[:port]/path", s)
	}
	p.path = strings.TrimPrefix(named.Name(), domain+"/")
	if t, ok := parsed.(dref.Tagged); ok {
		p.tag = t.Tag()
	}
	if d, ok := parsed.(dref.Digested); ok {
		p.digest = d.Digest()
	}
	if !allowSuffix && (p.tag != "" || p.digest != "") {
		return prefix{}, fmt.Errorf("%q: a location names a repository namespace, not a tag or digest", s)
	}
	return p, nil
}

// matchLen reports how much of ref r matches (0: no match). Longer is more
// specific; an exact host beats a wildcard of the same length.
func (r *Registry) matchLen(ref reference.Reference) int {
	if r.wildcard {
		host, _, _ := strings.Cut(ref.Domain, ":")
		if strings.HasSuffix(host, r.match.domain) && len(host) > len(r.match.domain) {
			// The more specific wildcard wins; any exact prefix of the
			// same host is longer than the suffix and wins too.
			return 2 * len(r.match.domain)
		}
		return 0
	}
	p := r.match
	if ref.Domain != p.domain {
		return 0
	}
	if p.path != "" && ref.Path != p.path && !strings.HasPrefix(ref.Path, p.path+"/") {
		return 0
	}
	if (p.tag != "" || p.digest != "") && ref.Path != p.path {
		return 0
	}
	if p.tag != "" && ref.Tag != p.tag {
		return 0
	}
	if p.digest != "" && ref.Digest != p.digest {
		return 0
	}
	n := len(p.name())
	if p.tag != "" {
		n += 1 + len(p.tag)
	}
	if p.digest != "" {
		n += 1 + len(p.digest)
	}
	return 2*n + 1
}

// find returns the [[registry]] with the longest matching prefix, or nil.
func (c *Config) find(ref reference.Reference) *Registry {
	if c == nil {
		return nil
	}
	var best *Registry
	bestLen := 0
	for i := range c.Registries {
		if n := c.Registries[i].matchLen(ref); n > bestLen {
			best, bestLen = &c.Registries[i], n
		}
	}
	return best
}

// Path is the file the configuration was read from ("" for none).
func (c *Config) Path() string {
	if c == nil {
		return ""
	}
	return c.path
}

// Endpoints returns where to pull ref from, in the order to try them: the
// applicable mirrors of the [[registry]] with the longest matching prefix,
// in file order, then the registry itself (its location). With no matching
// table the result is ref's own registry, over TLS.
//
// Which mirrors apply: none for a reference without a digest when
// mirror-by-digest-only is set; otherwise per mirror, "digest-only" ones
// only for references with a digest and "tag-only" ones only for
// references without one (a reference with both a tag and a digest pulls
// by digest).
//
// An endpoint is insecure when its own table says so or when the
// [[registry]] matching its rewritten name does. An endpoint whose
// rewritten name falls under a blocked [[registry]] is left out, so a
// blocked registry with mirrors is reached only through its mirrors (the
// "never contact the source" setup of disconnected clusters). When nothing
// is left the error wraps ErrBlocked and names the registry and the file.
func (c *Config) Endpoints(ref reference.Reference) ([]Endpoint, error) {
	reg := c.find(ref)
	if reg == nil {
		return []Endpoint{{Host: ref.Domain, Repository: ref.Path}}, nil
	}
	digested := ref.Digest != ""
	var eps []Endpoint
	var blocked []string
	add := func(location string, insecure, mirror, blockedHere bool) error {
		ep, err := c.rewrite(reg, ref, location)
		if err != nil {
			return err
		}
		ep.Insecure, ep.Mirror = insecure, mirror
		if own := c.find(reference.Reference{Domain: ep.Host, Path: ep.Repository, Tag: ref.Tag, Digest: ref.Digest}); own != nil {
			ep.Insecure = ep.Insecure || own.Insecure
			blockedHere = blockedHere || own.Blocked
		}
		if blockedHere {
			blocked = append(blocked, ep.Host+"/"+ep.Repository)
			return nil
		}
		eps = append(eps, ep)
		return nil
	}
	if !reg.MirrorByDigestOnly || digested {
		for _, m := range reg.Mirrors {
			if (m.PullFromMirror == PullFromMirrorDigestOnly && !digested) ||
				(m.PullFromMirror == PullFromMirrorTagOnly && digested) {
				continue
			}
			if err := add(m.Location, m.Insecure, true, false); err != nil {
				return nil, err
			}
		}
	}
	if err := add(reg.Location, reg.Insecure, false, reg.Blocked); err != nil {
		return nil, err
	}
	if len(eps) == 0 {
		where := "registries config"
		if c.path != "" {
			where = c.path
		}
		msg := fmt.Sprintf("%s: the [[registry]] with prefix %q in %s blocks it", ref.Name(), reg.Prefix, where)
		if len(blocked) > 1 {
			msg += fmt.Sprintf(", and every mirror is blocked too (%s)", strings.Join(blocked[:len(blocked)-1], ", "))
		}
		return nil, fmt.Errorf("%w: %s", ErrBlocked, msg)
	}
	return eps, nil
}

// rewrite replaces the part of ref's name that reg's prefix matched with
// location. location "" keeps the name (a wildcard table without mirrors'
// own locations).
func (c *Config) rewrite(reg *Registry, ref reference.Reference, location string) (Endpoint, error) {
	name := ref.Name()
	if location != "" {
		matched := reg.match.name()
		if reg.wildcard {
			matched = ref.Domain
		}
		name = location + strings.TrimPrefix(name, matched)
	}
	host, repo, _ := strings.Cut(name, "/")
	if repo == "" {
		return Endpoint{}, fmt.Errorf("registries config %s: %s rewrites %s to %q, which names no repository",
			c.path, reg.Prefix, ref.Name(), name)
	}
	return Endpoint{Host: host, Repository: repo}, nil
}
