package vippstest_test

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vippslogin/vippslogin/internal/jose"
	"github.com/vippslogin/vippslogin/vippstest"
)

const (
	callback = "https://site.example/auth/callback"
	verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"

	discoveryPath = "/access-management-1.0/access/.well-known/openid-configuration"
	jwksPath      = "/access-management-1.0/access/.well-known/jwks.json"
	authorizePath = "/access-management-1.0/access/oauth2/auth"
	tokenPath     = "/access-management-1.0/access/oauth2/token"
	userinfoPath  = "/vipps-userinfo-api/userinfo"
)

// clock is a settable clock, safe for concurrent use.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock {
	return &clock{now: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// newProvider starts a provider that is closed when the test ends. A nil
// RedirectURIs registers callback; pass an empty slice to accept any URI.
func newProvider(t *testing.T, cfg vippstest.Config) *vippstest.Provider {
	t.Helper()
	if cfg.RedirectURIs == nil {
		cfg.RedirectURIs = []string{callback}
	}
	p, err := vippstest.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// client does not follow redirects, so that tests see them.
var client = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func s256(v string) string {
	sum := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func authParams(p *vippstest.Provider, scope string) url.Values {
	return url.Values{
		"client_id":             {p.ClientID()},
		"redirect_uri":          {callback},
		"response_type":         {"code"},
		"scope":                 {scope},
		"state":                 {"state-0123456789"},
		"nonce":                 {"nonce-abc"},
		"code_challenge":        {s256(verifier)},
		"code_challenge_method": {"S256"},
	}
}

// do sends req and returns the response with its body read.
func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp, string(body)
}

func get(t *testing.T, u string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}

// authorize sends the authorization request q and returns the query of the
// redirect back to callback.
func authorize(t *testing.T, p *vippstest.Provider, q url.Values) url.Values {
	t.Helper()
	resp, body := get(t, p.URL()+authorizePath+"?"+q.Encode())
	return redirectQuery(t, resp, body)
}

func redirectQuery(t *testing.T, resp *http.Response, body string) url.Values {
	t.Helper()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("status = %d, want 302; body: %s", resp.StatusCode, body)
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, callback+"?") {
		t.Fatalf("Location = %q, want it to start with %q", loc, callback+"?")
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// login runs the authorization request and returns the code.
func login(t *testing.T, p *vippstest.Provider, scope string) string {
	t.Helper()
	q := authorize(t, p, authParams(p, scope))
	code := q.Get("code")
	if code == "" {
		t.Fatalf("no code in redirect: %v", q)
	}
	return code
}

// exchange posts form to the token endpoint, authenticating with method, and
// returns the status and the decoded JSON body.
func exchange(t *testing.T, p *vippstest.Provider, method string, form url.Values) (int, map[string]any) {
	t.Helper()
	form = cloneValues(form)
	var user, pass string
	switch method {
	case "client_secret_post":
		form.Set("client_id", p.ClientID())
		form.Set("client_secret", p.ClientSecret())
	case "client_secret_basic":
		user, pass = p.ClientID(), p.ClientSecret()
	}
	req, err := http.NewRequest(http.MethodPost, p.URL()+tokenPath, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Vipps-System-Name", "vippslogin")
	if method == "client_secret_basic" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	resp, body := do(t, req)
	return resp.StatusCode, decodeJSON(t, body)
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

func codeForm(code string) url.Values {
	return url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {callback},
		"code_verifier": {verifier},
	}
}

func decodeJSON(t *testing.T, body string) map[string]any {
	t.Helper()
	var m map[string]any
	d := json.NewDecoder(strings.NewReader(body))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
	return m
}

// decodeJWT returns the header and claims of a compact JWS without
// verifying it.
func decodeJWT(t *testing.T, tok string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3: %q", len(parts), tok)
	}
	dec := func(s string) map[string]any {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("decode part %q: %v", s, err)
		}
		return decodeJSON(t, string(b))
	}
	return dec(parts[0]), dec(parts[1])
}

func userinfo(t *testing.T, p *vippstest.Provider, token string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, p.URL()+userinfoPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, body := do(t, req)
	return resp.StatusCode, decodeJSON(t, body)
}

// keySet returns the provider's key set.
func keySet(t *testing.T, p *vippstest.Provider) *jose.KeySet {
	t.Helper()
	return jose.NewKeySet(t.Context(), func(ctx context.Context) ([]byte, time.Duration, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL()+jwksPath, nil)
		if err != nil {
			return nil, 0, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, 0, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return body, 0, err
	}, time.Minute)
}

// verify checks the signature of tok against the provider's JWKS and returns
// the claims.
func verify(t *testing.T, p *vippstest.Provider, tok string) map[string]any {
	t.Helper()
	ks := keySet(t, p)
	h, err := jose.ParseHeader([]byte(tok))
	if err != nil {
		t.Fatal(err)
	}
	payload, err := ks.Verify(t.Context(), []byte(tok), h.Alg, h.Kid)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return decodeJSON(t, string(payload))
}

func wantError(t *testing.T, status int, body map[string]any, wantStatus int, wantCode string) {
	t.Helper()
	if status != wantStatus || body["error"] != wantCode {
		t.Errorf("got %d %v, want %d with error %q", status, body, wantStatus, wantCode)
	}
}

// wantProblem checks a userinfo API error: a problem object whose status
// is the HTTP status as a string (userinfo-api/docs/swagger.yaml,
// components.schemas.UserinfoError).
func wantProblem(t *testing.T, status int, body map[string]any, wantStatus int) {
	t.Helper()
	if status != wantStatus || body["status"] != strconv.Itoa(wantStatus) || body["title"] == nil || body["detail"] == nil {
		t.Errorf("got %d %v, want %d with a problem object", status, body, wantStatus)
	}
}

func TestDiscovery(t *testing.T) {
	p := newProvider(t, vippstest.Config{})
	resp, body := get(t, p.URL()+discoveryPath)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d", resp.StatusCode)
	}
	if got := resp.Header.Get("Cache-Control"); got != "max-age=3600" {
		t.Errorf("Cache-Control = %q", got)
	}
	d := decodeJSON(t, body)
	if !strings.HasSuffix(p.Issuer(), "/access-management-1.0/access/") || !strings.HasPrefix(p.Issuer(), p.URL()) {
		t.Errorf("Issuer() = %q", p.Issuer())
	}
	if strings.HasSuffix(p.URL(), "/") {
		t.Errorf("URL() = %q ends with a slash", p.URL())
	}
	wantStrings := map[string]string{
		"issuer":                 p.Issuer(),
		"authorization_endpoint": p.URL() + authorizePath,
		"token_endpoint":         p.URL() + tokenPath,
		"jwks_uri":               p.URL() + jwksPath,
		"userinfo_endpoint":      p.URL() + userinfoPath,
	}
	for k, want := range wantStrings {
		if d[k] != want {
			t.Errorf("%s = %v, want %q", k, d[k], want)
		}
	}
	// login-api/api-guide/browser-flow-integration.md, "OpenID
	// configuration": Vipps' example response, list for list.
	wantLists := map[string][]string{
		"response_types_supported":              {"code", "code id_token", "id_token", "token id_token", "token", "token id_token code"},
		"subject_types_supported":               {"public", "pairwise"},
		"claims_supported":                      {"sub"},
		"id_token_signing_alg_values_supported": {"RS256"},
		"userinfo_signing_alg_values_supported": {"none", "RS256"},
		"scopes_supported":                      {"offline", "openid", "address", "name", "email", "phoneNumber", "nin", "birthDate", "api_version_2"},
		"token_endpoint_auth_methods_supported": {"client_secret_post", "client_secret_basic", "private_key_jwt", "none"},
		"grant_types_supported":                 {"authorization_code", "implicit", "client_credentials", "refresh_token"},
		"response_modes_supported":              {"query", "fragment"},
	}
	// Nothing Vipps does not advertise: no PKCE methods (PKCE is optional
	// there, plain by default), no backchannel endpoint, no RFC 9207.
	for _, k := range []string{"code_challenge_methods_supported", "backchannel_authentication_endpoint",
		"backchannel_token_delivery_modes_supported", "authorization_response_iss_parameter_supported"} {
		if v, ok := d[k]; ok {
			t.Errorf("%s = %v: Vipps' discovery has no such field", k, v)
		}
	}
	if len(d) != 24 {
		t.Errorf("discovery has %d fields, want the 24 of Vipps' example", len(d))
	}
	for k, want := range wantLists {
		var got []string
		list, _ := d[k].([]any)
		for _, v := range list {
			s, _ := v.(string)
			got = append(got, s)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s = %v, want %v", k, d[k], want)
		}
	}

}

func TestFlow(t *testing.T) {
	for _, method := range []string{"client_secret_basic", "client_secret_post"} {
		t.Run(method, func(t *testing.T) {
			clk := newClock()
			p := newProvider(t, vippstest.Config{AutoApprove: true, TokenAuthMethod: method, Now: clk.Now})
			q := authorize(t, p, authParams(p, "openid name email"))
			if q.Get("state") != "state-0123456789" || q.Get("scope") != "openid name email" || q.Has("iss") {
				t.Errorf("redirect query = %v", q)
			}
			status, tok := exchange(t, p, method, codeForm(q.Get("code")))
			if status != http.StatusOK {
				t.Fatalf("token: %d %v", status, tok)
			}
			if tok["token_type"] != "bearer" || tok["scope"] != "openid name email" || tok["expires_in"] != json.Number("599") {
				t.Errorf("token response = %v", tok)
			}
			if got := p.LastHeader(vippstest.Token).Get("Vipps-System-Name"); got != "vippslogin" {
				t.Errorf("LastHeader(Token) Vipps-System-Name = %q", got)
			}

			idToken, _ := tok["id_token"].(string)
			header, _ := decodeJWT(t, idToken)
			if header["alg"] != "RS256" || header["typ"] != "JWT" || header["kid"] != currentKid(p) {
				t.Errorf("ID token header = %v", header)
			}
			claims := verify(t, p, idToken)
			user := vippstest.DefaultUsers()[0]
			now := json.Number(strconv.FormatInt(clk.Now().Unix(), 10))
			want := map[string]any{
				"iss":       p.Issuer(),
				"sub":       user.Sub,
				"nonce":     "nonce-abc",
				"iat":       now,
				"auth_time": now,
				"rat":       now,
				"exp":       json.Number(strconv.FormatInt(clk.Now().Add(time.Hour).Unix(), 10)),
			}
			for k, v := range want {
				if claims[k] != v {
					t.Errorf("claim %s = %v, want %v", k, claims[k], v)
				}
			}
			if aud, _ := claims["aud"].([]any); len(aud) != 1 || aud[0] != p.ClientID() {
				t.Errorf("aud = %v, want [%q]", claims["aud"], p.ClientID())
			}
			access, _ := tok["access_token"].(string)
			sum := sha256.Sum256([]byte(access))
			if claims["at_hash"] != base64.RawURLEncoding.EncodeToString(sum[:16]) {
				t.Errorf("at_hash = %v", claims["at_hash"])
			}
			for _, k := range []string{"jti", "sid"} {
				if s, _ := claims[k].(string); s == "" {
					t.Errorf("claim %s missing", k)
				}
			}

			status, info := userinfo(t, p, access)
			if status != http.StatusOK {
				t.Fatalf("userinfo: %d %v", status, info)
			}
			if info["sub"] != user.Sub || info["sid"] != claims["sid"] || info["name"] != user.Name || info["email"] != user.Email || info["email_verified"] != true {
				t.Errorf("userinfo = %v", info)
			}

			clk.Add(10 * time.Minute)
			status, info = userinfo(t, p, access)
			wantProblem(t, status, info, http.StatusUnauthorized)
		})
	}
}

func TestClientAuthentication(t *testing.T) {
	for _, tc := range []struct {
		name       string
		configured string
		used       string
		wantStatus int
	}{
		{"basic accepted", "client_secret_basic", "client_secret_basic", http.StatusOK},
		{"post accepted", "client_secret_post", "client_secret_post", http.StatusOK},
		{"post refused when basic configured", "client_secret_basic", "client_secret_post", http.StatusUnauthorized},
		{"basic refused when post configured", "client_secret_post", "client_secret_basic", http.StatusUnauthorized},
		{"no authentication", "client_secret_basic", "", http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newProvider(t, vippstest.Config{AutoApprove: true, TokenAuthMethod: tc.configured})
			code := login(t, p, "openid")
			status, body := exchange(t, p, tc.used, codeForm(code))
			if status != tc.wantStatus {
				t.Fatalf("status = %d %v, want %d", status, body, tc.wantStatus)
			}
			if status == http.StatusUnauthorized {
				if body["error"] != "invalid_client" || body["error_debug"] != "Client authentication failed" || fmt.Sprint(body["error_code"]) != "401" {
					t.Errorf("body = %v", body)
				}
				// Failed client authentication leaves the code usable.
				status, body = exchange(t, p, tc.configured, codeForm(code))
				if status != http.StatusOK {
					t.Errorf("retry with the right method: %d %v", status, body)
				}
			}
		})
	}

	t.Run("wrong secret", func(t *testing.T) {
		p := newProvider(t, vippstest.Config{AutoApprove: true})
		req, _ := http.NewRequest(http.MethodPost, p.URL()+tokenPath, strings.NewReader(codeForm(login(t, p, "openid")).Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(p.ClientID(), "not-the-secret")
		resp, body := do(t, req)
		wantError(t, resp.StatusCode, decodeJSON(t, body), http.StatusUnauthorized, "invalid_client")
		if resp.Header.Get("WWW-Authenticate") == "" {
			t.Error("no WWW-Authenticate header")
		}
	})

	t.Run("form-encoded basic credentials", func(t *testing.T) {
		p := newProvider(t, vippstest.Config{AutoApprove: true, ClientID: "id:with space", ClientSecret: "s3cr+t/=%&é"})
		status, body := exchange(t, p, "client_secret_basic", codeForm(login(t, p, "openid")))
		if status != http.StatusOK {
			t.Errorf("status = %d %v", status, body)
		}
	})

	t.Run("SetTokenAuthMethod", func(t *testing.T) {
		p := newProvider(t, vippstest.Config{AutoApprove: true})
		p.SetTokenAuthMethod("client_secret_post")
		code := login(t, p, "openid")
		status, body := exchange(t, p, "client_secret_basic", codeForm(code))
		wantError(t, status, body, http.StatusUnauthorized, "invalid_client")
		if status, body := exchange(t, p, "client_secret_post", codeForm(code)); status != http.StatusOK {
			t.Errorf("post after switch: %d %v", status, body)
		}
	})
}

func TestTokenErrors(t *testing.T) {
	const basic = "client_secret_basic"
	for _, tc := range []struct {
		name       string
		change     func(url.Values)
		wantStatus int
		wantCode   string
	}{
		{"unknown code", func(f url.Values) { f.Set("code", "nope") }, http.StatusBadRequest, "invalid_grant"},
		{"redirect_uri differs", func(f url.Values) { f.Set("redirect_uri", callback+"/") }, http.StatusBadRequest, "invalid_grant"},
		{"redirect_uri missing", func(f url.Values) { f.Del("redirect_uri") }, http.StatusBadRequest, "invalid_grant"},
		{"verifier wrong", func(f url.Values) { f.Set("code_verifier", strings.Repeat("x", 43)) }, http.StatusBadRequest, "invalid_grant"},
		{"verifier missing", func(f url.Values) { f.Del("code_verifier") }, http.StatusBadRequest, "invalid_grant"},
		{"verifier is the challenge", func(f url.Values) { f.Set("code_verifier", s256(verifier)) }, http.StatusBadRequest, "invalid_grant"},
		{"grant_type refresh_token", func(f url.Values) { f.Set("grant_type", "refresh_token") }, http.StatusBadRequest, "unsupported_grant_type"},
		{"grant_type missing", func(f url.Values) { f.Del("grant_type") }, http.StatusBadRequest, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newProvider(t, vippstest.Config{AutoApprove: true})
			form := codeForm(login(t, p, "openid"))
			bad := cloneValues(form)
			tc.change(bad)
			status, body := exchange(t, p, basic, bad)
			wantError(t, status, body, tc.wantStatus, tc.wantCode)
			if tc.wantCode == "invalid_grant" && tc.name != "unknown code" {
				// The failed exchange used the code up.
				status, body = exchange(t, p, basic, form)
				wantError(t, status, body, http.StatusBadRequest, "invalid_grant")
			}
		})
	}
}

func TestCodeSingleUse(t *testing.T) {
	p := newProvider(t, vippstest.Config{AutoApprove: true})
	form := codeForm(login(t, p, "openid name"))
	status, tok := exchange(t, p, "client_secret_basic", form)
	if status != http.StatusOK {
		t.Fatalf("first exchange: %d %v", status, tok)
	}
	status, body := exchange(t, p, "client_secret_basic", form)
	wantError(t, status, body, http.StatusBadRequest, "invalid_grant")
	// The replay revoked the access token of the first exchange.
	status, body = userinfo(t, p, tok["access_token"].(string))
	wantProblem(t, status, body, http.StatusUnauthorized)
}

func TestCodeExpiry(t *testing.T) {
	clk := newClock()
	p := newProvider(t, vippstest.Config{AutoApprove: true, Now: clk.Now, CodeTTL: time.Minute})
	code := login(t, p, "openid")
	clk.Add(time.Minute)
	status, body := exchange(t, p, "client_secret_basic", codeForm(code))
	wantError(t, status, body, http.StatusBadRequest, "invalid_grant")
}

func TestPKCEPlainDefault(t *testing.T) {
	p := newProvider(t, vippstest.Config{AutoApprove: true})
	q := authParams(p, "openid")
	q.Del("code_challenge_method")
	q.Set("code_challenge", verifier)
	code := authorize(t, p, q).Get("code")
	status, body := exchange(t, p, "client_secret_basic", codeForm(code))
	if status != http.StatusOK {
		t.Errorf("plain PKCE: %d %v", status, body)
	}
}

func TestAuthorizeErrors(t *testing.T) {
	p := newProvider(t, vippstest.Config{AutoApprove: true})
	for _, tc := range []struct {
		name   string
		change func(url.Values)
	}{
		{"response_type token", func(q url.Values) { q.Set("response_type", "token") }},
		{"no openid scope", func(q url.Values) { q.Set("scope", "name email") }},
		{"state too short", func(q url.Values) { q.Set("state", "1234567") }},
		{"state missing", func(q url.Values) { q.Del("state") }},
		{"bad challenge method", func(q url.Values) { q.Set("code_challenge_method", "S512") }},
		{"state twice", func(q url.Values) { q.Add("state", "another-state") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := authParams(p, "openid")
			tc.change(q)
			got := authorize(t, p, q)
			if got.Get("error") != "invalid_request" || got.Get("error_description") == "" || got.Get("state") != q.Get("state") || got.Has("code") {
				t.Errorf("redirect query = %v", got)
			}
		})
	}

	for _, tc := range []struct {
		name   string
		change func(url.Values)
	}{
		{"unknown client", func(q url.Values) { q.Set("client_id", "someone-else") }},
		{"unregistered redirect_uri", func(q url.Values) { q.Set("redirect_uri", callback+"/") }},
		{"redirect_uri missing", func(q url.Values) { q.Del("redirect_uri") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := authParams(p, "openid")
			tc.change(q)
			resp, body := get(t, p.URL()+authorizePath+"?"+q.Encode())
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
				t.Errorf("status = %d, Location = %q; want 400 and no redirect", resp.StatusCode, resp.Header.Get("Location"))
			}
			if !strings.Contains(body, "invalid_request") || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
				t.Errorf("error page: %s", body)
			}
		})
	}
}

