package registrytest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/crypto/bcrypt"
)

// Binary is the registry this package runs.
const Binary = "/usr/bin/docker-registry"

// AdminUser is the account Push uses when the registry requires auth. It is
// added beside the users in Options with a random password, so tests can
// hand out exactly the credentials they mean to and still seed images.
const AdminUser = "registrytest-admin"

// Options choose how the registry is reached and who may use it. The zero
// value is an anonymous plain-HTTP registry.
type Options struct {
	// TLS serves HTTPS with a certificate for 127.0.0.1, ::1 and localhost
	// signed by a CA generated for this registry (CAPEM, CAFile).
	TLS bool
	// Htpasswd requires HTTP basic auth with these user → password pairs
	// (stored bcrypt-hashed, as distribution expects).
	Htpasswd map[string]string
	// Token requires bearer tokens from a token server started beside the
	// registry. It cannot be combined with Htpasswd.
	Token *TokenOptions
}

// Registry is a running docker-registry.
type Registry struct {
	// Host is "127.0.0.1:PORT", the registry part of image references.
	Host string
	// Dir holds config.yml, storage (data/), the log and certificates.
	Dir string
	// CAPEM is the PEM certificate of the CA that signed the serving
	// certificate, and CAFile a file holding it; both empty without TLS.
	CAPEM  []byte
	CAFile string
	// TokenServer is the token server when Options.Token is set.
	TokenServer *TokenServer

	opts       Options
	adminPass  string
	logPath    string
	configPath string
	transport  *http.Transport

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	closed bool
}

// Start runs a registry for the test; it is stopped and its directory
// removed when the test ends. A missing binary fails the test with the hint
// to install it.
func Start(t testing.TB, opts Options) *Registry {
	t.Helper()
	r, err := Launch(t.Context(), t.TempDir(), opts)
	if err != nil {
		t.Fatalf("start registry: %v", err)
	}
	t.Cleanup(func() {
		r.Close()
		if t.Failed() {
			t.Logf("registry %s log (last lines):\n%s", r.Host, lastLines(r.Log(), 30))
		}
	})
	return r
}

// Launch runs a registry outside a test (the demo does this). dir is
// created if needed and left in place by Close, so its log can be read
// afterwards. ctx bounds the start only: the registry runs until Close.
func Launch(ctx context.Context, dir string, opts Options) (*Registry, error) {
	if _, err := os.Stat(Binary); err != nil {
		return nil, fmt.Errorf("%s is missing: install it with `make deps`", Binary)
	}
	if opts.Token != nil && opts.Htpasswd != nil {
		return nil, errors.New("registry options: Htpasswd and Token cannot be combined")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		return nil, fmt.Errorf("create registry dir: %w", err)
	}
	r := &Registry{
		Dir:        dir,
		opts:       opts,
		logPath:    filepath.Join(dir, "registry.log"),
		configPath: filepath.Join(dir, "config.yml"),
		transport:  http.DefaultTransport.(*http.Transport).Clone(),
	}
	if opts.Htpasswd != nil || opts.Token != nil {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		r.adminPass = hex.EncodeToString(b)
	}
	if err := r.configure(); err != nil {
		r.TokenServer.close()
		return nil, err
	}
	// A port picked by listening on :0 can be taken again before the
	// registry binds it; try a few times.
	for attempt := 0; ; attempt++ {
		if err := r.pickPort(); err != nil {
			r.Close()
			return nil, err
		}
		err := r.start(ctx)
		if err == nil {
			return r, nil
		}
		if attempt < 3 && strings.Contains(r.Log(), "address already in use") {
			continue
		}
		r.Close()
		return nil, err
	}
}

