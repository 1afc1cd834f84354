package keyring

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
)

// Source kinds: where a credential came from.
const (
	SourceSecret = "secret" // a pod's imagePullSecrets
	SourceNode   = "node"   // the node's config.json
	SourceCLI    = "cli"    // given on the command line (peapod pull --creds, peapod login)
	SourceCRI    = "cri"    // PullImageRequest.auth from a CRI client
)

// Source says where a credential came from, so that a failed pull can name
// the secret or file that was tried ("is my imagePullSecret even used?") and
// a pull record can name the secret that pulled an image (KEP-2535).
type Source struct {
	Kind      string // one of the Source* constants
	Namespace string // secret only
	Name      string // secret only
	UID       string // secret only
	Path      string // node and cli: the config file, when there is one
}

// String is a short human form: "secret awesomeapps/regcred",
// "node config /var/lib/peapod/config.json".
func (s Source) String() string {
	switch s.Kind {
	case SourceSecret:
		return "secret " + s.Namespace + "/" + s.Name
	case SourceNode:
		return "node config " + s.Path
	case SourceCLI:
		if s.Path != "" {
			return "cli config " + s.Path
		}
		return "cli credentials"
	case SourceCRI:
		return "CRI request auth"
	case "":
		return "no source"
	}
	return s.Kind
}

// Credential is one set of registry credentials and where it came from.
//
// Secrets and Docker config files give a username and password; identity
// and registry tokens arrive only through the CRI (as with kubelet, which
// copies nothing else out of a secret).
type Credential struct {
	Username      string
	Password      string
	IdentityToken string
	RegistryToken string
	Source        Source
}

// authFields is the part of a credential that authenticates. Its JSON
// layout follows kubelet's AuthConfig (same names, same order, omitempty),
// so that Hash equals kubelet's hashAuthConfig for the same credential.
type authFields struct {
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
	RegistryToken string `json:"registrytoken,omitempty"`
}

// Hash is the hex SHA-256 of the credential's authenticating fields (not
// its source). Two secrets holding the same login hash the same, which is
// what lets a pod with an equal credential use an image another pod pulled
// (KEP-2535). It is stable across restarts and safe to store, not to log.
func (c Credential) Hash() string {
	b, err := json.Marshal(authFields{c.Username, c.Password, c.IdentityToken, c.RegistryToken})
	if err != nil {
		// Marshalling four strings cannot fail.
		panic(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// IsZero reports whether c carries nothing to authenticate with.
func (c Credential) IsZero() bool {
	return c.Username == "" && c.Password == "" && c.IdentityToken == "" && c.RegistryToken == ""
}

// String names the credential without its secret parts: `user "alice"
// from secret awesomeapps/regcred`.
func (c Credential) String() string {
	return c.kind() + " from " + c.Source.String()
}

// GoString keeps %#v from printing the password.
func (c Credential) GoString() string {
	return fmt.Sprintf("keyring.Credential{%s}", c.String())
}

// LogValue makes slog print the username and source, never the secrets.
func (c Credential) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("source", c.Source.String())}
	if c.Username != "" {
		attrs = append(attrs, slog.String("username", c.Username))
	}
	if c.IdentityToken != "" {
		attrs = append(attrs, slog.Bool("identitytoken", true))
	}
	if c.RegistryToken != "" {
		attrs = append(attrs, slog.Bool("registrytoken", true))
	}
	return slog.GroupValue(attrs...)
}

func (c Credential) kind() string {
	switch {
	case c.RegistryToken != "":
		return "registry token"
	case c.IdentityToken != "":
		return "identity token"
	case c.Username != "":
		return fmt.Sprintf("user %q", c.Username)
	case c.Password != "":
		return "password without user"
	}
	return "empty credential"
}
