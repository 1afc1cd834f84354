package image

// A real docker-registry (CNCF distribution) on loopback for the
// integration tests: plain HTTP, TLS with a CA the test generates, htpasswd
// basic auth, token auth with a token server the test runs, and a proxy
// that counts blob requests or corrupts a blob in transit.
//
// TODO: move these tests onto internal/registrytest and internal/imagetest
// once they land; this file then goes away.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/crypto/bcrypt"
)

const registryBin = "/usr/bin/docker-registry"

type regOptions struct {
	TLS   bool
	Users map[string]string // htpasswd basic auth (needs TLS)
	Token bool              // token auth with Users at a token server (needs TLS)
}

type testRegistry struct {
	Host     string
	CertsDir string // certs.d with Host/ca.crt when TLS
	ca       *testCA
	users    map[string]string
	// Tokens are every token the token server issued.
	mu     sync.Mutex
	Tokens []string
}

type testCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
}

func newCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "peapod test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// leaf issues a certificate for 127.0.0.1 and returns PEM cert, PEM key
// and the DER certificate.
func (ca *testCA) leaf(t *testing.T) ([]byte, []byte, []byte, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), der, key
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func startRegistry(t *testing.T, o regOptions) *testRegistry {
	t.Helper()
	if _, err := os.Stat(registryBin); err != nil {
		t.Fatalf("%s missing: install it with `make deps`", registryBin)
	}
	dir := t.TempDir()
	host := freePort(t)
	r := &testRegistry{Host: host, users: o.Users}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n", filepath.Join(dir, "data"), host)
	if o.TLS {
		r.ca = newCA(t)
		certPEM, keyPEM, _, _ := r.ca.leaf(t)
		os.WriteFile(filepath.Join(dir, "srv.crt"), certPEM, 0o600)
		os.WriteFile(filepath.Join(dir, "srv.key"), keyPEM, 0o600)
		fmt.Fprintf(&cfg, "  tls:\n    certificate: %s\n    key: %s\n", filepath.Join(dir, "srv.crt"), filepath.Join(dir, "srv.key"))
		r.CertsDir = filepath.Join(dir, "certs.d")
		os.MkdirAll(filepath.Join(r.CertsDir, host), 0o700)
		os.WriteFile(filepath.Join(r.CertsDir, host, "ca.crt"), r.ca.certPEM, 0o600)
	}
	switch {
	case o.Token:
		realm, bundle := r.startTokenServer(t, dir)
		fmt.Fprintf(&cfg, "auth:\n  token:\n    realm: %s\n    service: peapod-test\n    issuer: peapod-test-issuer\n    rootcertbundle: %s\n", realm, bundle)
	case o.Users != nil:
		var hp bytes.Buffer
		for u, p := range o.Users {
			h, _ := bcrypt.GenerateFromPassword([]byte(p), bcrypt.MinCost)
			fmt.Fprintf(&hp, "%s:%s\n", u, h)
		}
		os.WriteFile(filepath.Join(dir, "htpasswd"), hp.Bytes(), 0o600)
		fmt.Fprintf(&cfg, "auth:\n  htpasswd:\n    realm: peapod-test\n    path: %s\n", filepath.Join(dir, "htpasswd"))
	}
	cfgPath := filepath.Join(dir, "config.yml")
	os.WriteFile(cfgPath, []byte(cfg.String()), 0o600)
	cmd := exec.Command(registryBin, "serve", cfgPath)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", host)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker-registry did not start: %s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return r
}