// configure writes certificates, htpasswd and starts the token server.
func (r *Registry) configure() error {
	var serving *leaf
	if r.opts.TLS {
		ca, err := newAuthority("registrytest CA")
		if err != nil {
			return err
		}
		if serving, err = ca.serverLeaf(); err != nil {
			return err
		}
		r.CAPEM = ca.certPEM
		r.CAFile = filepath.Join(r.Dir, "ca.crt")
		files := map[string][]byte{r.CAFile: ca.certPEM, r.path("server.crt"): serving.certPEM, r.path("server.key"): serving.keyPEM}
		for p, b := range files {
			if err := os.WriteFile(p, b, 0o600); err != nil {
				return err
			}
		}
		pool := x509.NewCertPool()
		pool.AddCert(ca.cert)
		r.transport.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	if r.opts.Htpasswd != nil {
		var b bytes.Buffer
		for u, p := range r.users(r.opts.Htpasswd) {
			h, err := bcrypt.GenerateFromPassword([]byte(p), bcrypt.MinCost)
			if err != nil {
				return fmt.Errorf("hash password of %s: %w", u, err)
			}
			fmt.Fprintf(&b, "%s:%s\n", u, h)
		}
		if err := os.WriteFile(r.path("htpasswd"), b.Bytes(), 0o600); err != nil {
			return err
		}
	}
	if r.opts.Token != nil {
		signCA, err := newAuthority("registrytest token CA")
		if err != nil {
			return err
		}
		signer, err := signCA.signingLeaf()
		if err != nil {
			return err
		}
		if err := os.WriteFile(r.path("token-ca.crt"), signCA.certPEM, 0o600); err != nil {
			return err
		}
		r.TokenServer, err = startTokenServer(*r.opts.Token, r.users(r.opts.Token.Users), AdminUser, signer, serving)
		if err != nil {
			return err
		}
	}
	return nil
}

func (r *Registry) path(name string) string { return filepath.Join(r.Dir, name) }

// users adds the admin account to the caller's users.
func (r *Registry) users(given map[string]string) map[string]string {
	m := map[string]string{AdminUser: r.adminPass}
	for u, p := range given {
		m[u] = p
	}
	return m
}

func (r *Registry) pickPort() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("find a free port: %w", err)
	}
	r.Host = l.Addr().String()
	l.Close()
	return r.writeConfig()
}

func (r *Registry) writeConfig() error {
	var c strings.Builder
	fmt.Fprintf(&c, "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n")
	fmt.Fprintf(&c, "storage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\n", r.path("data"))
	fmt.Fprintf(&c, "  maintenance:\n    uploadpurging:\n      enabled: false\n")
	fmt.Fprintf(&c, "http:\n  addr: %s\n  secret: registrytest-%s\n", r.Host, filepath.Base(r.Dir))
	if r.opts.TLS {
		fmt.Fprintf(&c, "  tls:\n    certificate: %s\n    key: %s\n", r.path("server.crt"), r.path("server.key"))
	}
	switch {
	case r.opts.Htpasswd != nil:
		fmt.Fprintf(&c, "auth:\n  htpasswd:\n    realm: registrytest\n    path: %s\n", r.path("htpasswd"))
	case r.opts.Token != nil:
		fmt.Fprintf(&c, "auth:\n  token:\n    realm: %s\n    service: %s\n    issuer: %s\n    rootcertbundle: %s\n",
			r.TokenServer.Realm, TokenService, TokenIssuer, r.path("token-ca.crt"))
	}
	return os.WriteFile(r.configPath, []byte(c.String()), 0o600)
}

// start runs the binary and waits until /v2/ answers.
func (r *Registry) start(ctx context.Context) error {
	logf, err := os.OpenFile(r.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open registry log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(Binary, "serve", r.configPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group so Close can kill everything it started, and a
	// death signal so a crashed test binary does not leave it behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", Binary, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }() //nolint:errcheck // exit status is in the log
	r.mu.Lock()
	r.cmd, r.done = cmd, done
	r.mu.Unlock()

	client := &http.Client{Transport: r.transport, Timeout: 2 * time.Second}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.URL()+"/v2/", nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
		}
		select {
		case <-done:
			return fmt.Errorf("registry on %s exited during start: %s", r.Host, lastLines(r.Log(), 5))
		case <-ctx.Done():
			r.kill()
			return fmt.Errorf("registry on %s did not answer /v2/: %w: %s", r.Host, ctx.Err(), lastLines(r.Log(), 5))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// kill ends the registry's process group and waits for it.
func (r *Registry) kill() {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) //nolint:errcheck // already gone is fine
	<-done
}

// Stop kills the registry; its address then refuses connections, which is
// what a mirror that is down looks like. Restart brings it back.
func (r *Registry) Stop() { r.kill() }

// Restart starts a stopped registry again on the same port with the same
// storage and credentials.
func (r *Registry) Restart(ctx context.Context) error {
	r.kill()
	return r.start(ctx)
}

// Running reports whether the registry process is alive.
func (r *Registry) Running() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return false
	}
	select {
	case <-r.done:
		return false
	default:
		return true
	}
}

