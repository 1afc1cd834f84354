// Package authfile reads and writes a Docker config.json for `peapod login`
// and `peapod logout`.
//
// The file is Docker's format, written the way `docker login` writes it
// ({"auths": {"reg.example.com:5000": {"auth": base64(user:password)}}}),
// so that the same file works with docker, podman, crane and skopeo, and
// can be pasted verbatim as the .dockerconfigjson of a Kubernetes Secret of
// type kubernetes.io/dockerconfigjson. Fields peapod does not know (other
// registries, credsStore, credHelpers, HttpHeaders, ...) are kept as they
// were. Credential helpers are not run: peapod stores in the file itself.
package authfile

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// DockerHubKey is the key docker uses for Docker Hub credentials.
const DockerHubKey = "https://index.docker.io/v1/"

// File is a loaded config.json. Change it with Set and Remove, then Save.
type File struct {
	path  string
	top   map[string]json.RawMessage // every top-level field, "auths" included
	auths map[string]json.RawMessage // the "auths" object, entry by entry
}

// DefaultPath is where docker and peapod look for the file:
// $DOCKER_CONFIG/config.json, else ~/.docker/config.json.
func DefaultPath() (string, error) {
	if dir := os.Getenv("DOCKER_CONFIG"); dir != "" {
		return filepath.Join(dir, "config.json"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("registry credentials file: %w (set DOCKER_CONFIG)", err)
	}
	return filepath.Join(home, ".docker", "config.json"), nil
}

// Load reads the file at path. A missing or empty file is an empty File
// that Save will create.
func Load(path string) (*File, error) {
	f := &File{path: path, top: map[string]json.RawMessage{}, auths: map[string]json.RawMessage{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read registry credentials: %w", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return f, nil
	}
	if err := json.Unmarshal(data, &f.top); err != nil {
		return nil, fmt.Errorf("registry credentials %s: %w", path, describe(err))
	}
	if f.top == nil { // the file said "null"
		f.top = map[string]json.RawMessage{}
	}
	if raw, ok := f.top["auths"]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &f.auths); err != nil {
			return nil, fmt.Errorf("registry credentials %s: \"auths\": %w", path, describe(err))
		}
		if f.auths == nil {
			f.auths = map[string]json.RawMessage{}
		}
	}
	return f, nil
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// describe reports a JSON error without quoting the file, which holds
// passwords.
func describe(err error) error {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return fmt.Errorf("malformed JSON at byte %d", syn.Offset)
	}
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		return fmt.Errorf("malformed JSON: %s where %s was expected at byte %d", typ.Value, typ.Type, typ.Offset)
	}
	return errors.New("malformed JSON")
}

// Path is the file's location.
func (f *File) Path() string { return f.path }

// Key is the entry name docker uses for registry: Docker Hub's names
// (docker.io, index.docker.io, registry-1.docker.io, or nothing) become
// "https://index.docker.io/v1/"; anything else becomes host[:port], with
// any scheme and path dropped ("http://reg:5000/v2/" → "reg:5000").
func Key(registry string) (string, error) {
	host := strings.TrimSpace(registry)
	host = strings.TrimPrefix(host, "https://")
	host = strings.TrimPrefix(host, "http://")
	host, _, _ = strings.Cut(host, "/")
	switch host {
	case "", "docker.io", "index.docker.io", "registry-1.docker.io":
		return DockerHubKey, nil
	}
	if strings.ContainsAny(host, " \t\r\n@") {
		return "", fmt.Errorf("registry %q: not a host[:port]", registry)
	}
	return host, nil
}

// sameRegistry reports whether an existing entry name refers to key, so
// that login and logout also handle what other tools wrote as
// "https://reg:5000", "reg:5000/" or "http://reg:5000/v2/". An entry with a
// repository path ("reg:5000/team", as kubelet accepts) is a different
// entry and is left alone.
func sameRegistry(entry, key string) bool {
	if entry == key {
		return true
	}
	s := strings.TrimPrefix(strings.TrimPrefix(entry, "https://"), "http://")
	host, path, _ := strings.Cut(s, "/")
	switch strings.TrimSuffix(path, "/") {
	case "", "v1", "v2":
	default:
		return false
	}
	if host == "" {
		return false
	}
	k, err := Key(host)
	return err == nil && k == key
}

