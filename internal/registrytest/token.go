package registrytest

import (
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TokenOptions turn on bearer-token auth: the registry trusts tokens signed
// by a token server this package runs beside it.
type TokenOptions struct {
	// Users maps user names to passwords the token server accepts as Basic
	// credentials (GET) or as an OAuth2 password grant (POST).
	Users map[string]string
	// Grant decides which of the requested actions on a repository a user
	// gets; user is "" for an anonymous request. Nil grants authenticated
	// users everything they ask for and anonymous requests nothing, so an
	// anonymous pull gets a token the registry refuses.
	Grant func(user, repository string, actions []string) []string
	// Expiry is the token lifetime; zero means 5 minutes.
	Expiry time.Duration
}

// Token protocol constants the registry's config and the issued tokens share.
const (
	TokenService = "registrytest"
	TokenIssuer  = "registrytest-token-issuer"
)

// TokenRequest is one request the token server answered.
type TokenRequest struct {
	// User is the authenticated user, "" when anonymous or refused.
	User string
	// Scopes are the requested scope parameters verbatim.
	Scopes []string
	// Status is the HTTP status answered: 200 or 401 (wrong credentials).
	Status int
}

// TokenServer implements the Docker registry token protocol
// (https://distribution.github.io/distribution/spec/auth/token/): GET
// Realm?service=S&scope=repository:NAME:pull,push with optional Basic
// credentials, or POST with an OAuth2 password grant, answered with
// {"token", "access_token", "expires_in", "issued_at"}. Tokens are ES256
// JWTs whose header carries the signing certificate as x5c; the registry
// verifies that chain against its rootcertbundle, which is how distribution
// 2.8 accepts tokens from a key it was not configured with directly.
type TokenServer struct {
	// Realm is the URL the registry sends clients to. Its host is
	// "localhost", not 127.0.0.1: go-containerregistry refuses realms at
	// private IP literals other than the registry's own host:port.
	Realm string

	opts   TokenOptions
	admin  string
	users  map[string]string
	signer *leaf
	srv    *http.Server
	ln     net.Listener

	mu       sync.Mutex
	requests []TokenRequest
	tokens   []string
}

// startTokenServer serves tokens on 127.0.0.1, over TLS with serving when
// it is not nil. admin (whose password is in users) gets every action and
// is left out of Requests and Tokens, as it is the harness's own identity.
func startTokenServer(opts TokenOptions, users map[string]string, admin string, signer *leaf, serving *leaf) (*TokenServer, error) {
	ts := &TokenServer{opts: opts, admin: admin, users: users, signer: signer}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for token server: %w", err)
	}
	scheme := "http"
	if serving != nil {
		cert, err := serving.tlsCertificate()
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("token server certificate: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}})
		scheme = "https"
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ts.Realm = scheme + "://localhost:" + port + "/token"
	ts.ln = ln
	ts.srv = &http.Server{Handler: http.HandlerFunc(ts.serve), ReadHeaderTimeout: 10 * time.Second}
	go ts.srv.Serve(ln) //nolint:errcheck // Serve returns when close stops it
	return ts, nil
}

// Host is the realm's "localhost:PORT".
func (ts *TokenServer) Host() string {
	u, err := url.Parse(ts.Realm)
	if err != nil {
		return ""
	}
	return u.Host
}

func (ts *TokenServer) close() {
	if ts != nil {
		ts.srv.Close()
	}
}

// Requests returns every request the server answered, oldest first,
// leaving out the harness's own (Push).
func (ts *TokenServer) Requests() []TokenRequest {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]TokenRequest(nil), ts.requests...)
}

// RequestCount is len(Requests()).
func (ts *TokenServer) RequestCount() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.requests)
}

// Tokens returns every token issued, so a test can check that none of them
// turns up in logs, events or error messages. Tokens issued to the harness
// itself are left out.
func (ts *TokenServer) Tokens() []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]string(nil), ts.tokens...)
}

