package image

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/peapod/peapod/internal/image/keyring"
	"github.com/peapod/peapod/internal/image/reference"
	"github.com/peapod/peapod/internal/image/registries"
)

// RegistryHost normalises what a user types after `peapod login`: a scheme,
// a trailing slash and /v1/ or /v2/ are dropped, and Docker Hub's
// spellings become "docker.io".
func RegistryHost(registry string) string {
	h := strings.TrimPrefix(strings.TrimPrefix(registry, "https://"), "http://")
	h = strings.TrimSuffix(h, "/")
	h = strings.TrimSuffix(strings.TrimSuffix(h, "/v1"), "/v2")
	switch h {
	case "", "index.docker.io", "registry-1.docker.io":
		h = reference.DefaultDomain
	}
	return h
}

// CheckLogin authenticates cred against the registry's /v2/ endpoint the way
// a pull would (same registries.conf insecure rule, same certs.d TLS
// material, basic or bearer-token flow). It returns nil when the registry
// accepts the credential, an error wrapping ErrUnauthorized when it does
// not, ErrRegistryUnavailable when it cannot be reached safely.
func (s *Service) CheckLogin(ctx context.Context, registry string, cred keyring.Credential) error {
	host := RegistryHost(registry)
	ep := registries.Endpoint{Host: host}
	if ref, err := reference.Parse(host + "/peapod-login-check"); err == nil {
		if eps, err := s.endpoints(ref); err == nil {
			for _, e := range eps {
				if e.Host == host && e.Insecure {
					ep.Insecure = true
				}
			}
		}
	}
	if host == reference.DefaultDomain {
		ep.Host = "index.docker.io"
	}
	base, rt, err := s.endpointTransport(ep)
	if err != nil {
		return fmt.Errorf("login %s: %w", host, err)
	}
	defer base.CloseIdleConnections()
	fail := func(err error) error {
		return fmt.Errorf("login %s as %s: %w", host, credName(cred), endpointError(ep.Host, s.opts.CertsDir, err))
	}
	scheme, err := probe(ctx, rt, ep)
	if err != nil {
		return fail(err)
	}
	var opts []name.Option
	if ep.Insecure {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(ep.Host, opts...)
	if err != nil {
		return fmt.Errorf("login %s: %w", host, err)
	}
	tr, err := transport.NewWithContext(ctx, reg, authFor(cred), rt, nil)
	if err != nil {
		return fail(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+ep.Host+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return fail(err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		s.log.Info("registry login checked", "registry", host, "credential", credName(cred))
		return nil
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("login %s as %s: %w: the registry refused the credential (%s)", host, credName(cred), ErrUnauthorized, resp.Status)
	default:
		return fmt.Errorf("login %s: %w: GET /v2/ answered %s", host, ErrRegistryUnavailable, resp.Status)
	}
}
