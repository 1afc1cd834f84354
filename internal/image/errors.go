package image

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/peapod/peapod/internal/image/reference"
	"github.com/peapod/peapod/internal/image/registries"
	"github.com/peapod/peapod/internal/image/store"
)

// Errors a pull or lookup wraps, so that the CRI and the CLI can map them
// with errors.Is. The wrapping error says what happened and what to do.
var (
	// ErrInvalidImageName: the reference does not parse.
	ErrInvalidImageName = reference.ErrInvalidImageName
	// ErrNotFound: no such image locally, or no such tag/manifest in the
	// registry.
	ErrNotFound = store.ErrNotFound
	// ErrUnauthorized: the registry refused every credential tried (or
	// anonymous access).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrRegistryUnavailable: the registry could not be reached or spoken
	// to safely (connection refused, unknown host, TLS not trusted, plain
	// HTTP to a registry not marked insecure, server errors). The kubelet
	// reports it as RegistryUnavailable.
	ErrRegistryUnavailable = errors.New("registry unavailable")
	// ErrDigestMismatch: content did not match the digest or size that
	// named it; nothing was stored.
	ErrDigestMismatch = store.ErrDigestMismatch
	// ErrNoMatchingPlatform: an index has no manifest for this node's
	// platform.
	ErrNoMatchingPlatform = errors.New("no matching platform")
	// ErrBlocked: registries.conf blocks the registry.
	ErrBlocked = registries.ErrBlocked
	// ErrDiskFull: the image store's filesystem is full.
	ErrDiskFull = errors.New("disk full")
)

// errPlainHTTPRefused is what the transport of a secure endpoint answers
// to an http:// request.
var errPlainHTTPRefused = errors.New("plain HTTP refused for a registry not marked insecure")

// endpointError classifies a failure talking to one endpoint into one of the
// exported errors with a sentence on what to do. certsDir is shown in
// TLS advice.
func endpointError(host, certsDir string, err error) error {
	var terr *transport.Error
	var dnsErr *net.DNSError
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalidCert x509.CertificateInvalidError
	var verifyErr *tls.CertificateVerificationError
	var recordErr tls.RecordHeaderError
	msg := err.Error()
	switch {
	case errors.Is(err, ErrDigestMismatch), errors.Is(err, ErrNoMatchingPlatform),
		errors.Is(err, ErrUnauthorized), errors.Is(err, ErrNotFound),
		errors.Is(err, ErrRegistryUnavailable), errors.Is(err, ErrDiskFull):
		return err
	case errors.Is(err, syscall.ENOSPC):
		return fmt.Errorf("%w: %w: free space on the filesystem of the peapod root", ErrDiskFull, err)
	case errors.As(err, &terr):
		switch terr.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("%w: registry %s answered %d", ErrUnauthorized, host, terr.StatusCode)
		case http.StatusNotFound:
			return fmt.Errorf("%w: registry %s has no such image or tag (%s)", ErrNotFound, host, firstCode(terr))
		}
		for _, d := range terr.Errors {
			switch d.Code {
			case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
				return fmt.Errorf("%w: registry %s: %s", ErrUnauthorized, host, d.Code)
			case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode:
				return fmt.Errorf("%w: registry %s: %s", ErrNotFound, host, d.Code)
			}
		}
		return fmt.Errorf("%w: registry %s: %s", ErrRegistryUnavailable, host, redactBody(msg))
	case errors.Is(err, errPlainHTTPRefused):
		return fmt.Errorf("%w: %s: %w; set insecure = true for it in registries.conf to allow plain HTTP", ErrRegistryUnavailable, host, err)
	case strings.Contains(msg, "server gave HTTP response to HTTPS client") || errors.As(err, &recordErr):
		return fmt.Errorf("%w: %s speaks plain HTTP, and peapod never falls back to plain HTTP on its own: set insecure = true for it in registries.conf (a [[registry]] with location = %q), or serve TLS", ErrRegistryUnavailable, host, host)
	case errors.As(err, &unknownCA), errors.As(err, &hostErr), errors.As(err, &invalidCert), errors.As(err, &verifyErr),
		strings.Contains(msg, "x509:"), strings.Contains(msg, "tls:"):
		return fmt.Errorf("%w: TLS verification of %s failed (%s): put the registry's CA certificate in %s, or set insecure = true for it in registries.conf", ErrRegistryUnavailable, host, tlsReason(err), certsHint(certsDir, host))
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w: connection to %s refused: is the registry running and the address right?", ErrRegistryUnavailable, host)
	case errors.As(err, &dnsErr):
		return fmt.Errorf("%w: unknown host %s (%s)", ErrRegistryUnavailable, host, dnsErr.Err)
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.ETIMEDOUT):
		return fmt.Errorf("%w: %s: %w", ErrRegistryUnavailable, host, err)
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return fmt.Errorf("%w: %s: %w", ErrRegistryUnavailable, host, err)
	}
	return err
}

func firstCode(terr *transport.Error) string {
	if len(terr.Errors) > 0 {
		return string(terr.Errors[0].Code)
	}
	return http.StatusText(terr.StatusCode)
}

// redactBody keeps a registry error short; bodies are the registry's own
// words and never contain what we sent.
func redactBody(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}

func tlsReason(err error) string {
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	switch {
	case errors.As(err, &unknownCA):
		return "certificate signed by unknown authority"
	case errors.As(err, &hostErr):
		return hostErr.Error()
	}
	s := err.Error()
	if i := strings.Index(s, "x509: "); i >= 0 {
		return s[i:]
	}
	if i := strings.Index(s, "tls: "); i >= 0 {
		return s[i:]
	}
	return s
}

func certsHint(certsDir, host string) string {
	if certsDir == "" {
		return "CERTS_DIR/" + host + "/ca.crt (certs_dir in peapod.toml)"
	}
	return strings.TrimSuffix(certsDir, "/") + "/" + host + "/ca.crt"
}
