package keyring

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// errAuthField is kubelet's wording for an "auth" value that is not
// base64(username:password).
var errAuthField = errors.New("unable to parse auth field, must be formatted as base64(username:password)")

// entry is one registry's login in a Docker config file.
type entry struct {
	Username string
	Password string
}

// UnmarshalJSON reads username and password, then lets a non-empty "auth"
// (base64 of "user:password") override both, as kubelet and docker do.
// Email, identitytoken and the rest are ignored, as kubelet ignores them.
func (e *entry) UnmarshalJSON(data []byte) error {
	var raw struct {
		Username string `json:"username"`
		Password string `json:"password"`
		Auth     string `json:"auth"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	e.Username, e.Password = raw.Username, raw.Password
	if raw.Auth == "" {
		return nil
	}
	user, pass, err := decodeAuth(raw.Auth)
	if err != nil {
		return err
	}
	e.Username, e.Password = user, pass
	return nil
}

// decodeAuth decodes an "auth" field. Padded base64 is decoded with the
// standard alphabet, unpadded with the raw one, so both `docker login`
// output and hand-made values work. Errors never include the value.
func decodeAuth(field string) (user, pass string, err error) {
	var b []byte
	if strings.HasSuffix(strings.TrimSpace(field), "=") {
		b, err = base64.StdEncoding.DecodeString(field)
	} else {
		b, err = base64.RawStdEncoding.DecodeString(field)
	}
	if err != nil {
		return "", "", fmt.Errorf("%w: %w", errAuthField, err)
	}
	user, pass, ok := strings.Cut(string(b), ":")
	if !ok {
		return "", "", errAuthField
	}
	return user, pass, nil
}

// parseEntries decodes a bare {key: entry} map, naming the failing key (a
// registry address, never a secret) in the error.
func parseEntries(raw map[string]json.RawMessage) (map[string]entry, error) {
	out := make(map[string]entry, len(raw))
	for key, msg := range raw {
		var e entry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, fmt.Errorf("entry %q: %w", key, sanitize(err))
		}
		out[key] = e
	}
	return out, nil
}

// parseDockercfg parses the legacy ~/.dockercfg form: a bare map.
func parseDockercfg(data []byte) (map[string]entry, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, sanitize(err)
	}
	return parseEntries(raw)
}

// parseConfigJSON parses the ~/.docker/config.json form: {"auths": {...}}.
// Other top-level fields (credsStore, credHelpers, HttpHeaders) are
// ignored, as kubelet ignores them.
func parseConfigJSON(data []byte) (map[string]entry, error) {
	var cfg struct {
		Auths map[string]json.RawMessage `json:"auths"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, sanitize(err)
	}
	return parseEntries(cfg.Auths)
}

// sanitize keeps JSON errors from quoting the input: a syntax error or a
// type error says where and what kind, which is enough, and a secret's
// content must never reach a log or an event.
func sanitize(err error) error {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return fmt.Errorf("malformed JSON at byte %d", syn.Offset)
	}
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		return fmt.Errorf("malformed JSON: %s where %s was expected at byte %d", typ.Value, typ.Type, typ.Offset)
	}
	if errors.Is(err, errAuthField) {
		return errAuthField
	}
	return errors.New("malformed JSON")
}

// secretData returns a secret's value for key. StringData is consulted too,
// in case a secret never went through an API server that folds it into
// Data.
func secretData(s *corev1.Secret, key string) []byte {
	if b, ok := s.Data[key]; ok {
		return b
	}
	if v, ok := s.StringData[key]; ok {
		return []byte(v)
	}
	return nil
}

// FromSecrets builds the keyring of a pod's imagePullSecrets, in the order
// given. Secrets of type kubernetes.io/dockerconfigjson (key
// .dockerconfigjson) and kubernetes.io/dockercfg (key .dockercfg) count;
// any other secret, or one whose key is missing or empty, is skipped
// silently, as kubelet does. A secret that does not parse is an error
// naming the secret, and the whole keyring is refused, as in kubelet.
//
// All secrets share one index, so the most specific key wins across
// secrets, and for equal keys the earlier secret comes first.
func FromSecrets(secrets []corev1.Secret) (*Keyring, error) {
	k := &Keyring{}
	for i := range secrets {
		s := &secrets[i]
		src := Source{Kind: SourceSecret, Namespace: s.Namespace, Name: s.Name, UID: string(s.UID)}
		var (
			entries map[string]entry
			err     error
			dataKey string
		)
		switch {
		case s.Type == corev1.SecretTypeDockerConfigJson && len(secretData(s, corev1.DockerConfigJsonKey)) > 0:
			dataKey = corev1.DockerConfigJsonKey
			entries, err = parseConfigJSON(secretData(s, dataKey))
		case s.Type == corev1.SecretTypeDockercfg && len(secretData(s, corev1.DockerConfigKey)) > 0:
			dataKey = corev1.DockerConfigKey
			entries, err = parseDockercfg(secretData(s, dataKey))
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("image pull secret %s/%s: %s: %w", s.Namespace, s.Name, dataKey, err)
		}
		k.addConfig(entries, src)
	}
	return k, nil
}

// FromConfigFile builds the keyring of a Docker config.json ({"auths":
// {...}}), such as the node's /var/lib/peapod/config.json. A missing file
// is an empty keyring: most nodes have none.
func FromConfigFile(path string) (*Keyring, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &Keyring{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read registry credentials: %w", err)
	}
	k := &Keyring{}
	if len(strings.TrimSpace(string(data))) == 0 {
		return k, nil
	}
	entries, err := parseConfigJSON(data)
	if err != nil {
		return nil, fmt.Errorf("registry credentials %s: %w", path, err)
	}
	k.addConfig(entries, Source{Kind: SourceNode, Path: path})
	return k, nil
}