// entryJSON is the part of an entry this package reads and writes.
type entryJSON struct {
	Auth     string `json:"auth,omitempty"`
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
}

// Set stores username and password for registry, replacing what was
// stored for it before (as docker login does, including any identity
// token). The password is not checked against the registry here.
func (f *File) Set(registry, username, password string) error {
	key, err := Key(registry)
	if err != nil {
		return err
	}
	switch {
	case username == "":
		return fmt.Errorf("login %s: username required", key)
	case strings.Contains(username, ":"):
		// auth is base64(user:password), split at the first colon.
		return fmt.Errorf("login %s: username must not contain ':'", key)
	case password == "":
		return fmt.Errorf("login %s: password required", key)
	}
	for _, name := range f.names(key) {
		delete(f.auths, name)
	}
	raw, err := json.Marshal(entryJSON{Auth: base64.StdEncoding.EncodeToString([]byte(username + ":" + password))})
	if err != nil {
		return err
	}
	f.auths[key] = raw
	return nil
}

// Get returns the username and password stored for registry. An entry
// whose "auth" does not decode is reported as absent.
func (f *File) Get(registry string) (username, password string, ok bool) {
	key, err := Key(registry)
	if err != nil {
		return "", "", false
	}
	for _, name := range f.names(key) {
		var e entryJSON
		if json.Unmarshal(f.auths[name], &e) != nil {
			continue
		}
		if e.Auth == "" {
			if e.Username != "" || e.Password != "" {
				return e.Username, e.Password, true
			}
			continue
		}
		b, err := base64.StdEncoding.DecodeString(e.Auth)
		if err != nil {
			b, err = base64.RawStdEncoding.DecodeString(e.Auth)
		}
		if err != nil {
			continue
		}
		if user, pass, found := strings.Cut(string(b), ":"); found {
			return user, pass, true
		}
	}
	return "", "", false
}

// Remove deletes every entry for registry and reports whether there was
// one.
func (f *File) Remove(registry string) bool {
	key, err := Key(registry)
	if err != nil {
		return false
	}
	names := f.names(key)
	for _, name := range names {
		delete(f.auths, name)
	}
	return len(names) > 0
}

// Registries lists the entry names, sorted.
func (f *File) Registries() []string {
	names := make([]string, 0, len(f.auths))
	for name := range f.auths {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// names lists the entries that refer to key, the exact one first.
func (f *File) names(key string) []string {
	var out []string
	if _, ok := f.auths[key]; ok {
		out = append(out, key)
	}
	for _, name := range f.Registries() {
		if name != key && sameRegistry(name, key) {
			out = append(out, name)
		}
	}
	return out
}

// Bytes is the file's content as Save writes it.
func (f *File) Bytes() ([]byte, error) {
	auths, err := json.Marshal(f.auths)
	if err != nil {
		return nil, err
	}
	top := make(map[string]json.RawMessage, len(f.top)+1)
	for k, v := range f.top {
		top[k] = v
	}
	top["auths"] = auths
	b, err := json.MarshalIndent(top, "", "\t")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Save writes the file atomically: a temporary file in the same directory,
// mode 0600, synced, then renamed over the old one, so a crash leaves
// either the old or the new file, never half of one. A missing directory is
// created with mode 0700.
func (f *File) Save() error {
	data, err := f.Bytes()
	if err != nil {
		return fmt.Errorf("save registry credentials %s: %w", f.path, err)
	}
	dir := filepath.Dir(f.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save registry credentials: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(f.path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("save registry credentials: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	if err := writeSync(tmp, data); err != nil {
		return fmt.Errorf("save registry credentials %s: %w", f.path, err)
	}
	if err := os.Rename(tmp.Name(), f.path); err != nil {
		return fmt.Errorf("save registry credentials: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // best effort: make the rename durable
		d.Close()
	}
	return nil
}

func writeSync(tmp *os.File, data []byte) error {
	err := tmp.Chmod(0o600) // CreateTemp already uses 0600; keep it explicit
	if err == nil {
		_, err = tmp.Write(data)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	return err
}
