// Package keyring finds the registry credentials for an image the way
// kubelet does (pkg/credentialprovider), so a pod's imagePullSecrets and the
// node's config.json behave on peapod exactly as on a Kubernetes node:
//
//   - a key such as "https://reg.example.com/v1/" is normalised to
//     "reg.example.com" (scheme dropped, a /v1/ or /v2/ prefix stripped);
//   - a key matches an image when the ports are equal, the hosts have the
//     same number of dot-separated labels and each label glob-matches
//     (filepath.Match, so "*.example.com" matches "a.example.com" only), and
//     the key's path is a plain string prefix of the image's path;
//   - every matching credential is returned, the most specific key first, so
//     a caller can try them in turn until one pull works;
//   - Docker Hub credentials (key "index.docker.io") are used only when
//     nothing else matched and the image is on Docker Hub;
//   - keyrings joined with Union are searched in order: pod secrets first,
//     then the node's config.
//
// Credentials are never deduplicated: like kubelet, two secrets holding the
// same login yield two credentials, each with its own Source, because a
// pull record must name the secret that was used.
package keyring

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

const (
	// dockerHubKey is the normalised key of Docker Hub credentials, as
	// `docker login` stores them: "https://index.docker.io/v1/".
	dockerHubKey = "index.docker.io"
)

// Keyring holds credentials indexed by registry key. The zero value is an
// empty keyring; a nil *Keyring is also empty. A Keyring is not safe for
// concurrent Add, but Lookup may run concurrently once it is built.
type Keyring struct {
	index []string                // keys, reverse-sorted: most specific first
	creds map[string][]Credential // key → credentials in the order added
	parts []*Keyring              // set by Union: searched in order
}

// Add files c under the registry key. The key may be written as
// docker config files write it: "reg.example.com:5000",
// "https://index.docker.io/v1/", "http://reg/v2/", "*.example.com/team".
func (k *Keyring) Add(key string, c Credential) error {
	if k.parts != nil {
		return errors.New("keyring: cannot add to a union of keyrings")
	}
	norm, err := normaliseKey(key)
	if err != nil {
		return err
	}
	if k.creds == nil {
		k.creds = map[string][]Credential{}
	}
	if _, ok := k.creds[norm]; !ok {
		k.index = append(k.index, norm)
		// Reverse lexicographic order puts "reg.io/team/app" before
		// "reg.io/team" before "reg.io": longer paths under the same host
		// come first, which is the "most specific first" order.
		sort.Sort(sort.Reverse(sort.StringSlice(k.index)))
	}
	k.creds[norm] = append(k.creds[norm], c)
	return nil
}

// normaliseKey turns a config key into kubelet's index form: host[:port]
// followed by the path, without scheme and without a /v1/ or /v2/ prefix.
func normaliseKey(key string) (string, error) {
	value := key
	if !strings.HasPrefix(value, "https://") && !strings.HasPrefix(value, "http://") {
		value = "https://" + value
	}
	u, err := url.Parse(value)
	if err != nil {
		return "", fmt.Errorf("registry key %q: %w", key, err)
	}
	p := u.Path
	if strings.HasPrefix(p, "/v2/") || strings.HasPrefix(p, "/v1/") {
		p = p[3:]
	}
	if p == "" || p == "/" {
		return u.Host, nil
	}
	return u.Host + p, nil
}

// Union joins keyrings; Lookup returns the matches of each in the given
// order. Nil keyrings are skipped.
func Union(ks ...*Keyring) *Keyring {
	u := &Keyring{parts: []*Keyring{}}
	for _, k := range ks {
		switch {
		case k == nil:
		case k.parts != nil:
			u.parts = append(u.parts, k.parts...)
		default:
			u.parts = append(u.parts, k)
		}
	}
	return u
}

// Lookup returns the credentials to try for image, a normalised repository
// without tag or digest such as "docker.io/library/busybox" or
// "127.0.0.1:5000/app/x" (reference.Reference.Name). The result is empty
// when nothing matches: pull anonymously then.
func (k *Keyring) Lookup(image string) []Credential {
	if k == nil {
		return nil
	}
	if k.parts != nil {
		var out []Credential
		for _, p := range k.parts {
			out = append(out, p.Lookup(image)...)
		}
		return out
	}
	target, err := parseSchemeless(image)
	if err != nil {
		return nil
	}
	var out []Credential
	for _, key := range k.index {
		glob, err := parseSchemeless(key)
		if err != nil {
			continue
		}
		if urlsMatch(glob, target) {
			out = append(out, k.creds[key]...)
		}
	}
	if len(out) > 0 {
		return out
	}
	if isDefaultRegistryMatch(image) {
		return slices.Clone(k.creds[dockerHubKey])
	}
	return nil
}

// Keys lists the normalised registry keys, most specific first within each
// keyring, keyrings in Union order. For diagnostics: "the secret has
// credentials for reg.example.com, the image is on reg.example.org".
func (k *Keyring) Keys() []string {
	if k == nil {
		return nil
	}
	if k.parts != nil {
		var out []string
		for _, p := range k.parts {
			out = append(out, p.Keys()...)
		}
		return out
	}
	return slices.Clone(k.index)
}

// Len is the number of credentials held.
func (k *Keyring) Len() int {
	if k == nil {
		return 0
	}
	n := 0
	for _, p := range k.parts {
		n += p.Len()
	}
	for _, cs := range k.creds {
		n += len(cs)
	}
	return n
}

func parseSchemeless(s string) (*url.URL, error) {
	u, err := url.Parse("https://" + s)
	if err != nil {
		return nil, err
	}
	u.Scheme = ""
	return u, nil
}

func splitHost(u *url.URL) (labels []string, port string) {
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		host, port = u.Host, ""
	}
	return strings.Split(host, "."), port
}

// urlsMatch is kubelet's URLsMatch: equal ports, equal label counts, a glob
// per label, and the key's path a string prefix of the image's path.
func urlsMatch(glob, target *url.URL) bool {
	globLabels, globPort := splitHost(glob)
	targetLabels, targetPort := splitHost(target)
	if globPort != targetPort || len(globLabels) != len(targetLabels) {
		return false
	}
	if !strings.HasPrefix(target.Path, glob.Path) {
		return false
	}
	for i, g := range globLabels {
		if ok, err := filepath.Match(g, targetLabels[i]); err != nil || !ok {
			return false
		}
	}
	return true
}

// isDefaultRegistryMatch reports whether image lives on Docker Hub, judged
// by its name alone as Docker does: no domain, or docker.io /
// index.docker.io, or a first component without "." or ":" (a user name,
// not a host).
func isDefaultRegistryMatch(image string) bool {
	first, _, found := strings.Cut(image, "/")
	if first == "" {
		return false
	}
	if !found {
		return true
	}
	if first == "docker.io" || first == "index.docker.io" {
		return true
	}
	return !strings.ContainsAny(first, ".:")
}

// addConfig files every entry of a decoded Docker config under its key,
// in key order so that the result does not depend on map iteration.
// Keys that are not URLs are skipped, as kubelet does.
func (k *Keyring) addConfig(entries map[string]entry, src Source) {
	for _, key := range slices.Sorted(maps.Keys(entries)) {
		e := entries[key]
		c := Credential{Username: e.Username, Password: e.Password, Source: src}
		if err := k.Add(key, c); err != nil {
			slog.Warn("ignoring registry credentials with an invalid key", "source", src.String(), "key", key, "err", err)
		}
	}
}
