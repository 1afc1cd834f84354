package cri

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/peapod/peapod/internal/image"
	"github.com/peapod/peapod/internal/image/keyring"
	"github.com/peapod/peapod/internal/image/reference"
	"github.com/peapod/peapod/internal/image/store"
)

// ListImages lists every image, or those matching the filter's image
// (by name, ID or digest).
func (s *Server) ListImages(ctx context.Context, req *runtimeapi.ListImagesRequest) (*runtimeapi.ListImagesResponse, error) {
	if f := req.GetFilter().GetImage().GetImage(); f != "" {
		img, err := s.images.Status(f)
		if isNotFound(err) {
			return &runtimeapi.ListImagesResponse{}, nil
		}
		if err != nil {
			return nil, s.fail("ListImages", err)
		}
		return &runtimeapi.ListImagesResponse{Images: []*runtimeapi.Image{s.toCRIImage(img)}}, nil
	}
	imgs, err := s.images.List()
	if err != nil {
		return nil, s.fail("ListImages", err)
	}
	out := make([]*runtimeapi.Image, 0, len(imgs))
	for _, img := range imgs {
		out = append(out, s.toCRIImage(img))
	}
	return &runtimeapi.ListImagesResponse{Images: out}, nil
}

// StreamImages is ListImages in one message.
func (s *Server) StreamImages(req *runtimeapi.StreamImagesRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamImagesResponse]) error {
	resp, err := s.ListImages(stream.Context(), &runtimeapi.ListImagesRequest{Filter: req.GetFilter()})
	if err != nil {
		return err
	}
	if len(resp.Images) == 0 {
		return nil
	}
	return stream.Send(&runtimeapi.StreamImagesResponse{Images: resp.Images})
}

// ImageStatus answers an absent image with an empty response, not an
// error, as the CRI asks.
func (s *Server) ImageStatus(ctx context.Context, req *runtimeapi.ImageStatusRequest) (*runtimeapi.ImageStatusResponse, error) {
	name := req.GetImage().GetImage()
	if name == "" {
		return nil, invalid("ImageStatus: no image given")
	}
	img, err := s.images.Status(name)
	if isNotFound(err) {
		return &runtimeapi.ImageStatusResponse{}, nil
	}
	if err != nil {
		return nil, s.fail("ImageStatus", err)
	}
	resp := &runtimeapi.ImageStatusResponse{Image: s.toCRIImage(img)}
	if req.GetVerbose() {
		info, err := json.Marshal(imageInfo(img))
		if err != nil {
			return nil, s.fail("ImageStatus", fmt.Errorf("image %s: encode info: %w", img.ID, err))
		}
		resp.Info = map[string]string{"info": string(info)}
	}
	return resp, nil
}

// imageInfo is the verbose ImageStatus "info": the OCI config (what
// containerd calls imageSpec) and how the image got here, without secrets.
func imageInfo(img *store.Image) map[string]any {
	type pull struct {
		Reference string `json:"reference,omitempty"`
		Source    string `json:"source"`
		Time      string `json:"time"`
	}
	pulls := make([]pull, 0, len(img.Pulls))
	for _, p := range img.Pulls {
		src := p.Source.String()
		if p.Anonymous {
			src = "anonymous"
		}
		pulls = append(pulls, pull{Reference: p.Reference, Source: src, Time: p.Time.UTC().Format("2006-01-02T15:04:05Z")})
	}
	return map[string]any{
		"imageSpec":      img.Config,
		"manifestDigest": img.ManifestDigest,
		"layers":         img.Layers,
		"pulls":          pulls,
	}
}

// PullImage pulls with the request's credentials (none: anonymous) and
// returns the image ID as the reference, as containerd does.
func (s *Server) PullImage(ctx context.Context, req *runtimeapi.PullImageRequest) (*runtimeapi.PullImageResponse, error) {
	name := req.GetImage().GetImage()
	if name == "" {
		return nil, invalid("PullImage: no image given")
	}
	ref, err := reference.Parse(name)
	if err != nil {
		return nil, s.fail("PullImage", err)
	}
	creds, err := credentials(req.GetAuth(), ref.Domain)
	if err != nil {
		return nil, s.fail("PullImage", err)
	}
	img, err := s.images.Pull(ctx, name, creds, image.PullOptions{})
	if err != nil {
		return nil, s.fail("PullImage", err)
	}
	return &runtimeapi.PullImageResponse{ImageRef: img.ID.String()}, nil
}

