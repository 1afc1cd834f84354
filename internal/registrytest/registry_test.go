package registrytest

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

func testImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(2048, 2)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func digestOf(t *testing.T, img interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// pull reads repoTag back with auth and fetches every layer, as a client
// that unpacks the image would.
func pull(t *testing.T, r *Registry, repoTag string, auth authn.Authenticator) (v1.Image, error) {
	t.Helper()
	ref, err := r.Reference(repoTag)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(ref, r.RemoteOptions(t.Context(), auth)...)
	if err != nil {
		return nil, err
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			return nil, err
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
	}
	return img, nil
}

func statusOf(err error) int {
	var te *transport.Error
	if errors.As(err, &te) {
		return te.StatusCode
	}
	return 0
}

func TestModes(t *testing.T) {
	users := map[string]string{"alice": "s3cret-alice"}
	tests := []struct {
		name string
		opts Options
		// auth: whether the registry refuses anonymous and wrong credentials.
		auth bool
	}{
		{"plain", Options{}, false},
		{"tls", Options{TLS: true}, false},
		{"htpasswd over plain http", Options{Htpasswd: users}, true},
		{"htpasswd over tls", Options{TLS: true, Htpasswd: users}, true},
		{"token over tls", Options{TLS: true, Token: &TokenOptions{Users: users}}, true},
		{"token over plain http", Options{Token: &TokenOptions{Users: users}}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := Start(t, tc.opts)
			if !strings.HasPrefix(r.Host, "127.0.0.1:") {
				t.Fatalf("Host = %q, want 127.0.0.1:PORT", r.Host)
			}
			img := testImage(t)
			if err := r.Push(t.Context(), "team/app:v1", img); err != nil {
				t.Fatal(err)
			}
			good := authn.Authenticator(authn.Anonymous)
			if tc.auth {
				good = &authn.Basic{Username: "alice", Password: "s3cret-alice"}
			}
			got, err := pull(t, r, "team/app:v1", good)
			if err != nil {
				t.Fatalf("pull with right credentials: %v\nregistry log:\n%s", err, lastLines(r.Log(), 10))
			}
			if want := digestOf(t, img); digestOf(t, got) != want {
				t.Errorf("pulled digest %s, pushed %s", digestOf(t, got), want)
			}
			if !tc.auth {
				return
			}
			_, err = pull(t, r, "team/app:v1", &authn.Basic{Username: "alice", Password: "wrong"})
			if statusOf(err) != http.StatusUnauthorized {
				t.Errorf("pull with a wrong password: err = %v, want HTTP 401", err)
			}
			_, err = pull(t, r, "team/app:v1", authn.Anonymous)
			if statusOf(err) != http.StatusUnauthorized {
				t.Errorf("anonymous pull: err = %v, want HTTP 401", err)
			}
		})
	}
}

func TestTokenServerRecordsRequestsAndTokens(t *testing.T) {
	r := Start(t, Options{TLS: true, Token: &TokenOptions{Users: map[string]string{"bob": "pw-bob"}}})
	if err := r.Push(t.Context(), "app:v1", testImage(t)); err != nil {
		t.Fatal(err)
	}
	if n := r.TokenServer.RequestCount(); n != 0 {
		t.Fatalf("the harness's own push was counted: %d requests", n)
	}
	if _, err := pull(t, r, "app:v1", &authn.Basic{Username: "bob", Password: "pw-bob"}); err != nil {
		t.Fatal(err)
	}
	reqs := r.TokenServer.Requests()
	if len(reqs) == 0 || reqs[0].User != "bob" || reqs[0].Status != http.StatusOK {
		t.Fatalf("requests = %+v, want a granted request by bob", reqs)
	}
	if want := "repository:app:pull"; !strings.Contains(strings.Join(reqs[0].Scopes, " "), want) {
		t.Errorf("scopes = %v, want %s", reqs[0].Scopes, want)
	}
	toks := r.TokenServer.Tokens()
	if len(toks) == 0 || strings.Count(toks[0], ".") != 2 {
		t.Fatalf("tokens = %q, want JWTs", toks)
	}

	before := r.TokenServer.RequestCount()
	if _, err := pull(t, r, "app:v1", &authn.Basic{Username: "bob", Password: "nope"}); err == nil {
		t.Fatal("pull with a wrong password worked")
	}
	reqs = r.TokenServer.Requests()
	if len(reqs) != before+1 || reqs[before].Status != http.StatusUnauthorized || reqs[before].User != "" {
		t.Errorf("after a wrong password: requests = %+v, want one more answered 401", reqs)
	}
}

