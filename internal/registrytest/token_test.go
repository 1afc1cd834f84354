package registrytest

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

type tokenResponse struct {
	Token       string `json:"token"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"`
}

// fetchToken asks the token server directly, as a registry client does.
func fetchToken(t *testing.T, r *Registry, req *http.Request) (int, tokenResponse) {
	t.Helper()
	resp, err := (&http.Client{Transport: r.Transport()}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr tokenResponse
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, tr
}

// claims verifies the token with the certificate in its x5c header and
// returns its claims.
func claims(t *testing.T, tok string) jwt.MapClaims {
	t.Helper()
	c := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(tok, c, func(tk *jwt.Token) (any, error) {
		x5c, _ := tk.Header["x5c"].([]any)
		if len(x5c) == 0 {
			t.Fatal("token header has no x5c")
		}
		der, err := base64.StdEncoding.DecodeString(x5c[0].(string))
		if err != nil {
			return nil, err
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, err
		}
		return cert.PublicKey, nil
	}, jwt.WithValidMethods([]string{"ES256"}))
	if err != nil {
		t.Fatalf("token does not verify: %v", err)
	}
	return c
}

func TestTokenProtocol(t *testing.T) {
	r := Start(t, Options{TLS: true, Token: &TokenOptions{Users: map[string]string{"frank": "pw"}}})
	q := url.Values{"service": {TokenService}, "scope": {"repository:team/app:pull,push", "repository:127.0.0.1:5000/x:pull"}}

	get, _ := http.NewRequest(http.MethodGet, r.TokenServer.Realm+"?"+q.Encode(), nil)
	get.SetBasicAuth("frank", "pw")
	status, tr := fetchToken(t, r, get)
	if status != http.StatusOK || tr.Token == "" || tr.Token != tr.AccessToken || tr.ExpiresIn != 300 {
		t.Fatalf("GET with credentials: %d %+v", status, tr)
	}
	c := claims(t, tr.Token)
	for k, want := range map[string]any{"iss": TokenIssuer, "sub": "frank", "aud": TokenService} {
		if c[k] != want {
			t.Errorf("claim %s = %v, want %v", k, c[k], want)
		}
	}
	for _, k := range []string{"exp", "nbf", "iat", "jti"} {
		if c[k] == nil {
			t.Errorf("claim %s missing", k)
		}
	}
	access, _ := json.Marshal(c["access"])
	want := `[{"actions":["pull","push"],"name":"team/app","type":"repository"},{"actions":["pull"],"name":"127.0.0.1:5000/x","type":"repository"}]`
	if string(access) != want {
		t.Errorf("access = %s, want %s", access, want)
	}

	anon, _ := http.NewRequest(http.MethodGet, r.TokenServer.Realm+"?"+q.Encode(), nil)
	status, tr = fetchToken(t, r, anon)
	if status != http.StatusOK {
		t.Fatalf("anonymous GET: %d", status)
	}
	if access, _ := json.Marshal(claims(t, tr.Token)["access"]); string(access) != "[]" {
		t.Errorf("anonymous access = %s, want []", access)
	}

	bad, _ := http.NewRequest(http.MethodGet, r.TokenServer.Realm+"?"+q.Encode(), nil)
	bad.SetBasicAuth("frank", "wrong")
	if status, _ = fetchToken(t, r, bad); status != http.StatusUnauthorized {
		t.Errorf("GET with a wrong password: %d, want 401", status)
	}

	form := url.Values{"grant_type": {"password"}, "username": {"frank"}, "password": {"pw"}, "service": {TokenService}, "scope": {"repository:team/app:pull"}, "client_id": {"peapod"}}
	post, _ := http.NewRequest(http.MethodPost, r.TokenServer.Realm, strings.NewReader(form.Encode()))
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	status, tr = fetchToken(t, r, post)
	if status != http.StatusOK || claims(t, tr.AccessToken)["sub"] != "frank" {
		t.Errorf("POST password grant: %d %+v", status, tr)
	}

	if n := len(r.TokenServer.Tokens()); n != 3 {
		t.Errorf("%d tokens recorded, want 3 (the refused request issues none)", n)
	}
}