// RemoveImage removes the whole image with every tag (the CRI says so),
// and succeeds when it is already gone.
func (s *Server) RemoveImage(ctx context.Context, req *runtimeapi.RemoveImageRequest) (*runtimeapi.RemoveImageResponse, error) {
	name := req.GetImage().GetImage()
	if name == "" {
		return nil, invalid("RemoveImage: no image given")
	}
	img, err := s.images.Status(name)
	if isNotFound(err) {
		return &runtimeapi.RemoveImageResponse{}, nil
	}
	if err != nil {
		return nil, s.fail("RemoveImage", err)
	}
	if err := s.images.Remove(img.ID.String()); err != nil && !isNotFound(err) {
		return nil, s.fail("RemoveImage", err)
	}
	return &runtimeapi.RemoveImageResponse{}, nil
}

// toCRIImage converts a stored image. The user is split the way kubelet
// reads it: a numeric user becomes uid, a name becomes username.
func (s *Server) toCRIImage(img *store.Image) *runtimeapi.Image {
	out := &runtimeapi.Image{
		Id:          img.ID.String(),
		RepoTags:    img.RepoTags,
		RepoDigests: img.RepoDigests,
		Size:        uint64(max(img.Size, 0)),
		Spec:        &runtimeapi.ImageSpec{Image: img.ID.String()},
		Pinned:      s.pinned(img),
	}
	user, _, _ := strings.Cut(img.Config.Config.User, ":")
	if user != "" {
		if uid, err := strconv.ParseInt(user, 10, 64); err == nil {
			out.Uid = &runtimeapi.Int64Value{Value: uid}
		} else {
			out.Username = user
		}
	}
	return out
}

func (s *Server) pinned(img *store.Image) bool {
	for _, p := range s.opts.PinnedImages {
		pi, err := s.images.Status(p)
		if err == nil && pi.ID == img.ID {
			return true
		}
	}
	return false
}

// credentials turns a CRI AuthConfig into the credential to try, following
// containerd's ParseAuth: a server_address that names another registry
// than the image's means no credential at all; username/password win over
// auth (base64 "user:password"); identity and registry tokens pass along.
// Errors never quote the secret.
func credentials(auth *runtimeapi.AuthConfig, host string) ([]keyring.Credential, error) {
	if auth == nil {
		return nil, nil
	}
	if auth.ServerAddress != "" && !sameRegistry(auth.ServerAddress, host) {
		return nil, nil
	}
	c := keyring.Credential{
		Username:      auth.Username,
		Password:      auth.Password,
		IdentityToken: auth.IdentityToken,
		RegistryToken: auth.RegistryToken,
		Source:        keyring.Source{Kind: keyring.SourceCRI},
	}
	if c.Username == "" && auth.Auth != "" {
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(auth.Auth))
		if err != nil {
			return nil, invalid("auth config: \"auth\" is not base64: it must be base64(\"username:password\")")
		}
		user, pass, ok := strings.Cut(string(raw), ":")
		if !ok {
			return nil, invalid("auth config: decoded \"auth\" has no ':': it must be base64(\"username:password\")")
		}
		c.Username, c.Password = user, pass
	}
	if c.Username == "" && c.Password == "" && c.IdentityToken == "" && c.RegistryToken == "" {
		return nil, nil
	}
	return []keyring.Credential{c}, nil
}

// sameRegistry compares a server address (possibly a URL, possibly with
// the Docker Hub's legacy names) with an image's registry host.
func sameRegistry(serverAddress, host string) bool {
	a := serverAddress
	for _, p := range []string{"https://", "http://"} {
		a = strings.TrimPrefix(a, p)
	}
	a, _, _ = strings.Cut(a, "/")
	return hubAlias(a) == hubAlias(host)
}

func hubAlias(h string) string {
	switch h {
	case "index.docker.io", "registry-1.docker.io", "docker.io":
		return "docker.io"
	}
	return h
}
