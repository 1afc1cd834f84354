// Package api holds the JSON shapes of peapod's own REST endpoints, the ones
// that have no Kubernetes type (images, registry login). They live under
// /apis/peapod.io/v1/ so that the Kubernetes-shaped paths (/api/v1/...) stay
// free for the objects real kubectl knows. Errors are Kubernetes
// metav1.Status objects, so a client can treat both families alike.
package api

import (
	"time"
)

// Paths of the peapod.io/v1 group.
const (
	GroupVersion = "peapod.io/v1"
	Prefix       = "/apis/peapod.io/v1"
	ImagesPath   = Prefix + "/images"
	PullPath     = Prefix + "/images:pull"
	LoginPath    = Prefix + "/login"
	VersionPath  = "/version"
)

// Image is an image in the daemon's store.
type Image struct {
	Kind        string    `json:"kind,omitempty"`
	APIVersion  string    `json:"apiVersion,omitempty"`
	ID          string    `json:"id"`
	RepoTags    []string  `json:"repoTags"`
	RepoDigests []string  `json:"repoDigests"`
	Size        int64     `json:"size"`
	Created     time.Time `json:"created,omitzero"`
	// Layers are the diff IDs of the image's layers, bottom first.
	Layers []string `json:"layers"`
	// Pulls says how the image came onto the node: with which credential
	// (never the secret itself), or anonymously.
	Pulls []PullRecord `json:"pulls"`
	// Config is the image's OCI/Docker config (entrypoint, env, user...).
	Config *ImageConfig `json:"config,omitempty"`
}

// ImageConfig is the runnable part of an image's configuration.
type ImageConfig struct {
	Entrypoint   []string          `json:"entrypoint,omitempty"`
	Cmd          []string          `json:"cmd,omitempty"`
	Env          []string          `json:"env,omitempty"`
	WorkingDir   string            `json:"workingDir,omitempty"`
	User         string            `json:"user,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	ExposedPorts []string          `json:"exposedPorts,omitempty"`
	StopSignal   string            `json:"stopSignal,omitempty"`
	OS           string            `json:"os,omitempty"`
	Architecture string            `json:"architecture,omitempty"`
}

// PullRecord is one successful pull of an image.
type PullRecord struct {
	// Credential names where the credential came from ("secret ns/name",
	// "node config /path", ...), empty for an anonymous pull.
	Credential string `json:"credential,omitempty"`
	// CredentialHash identifies the credential without revealing it.
	CredentialHash string    `json:"credentialHash,omitempty"`
	Anonymous      bool      `json:"anonymous,omitempty"`
	Time           time.Time `json:"time,omitzero"`
}

// ImageList is the answer to GET ImagesPath.
type ImageList struct {
	Kind       string  `json:"kind"`
	APIVersion string  `json:"apiVersion"`
	Items      []Image `json:"items"`
}

// Credential is one registry credential sent with a pull or a login.
type Credential struct {
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	IdentityToken string `json:"identityToken,omitempty"`
	RegistryToken string `json:"registryToken,omitempty"`
	// AuthFile is the login file the client read the credential from, empty
	// for credentials given on the command line. It is recorded with the
	// image and named in errors, so a user can tell which credential was
	// tried.
	AuthFile string `json:"authFile,omitempty"`
}

// PullRequest asks the daemon to pull an image. Credentials are tried in
// order, then the node's own auth files.
type PullRequest struct {
	Image       string       `json:"image"`
	Credentials []Credential `json:"credentials,omitempty"`
}

// PullEvent is one line of the newline-delimited JSON stream that answers a
// pull: progress per layer, then either the image or an error.
type PullEvent struct {
	Layer   string `json:"layer,omitempty"`
	State   string `json:"state,omitempty"`
	Current int64  `json:"current,omitempty"`
	Total   int64  `json:"total,omitempty"`
	Image   *Image `json:"image,omitempty"`
	Error   string `json:"error,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// LoginRequest asks the daemon to check a credential against a registry,
// through the daemon's own registries and TLS configuration.
type LoginRequest struct {
	Registry   string     `json:"registry"`
	Credential Credential `json:"credential"`
}

// Version is the answer to GET VersionPath.
type Version struct {
	Version   string `json:"version"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}
