package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"

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

// blobClient fetches blobs of one repository on one endpoint with one
// credential. go-containerregistry's remote layers wrap every blob body in
// their own SHA-256 check; peapod's verifier already hashes each byte (for
// its precise digest, size and progress reports), so blobs are fetched here
// with a plain GET through go-containerregistry's authenticating transport
// (same ping, token exchange, scheme pick, retries and user agent as the
// puller's manifests), and hashed once. Redirects (blob storage behind a
// registry) are followed by net/http; the transport only sends the
// registry's credentials to the registry's own host.
type blobClient struct {
	repo name.Repository
	auth authn.Authenticator
	rt   http.RoundTripper // the endpoint's transport (TLS, scheme guard)

	mu     sync.Mutex
	client *http.Client // built on first use: a fully cached image needs none
}

// retryBackoff is how the puller and the blob client retry network flakes.
var retryBackoff = transport.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 3}

func newBlobClient(repo name.Repository, auth authn.Authenticator, rt http.RoundTripper) *blobClient {
	return &blobClient{repo: repo, auth: auth, rt: rt}
}

func (b *blobClient) httpClient(ctx context.Context) (*http.Client, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.client != nil {
		return b.client, nil
	}
	inner := transport.NewRetry(b.rt,
		transport.WithRetryBackoff(retryBackoff),
		transport.WithRetryStatusCodes(http.StatusRequestTimeout, http.StatusTooManyRequests,
			http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout))
	inner = transport.NewUserAgent(inner, "peapod")
	tr, err := transport.NewWithContext(ctx, b.repo.Registry, b.auth, inner, []string{b.repo.Scope(transport.PullScope)})
	if err != nil {
		return nil, err
	}
	b.client = &http.Client{Transport: tr}
	return b.client, nil
}

// open starts the download of blob d. The body is not verified: the caller
// reads it through a verifier.
func (b *blobClient) open(ctx context.Context, d digest.Digest) (io.ReadCloser, error) {
	c, err := b.httpClient(ctx)
	if err != nil {
		return nil, err
	}
	u := url.URL{Scheme: b.repo.Scheme(), Host: b.repo.RegistryStr(), Path: "/v2/" + b.repo.RepositoryStr() + "/blobs/" + d.String()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch blob %s: %w", d, redactURL(err))
	}
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		resp.Body.Close()
		return nil, err
	}
	return resp.Body, nil
}

// redactURL drops the query of the URL a request error names: a redirect to
// blob storage often carries a signature or token there, which must not
// reach logs or pod events.
func redactURL(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	u, perr := url.Parse(ue.URL)
	if perr != nil {
		return &url.Error{Op: ue.Op, URL: "(unparsable URL)", Err: ue.Err}
	}
	if u.RawQuery == "" && u.User == nil {
		return err
	}
	u.RawQuery, u.User = "", nil
	return &url.Error{Op: ue.Op, URL: u.String() + "?(query redacted)", Err: ue.Err}
}
