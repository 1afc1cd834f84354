package registries

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pki is a throwaway CA that issues server and client certificates.
type pki struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

var serial int64

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newCA(t *testing.T, cn string) *pki {
	t.Helper()
	key := newKey(t)
	serial++
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &pki{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns PEM certificate and key for a leaf certificate.
func (ca *pki) issue(t *testing.T, cn string, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte) {
	t.Helper()
	key := newKey(t)
	serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// startTLS starts an HTTPS server on 127.0.0.1 with a certificate from ca;
// with clientCA, it requires a client certificate issued by it.
func startTLS(t *testing.T, ca, clientCA *pki) (host string) {
	t.Helper()
	certPEM, keyPEM := ca.issue(t, "registry", x509.ExtKeyUsageServerAuth)
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	if clientCA != nil {
		pool := x509.NewCertPool()
		pool.AddCert(clientCA.cert)
		srv.TLS.ClientCAs = pool
		srv.TLS.ClientAuth = tls.RequireAndVerifyClientCert
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "https://")
}

func get(t *testing.T, conf *tls.Config, host string) error {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: conf}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://" + host + "/v2/")
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

func writeFiles(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTLSConfigCA(t *testing.T) {
	ca := newCA(t, "registry CA")
	other := newCA(t, "some other CA")
	host := startTLS(t, ca, nil)
	certsDir := t.TempDir()

	conf, err := TLSConfig(certsDir, host, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := get(t, conf, host); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without certs.d: %v; want a certificate verification error", err)
	}

	// Another CA first, so that every .crt is used, not just the first.
	writeFiles(t, filepath.Join(certsDir, host), map[string][]byte{
		"a-other.crt": other.pem, "ca.crt": ca.pem, "README": []byte("not a certificate"),
	})
	conf, err = TLSConfig(certsDir, host, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := get(t, conf, host); err != nil {
		t.Fatalf("with ca.crt in certs.d: %v", err)
	}
	if conf.InsecureSkipVerify {
		t.Error("InsecureSkipVerify set for a secure registry")
	}

	// The directory is per host:port: another port gets no extra CA.
	conf, err = TLSConfig(certsDir, "127.0.0.1:1", false)
	if err != nil || conf.RootCAs != nil {
		t.Errorf("other host: RootCAs %v, err %v; want the system pool", conf.RootCAs, err)
	}
}

func TestTLSConfigInsecure(t *testing.T) {
	ca := newCA(t, "registry CA")
	host := startTLS(t, ca, nil)
	conf, err := TLSConfig(t.TempDir(), host, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := get(t, conf, host); err != nil {
		t.Fatalf("insecure: %v", err)
	}
	conf, err = TLSConfig("", host, true)
	if err != nil || !conf.InsecureSkipVerify {
		t.Fatalf("insecure without certs dir: %+v, %v", conf, err)
	}
}

func TestTLSConfigClientCertificate(t *testing.T) {
	ca := newCA(t, "registry CA")
	clientCA := newCA(t, "client CA")
	host := startTLS(t, ca, clientCA)
	certsDir := t.TempDir()
	dir := filepath.Join(certsDir, host)
	writeFiles(t, dir, map[string][]byte{"ca.crt": ca.pem})

	conf, err := TLSConfig(certsDir, host, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := get(t, conf, host); err == nil {
		t.Fatal("a server requiring a client certificate accepted a client without one")
	}

	certPEM, keyPEM := clientCA.issue(t, "node", x509.ExtKeyUsageClientAuth)
	writeFiles(t, dir, map[string][]byte{"client.cert": certPEM, "client.key": keyPEM})
	conf, err = TLSConfig(certsDir, host, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(conf.Certificates) != 1 {
		t.Fatalf("%d client certificates loaded, want 1", len(conf.Certificates))
	}
	if err := get(t, conf, host); err != nil {
		t.Fatalf("with client.cert and client.key: %v", err)
	}
}

func TestTLSConfigErrors(t *testing.T) {
	ca := newCA(t, "CA")
	certPEM, keyPEM := ca.issue(t, "node", x509.ExtKeyUsageClientAuth)
	_, otherKey := ca.issue(t, "other", x509.ExtKeyUsageClientAuth)
	tests := []struct {
		name  string
		host  string
		files map[string][]byte
		want  string
	}{
		{"cert without key", "r.io", map[string][]byte{"client.cert": certPEM}, "has no key client.key"},
		{"key without cert", "r.io", map[string][]byte{"client.key": keyPEM}, "has no client certificate client.cert"},
		{"mismatched pair", "r.io", map[string][]byte{"client.cert": certPEM, "client.key": otherKey}, "client.cert"},
		{"garbage CA", "r.io:5000", map[string][]byte{"ca.crt": []byte("hello")}, "holds no PEM certificate"},
		{"host with a slash", "../etc", nil, "not a registry host"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			certsDir := t.TempDir()
			if tc.files != nil {
				writeFiles(t, filepath.Join(certsDir, tc.host), tc.files)
			}
			_, err := TLSConfig(certsDir, tc.host, false)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("TLSConfig: %v; want an error containing %q", err, tc.want)
			}
		})
	}
}
