package image

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"
)

func TestVerifierRules(t *testing.T) {
	data := []byte("layer bytes")
	good := digest.FromBytes(data)
	flipped := bytes.Clone(data)
	flipped[3] ^= 0xff
	for _, tc := range []struct {
		name    string
		body    []byte
		size    int64
		readErr error
		want    error // nil, or an error errors.Is must match
	}{
		{"intact", data, int64(len(data)), nil, nil},
		{"flipped byte", flipped, int64(len(data)), nil, ErrDigestMismatch},
		{"flipped byte with a library error at EOF", flipped, int64(len(data)), errors.New("error verifying sha256 checksum"), ErrDigestMismatch},
		{"too long", append(bytes.Clone(data), 'x'), int64(len(data)), nil, ErrDigestMismatch},
		{"truncated", data[:4], int64(len(data)), nil, ErrDigestMismatch},
		{"network error mid-stream", data[:4], int64(len(data)), syscall.ECONNRESET, syscall.ECONNRESET},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r io.Reader = bytes.NewReader(tc.body)
			if tc.readErr != nil {
				r = io.MultiReader(r, errReader{tc.readErr})
			}
			v := newVerifier(r, good, tc.size, nil)
			err := v.verify(drain(v))
			if tc.want == nil && err != nil {
				t.Fatalf("verify = %v, want nil", err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("verify = %v, want %v", err, tc.want)
			}
		})
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestEndpointErrorClassification(t *testing.T) {
	refused := &url.Error{Op: "Get", URL: "https://127.0.0.1:1/v2/", Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}
	for _, tc := range []struct {
		name  string
		err   error
		is    error
		words []string
	}{
		{"refused", refused, ErrRegistryUnavailable, []string{"refused", "reg:5000"}},
		{"unknown host", &net.DNSError{Err: "no such host", Name: "nope.invalid", IsNotFound: true}, ErrRegistryUnavailable, []string{"unknown host"}},
		{"plain http to https", errors.New(`Get "https://h/v2/": http: server gave HTTP response to HTTPS client`), ErrRegistryUnavailable, []string{"insecure = true", "registries.conf"}},
		{"tls unknown authority", fmt.Errorf("Get: %w", &tls509{}), ErrRegistryUnavailable, []string{"/etc/peapod/certs.d/reg:5000/ca.crt", "insecure = true"}},
		{"guard", fmt.Errorf("x: %w", errPlainHTTPRefused), ErrRegistryUnavailable, []string{"insecure = true"}},
		{"401", &transport.Error{StatusCode: 401}, ErrUnauthorized, []string{"reg:5000"}},
		{"403", &transport.Error{StatusCode: 403}, ErrUnauthorized, nil},
		{"404", &transport.Error{StatusCode: 404, Errors: []transport.Diagnostic{{Code: transport.ManifestUnknownErrorCode}}}, ErrNotFound, []string{"MANIFEST_UNKNOWN"}},
		{"disk full", fmt.Errorf("write: %w", syscall.ENOSPC), ErrDiskFull, []string{"free space"}},
		{"500", &transport.Error{StatusCode: 500}, ErrRegistryUnavailable, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := endpointError("reg:5000", "/etc/peapod/certs.d", tc.err)
			if !errors.Is(err, tc.is) {
				t.Fatalf("endpointError(%v) = %v, want %v", tc.err, err, tc.is)
			}
			for _, w := range tc.words {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not say %q", err, w)
				}
			}
		})
	}
}

// tls509 stands for a certificate verification failure.
type tls509 struct{}

func (*tls509) Error() string {
	return "tls: failed to verify certificate: x509: certificate signed by unknown authority"
}

