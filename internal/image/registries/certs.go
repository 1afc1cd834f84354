package registries

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// TLSConfig returns the TLS client configuration for a registry host
// (host[:port], exactly as in the image reference or registries.conf
// location), following Docker's certs.d rules, which podman and containerd
// also read:
//
//   - every *.crt file in certsDir/HOST/ is a CA certificate (PEM, may hold
//     several) trusted in addition to the system roots;
//   - every NAME.cert with its NAME.key is a client certificate offered
//     to the registry; a .cert without its .key, or a .key without its
//     .cert, is an error, because a half-installed client certificate
//     otherwise shows up later as a baffling handshake failure.
//
// A missing directory (or an empty certsDir) means the system defaults.
// insecure skips server certificate verification; client certificates are
// still offered.
func TLSConfig(certsDir, host string, insecure bool) (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: insecure}
	if certsDir == "" {
		return conf, nil
	}
	if host == "" || host == "." || host == ".." || strings.ContainsAny(host, `/\`) {
		return nil, fmt.Errorf("certs.d: %q is not a registry host[:port]", host)
	}
	dir := filepath.Join(certsDir, host)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return conf, nil
	}
	if err != nil {
		return nil, fmt.Errorf("certs.d for %s: %w", host, err)
	}
	names := map[string]bool{}
	for _, e := range entries {
		names[e.Name()] = true
	}
	for _, e := range entries { // sorted by name
		name := e.Name()
		p := filepath.Join(dir, name)
		switch {
		case strings.HasSuffix(name, ".crt"):
			pem, err := os.ReadFile(p)
			if err != nil {
				return nil, fmt.Errorf("certs.d for %s: %w", host, err)
			}
			if conf.RootCAs == nil {
				conf.RootCAs, err = x509.SystemCertPool()
				if err != nil {
					conf.RootCAs = x509.NewCertPool()
				}
			}
			if !conf.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("certs.d for %s: %s holds no PEM certificate", host, p)
			}
		case strings.HasSuffix(name, ".cert"):
			keyName := strings.TrimSuffix(name, ".cert") + ".key"
			if !names[keyName] {
				return nil, fmt.Errorf("certs.d for %s: client certificate %s has no key %s beside it", host, p, keyName)
			}
			cert, err := tls.LoadX509KeyPair(p, filepath.Join(dir, keyName))
			if err != nil {
				return nil, fmt.Errorf("certs.d for %s: client certificate %s: %w", host, p, err)
			}
			conf.Certificates = append(conf.Certificates, cert)
		case strings.HasSuffix(name, ".key"):
			certName := strings.TrimSuffix(name, ".key") + ".cert"
			if !names[certName] {
				return nil, fmt.Errorf("certs.d for %s: key %s has no client certificate %s beside it", host, p, certName)
			}
		}
	}
	return conf, nil
}
