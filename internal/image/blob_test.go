package image

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/peapod/peapod/internal/image/keyring"
	"github.com/peapod/peapod/internal/imagetest"
	"github.com/peapod/peapod/internal/registrytest"
)

// redirectingFront is a registry front that, like registries keeping blobs
// in object storage, answers every blob GET with a redirect to another host.
// It requires basic auth of its own; the storage host records whether any
// request reached it carrying credentials.
type redirectingFront struct {
	front, storage *httptest.Server

	mu        sync.Mutex
	blobGets  int
	withCreds int
	corrupt   bool
}

func newRedirectingFront(t *testing.T, reg *registrytest.Registry, user, pass string, corrupt bool) *redirectingFront {
	t.Helper()
	rf := &redirectingFront{corrupt: corrupt}
	regURL := &url.URL{Scheme: "http", Host: reg.Host}
	rf.storage = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rf.mu.Lock()
		rf.blobGets++
		if r.Header.Get("Authorization") != "" {
			rf.withCreds++
		}
		rf.mu.Unlock()
		// /storage/<repo>/blobs/<digest> → the registry's own blob URL.
		resp, err := http.Get(regURL.String() + "/v2/" + strings.TrimPrefix(r.URL.Path, "/storage/"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		if rf.corrupt && len(b) > 0 {
			b[len(b)/2] ^= 0xff
		}
		w.WriteHeader(resp.StatusCode)
		w.Write(b)
	}))
	t.Cleanup(rf.storage.Close)
	proxy := httputil.NewSingleHostReverseProxy(regURL)
	rf.front = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="front"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:") {
			http.Redirect(w, r, rf.storage.URL+"/storage/"+strings.TrimPrefix(r.URL.Path, "/v2/"), http.StatusTemporaryRedirect)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(rf.front.Close)
	return rf
}

func (rf *redirectingFront) host() string { return strings.TrimPrefix(rf.front.URL, "http://") }

// Blobs are fetched without go-containerregistry's verifying reader: a
// registry that redirects blob GETs to storage on another host still works,
// the registry's credentials never reach that host, and a blob the storage
// corrupts is refused with nothing stored.
func TestBlobRedirectToStorage(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	big := strings.Repeat("0123456789abcdef", 64<<10)
	img := testImage(t, imagetest.Docker,
		layer(t, imagetest.Gzip, imagetest.Reg("base", "base")),
		layer(t, imagetest.Gzip, imagetest.Reg("big", big)))
	push(t, reg, "app:v1", img)
	cred := keyring.Credential{Username: "bob", Password: "front-door-secret", Source: keyring.Source{Kind: keyring.SourceSecret, Namespace: "ns", Name: "front"}}

	for _, tc := range []struct {
		name    string
		corrupt bool
	}{
		{"intact", false},
		{"corrupted in storage", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rf := newRedirectingFront(t, reg, cred.Username, cred.Password, tc.corrupt)
			s, _ := testService(t, Options{RegistriesConfig: insecureConf(t, rf.host())})
			got, err := s.Pull(t.Context(), rf.host()+"/app:v1", []keyring.Credential{cred}, PullOptions{})
			rf.mu.Lock()
			gets, withCreds := rf.blobGets, rf.withCreds
			rf.mu.Unlock()
			if gets == 0 {
				t.Fatal("no blob was fetched from the storage host: the redirect was not exercised")
			}
			if withCreds != 0 {
				t.Errorf("%d of %d storage requests carried the registry's credentials", withCreds, gets)
			}
			if tc.corrupt {
				if !errors.Is(err, ErrDigestMismatch) {
					t.Fatalf("pull of blobs corrupted in storage = %v, want ErrDigestMismatch", err)
				}
				assertNothingStored(t, s)
				return
			}
			if err != nil {
				t.Fatalf("pull through a redirecting registry: %v", err)
			}
			if cfg, err := img.ConfigName(); err != nil || got.ID.String() != cfg.String() {
				t.Errorf("pulled image ID %s, want the config digest %v (%v)", got.ID, cfg, err)
			}
			// config + 2 layers, each fetched once.
			if gets != 3 {
				t.Errorf("storage served %d blob GETs, want 3 (config and two layers, each once)", gets)
			}
		})
	}
}

// The image config is a blob too: corrupted in transit, the pull fails
// with ErrDigestMismatch before any layer is fetched, and nothing is stored.
func TestCorruptedConfigIsRejected(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	img := simpleImage(t, "config")
	push(t, reg, "app:v1", img)
	cfg, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	proxy := registrytest.NewProxy(t, reg.Host, registrytest.ProxyOptions{})
	proxy.CorruptBlob(cfg.String())
	s, _ := testService(t, Options{RegistriesConfig: insecureConf(t, proxy.Host)})
	_, err = s.Pull(t.Context(), proxy.Host+"/app:v1", nil, PullOptions{})
	if !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("pull with a corrupted config = %v, want ErrDigestMismatch", err)
	}
	if proxy.BlobGets(cfg.String()) == 0 {
		t.Fatal("the config was never fetched: the test did not exercise verification")
	}
	assertNothingStored(t, s)
}