func TestRedirectURIsUnregistered(t *testing.T) {
	p := newProvider(t, vippstest.Config{AutoApprove: true, RedirectURIs: []string{}})
	for _, tc := range []struct {
		uri  string
		want int
	}{
		{"http://localhost:8080/cb", http.StatusFound},
		{"https://anything.example/x?y=1", http.StatusFound},
		{"ftp://files.example/cb", http.StatusBadRequest},
		{"https://site.example/cb#frag", http.StatusBadRequest},
		{"/relative", http.StatusBadRequest},
	} {
		q := authParams(p, "openid")
		q.Set("redirect_uri", tc.uri)
		resp, _ := get(t, p.URL()+authorizePath+"?"+q.Encode())
		if resp.StatusCode != tc.want {
			t.Errorf("%s: status = %d, want %d", tc.uri, resp.StatusCode, tc.want)
		}
	}
	resp, _ := get(t, p.URL()+authorizePath+"?"+authParams(p, "openid").Encode())
	if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, callback+"?code=") {
		t.Errorf("Location = %q", loc)
	}

	p.AddRedirectURI("http://localhost:8080/cb")
	q := authParams(p, "openid")
	q.Set("redirect_uri", "http://localhost:8080/cb")
	if resp, _ := get(t, p.URL()+authorizePath+"?"+q.Encode()); resp.StatusCode != http.StatusFound {
		t.Errorf("registered URI: status = %d", resp.StatusCode)
	}
	if resp, _ := get(t, p.URL()+authorizePath+"?"+authParams(p, "openid").Encode()); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("once a URI is registered, others are refused: status = %d", resp.StatusCode)
	}
}