func TestTokenGrant(t *testing.T) {
	// Public repositories for everyone, private/ only for carol.
	grant := func(user, repo string, actions []string) []string {
		if strings.HasPrefix(repo, "private/") && user != "carol" {
			return nil
		}
		return []string{"pull"}
	}
	r := Start(t, Options{Token: &TokenOptions{Users: map[string]string{"carol": "c", "dave": "d"}, Grant: grant}})
	for _, repo := range []string{"public/app:v1", "private/app:v1"} {
		if err := r.Push(t.Context(), repo, testImage(t)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		repo string
		auth authn.Authenticator
		ok   bool
	}{
		{"public/app:v1", authn.Anonymous, true},
		{"private/app:v1", authn.Anonymous, false},
		{"private/app:v1", &authn.Basic{Username: "dave", Password: "d"}, false},
		{"private/app:v1", &authn.Basic{Username: "carol", Password: "c"}, true},
	}
	for _, tc := range tests {
		_, err := pull(t, r, tc.repo, tc.auth)
		if (err == nil) != tc.ok {
			t.Errorf("pull %s as %v: err = %v, want ok=%v", tc.repo, tc.auth, err, tc.ok)
		}
	}
}

func TestLaunchCloseLeavesNoProcess(t *testing.T) {
	dir := t.TempDir()
	r, err := Launch(t.Context(), dir, Options{Htpasswd: map[string]string{"u": "p"}})
	if err != nil {
		t.Fatal(err)
	}
	pid := r.Pid()
	if pid == 0 || !r.Running() {
		t.Fatal("registry not running after Launch")
	}
	r.Close()
	r.Close()
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("registry pid %d still exists after Close (kill 0: %v)", pid, err)
	}
	if c, err := net.Dial("tcp", r.Host); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after Close", r.Host)
	}
	if !strings.Contains(r.Log(), "listening on "+r.Host) {
		t.Errorf("log does not say where it listened:\n%s", r.Log())
	}
}

func TestStopRestart(t *testing.T) {
	r := Start(t, Options{})
	img := testImage(t)
	if err := r.Push(t.Context(), "app:v1", img); err != nil {
		t.Fatal(err)
	}
	r.Stop()
	if c, err := net.Dial("tcp", r.Host); err == nil {
		c.Close()
		t.Fatalf("%s accepts connections after Stop", r.Host)
	}
	if _, err := pull(t, r, "app:v1", nil); err == nil {
		t.Fatal("pull from a stopped registry worked")
	}
	if err := r.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	got, err := pull(t, r, "app:v1", nil)
	if err != nil {
		t.Fatalf("pull after Restart: %v", err)
	}
	if digestOf(t, got) != digestOf(t, img) {
		t.Error("image changed across Restart")
	}
}