// Pid is the registry's process id, 0 when stopped.
func (r *Registry) Pid() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return 0
	}
	return r.cmd.Process.Pid
}

// Close stops the registry and its token server. It is safe to call twice.
func (r *Registry) Close() {
	r.mu.Lock()
	closed := r.closed
	r.closed = true
	r.mu.Unlock()
	if closed {
		return
	}
	r.kill()
	r.TokenServer.close()
	r.transport.CloseIdleConnections()
}

// Log returns what the registry has logged so far (including its access
// log: one line per request).
func (r *Registry) Log() string {
	b, _ := os.ReadFile(r.logPath)
	return string(b)
}

// LogPath is the file the registry logs to.
func (r *Registry) LogPath() string { return r.logPath }

// URL is the registry's base URL, "http://127.0.0.1:PORT" or https.
func (r *Registry) URL() string {
	if r.opts.TLS {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

// Ref returns Host + "/" + repoTag, an image reference into this registry.
func (r *Registry) Ref(repoTag string) string { return r.Host + "/" + repoTag }

// Transport trusts the registry's CA (when TLS) and nothing else special.
func (r *Registry) Transport() http.RoundTripper { return r.transport }

// AdminAuth returns the credentials Push uses: AdminUser with its password,
// or authn.Anonymous when the registry needs no auth.
func (r *Registry) AdminAuth() authn.Authenticator {
	if r.adminPass == "" {
		return authn.Anonymous
	}
	return &authn.Basic{Username: AdminUser, Password: r.adminPass}
}

// Reference parses Ref(repoTag), marked insecure for a plain-HTTP registry
// so go-containerregistry speaks HTTP to it.
func (r *Registry) Reference(repoTag string) (name.Reference, error) {
	var opts []name.Option
	if !r.opts.TLS {
		opts = append(opts, name.Insecure)
	}
	return name.ParseReference(r.Ref(repoTag), opts...)
}

// RemoteOptions are go-containerregistry options for reaching this
// registry with the given credentials (nil means anonymous).
func (r *Registry) RemoteOptions(ctx context.Context, auth authn.Authenticator) []remote.Option {
	if auth == nil {
		auth = authn.Anonymous
	}
	return []remote.Option{remote.WithContext(ctx), remote.WithTransport(r.transport), remote.WithAuth(auth)}
}

// Pushable is what Push uploads: a v1.Image or a v1.ImageIndex.
type Pushable interface {
	MediaType() (types.MediaType, error)
	RawManifest() ([]byte, error)
}

// Push uploads img (a v1.Image or v1.ImageIndex) as repoTag ("app:v1",
// "team/app@sha256:…") with the admin credentials.
func (r *Registry) Push(ctx context.Context, repoTag string, img Pushable) error {
	ref, err := r.Reference(repoTag)
	if err != nil {
		return fmt.Errorf("push %s: %w", repoTag, err)
	}
	opts := r.RemoteOptions(ctx, r.AdminAuth())
	switch v := img.(type) {
	case v1.ImageIndex:
		err = remote.WriteIndex(ref, v, opts...)
	case v1.Image:
		err = remote.Write(ref, v, opts...)
	default:
		err = fmt.Errorf("%T is neither a v1.Image nor a v1.ImageIndex", img)
	}
	if err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	return nil
}

// WriteCertsDir writes the CA as dir/HOST/ca.crt, the layout of Docker's
// and containerd's certs.d, so a client configured with dir trusts this
// registry. With a token server it also writes dir/localhost:PORT/ca.crt
// for the token realm, for clients that pick CAs by the host they dial.
// It fails on a registry without TLS.
func (r *Registry) WriteCertsDir(dir string) error {
	if !r.opts.TLS {
		return fmt.Errorf("write certs.d for %s: registry has no TLS", r.Host)
	}
	hosts := []string{r.Host}
	if r.TokenServer != nil {
		hosts = append(hosts, r.TokenServer.Host())
	}
	for _, h := range hosts {
		d := filepath.Join(dir, h)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("write certs.d for %s: %w", h, err)
		}
		if err := os.WriteFile(filepath.Join(d, "ca.crt"), r.CAPEM, 0o644); err != nil {
			return fmt.Errorf("write certs.d for %s: %w", h, err)
		}
	}
	return nil
}