var (
	actionRE  = regexp.MustCompile(`<form method="post" action="([^"]+)">`)
	requestRE = regexp.MustCompile(`name="request" value="([^"]+)"`)
)

// consent loads the consent page and returns the form's action URL and
// request id.
func consent(t *testing.T, p *vippstest.Provider, q url.Values) (action, request string) {
	t.Helper()
	resp, body := get(t, p.URL()+authorizePath+"?"+q.Encode())
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("consent page: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{
		vippstest.DefaultUsers()[0].Name,
		q.Get("scope"),
		`<button id="approve" name="decision" value="approve">Approve</button>`,
		`<button id="cancel" name="decision" value="cancel">Cancel</button>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("consent page lacks %q", want)
		}
	}
	a, r := actionRE.FindStringSubmatch(body), requestRE.FindStringSubmatch(body)
	if a == nil || r == nil {
		t.Fatalf("no form in consent page:\n%s", body)
	}
	ref, err := url.Parse(a[1])
	if err != nil {
		t.Fatal(err)
	}
	base, _ := url.Parse(p.URL() + authorizePath)
	return base.ResolveReference(ref).String(), r[1]
}

func decide(t *testing.T, action, request, decision string) (*http.Response, string) {
	t.Helper()
	form := url.Values{"request": {request}, "decision": {decision}}
	req, err := http.NewRequest(http.MethodPost, action, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, req)
}

func TestConsent(t *testing.T) {
	p := newProvider(t, vippstest.Config{})

	t.Run("approve", func(t *testing.T) {
		q := authParams(p, "openid name phoneNumber")
		action, request := consent(t, p, q)
		resp, body := decide(t, action, request, "approve")
		got := redirectQuery(t, resp, body)
		if got.Get("code") == "" || got.Get("state") != q.Get("state") || got.Get("scope") != q.Get("scope") {
			t.Fatalf("redirect query = %v", got)
		}
		status, tok := exchange(t, p, "client_secret_basic", codeForm(got.Get("code")))
		if status != http.StatusOK {
			t.Fatalf("token: %d %v", status, tok)
		}
		// The request id is single use.
		resp, _ = decide(t, action, request, "approve")
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("reused request id: status = %d, want 400", resp.StatusCode)
		}
	})

	t.Run("cancel", func(t *testing.T) {
		q := authParams(p, "openid")
		action, request := consent(t, p, q)
		resp, body := decide(t, action, request, "cancel")
		redirectQuery(t, resp, body)
		want := callback + "?error=access_denied&error_description=user%20cancelled%20the%20login&state=" + q.Get("state")
		if got := resp.Header.Get("Location"); got != want {
			t.Errorf("Location = %q, want %q", got, want)
		}
	})
}

func TestIssuerParameter(t *testing.T) {
	p := newProvider(t, vippstest.Config{AutoApprove: true, IssuerParameter: true})
	_, body := get(t, p.URL()+discoveryPath)
	if d := decodeJSON(t, body); d["authorization_response_iss_parameter_supported"] != true {
		t.Errorf("discovery: authorization_response_iss_parameter_supported = %v", d["authorization_response_iss_parameter_supported"])
	}
	if got := authorize(t, p, authParams(p, "openid")); got.Get("iss") != p.Issuer() || got.Get("code") == "" {
		t.Errorf("success redirect = %v", got)
	}
	q := authParams(p, "openid")
	q.Set("state", "short")
	if got := authorize(t, p, q); got.Get("iss") != p.Issuer() || got.Get("error") == "" {
		t.Errorf("error redirect = %v", got)
	}
}

func TestUserinfoScopes(t *testing.T) {
	users := vippstest.DefaultUsers()
	always := []string{"sub", "sid"}
	for _, tc := range []struct {
		name  string
		user  int
		scope string
		want  []string
	}{
		{"openid only", 0, "openid", always},
		{"name", 0, "openid name", append(always, "name", "given_name", "family_name")},
		{"email", 0, "openid email", append(always, "email", "email_verified")},
		{"phoneNumber", 0, "openid phoneNumber", append(always, "phone_number", "phone_number_verified")},
		{"birthDate", 0, "openid birthDate", append(always, "birthdate")},
		{"nin", 0, "openid nin", append(always, "nin")},
		{"address", 0, "openid address", append(always, "address", "other_addresses")},
		{"address of a user without one", 2, "openid address", append(always, "address", "other_addresses")},
		{"unknown scope ignored", 0, "openid gender", always},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newProvider(t, vippstest.Config{AutoApprove: true})
			user := users[tc.user]
			if err := p.SetUser(user.Sub); err != nil {
				t.Fatal(err)
			}
			status, tok := exchange(t, p, "client_secret_basic", codeForm(login(t, p, tc.scope)))
			if status != http.StatusOK {
				t.Fatalf("token: %d %v", status, tok)
			}
			status, info := userinfo(t, p, tok["access_token"].(string))
			if status != http.StatusOK {
				t.Fatalf("userinfo: %d %v", status, info)
			}
			var got []string
			for k := range info {
				got = append(got, k)
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(tc.want))
			if !slices.Equal(got, want) {
				t.Errorf("claims = %v, want %v", got, want)
			}
			if info["sub"] != user.Sub {
				t.Errorf("sub = %v, want %v", info["sub"], user.Sub)
			}
			if !strings.Contains(tc.scope, "address") {
				return
			}
			addr, _ := info["address"].(map[string]any)
			others, ok := info["other_addresses"].([]any)
			if !ok || len(others) != len(user.OtherAddresses) {
				t.Errorf("other_addresses = %#v", info["other_addresses"])
			}
			wantAddr := map[string]any{
				"street_address": user.Address.StreetAddress,
				"postal_code":    user.Address.PostalCode,
				"region":         user.Address.Region,
				"country":        user.Address.Country,
				"formatted":      user.Address.Formatted,
				"address_type":   user.Address.AddressType,
			}
			if len(addr) != len(wantAddr) {
				t.Errorf("address = %v, want %v", addr, wantAddr)
			}
			for k, v := range wantAddr {
				if addr[k] != v {
					t.Errorf("address.%s = %#v, want %#v", k, addr[k], v)
				}
			}
		})
	}
}

func TestDefaultUsers(t *testing.T) {
	users := vippstest.DefaultUsers()
	if len(users) < 3 {
		t.Fatalf("%d users, want at least 3", len(users))
	}
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	withoutAddress := 0
	for _, u := range users {
		if !uuid.MatchString(u.Sub) {
			t.Errorf("%s: sub %q is not a UUID", u.Name, u.Sub)
		}
		if !regexp.MustCompile(`^47[49]\d{7}$`).MatchString(u.PhoneNumber) {
			t.Errorf("%s: phone %q", u.Name, u.PhoneNumber)
		}
		if !validNIN(u.NIN) {
			t.Errorf("%s: NIN %q does not pass the checksum", u.Name, u.NIN)
		}
		if _, err := time.Parse(time.DateOnly, u.BirthDate); err != nil {
			t.Errorf("%s: birth date: %v", u.Name, err)
		}
		if u.OtherAddresses == nil {
			t.Errorf("%s: OtherAddresses is nil, want empty", u.Name)
		}
		if u.Address == (vippstest.Address{}) {
			withoutAddress++
		} else if !strings.HasSuffix(u.Address.Formatted, "\n"+u.Address.Country) {
			t.Errorf("%s: formatted address %q", u.Name, u.Address.Formatted)
		}
	}
	if withoutAddress == 0 {
		t.Error("no user without an address")
	}
	users[0].OtherAddresses[0].Region = "changed"
	if vippstest.DefaultUsers()[0].OtherAddresses[0].Region == "changed" {
		t.Error("DefaultUsers shares its slices")
	}
}

// validNIN checks the two mod-11 check digits of a Norwegian national
// identity number.
func validNIN(nin string) bool {
	if !regexp.MustCompile(`^\d{11}$`).MatchString(nin) {
		return false
	}
	d := func(i int) int { return int(nin[i] - '0') }
	check := func(weights []int) bool {
		sum := 0
		for i, w := range weights {
			sum += w * d(i)
		}
		k := (11 - sum%11) % 11
		return k != 10 && k == d(len(weights))
	}
	return check([]int{3, 7, 6, 1, 8, 9, 4, 5, 2}) && check([]int{5, 4, 3, 2, 7, 6, 5, 4, 3, 2})
}

func TestSetUser(t *testing.T) {
	p := newProvider(t, vippstest.Config{AutoApprove: true})
	if err := p.SetUser("no-such-user"); err == nil {
		t.Error("SetUser of an unknown sub: no error")
	}
	second := vippstest.DefaultUsers()[1]
	if err := p.SetUser(second.Sub); err != nil {
		t.Fatal(err)
	}
	_, tok := exchange(t, p, "client_secret_basic", codeForm(login(t, p, "openid")))
	if _, claims := decodeJWT(t, tok["id_token"].(string)); claims["sub"] != second.Sub {
		t.Errorf("sub = %v, want %v", claims["sub"], second.Sub)
	}
}

func TestNonceAbsent(t *testing.T) {
	p := newProvider(t, vippstest.Config{AutoApprove: true})
	q := authParams(p, "openid")
	q.Del("nonce")
	_, tok := exchange(t, p, "client_secret_basic", codeForm(authorize(t, p, q).Get("code")))
	nonce, ok := verify(t, p, tok["id_token"].(string))["nonce"]
	if !ok || nonce != "" {
		t.Errorf("nonce = %#v (present %v), want \"\"", nonce, ok)
	}
}

func TestHooks(t *testing.T) {
	p := newProvider(t, vippstest.Config{AutoApprove: true})

	p.SetHooks(vippstest.Hooks{
		IDToken: func(header, claims map[string]any) string {
			claims["aud"] = "someone-else"
			header["kid"] = currentKid(p)
			return ""
		},
		Userinfo: func(claims map[string]any) { claims["extra"] = "yes" },
	})
	_, tok := exchange(t, p, "client_secret_basic", codeForm(login(t, p, "openid")))
	if claims := verify(t, p, tok["id_token"].(string)); claims["aud"] != "someone-else" {
		t.Errorf("aud = %v, want the hook's value", claims["aud"])
	}
	if _, info := userinfo(t, p, tok["access_token"].(string)); info["extra"] != "yes" {
		t.Errorf("userinfo = %v", info)
	}

	unsigned := vippstest.UnsignedToken(nil, map[string]any{"sub": "x"})
	p.SetHooks(vippstest.Hooks{IDToken: func(_, _ map[string]any) string { return unsigned }})
	if _, tok := exchange(t, p, "client_secret_basic", codeForm(login(t, p, "openid"))); tok["id_token"] != unsigned {
		t.Errorf("id_token = %v, want the replacement", tok["id_token"])
	}

	p.SetHooks(vippstest.Hooks{AuthorizeError: "server_error"})
	got := authorize(t, p, authParams(p, "openid"))
	if got.Get("error") != "server_error" || got.Get("state") != "state-0123456789" || got.Has("code") {
		t.Errorf("redirect query = %v", got)
	}

	p.SetHooks(vippstest.Hooks{})
	if got := authorize(t, p, authParams(p, "openid")); got.Get("code") == "" {
		t.Errorf("after clearing hooks: %v", got)
	}
}

func TestAttackHelpers(t *testing.T) {
	p := newProvider(t, vippstest.Config{})
	claims := map[string]any{"iss": p.Issuer(), "sub": "x", "aud": []string{p.ClientID()}}
	ks := keySet(t, p)

	unsigned := vippstest.UnsignedToken(map[string]any{"alg": "RS256", "kid": "k1"}, claims)
	parts := strings.Split(unsigned, ".")
	if len(parts) != 3 || parts[2] != "" {
		t.Fatalf("UnsignedToken = %q, want header.payload.", unsigned)
	}
	if h, _ := decodeJWT(t, unsigned); h["alg"] != "none" || h["kid"] != "k1" {
		t.Errorf("unsigned header = %v", h)
	}
	if _, err := ks.Verify(t.Context(), []byte(unsigned), "none", ""); err == nil {
		t.Error("the key set verified an unsigned token")
	}

	pemBytes := p.PublicKeyPEM()
	block, _ := pem.Decode(pemBytes)
	if block == nil || block.Type != "PUBLIC KEY" {
		t.Fatalf("PublicKeyPEM = %q", pemBytes)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	// The key in the PEM verifies what the provider signs.
	rsaPub, ok := pub.(*rsa.PublicKey)
	if !ok {
		t.Fatalf("PublicKeyPEM holds a %T, want the RSA key that signs", pub)
	}
	parts = strings.Split(p.Sign(nil, claims), ".")
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if sig, _ := base64.RawURLEncoding.DecodeString(parts[2]); rsa.VerifyPKCS1v15(rsaPub, crypto.SHA256, digest[:], sig) != nil {
		t.Error("PublicKeyPEM is not the signing key: it does not verify a token Sign signed")
	}

	hs := vippstest.HMACToken(map[string]any{"kid": currentKid(p)}, claims, pemBytes)
	parts = strings.Split(hs, ".")
	if len(parts) != 3 || parts[2] == "" {
		t.Fatalf("HMACToken = %q", hs)
	}
	if h, _ := decodeJWT(t, hs); h["alg"] != "HS256" {
		t.Errorf("HMAC header = %v", h)
	}
	mac := hmac.New(sha256.New, pemBytes)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if sig, _ := base64.RawURLEncoding.DecodeString(parts[2]); !hmac.Equal(sig, mac.Sum(nil)) {
		t.Error("HMAC signature does not verify with the secret")
	}
	if _, err := ks.Verify(t.Context(), []byte(hs), "HS256", currentKid(p)); !errors.Is(err, jose.ErrKeyMismatch) {
		t.Errorf("key set on HS256 token: err = %v, want ErrKeyMismatch", err)
	}

	signed := p.Sign(map[string]any{"typ": "at+jwt"}, claims)
	h, got := decodeJWT(t, signed)
	if h["alg"] != "RS256" || h["typ"] != "at+jwt" || h["kid"] != currentKid(p) || got["sub"] != "x" {
		t.Errorf("Sign: header %v claims %v", h, got)
	}
	verify(t, p, signed)
}

// currentKid returns the kid of the key that signs now.
func currentKid(p *vippstest.Provider) string {
	kid, _ := p.CurrentKey()
	return kid
}

// jwksKids returns the kids that the JWKS publishes.
func jwksKids(t *testing.T, p *vippstest.Provider) []string {
	t.Helper()
	resp, body := get(t, p.URL()+jwksPath)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "max-age=3600" {
		t.Fatalf("JWKS: %d, Cache-Control %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
			Kty string `json:"kty"`
			Alg string `json:"alg"`
			Use string `json:"use"`
			D   string `json:"d"`
		} `json:"keys"`
	}
	if err := json.Unmarshal([]byte(body), &set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		if k.Kty != "RSA" || k.Alg != "RS256" || k.Use != "sig" || k.D != "" {
			t.Errorf("key %+v", k)
		}
		kids = append(kids, k.Kid)
	}
	return kids
}

func TestKeyRotation(t *testing.T) {
	p := newProvider(t, vippstest.Config{AutoApprove: true})
	old := currentKid(p)
	if !strings.HasPrefix(old, "public:") {
		t.Errorf("kid = %q, want a public: prefix", old)
	}
	_, before := exchange(t, p, "client_secret_basic", codeForm(login(t, p, "openid")))

	kid := p.RotateKey()
	if kid == old || kid == "" || currentKid(p) != kid {
		t.Fatalf("RotateKey = %q, old %q, current %q", kid, old, currentKid(p))
	}
	if got := jwksKids(t, p); !slices.Equal(got, []string{kid, old}) {
		t.Errorf("JWKS kids = %v, want [%s %s]", got, kid, old)
	}
	_, after := exchange(t, p, "client_secret_basic", codeForm(login(t, p, "openid")))
	if h, _ := decodeJWT(t, after["id_token"].(string)); h["kid"] != kid {
		t.Errorf("new token kid = %v, want %v", h["kid"], kid)
	}
	verify(t, p, before["id_token"].(string))
	verify(t, p, after["id_token"].(string))

	p.RetireOldKeys()
	if got := jwksKids(t, p); !slices.Equal(got, []string{kid}) {
		t.Errorf("after RetireOldKeys: JWKS kids = %v, want [%s]", got, kid)
	}
}

func TestFaults(t *testing.T) {
	t.Run("status with body", func(t *testing.T) {
		p := newProvider(t, vippstest.Config{})
		p.SetFault(vippstest.Discovery, vippstest.Fault{Status: http.StatusOK, Body: "garbage"})
		resp, body := get(t, p.URL()+discoveryPath)
		if resp.StatusCode != http.StatusOK || body != "garbage" {
			t.Errorf("got %d %q", resp.StatusCode, body)
		}
		p.SetFault(vippstest.Discovery, vippstest.Fault{})
		if _, body := get(t, p.URL()+discoveryPath); decodeJSON(t, body)["issuer"] != p.Issuer() {
			t.Errorf("after clearing the fault: %s", body)
		}
	})

	t.Run("status alone", func(t *testing.T) {
		p := newProvider(t, vippstest.Config{})
		p.SetFault(vippstest.Token, vippstest.Fault{Status: http.StatusServiceUnavailable})
		status, body := exchange(t, p, "client_secret_basic", codeForm("any"))
		wantError(t, status, body, http.StatusServiceUnavailable, "server_error")
	})

	t.Run("down", func(t *testing.T) {
		p := newProvider(t, vippstest.Config{})
		p.SetFault(vippstest.JWKS, vippstest.Fault{Down: true})
		resp, err := client.Get(p.URL() + jwksPath)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("got status %d, want a connection error", resp.StatusCode)
		}
		if p.Hits(vippstest.JWKS) == 0 {
			t.Error("the refused request was not counted")
		}
	})

	t.Run("short delay", func(t *testing.T) {
		p := newProvider(t, vippstest.Config{})
		p.SetFault(vippstest.Discovery, vippstest.Fault{Delay: time.Millisecond})
		if resp, _ := get(t, p.URL()+discoveryPath); resp.StatusCode != http.StatusOK {
			t.Errorf("status = %d", resp.StatusCode)
		}
	})

	t.Run("delay ends with the request", func(t *testing.T) {
		p := newProvider(t, vippstest.Config{})
		p.SetFault(vippstest.Discovery, vippstest.Fault{Delay: time.Hour})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { cancel() }}
		req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, p.URL()+discoveryPath, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp, err := client.Do(req); !errors.Is(err, context.Canceled) {
			if err == nil {
				resp.Body.Close()
			}
			t.Errorf("err = %v, want context.Canceled", err)
		}
		p.Close() // returns only once the delayed handler has returned
	})
}

func TestHitsAndHeaders(t *testing.T) {
	p := newProvider(t, vippstest.Config{})
	if p.Hits(vippstest.Discovery) != 0 || p.LastHeader(vippstest.Discovery) != nil {
		t.Fatal("a new provider has hits")
	}
	for i := range 2 {
		req, _ := http.NewRequest(http.MethodGet, p.URL()+discoveryPath, nil)
		req.Header.Set("Vipps-System-Version", []string{"1.0.0", "1.0.1"}[i])
		do(t, req)
	}
	get(t, p.URL()+jwksPath)
	p.SetFault(vippstest.Userinfo, vippstest.Fault{Status: http.StatusInternalServerError})
	get(t, p.URL()+userinfoPath)

	// The consent page and its form both count as Authorize.
	action, request := consent(t, p, authParams(p, "openid"))
	decide(t, action, request, "cancel")

	for e, want := range map[vippstest.Endpoint]int{
		vippstest.Discovery: 2,
		vippstest.JWKS:      1,
		vippstest.Userinfo:  1,
		vippstest.Authorize: 2,
		vippstest.Token:     0,
	} {
		if got := p.Hits(e); got != want {
			t.Errorf("Hits(%s) = %d, want %d", e, got, want)
		}
	}
	h := p.LastHeader(vippstest.Discovery)
	if got := h.Get("Vipps-System-Version"); got != "1.0.1" {
		t.Errorf("Vipps-System-Version = %q, want the last request's", got)
	}
	h.Set("Vipps-System-Version", "changed")
	if got := p.LastHeader(vippstest.Discovery).Get("Vipps-System-Version"); got != "1.0.1" {
		t.Errorf("LastHeader is not a copy: %q", got)
	}
}

func TestRouting(t *testing.T) {
	p := newProvider(t, vippstest.Config{})
	if resp, _ := get(t, p.URL()+"/no/such/path"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown path: status = %d, want 404", resp.StatusCode)
	}
	if resp, _ := get(t, p.URL()+tokenPath); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET token: status = %d, want 405", resp.StatusCode)
	}
	status, body := userinfo(t, p, "")
	wantProblem(t, status, body, http.StatusUnauthorized)
	status, body = userinfo(t, p, "made-up")
	wantProblem(t, status, body, http.StatusUnauthorized)
}

func TestNewRejectsBadConfig(t *testing.T) {
	for name, cfg := range map[string]vippstest.Config{
		"auth method":     {TokenAuthMethod: "private_key_jwt"},
		"duplicate sub":   {Users: []vippstest.User{{Sub: "a"}, {Sub: "a"}}},
		"empty sub":       {Users: []vippstest.User{{Name: "No Sub"}}},
		"no users":        {Users: []vippstest.User{}},
		"negative TTL":    {CodeTTL: -time.Second},
		"redirect w/frag": {RedirectURIs: []string{"https://x.example/cb#top"}},
	} {
		if p, err := vippstest.New(cfg); err == nil {
			p.Close()
			t.Errorf("%s: no error", name)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	p := newProvider(t, vippstest.Config{AutoApprove: true})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 5 {
				resp, err := client.Get(p.URL() + authorizePath + "?" + authParams(p, "openid name address").Encode())
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				loc, _ := url.Parse(resp.Header.Get("Location"))
				form := codeForm(loc.Query().Get("code"))
				req, _ := http.NewRequest(http.MethodPost, p.URL()+tokenPath, strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth(p.ClientID(), p.ClientSecret())
				resp, err = client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				var tok struct {
					AccessToken string `json:"access_token"`
				}
				err = json.NewDecoder(resp.Body).Decode(&tok)
				resp.Body.Close()
				if err != nil || tok.AccessToken == "" {
					t.Errorf("token: status %d, err %v", resp.StatusCode, err)
					return
				}
				req, _ = http.NewRequest(http.MethodGet, p.URL()+userinfoPath, nil)
				req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
				resp, err = client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("userinfo: status %d", resp.StatusCode)
				}
			}
		})
	}
	users := vippstest.DefaultUsers()
	for i := range 20 {
		_ = p.SetUser(users[i%len(users)].Sub)
		p.AddRedirectURI(callback)
		p.SetFault(vippstest.Discovery, vippstest.Fault{Status: 500})
		p.SetHooks(vippstest.Hooks{Userinfo: func(c map[string]any) { c["n"] = i }})
		_ = p.Hits(vippstest.Token)
		_ = p.LastHeader(vippstest.Token)
		_ = p.PublicKeyPEM()
		if i == 10 {
			p.RotateKey()
		}
	}
	wg.Wait()
	if got := p.Hits(vippstest.Token); got != 40 {
		t.Errorf("Hits(Token) = %d, want 40", got)
	}
}
