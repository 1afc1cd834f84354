package image

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/peapod/peapod/internal/image/registries"
)

// schemeGuard refuses plain-HTTP requests unless the endpoint is insecure.
// go-containerregistry on its own falls back to http:// for localhost,
// 127.0.0.1 and RFC 1918 addresses; a registry a pod's image comes from must
// not be downgraded silently, so only registries.conf's insecure = true
// allows it.
type schemeGuard struct {
	inner    http.RoundTripper
	insecure bool
}

func (g *schemeGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !g.insecure {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("%s: %w", req.URL.Host, errPlainHTTPRefused)
	}
	return g.inner.RoundTrip(req)
}

// endpointTransport builds the HTTP transport for one endpoint: TLS material
// from certs.d (or no verification when insecure), and the scheme guard.
func (s *Service) endpointTransport(ep registries.Endpoint) (*http.Transport, http.RoundTripper, error) {
	tlsConf, err := registries.TLSConfig(s.opts.CertsDir, ep.Host, ep.Insecure)
	if err != nil {
		return nil, nil, fmt.Errorf("TLS configuration for %s: %w", ep.Host, err)
	}
	base := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   30 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		TLSClientConfig:       tlsConf,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return base, &schemeGuard{inner: base, insecure: ep.Insecure}, nil
}

// probe checks that the endpoint answers the registry API (GET /v2/, any of
// 200 or 401) and returns the scheme that worked. A secure endpoint is only
// tried over verified HTTPS; an insecure one over HTTPS without
// verification, then plain HTTP, as docker's insecure-registries. Doing this
// ourselves, before go-containerregistry's own ping, gives a precise reason
// (TLS, refused, plain HTTP) instead of a merged message.
func probe(ctx context.Context, rt http.RoundTripper, ep registries.Endpoint) (string, error) {
	schemes := []string{"https"}
	if ep.Insecure {
		schemes = append(schemes, "http")
	}
	var firstErr error
	for _, scheme := range schemes {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+ep.Host+"/v2/", nil)
		if err != nil {
			return "", err
		}
		resp, err := rt.RoundTrip(req)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
			return scheme, nil
		}
		if firstErr == nil {
			firstErr = fmt.Errorf("%w: GET %s://%s/v2/: unexpected status %s, is this a registry?", ErrRegistryUnavailable, scheme, ep.Host, resp.Status)
		}
	}
	return "", firstErr
}