func TestSchemeGuardRefusesPlainHTTPUnlessInsecure(t *testing.T) {
	called := 0
	inner := roundTripFunc(func(*http.Request) (*http.Response, error) {
		called++
		return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader(""))}, nil
	})
	secure := &schemeGuard{inner: inner}
	req, _ := http.NewRequest("GET", "http://127.0.0.1:5000/v2/", nil)
	if _, err := secure.RoundTrip(req); !errors.Is(err, errPlainHTTPRefused) {
		t.Fatalf("secure guard let http through: %v", err)
	}
	if called != 0 {
		t.Fatal("request reached the network")
	}
	req, _ = http.NewRequest("GET", "https://127.0.0.1:5000/v2/", nil)
	if _, err := secure.RoundTrip(req); err != nil || called != 1 {
		t.Fatalf("https refused: %v", err)
	}
	insecure := &schemeGuard{inner: inner, insecure: true}
	req, _ = http.NewRequest("GET", "http://127.0.0.1:5000/v2/", nil)
	if _, err := insecure.RoundTrip(req); err != nil || called != 2 {
		t.Fatalf("insecure guard refused http: %v", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestPickPlatform(t *testing.T) {
	idx := &v1.IndexManifest{Manifests: []v1.Descriptor{
		{Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("a", 64)}, Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}},
		{Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("b", 64)}, Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}},
		{Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("c", 64)}, Platform: &v1.Platform{OS: "unknown", Architecture: "unknown"}},
	}}
	s := &Service{opts: Options{Platform: v1.Platform{OS: "linux", Architecture: "amd64"}}}
	d, err := s.pickPlatform(idx)
	if err != nil || d.Digest.Hex != strings.Repeat("b", 64) {
		t.Fatalf("pickPlatform = %v, %v; want the amd64 manifest", d.Digest, err)
	}
	s.opts.Platform = v1.Platform{OS: "linux", Architecture: "s390x"}
	_, err = s.pickPlatform(idx)
	if !errors.Is(err, ErrNoMatchingPlatform) || !strings.Contains(err.Error(), "linux/arm64") || !strings.Contains(err.Error(), "linux/s390x") {
		t.Fatalf("pickPlatform(s390x) = %v, want ErrNoMatchingPlatform naming what exists", err)
	}
}

func TestRegistryHost(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:5000":              "127.0.0.1:5000",
		"https://127.0.0.1:5000/v2/":  "127.0.0.1:5000",
		"http://reg.example.com/v1/":  "reg.example.com",
		"https://index.docker.io/v1/": "docker.io",
		"docker.io":                   "docker.io",
	} {
		if got := RegistryHost(in); got != want {
			t.Errorf("RegistryHost(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPullErrorNamesSourcesNotSecretsAndUnwrapsTheRegistry(t *testing.T) {
	pe := &PullError{Image: "127.0.0.1:5000/app:v1", Attempts: []Attempt{
		{Endpoint: "127.0.0.1:1/app", Mirror: true, Credential: "secret ns/a", Err: fmt.Errorf("%w: connection to 127.0.0.1:1 refused", ErrRegistryUnavailable)},
		{Endpoint: "127.0.0.1:5000/app", Credential: "secret ns/a", Err: fmt.Errorf("%w: registry 127.0.0.1:5000 answered 401", ErrUnauthorized)},
		{Endpoint: "127.0.0.1:5000/app", Credential: "node config /root/.docker/config.json", Err: fmt.Errorf("%w: registry 127.0.0.1:5000 answered 401", ErrUnauthorized)},
	}}
	if !errors.Is(pe, ErrUnauthorized) || errors.Is(pe, ErrRegistryUnavailable) {
		t.Fatalf("PullError unwraps to the wrong error: %v", pe)
	}
	msg := pe.Error()
	for _, w := range []string{"secret ns/a", "node config /root/.docker/config.json", "peapod login 127.0.0.1:5000", "(mirror)", "refused"} {
		if !strings.Contains(msg, w) {
			t.Errorf("%q does not say %q", msg, w)
		}
	}
}

func TestRedactURLDropsSignedQuery(t *testing.T) {
	for _, tc := range []struct {
		name, url, mustNot, must string
	}{
		{"signed storage URL", "https://storage.example/blob?X-Amz-Signature=s3cr3t&X-Amz-Credential=AKIA", "s3cr3t", "storage.example/blob"},
		{"user info", "https://user:pa55@storage.example/blob", "pa55", "storage.example/blob"},
		{"plain URL kept", "https://registry.example/v2/app/blobs/sha256:ab", "", "registry.example/v2/app/blobs/sha256:ab"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := redactURL(fmt.Errorf("get: %w", &url.Error{Op: "Get", URL: tc.url, Err: io.ErrUnexpectedEOF}))
			msg := err.Error()
			if tc.mustNot != "" && strings.Contains(msg, tc.mustNot) {
				t.Errorf("error %q shows %q", msg, tc.mustNot)
			}
			if !strings.Contains(msg, tc.must) || !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("error %q: want it to name %q and wrap the cause", msg, tc.must)
			}
		})
	}
}