func (ts *TokenServer) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/token" {
		http.NotFound(w, r)
		return
	}
	var (
		user, password string
		hasCreds       bool
		scopes         []string
		service        string
	)
	switch r.Method {
	case http.MethodGet:
		user, password, hasCreds = r.BasicAuth()
		scopes = r.URL.Query()["scope"]
		service = r.URL.Query().Get("service")
	case http.MethodPost:
		if err := r.ParseForm(); err != nil {
			http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		if gt := r.PostForm.Get("grant_type"); gt != "password" {
			http.Error(w, `{"error":"unsupported_grant_type"}`, http.StatusBadRequest)
			return
		}
		user, password, hasCreds = r.PostForm.Get("username"), r.PostForm.Get("password"), true
		for _, s := range r.PostForm["scope"] {
			scopes = append(scopes, strings.Fields(s)...)
		}
		service = r.PostForm.Get("service")
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if hasCreds && !ts.valid(user, password) {
		ts.record(user, TokenRequest{Scopes: scopes, Status: http.StatusUnauthorized}, "")
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("WWW-Authenticate", `Basic realm="registrytest"`)
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":"incorrect username or password"}]}`)
		return
	}
	if !hasCreds {
		user = ""
	}
	if service == "" {
		service = TokenService
	}
	tok, err := ts.sign(user, service, ts.access(user, scopes))
	if err != nil {
		http.Error(w, "sign token", http.StatusInternalServerError)
		return
	}
	ts.record(user, TokenRequest{User: user, Scopes: scopes, Status: http.StatusOK}, tok)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{ //nolint:errcheck // the client went away
		"token":        tok,
		"access_token": tok,
		"expires_in":   int(ts.expiry().Seconds()),
		"issued_at":    time.Now().UTC().Format(time.RFC3339),
	})
}

func (ts *TokenServer) valid(user, password string) bool {
	want, ok := ts.users[user]
	return ok && subtle.ConstantTimeCompare([]byte(want), []byte(password)) == 1
}

func (ts *TokenServer) record(user string, req TokenRequest, tok string) {
	if user == ts.admin && req.Status == http.StatusOK {
		return
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.requests = append(ts.requests, req)
	if tok != "" {
		ts.tokens = append(ts.tokens, tok)
	}
}

func (ts *TokenServer) expiry() time.Duration {
	if ts.opts.Expiry > 0 {
		return ts.opts.Expiry
	}
	return 5 * time.Minute
}

// accessEntry is one element of the JWT "access" claim.
type accessEntry struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// access turns scopes like "repository:team/app:pull,push" into the access
// claim. The name may itself contain colons (a host:port), so the type ends
// at the first colon and the actions start after the last.
func (ts *TokenServer) access(user string, scopes []string) []accessEntry {
	access := []accessEntry{}
	for _, s := range scopes {
		i, j := strings.Index(s, ":"), strings.LastIndex(s, ":")
		if i < 0 || i == j {
			continue
		}
		typ, name, actions := s[:i], s[i+1:j], strings.Split(s[j+1:], ",")
		var granted []string
		switch {
		case user != "" && user == ts.admin:
			granted = actions
		case typ != "repository":
		case ts.opts.Grant != nil:
			granted = ts.opts.Grant(user, name, actions)
		case user != "":
			granted = actions
		}
		if len(granted) > 0 {
			access = append(access, accessEntry{Type: typ, Name: name, Actions: granted})
		}
	}
	return access
}

func (ts *TokenServer) sign(user, service string, access []accessEntry) (string, error) {
	now := time.Now()
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", err
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss":    TokenIssuer,
		"sub":    user,
		"aud":    service,
		"exp":    now.Add(ts.expiry()).Unix(),
		"nbf":    now.Add(-time.Minute).Unix(),
		"iat":    now.Unix(),
		"jti":    hex.EncodeToString(jti),
		"access": access,
	})
	tok.Header["x5c"] = []string{base64.StdEncoding.EncodeToString(ts.signer.der)}
	s, err := tok.SignedString(ts.signer.key)
	if err != nil {
		return "", errors.New("sign token: " + err.Error())
	}
	return s, nil
}