// startTokenServer runs a Docker token server over TLS that signs JWTs with
// a key whose certificate (x5c) chains to the returned bundle.
func (r *testRegistry) startTokenServer(t *testing.T, dir string) (realm, bundle string) {
	signCA := newCA(t)
	_, _, signDER, signKey := signCA.leaf(t)
	bundle = filepath.Join(dir, "token-ca.crt")
	os.WriteFile(bundle, signCA.certPEM, 0o600)
	mux := http.NewServeMux()
	mux.HandleFunc("/token", func(w http.ResponseWriter, req *http.Request) {
		u, p, ok := req.BasicAuth()
		if !ok || r.users[u] == "" || r.users[u] != p {
			http.Error(w, `{"details":"invalid credentials"}`, http.StatusUnauthorized)
			return
		}
		var access []map[string]any
		for _, scope := range req.URL.Query()["scope"] {
			parts := strings.Split(scope, ":")
			if len(parts) == 3 {
				access = append(access, map[string]any{"type": parts[0], "name": parts[1], "actions": strings.Split(parts[2], ",")})
			}
		}
		now := time.Now()
		tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
			"iss": "peapod-test-issuer", "sub": u, "aud": req.URL.Query().Get("service"),
			"exp": now.Add(5 * time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "iat": now.Unix(),
			"jti": fmt.Sprint(now.UnixNano()), "access": access,
		})
		tok.Header["x5c"] = []string{base64.StdEncoding.EncodeToString(signDER)}
		s, err := tok.SignedString(signKey)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		r.mu.Lock()
		r.Tokens = append(r.Tokens, s)
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"token": s, "access_token": s, "expires_in": 300})
	})
	certPEM, keyPEM, _, _ := r.ca.leaf(t)
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	// A host name, not 127.0.0.1: go-containerregistry refuses token realms
	// at private IP literals other than the registry's own host:port.
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return "https://localhost:" + port + "/token", bundle
}

func (r *testRegistry) tokens() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.Tokens...)
}

// push uploads an image or index as repo:tag (repo relative to the
// registry), with the first user's credentials when auth is on.
func (r *testRegistry) push(t *testing.T, repoTag string, img any) {
	t.Helper()
	opts := []name.Option{}
	tr := &http.Transport{}
	if r.ca != nil {
		pool := x509.NewCertPool()
		pool.AddCert(r.ca.cert)
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	} else {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.ParseReference(r.Host+"/"+repoTag, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ropts := []remote.Option{remote.WithTransport(tr), remote.WithContext(t.Context())}
	for u, p := range r.users {
		ropts = append(ropts, remote.WithAuth(&authn.Basic{Username: u, Password: p}))
		break
	}
	switch v := img.(type) {
	case v1.Image:
		err = remote.Write(ref, v, ropts...)
	case v1.ImageIndex:
		err = remote.WriteIndex(ref, v, ropts...)
	default:
		t.Fatalf("push %T", img)
	}
	if err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	tr.CloseIdleConnections()
}

// blobProxy forwards to a registry, counts blob GETs and can flip a byte
// of one blob in transit.
type blobProxy struct {
	Host    string
	mu      sync.Mutex
	gets    map[string]int
	corrupt string
}

func newBlobProxy(t *testing.T, target *testRegistry) *blobProxy {
	t.Helper()
	p := &blobProxy{gets: map[string]int{}}
	u, _ := url.Parse("http://" + target.Host)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(resp *http.Response) error {
		i := strings.LastIndex(resp.Request.URL.Path, "/blobs/")
		if i < 0 || resp.Request.Method != http.MethodGet {
			return nil
		}
		d := resp.Request.URL.Path[i+len("/blobs/"):]
		p.mu.Lock()
		p.gets[d]++
		corrupt := p.corrupt == d
		p.mu.Unlock()
		if corrupt && resp.StatusCode == 200 {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			b[len(b)/2] ^= 0x01
			resp.Body = io.NopCloser(bytes.NewReader(b))
		}
		return nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: rp}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	p.Host = l.Addr().String()
	return p
}

func (p *blobProxy) BlobGets(d string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.gets[d]
}

// total counts every blob GET.
func (p *blobProxy) total() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.gets {
		n += c
	}
	return n
}

func (p *blobProxy) CorruptBlob(d string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.corrupt = d
}
