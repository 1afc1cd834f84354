package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/peapod/peapod/internal/api"
	"github.com/peapod/peapod/internal/image"
	"github.com/peapod/peapod/internal/image/keyring"
	"github.com/peapod/peapod/internal/image/reference"
	"github.com/peapod/peapod/internal/image/store"
)

// ImageService is what the API needs of the image service.
type ImageService interface {
	Pull(ctx context.Context, ref string, creds []keyring.Credential, opts image.PullOptions) (*store.Image, error)
	Status(nameOrID string) (*store.Image, error)
	List() ([]*store.Image, error)
	Remove(nameOrID string) error
	CheckLogin(ctx context.Context, registry string, cred keyring.Credential) error
}

// NodeCredentials returns the node-level credentials for a repository
// (kubelet's config.json equivalent); they are tried after the client's.
type NodeCredentials func(repo string) []keyring.Credential

func (s *Server) routeImages() {
	s.mux.HandleFunc("GET "+api.ImagesPath, s.listImages)
	s.mux.HandleFunc("GET "+api.ImagesPath+"/{name...}", s.getImage)
	s.mux.HandleFunc("DELETE "+api.ImagesPath+"/{name...}", s.removeImage)
	s.mux.HandleFunc("POST "+api.PullPath, s.pullImage)
	s.mux.HandleFunc("POST "+api.LoginPath, s.login)
}

func (s *Server) listImages(w http.ResponseWriter, _ *http.Request) {
	imgs, err := s.images.List()
	if err != nil {
		s.imageError(w, err)
		return
	}
	out := api.ImageList{Kind: "ImageList", APIVersion: api.GroupVersion, Items: make([]api.Image, 0, len(imgs))}
	for _, img := range imgs {
		out.Items = append(out.Items, ToAPIImage(img))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getImage(w http.ResponseWriter, r *http.Request) {
	img, err := s.images.Status(r.PathValue("name"))
	if err != nil {
		s.imageError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ToAPIImage(img))
}

func (s *Server) removeImage(w http.ResponseWriter, r *http.Request) {
	if err := s.images.Remove(r.PathValue("name")); err != nil {
		s.imageError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusSuccess,
	})
}

// pullImage streams progress as newline-delimited JSON and ends with the
// image or the error. The pull itself runs in the daemon, never in a client.
func (s *Server) pullImage(w http.ResponseWriter, r *http.Request) {
	var req api.PullRequest
	if err := decodeBody(r, &req); err != nil {
		writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, err.Error())
		return
	}
	ref, err := reference.Parse(req.Image)
	if err != nil {
		writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, err.Error())
		return
	}
	creds := make([]keyring.Credential, 0, len(req.Credentials))
	for _, c := range req.Credentials {
		creds = append(creds, fromAPICredential(c))
	}
	if s.nodeCreds != nil {
		creds = append(creds, s.nodeCreds(ref.Name())...)
	}

	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	var mu sync.Mutex
	enc := json.NewEncoder(w)
	send := func(ev api.PullEvent) {
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(ev)
		if flusher != nil {
			flusher.Flush()
		}
	}
	opts := image.PullOptions{Progress: func(p image.ProgressEvent) {
		send(api.PullEvent{Layer: p.Digest.String(), State: string(p.State), Current: p.Done, Total: p.Total})
	}}
	img, err := s.images.Pull(r.Context(), req.Image, creds, opts)
	if err != nil {
		_, reason := classify(err)
		send(api.PullEvent{Error: err.Error(), Reason: string(reason)})
		return
	}
	ai := ToAPIImage(img)
	send(api.PullEvent{Image: &ai})
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var req api.LoginRequest
	if err := decodeBody(r, &req); err != nil {
		writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, err.Error())
		return
	}
	if err := s.images.CheckLogin(r.Context(), req.Registry, fromAPICredential(req.Credential)); err != nil {
		s.imageError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusSuccess,
		Message:  "Login Succeeded",
	})
}

func (s *Server) imageError(w http.ResponseWriter, err error) {
	code, reason := classify(err)
	writeStatus(w, code, reason, err.Error())
}

// classify maps image service errors to HTTP codes and reasons.
func classify(err error) (int, metav1.StatusReason) {
	switch {
	case errors.Is(err, reference.ErrInvalidImageName):
		return http.StatusBadRequest, "InvalidImageName"
	case errors.Is(err, image.ErrUnauthorized):
		return http.StatusUnauthorized, metav1.StatusReasonUnauthorized
	case errors.Is(err, image.ErrNotFound):
		return http.StatusNotFound, metav1.StatusReasonNotFound
	case errors.Is(err, image.ErrRegistryUnavailable):
		return http.StatusServiceUnavailable, "RegistryUnavailable"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, metav1.StatusReasonTimeout
	}
	return http.StatusInternalServerError, metav1.StatusReasonInternalError
}

func fromAPICredential(c api.Credential) keyring.Credential {
	return keyring.Credential{
		Username:      c.Username,
		Password:      c.Password,
		IdentityToken: c.IdentityToken,
		RegistryToken: c.RegistryToken,
		Source:        keyring.Source{Kind: keyring.SourceCLI, Path: c.AuthFile},
	}
}

// ToAPIImage converts a store record to its API shape.
func ToAPIImage(img *store.Image) api.Image {
	out := api.Image{
		Kind:        "Image",
		APIVersion:  api.GroupVersion,
		ID:          img.ID.String(),
		RepoTags:    nonNil(img.RepoTags),
		RepoDigests: nonNil(img.RepoDigests),
		Size:        img.Size,
		Created:     img.Created,
		Layers:      []string{},
		Pulls:       []api.PullRecord{},
	}
	for _, l := range img.Layers {
		out.Layers = append(out.Layers, l.String())
	}
	for _, p := range img.Pulls {
		rec := api.PullRecord{Anonymous: p.Anonymous, CredentialHash: p.CredentialHash, Time: p.Time}
		if !p.Anonymous {
			rec.Credential = p.Source.String()
		}
		out.Pulls = append(out.Pulls, rec)
	}
	c := img.Config
	ic := &api.ImageConfig{
		Entrypoint:   c.Config.Entrypoint,
		Cmd:          c.Config.Cmd,
		Env:          c.Config.Env,
		WorkingDir:   c.Config.WorkingDir,
		User:         c.Config.User,
		Labels:       c.Config.Labels,
		StopSignal:   c.Config.StopSignal,
		OS:           c.OS,
		Architecture: c.Architecture,
	}
	for p := range c.Config.ExposedPorts {
		ic.ExposedPorts = append(ic.ExposedPorts, p)
	}
	out.Config = ic
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