func TestWriteCertsDir(t *testing.T) {
	r := Start(t, Options{TLS: true})
	dir := t.TempDir()
	if err := r.WriteCertsDir(dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, r.Host, "ca.crt"))
	if err != nil || string(b) != string(r.CAPEM) {
		t.Fatalf("certs.d/%s/ca.crt = %q, %v; want the CA", r.Host, b, err)
	}
	if f, _ := os.ReadFile(r.CAFile); string(f) != string(r.CAPEM) {
		t.Error("CAFile does not hold CAPEM")
	}
	// Without the CA the registry's certificate is not trusted.
	_, err = http.Get(r.URL() + "/v2/")
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("GET with system roots: err = %v, want a certificate error", err)
	}
	if err := Start(t, Options{}).WriteCertsDir(dir); err == nil {
		t.Error("WriteCertsDir on a plain-HTTP registry worked")
	}

	tok := Start(t, Options{TLS: true, Token: &TokenOptions{}})
	if err := tok.WriteCertsDir(dir); err != nil {
		t.Fatal(err)
	}
	realmHost := tok.TokenServer.Host()
	if !strings.HasPrefix(realmHost, "localhost:") {
		t.Fatalf("token server host %q, want localhost:PORT", realmHost)
	}
	for _, h := range []string{tok.Host, realmHost} {
		if b, err := os.ReadFile(filepath.Join(dir, h, "ca.crt")); err != nil || string(b) != string(tok.CAPEM) {
			t.Errorf("certs.d/%s/ca.crt = %v, want the CA", h, err)
		}
	}
}

func TestStartCleanupKillsRegistry(t *testing.T) {
	var pid int
	var host string
	t.Run("inner", func(t *testing.T) {
		r := Start(t, Options{TLS: true, Token: &TokenOptions{}})
		pid, host = r.Pid(), r.TokenServer.Host()
	})
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("registry pid %d still exists after the test ended (kill 0: %v)", pid, err)
	}
	if c, err := net.Dial("tcp", host); err == nil {
		c.Close()
		t.Errorf("token server %s still accepts connections after the test ended", host)
	}
}

func TestProxyCountsAndCorrupts(t *testing.T) {
	r := Start(t, Options{})
	img := testImage(t)
	if err := r.Push(t.Context(), "app:v1", img); err != nil {
		t.Fatal(err)
	}
	p := NewProxy(t, r.Host, ProxyOptions{})
	via := &Registry{Host: p.Host, transport: r.transport}

	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	if _, err := pull(t, via, "app:v1", nil); err != nil {
		t.Fatalf("pull through the proxy: %v", err)
	}
	if n := p.BlobGets(ld.String()); n != 1 {
		t.Errorf("BlobGets(%s) = %d, want 1", ld, n)
	}
	if !contains(p.Requests(), "GET /v2/app/manifests/v1") {
		t.Errorf("requests %v lack the manifest GET", p.Requests())
	}

	p.CorruptBlob(ld.String())
	_, err := pull(t, via, "app:v1", nil)
	if err == nil || !strings.Contains(err.Error(), ld.Hex) {
		t.Errorf("pull of a corrupted blob: err = %v, want a digest mismatch for %s", err, ld)
	}

	p.Reset()
	p.FailRequests("/manifests/", http.StatusServiceUnavailable)
	_, err = pull(t, via, "app:v1", nil)
	if statusOf(err) != http.StatusServiceUnavailable {
		t.Errorf("pull with failing manifests: err = %v, want 503", err)
	}
}

func TestProxyToTLSRegistry(t *testing.T) {
	r := Start(t, Options{TLS: true, Htpasswd: map[string]string{"erin": "pw"}})
	img := testImage(t)
	if err := r.Push(t.Context(), "app:v1", img); err != nil {
		t.Fatal(err)
	}
	p := NewProxy(t, r.Host, ProxyOptions{TLS: true, Transport: r.Transport()})
	via := &Registry{Host: p.Host, transport: r.transport}
	got, err := pull(t, via, "app:v1", &authn.Basic{Username: "erin", Password: "pw"})
	if err != nil {
		t.Fatalf("pull through the proxy: %v", err)
	}
	if digestOf(t, got) != digestOf(t, img) {
		t.Error("digest changed through the proxy")
	}
	if len(p.Requests()) == 0 {
		t.Error("proxy saw no requests")
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
