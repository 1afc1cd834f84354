package registrytest

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// ProxyOptions configure a Proxy.
type ProxyOptions struct {
	// Transport reaches the target; nil means http.DefaultTransport. The
	// proxy speaks plain HTTP to its clients and, unless TLS is set, to
	// the target.
	Transport http.RoundTripper
	// TLS reaches the target over HTTPS (pass the target's Transport()).
	TLS bool
}

// Proxy forwards plain HTTP on 127.0.0.1 to a registry, counting what
// passes and optionally breaking it: the mirror, retry and verification
// tests use it to see which blobs a client fetched and what it does with a
// corrupt one, and concurrency tests hold a blob to keep a pull stuck at a
// known point. Token realms are not rewritten: clients still fetch tokens
// from the token server directly.
type Proxy struct {
	// Host is the proxy's "127.0.0.1:PORT".
	Host string

	srv *http.Server

	mu       sync.Mutex
	requests []string
	blobGets map[string]int
	corrupt  map[string]bool
	fail     []failRule
	holds    map[string]*hold
}

// hold keeps GETs of one blob waiting until release is closed; arrived is
// closed when the first of them is waiting.
type hold struct {
	release chan struct{}
	arrived chan struct{}
	once    sync.Once
}

type failRule struct {
	match  string
	status int
}

// NewProxy starts a proxy to targetHost ("127.0.0.1:PORT") for the test.
func NewProxy(t testing.TB, targetHost string, opts ProxyOptions) *Proxy {
	t.Helper()
	p, err := ListenProxy(targetHost, opts)
	if err != nil {
		t.Fatalf("start proxy to %s: %v", targetHost, err)
	}
	t.Cleanup(p.Close)
	return p
}

// ListenProxy starts a proxy outside a test; Close stops it.
func ListenProxy(targetHost string, opts ProxyOptions) (*Proxy, error) {
	scheme := "http"
	if opts.TLS {
		scheme = "https"
	}
	target := &url.URL{Scheme: scheme, Host: targetHost}
	p := &Proxy{blobGets: map[string]int{}, corrupt: map[string]bool{}, holds: map[string]*hold{}}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			// Keep the Host the client asked for: the registry builds
			// upload Location URLs from it, and they must come back here.
			pr.Out.Host = pr.In.Host
		},
		Transport:      opts.Transport,
		ModifyResponse: p.modify,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for proxy: %w", err)
	}
	p.Host = ln.Addr().String()
	p.srv = &http.Server{Handler: p.front(rp), ReadHeaderTimeout: 10 * time.Second}
	go p.srv.Serve(ln) //nolint:errcheck // Serve returns when Close stops it
	return p, nil
}

// front records each request, answers those a FailRequests rule matches
// and keeps held blob GETs waiting.
func (p *Proxy) front(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		line := r.Method + " " + r.URL.Path
		var h *hold
		p.mu.Lock()
		p.requests = append(p.requests, line)
		if d, ok := blobDigest(r); ok && r.Method == http.MethodGet {
			p.blobGets[d]++
			h = p.holds[d]
		}
		status := 0
		for _, f := range p.fail {
			if strings.Contains(line, f.match) {
				status = f.status
			}
		}
		p.mu.Unlock()
		if status != 0 {
			http.Error(w, http.StatusText(status), status)
			return
		}
		if h != nil {
			h.once.Do(func() { close(h.arrived) })
			select {
			case <-h.release:
			case <-r.Context().Done():
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (p *Proxy) modify(resp *http.Response) error {
	d, ok := blobDigest(resp.Request)
	if !ok || resp.Request.Method != http.MethodGet || resp.StatusCode != http.StatusOK {
		return nil
	}
	p.mu.Lock()
	corrupt := p.corrupt[d]
	p.mu.Unlock()
	if !corrupt {
		return nil
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if len(b) > 0 {
		b[len(b)/2] ^= 0xff
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return nil
}

// blobDigest returns the digest of a /v2/NAME/blobs/DIGEST request.
func blobDigest(r *http.Request) (string, bool) {
	i := strings.LastIndex(r.URL.Path, "/blobs/")
	if i < 0 || !strings.HasPrefix(r.URL.Path, "/v2/") {
		return "", false
	}
	d := r.URL.Path[i+len("/blobs/"):]
	if strings.HasPrefix(d, "uploads") {
		return "", false
	}
	return d, true
}

// BlobGets counts GET requests for the blob with this digest
// ("sha256:…"), whatever the repository.
func (p *Proxy) BlobGets(digest string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.blobGets[digest]
}

// Requests returns "METHOD /path" for every request so far, oldest first.
func (p *Proxy) Requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.requests...)
}

// CorruptBlob flips a byte in the middle of every later GET response body
// for the blob with this digest; the length and headers stay the same.
func (p *Proxy) CorruptBlob(digest string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.corrupt[digest] = true
}

// FailRequests answers with status every later request whose
// "METHOD /path" contains match (e.g. "GET /v2/app/manifests/", or "" for
// all), as a broken registry or mirror would. The last matching rule wins.
func (p *Proxy) FailRequests(match string, status int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fail = append(p.fail, failRule{match: match, status: status})
}

// Hold makes every later GET of the blob with this digest wait at the
// proxy, before it reaches the registry, until Release(digest), Reset or
// Close, or until its client gives up. The returned channel is closed when
// the first such request is waiting, so a test knows a pull is stuck on
// that blob (and not anywhere else) without sleeping. Holding a digest
// already held returns the same channel.
func (p *Proxy) Hold(digest string) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	h, ok := p.holds[digest]
	if !ok {
		h = &hold{release: make(chan struct{}), arrived: make(chan struct{})}
		p.holds[digest] = h
	}
	return h.arrived
}

// Release lets the held GETs of the blob with this digest, and every later
// one, through. Releasing a digest that is not held does nothing.
func (p *Proxy) Release(digest string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if h, ok := p.holds[digest]; ok {
		close(h.release)
		delete(p.holds, digest)
	}
}

func (p *Proxy) releaseAllLocked() {
	for d, h := range p.holds {
		close(h.release)
		delete(p.holds, d)
	}
}

// Reset forgets counters, corruption and failure rules, and releases every
// held blob.
func (p *Proxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests = nil
	p.blobGets = map[string]int{}
	p.corrupt = map[string]bool{}
	p.fail = nil
	p.releaseAllLocked()
}

// Close releases every held blob and stops the proxy.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.releaseAllLocked()
	p.mu.Unlock()
	p.srv.Close()
}
