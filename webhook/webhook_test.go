package webhook_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vippslogin/vippslogin"
	"github.com/vippslogin/vippslogin/vippstest"
	"github.com/vippslogin/vippslogin/webhook"
)

const (
	webhookSecret = "5f0c9a7e3b1d48e6a2c4f8b0d6e1a3c7" // 32 characters
	webhookPath   = "/webhooks/vipps-consent"
	webhookSub    = "c3a9f3e2-5d1b-4f0e-9a6c-2b7d8e4f1a05"
)

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Now().UTC().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// syncBuffer is a bytes.Buffer that the handler's log may write to while a
// test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// webhookSiteKey marks the site's base context, to see that OnRevoked gets the
// request's context.
type webhookSiteKey struct{}

// webhookSite is a site with the consent webhook mounted.
type webhookSite struct {
	t     *testing.T
	clock *clock
	idp   *vippstest.Provider // made by provider
	srv   *httptest.Server
	logs  *syncBuffer

	mu     sync.Mutex
	events []webhook.ConsentRevoked
	fail   error // what OnRevoked returns
}

func newWebhookSite(t *testing.T, edit func(*webhook.Config)) *webhookSite {
	t.Helper()
	s := &webhookSite{t: t, clock: newClock(), logs: &syncBuffer{}}
	cfg := webhook.Config{
		Secret: webhookSecret,
		OnRevoked: func(ctx context.Context, e webhook.ConsentRevoked) error {
			if ctx.Value(webhookSiteKey{}) != "site" {
				t.Error("OnRevoked did not get the request's context")
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			s.events = append(s.events, e)
			return s.fail
		},
		Logger: slog.New(slog.NewJSONHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:    s.clock.Now,
	}
	if edit != nil {
		edit(&cfg)
	}
	h, err := webhook.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(webhookPath, h)
	s.srv = httptest.NewUnstartedServer(mux)
	s.srv.Config.BaseContext = func(net.Listener) context.Context {
		return context.WithValue(context.Background(), webhookSiteKey{}, "site")
	}
	s.srv.Start()
	t.Cleanup(s.srv.Close)
	return s
}

// provider returns a mock provider on the site's clock, to send events as
// Vipps does.
func (s *webhookSite) provider() *vippstest.Provider {
	s.t.Helper()
	if s.idp == nil {
		idp, err := vippstest.New(vippstest.Config{Now: s.clock.Now})
		if err != nil {
			s.t.Fatal(err)
		}
		s.t.Cleanup(idp.Close)
		s.idp = idp
	}
	return s.idp
}

// url is the webhook's URL as registered at Vipps, secret and all.
func (s *webhookSite) url() string { return s.srv.URL + webhookPath + "?secret=" + webhookSecret }

func (s *webhookSite) received() []webhook.ConsentRevoked {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]webhook.ConsentRevoked(nil), s.events...)
}

// webhookRequest is a request to the webhook: the default is what Vipps
// sends, with a valid event made by body.
type webhookRequest struct {
	method string
	query  string            // the URL's query; "" for none
	header map[string]string // extra headers; an empty value deletes one
	body   func(now time.Time) string
}

// send makes the request and returns the answer's status, its JSON error
// code ("" when it has none) and its headers.
func (s *webhookSite) send(t *testing.T, r webhookRequest) (int, string, http.Header) {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodPost
	}
	u := s.srv.URL + webhookPath
	if r.query != "" {
		u += "?" + r.query
	}
	body := ""
	if r.body != nil {
		body = r.body(s.clock.Now())
	}
	req, err := http.NewRequest(r.method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/plain")
	for k, v := range r.header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := s.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == http.StatusNoContent {
		if len(b) != 0 {
			t.Errorf("204 with a body: %q", b)
		}
		return resp.StatusCode, "", resp.Header
	}
	if got := resp.Header.Get("Content-Type"); got != "application/json; charset=utf-8" {
		t.Errorf("Content-Type = %q, want JSON", got)
	}
	var e struct{ Error, Message string }
	if err := json.Unmarshal(b, &e); err != nil || e.Error == "" || e.Message == "" {
		t.Errorf("body %q is not a JSON error with a message", b)
	}
	return resp.StatusCode, e.Error, resp.Header
}

// checkLogs fails if the log holds the secret or any of the given tokens.
func (s *webhookSite) checkLogs(t *testing.T, tokens ...string) {
	t.Helper()
	logs := s.logs.String()
	if strings.Contains(logs, webhookSecret) || strings.Contains(logs, "secret=") {
		t.Errorf("the log shows the secret:\n%s", logs)
	}
	for _, tok := range tokens {
		tok = strings.TrimSpace(tok)
		if len(tok) >= 8 && strings.Contains(logs, tok) {
			t.Errorf("the log shows the token %q:\n%s", tok, logs)
		}
		if h, p, ok := strings.Cut(tok, "."); ok {
			p, _, _ = strings.Cut(p, ".")
			for _, part := range []string{h, p} {
				if len(part) >= 8 && strings.Contains(logs, part) {
					t.Errorf("the log shows part %q of the token:\n%s", part, logs)
				}
			}
		}
	}
}

// b64url encodes s in unpadded base64url.
func b64url(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// unsecuredJWT returns header and payload as an unsecured JWT, in the
// RFC 7519 form "header.payload.".
func unsecuredJWT(header, payload string) string { return b64url(header) + "." + b64url(payload) + "." }

const noneJWTHeader = `{"alg":"none","typ":"JWT"}`

// dropClaim, as a value in an event edit, deletes the claim.
type dropClaim struct{}

// consentClaims returns the JSON payload of a valid CONSENT_REVOKED event
// issued at now, changed by edit.
func consentClaims(now time.Time, edit map[string]any) string {
	iat := now.Unix()
	claims := map[string]any{"exp": iat + 300, "iat": iat, "nbf": iat, "sub": webhookSub, "event": "CONSENT_REVOKED"}
	for k, v := range edit {
		if _, ok := v.(dropClaim); ok {
			delete(claims, k)
		} else {
			claims[k] = v
		}
	}
	b, err := json.Marshal(claims)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// consentToken makes a body of an unsecured token with the event changed by
// edit.
func consentToken(edit map[string]any) func(time.Time) string {
	return func(now time.Time) string { return unsecuredJWT(noneJWTHeader, consentClaims(now, edit)) }
}

// fixedBody makes a body that does not depend on the time.
func fixedBody(body string) func(time.Time) string { return func(time.Time) string { return body } }

func TestConsentWebhook(t *testing.T) {
	s := newWebhookSite(t, nil)
	resp, err := s.provider().SendConsentRevoked(context.Background(), s.url(), webhookSub)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status = %d, want 204", resp.StatusCode)
	}
	got := s.received()
	if len(got) != 1 {
		t.Fatalf("OnRevoked ran %d times, want 1", len(got))
	}
	now := s.clock.Now()
	if e := got[0]; e.Subject != webhookSub || !e.IssuedAt.Equal(now) || !e.ExpiresAt.Equal(now.Add(5*time.Minute)) {
		t.Errorf("event = %+v, want sub %s issued at %v, expiring 5 minutes later", e, webhookSub, now)
	}
	logs := s.logs.String()
	if !strings.Contains(logs, `"msg":"vippslogin: consent revoked"`) || !strings.Contains(logs, `"sub":"`+webhookSub+`"`) {
		t.Errorf("no info record with the sub:\n%s", logs)
	}
	s.checkLogs(t, vippstest.ConsentRevokedToken(webhookSub, now))
}

func TestConsentWebhookAccepts(t *testing.T) {
	// Vipps' documented example, verbatim (login-api/api-guide/
	// important-information.md, "Revoke Consent Webhook": "sent as a POST
	// with a text/plain body containing an unsigned JSON Web Token"): two
	// parts, and a header with a space and a trailing line break in its JSON.
	// The request is a POST with Content-Type text/plain (webhookSite.send),
	// at a time between the example's iat and exp.
	const vippsExample = "eyJhbGciOiJub25lIiwidHlwIjogIkpXVCJ9Cg.eyJleHAiOjE1OTI1NzE3ODgsImlhdCI6MTU5MjU3MTQ4OCwibmJmIjoxNTkyNTcxNDg4LCJzdWIiOiJjOWQxMDQ0NC1kOTkyLTQ4NTAtYWM2MC05ZDM1MDIwOTUwMDgiLCJldmVudCI6IkNPTlNFTlRfUkVWT0tFRCJ9"
	vippsTime := time.Unix(1592571488, 0)
	bearer := map[string]string{"Authorization": "Bearer " + webhookSecret}

	cases := []struct {
		name    string
		req     webhookRequest
		at      time.Time // the clock, when not the real time
		wantSub string    // default webhookSub
	}{
		{name: "Vipps' example", at: vippsTime.Add(10 * time.Second), wantSub: "c9d10444-d992-4850-ac60-9d3502095008",
			req: webhookRequest{body: fixedBody(vippsExample)}},
		{name: "RFC 7519 form, empty signature", req: webhookRequest{body: consentToken(nil)}},
		{name: "bearer header", req: webhookRequest{query: "-", header: bearer, body: consentToken(nil)}},
		{name: "bearer scheme in lower case", req: webhookRequest{query: "-", header: map[string]string{"Authorization": "bearer " + webhookSecret}, body: consentToken(nil)}},
		{name: "header and query both right", req: webhookRequest{header: bearer, body: consentToken(nil)}},
		{name: "other Authorization scheme is left alone", req: webhookRequest{header: map[string]string{"Authorization": "Basic c2l0ZTpwYXNz"}, body: consentToken(nil)}},
		{name: "other query parameters", req: webhookRequest{query: "secret=" + webhookSecret + "&source=vipps", body: consentToken(nil)}},
		{name: "charset utf-8", req: webhookRequest{header: map[string]string{"Content-Type": "text/plain; charset=UTF-8"}, body: consentToken(nil)}},
		{name: "charset us-ascii", req: webhookRequest{header: map[string]string{"Content-Type": "Text/Plain;charset=us-ascii"}, body: consentToken(nil)}},
		{name: "application/jwt", req: webhookRequest{header: map[string]string{"Content-Type": "application/jwt"}, body: consentToken(nil)}},
		{name: "identity encoding", req: webhookRequest{header: map[string]string{"Content-Encoding": "identity"}, body: consentToken(nil)}},
		{name: "surrounding white space", req: webhookRequest{body: func(now time.Time) string { return "\r\n  " + consentToken(nil)(now) + " \t\r\n" }}},
		{name: "two parts", req: webhookRequest{body: func(now time.Time) string { return strings.TrimSuffix(consentToken(nil)(now), ".") }}},
		{name: "no typ", req: webhookRequest{body: func(now time.Time) string { return unsecuredJWT(`{"alg":"none"}`, consentClaims(now, nil)) }}},
		{name: "typ in lower case", req: webhookRequest{body: func(now time.Time) string { return unsecuredJWT(`{"alg":"none","typ":"jwt"}`, consentClaims(now, nil)) }}},
		{name: "unknown header parameters and claims", req: webhookRequest{body: func(now time.Time) string {
			return unsecuredJWT(`{"alg":"none","kid":"k1","x":[1,{"y":null}]}`, consentClaims(now, map[string]any{"aud": "x", "jti": "1", "extra": map[string]any{"sub": 1}}))
		}}},
		{name: "no nbf", req: webhookRequest{body: consentToken(map[string]any{"nbf": dropClaim{}})}},
		{name: "escaped names and values", req: webhookRequest{body: func(now time.Time) string {
			return unsecuredJWT(`{"\u0061lg":"n\u006fne"}`, fmt.Sprintf(`{"ev\u0065nt":"CONSENT_REVOKED","sub":"c3a9f3e2-5d1b-4f0e-9a6c-2b7d8e4f1a05","iat":%d,"exp":%d}`, now.Unix(), now.Unix()+300))
		}}},
		{name: "fractional times", req: webhookRequest{body: func(now time.Time) string {
			return unsecuredJWT(noneJWTHeader, fmt.Sprintf(`{"event":"CONSENT_REVOKED","sub":%q,"iat":%d.25,"nbf":%d.25,"exp":%d.5}`, webhookSub, now.Unix(), now.Unix(), now.Unix()+300))
		}}},
		{name: "expired within the clock skew", req: webhookRequest{body: func(now time.Time) string {
			return unsecuredJWT(noneJWTHeader, consentClaims(now, map[string]any{"iat": now.Unix() - 330, "nbf": now.Unix() - 330, "exp": now.Unix() - 30}))
		}}},
		{name: "issued in the future within the clock skew", req: webhookRequest{body: func(now time.Time) string {
			return unsecuredJWT(noneJWTHeader, consentClaims(now, map[string]any{"iat": now.Unix() + 30, "nbf": now.Unix() + 30, "exp": now.Unix() + 330}))
		}}},
		{name: "sub of 255 characters", wantSub: strings.Repeat("a", 255), req: webhookRequest{body: consentToken(map[string]any{"sub": strings.Repeat("a", 255)})}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newWebhookSite(t, nil)
			if !tc.at.IsZero() {
				s.clock.Set(tc.at)
			}
			switch tc.req.query {
			case "":
				tc.req.query = "secret=" + webhookSecret
			case "-":
				tc.req.query = ""
			}
			status, code, _ := s.send(t, tc.req)
			if status != http.StatusNoContent {
				t.Fatalf("status = %d %s, want 204\n%s", status, code, s.logs)
			}
			want := tc.wantSub
			if want == "" {
				want = webhookSub
			}
			if got := s.received(); len(got) != 1 || got[0].Subject != want {
				t.Errorf("OnRevoked got %+v, want one event for %s", got, want)
			}
			s.checkLogs(t, tc.req.body(s.clock.Now()))
		})
	}
}

func TestConsentWebhookRefuses(t *testing.T) {
	long := strings.Repeat("a", 16<<10)
	cases := []struct {
		name   string
		req    webhookRequest
		status int
		code   string
	}{
		// The shared secret.
		{"no secret", webhookRequest{query: "-", body: consentToken(nil)}, 401, "unauthorized"},
		{"empty secret", webhookRequest{query: "secret=", body: consentToken(nil)}, 401, "unauthorized"},
		{"wrong secret in the query", webhookRequest{query: "secret=" + strings.Repeat("0", len(webhookSecret)), body: consentToken(nil)}, 401, "unauthorized"},
		{"shorter secret", webhookRequest{query: "secret=" + webhookSecret[:len(webhookSecret)-1], body: consentToken(nil)}, 401, "unauthorized"},
		{"longer secret", webhookRequest{query: "secret=" + webhookSecret + "0", body: consentToken(nil)}, 401, "unauthorized"},
		{"secret in another case", webhookRequest{query: "secret=" + strings.ToUpper(webhookSecret), body: consentToken(nil)}, 401, "unauthorized"},
		{"secret under another name", webhookRequest{query: "token=" + webhookSecret, body: consentToken(nil)}, 401, "unauthorized"},
		{"second secret in the query is wrong", webhookRequest{query: "secret=" + webhookSecret + "&secret=x", body: consentToken(nil)}, 401, "unauthorized"},
		{"wrong bearer secret", webhookRequest{query: "-", header: map[string]string{"Authorization": "Bearer " + strings.Repeat("0", len(webhookSecret))}, body: consentToken(nil)}, 401, "unauthorized"},
		{"wrong bearer secret beside a right query", webhookRequest{header: map[string]string{"Authorization": "Bearer wrong"}, body: consentToken(nil)}, 401, "unauthorized"},
		{"secret as a Basic password", webhookRequest{query: "-", header: map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("vipps:"+webhookSecret))}, body: consentToken(nil)}, 401, "unauthorized"},
		{"no secret and a bad body", webhookRequest{query: "-", body: fixedBody("garbage")}, 401, "unauthorized"},

		// The request.
		{"GET", webhookRequest{method: http.MethodGet}, 405, "method_not_allowed"},
		{"PUT", webhookRequest{method: http.MethodPut, body: consentToken(nil)}, 405, "method_not_allowed"},
		{"no Content-Type", webhookRequest{header: map[string]string{"Content-Type": ""}, body: consentToken(nil)}, 415, "unsupported_media_type"},
		{"application/json", webhookRequest{header: map[string]string{"Content-Type": "application/json"}, body: consentToken(nil)}, 415, "unsupported_media_type"},
		{"text/html", webhookRequest{header: map[string]string{"Content-Type": "text/html"}, body: consentToken(nil)}, 415, "unsupported_media_type"},
		{"unparsable Content-Type", webhookRequest{header: map[string]string{"Content-Type": "text/plain; charset"}, body: consentToken(nil)}, 415, "unsupported_media_type"},
		{"charset latin-1", webhookRequest{header: map[string]string{"Content-Type": "text/plain; charset=iso-8859-1"}, body: consentToken(nil)}, 415, "unsupported_media_type"},
		{"gzip", webhookRequest{header: map[string]string{"Content-Encoding": "gzip"}, body: consentToken(nil)}, 415, "unsupported_media_type"},
		{"too large", webhookRequest{body: func(now time.Time) string { return consentToken(map[string]any{"pad": long})(now) }}, 413, "body_too_large"},
		{"too large white space", webhookRequest{body: func(now time.Time) string { return consentToken(nil)(now) + strings.Repeat(" ", 16<<10) }}, 413, "body_too_large"},

		// The token's form.
		{"empty body", webhookRequest{body: fixedBody("")}, 400, "malformed_token"},
		{"only white space", webhookRequest{body: fixedBody(" \r\n")}, 400, "malformed_token"},
		{"JSON instead of a JWT", webhookRequest{body: func(now time.Time) string { return consentClaims(now, nil) }}, 400, "malformed_token"},
		{"one part", webhookRequest{body: func(now time.Time) string { return b64url(consentClaims(now, nil)) }}, 400, "malformed_token"},
		{"four parts", webhookRequest{body: func(now time.Time) string { return consentToken(nil)(now) + "." }}, 400, "malformed_token"},
		{"signature not empty", webhookRequest{body: func(now time.Time) string { return consentToken(nil)(now) + "c2ln" }}, 400, "malformed_token"},
		{"empty header", webhookRequest{body: func(now time.Time) string { return "." + b64url(consentClaims(now, nil)) + "." }}, 400, "malformed_token"},
		{"empty payload", webhookRequest{body: fixedBody(b64url(noneJWTHeader) + "..")}, 400, "malformed_token"},
		{"padding", webhookRequest{body: func(now time.Time) string {
			return base64.URLEncoding.EncodeToString([]byte(noneJWTHeader)) + "." + b64url(consentClaims(now, nil)) + "."
		}}, 400, "malformed_token"},
		{"standard base64 alphabet", webhookRequest{body: func(now time.Time) string {
			return "+/" + consentToken(nil)(now)[2:]
		}}, 400, "malformed_token"},
		{"line break inside", webhookRequest{body: func(now time.Time) string {
			tok := consentToken(nil)(now)
			return tok[:20] + "\n" + tok[20:]
		}}, 400, "malformed_token"},
		{"non-zero padding bits", webhookRequest{body: func(now time.Time) string {
			h := b64url(noneJWTHeader) // 26 bytes: the last character carries 4 unused bits
			return h[:len(h)-1] + "h." + b64url(consentClaims(now, nil)) + "."
		}}, 400, "malformed_token"},
		{"header not JSON", webhookRequest{body: func(now time.Time) string { return unsecuredJWT(`alg=none`, consentClaims(now, nil)) }}, 400, "malformed_token"},
		{"header an array", webhookRequest{body: func(now time.Time) string { return unsecuredJWT(`["alg","none"]`, consentClaims(now, nil)) }}, 400, "malformed_token"},
		{"alg twice", webhookRequest{body: func(now time.Time) string {
			return unsecuredJWT(`{"alg":"none","alg":"RS256"}`, consentClaims(now, nil))
		}}, 400, "malformed_token"},
		{"typ JOSE", webhookRequest{body: func(now time.Time) string {
			return unsecuredJWT(`{"alg":"none","typ":"JOSE"}`, consentClaims(now, nil))
		}}, 400, "malformed_token"},
		{"typ not a string", webhookRequest{body: func(now time.Time) string { return unsecuredJWT(`{"alg":"none","typ":1}`, consentClaims(now, nil)) }}, 400, "malformed_token"},
		{"crit", webhookRequest{body: func(now time.Time) string {
			return unsecuredJWT(`{"alg":"none","crit":["exp"]}`, consentClaims(now, nil))
		}}, 400, "malformed_token"},
		{"payload an array", webhookRequest{body: fixedBody(unsecuredJWT(noneJWTHeader, `[{"event":"CONSENT_REVOKED"}]`))}, 400, "malformed_token"},
		{"payload a string", webhookRequest{body: fixedBody(unsecuredJWT(noneJWTHeader, `"CONSENT_REVOKED"`))}, 400, "malformed_token"},
		{"payload null", webhookRequest{body: fixedBody(unsecuredJWT(noneJWTHeader, `null`))}, 400, "malformed_token"},
		{"payload not JSON", webhookRequest{body: fixedBody(unsecuredJWT(noneJWTHeader, `{"event":CONSENT_REVOKED}`))}, 400, "malformed_token"},
		{"payload with trailing data", webhookRequest{body: func(now time.Time) string { return unsecuredJWT(noneJWTHeader, consentClaims(now, nil)+"x") }}, 400, "malformed_token"},
		{"two payloads", webhookRequest{body: func(now time.Time) string {
			return unsecuredJWT(noneJWTHeader, consentClaims(now, nil)+consentClaims(now, nil))
		}}, 400, "malformed_token"},
		{"sub twice", webhookRequest{body: func(now time.Time) string {
			e := consentClaims(now, nil)
			return unsecuredJWT(noneJWTHeader, e[:len(e)-1]+`,"sub":"someone-else"}`)
		}}, 400, "malformed_token"},
		{"sub twice, once escaped", webhookRequest{body: func(now time.Time) string {
			e := consentClaims(now, nil)
			return unsecuredJWT(noneJWTHeader, e[:len(e)-1]+`,"s\u0075b":"someone-else"}`)
		}}, 400, "malformed_token"},
		{"invalid UTF-8", webhookRequest{body: func(now time.Time) string {
			return unsecuredJWT(noneJWTHeader, fmt.Sprintf(`{"event":"CONSENT_REVOKED","sub":%q,"iat":%d,"exp":%d,"x":"`+"\xff"+`"}`, webhookSub, now.Unix(), now.Unix()+300))
		}}, 400, "malformed_token"},

		// The algorithm.
		{"alg RS256", webhookRequest{body: func(now time.Time) string {
			return unsecuredJWT(`{"alg":"RS256","typ":"JWT"}`, consentClaims(now, nil))
		}}, 400, "unsupported_alg"},
		{"alg HS256", webhookRequest{body: func(now time.Time) string {
			return unsecuredJWT(`{"alg":"HS256","typ":"JWT"}`, consentClaims(now, nil))
		}}, 400, "unsupported_alg"},
		{"alg missing", webhookRequest{body: func(now time.Time) string { return unsecuredJWT(`{"typ":"JWT"}`, consentClaims(now, nil)) }}, 400, "unsupported_alg"},
		{"alg None", webhookRequest{body: func(now time.Time) string { return unsecuredJWT(`{"alg":"None"}`, consentClaims(now, nil)) }}, 400, "unsupported_alg"},
		{"alg null", webhookRequest{body: func(now time.Time) string { return unsecuredJWT(`{"alg":null}`, consentClaims(now, nil)) }}, 400, "unsupported_alg"},
		{"alg an array", webhookRequest{body: func(now time.Time) string { return unsecuredJWT(`{"alg":["none"]}`, consentClaims(now, nil)) }}, 400, "unsupported_alg"},

		// The claims.
		{"event CONSENT_GIVEN", webhookRequest{body: consentToken(map[string]any{"event": "CONSENT_GIVEN"})}, 400, "unsupported_event"},
		{"event in lower case", webhookRequest{body: consentToken(map[string]any{"event": "consent_revoked"})}, 400, "unsupported_event"},
		{"event missing", webhookRequest{body: consentToken(map[string]any{"event": dropClaim{}})}, 400, "unsupported_event"},
		{"event not a string", webhookRequest{body: consentToken(map[string]any{"event": []string{"CONSENT_REVOKED"}})}, 400, "unsupported_event"},
		{"sub missing", webhookRequest{body: consentToken(map[string]any{"sub": dropClaim{}})}, 400, "invalid_sub"},
		{"sub empty", webhookRequest{body: consentToken(map[string]any{"sub": ""})}, 400, "invalid_sub"},
		{"sub null", webhookRequest{body: consentToken(map[string]any{"sub": nil})}, 400, "invalid_sub"},
		{"sub a number", webhookRequest{body: consentToken(map[string]any{"sub": 12345})}, 400, "invalid_sub"},
		{"sub an object", webhookRequest{body: consentToken(map[string]any{"sub": map[string]any{"id": webhookSub}})}, 400, "invalid_sub"},
		{"sub too long", webhookRequest{body: consentToken(map[string]any{"sub": strings.Repeat("a", 256)})}, 400, "invalid_sub"},
		{"sub with a space", webhookRequest{body: consentToken(map[string]any{"sub": "kari nordmann"})}, 400, "invalid_sub"},
		{"sub with a line break", webhookRequest{body: consentToken(map[string]any{"sub": webhookSub + "\nlevel=ERROR"})}, 400, "invalid_sub"},
		{"sub not ASCII", webhookRequest{body: consentToken(map[string]any{"sub": "bjørn"})}, 400, "invalid_sub"},
		{"exp missing", webhookRequest{body: consentToken(map[string]any{"exp": dropClaim{}})}, 400, "invalid_claims"},
		{"exp a string", webhookRequest{body: func(now time.Time) string {
			return consentToken(map[string]any{"exp": fmt.Sprint(now.Unix() + 300)})(now)
		}}, 400, "invalid_claims"},
		{"exp negative", webhookRequest{body: consentToken(map[string]any{"exp": -1})}, 400, "invalid_claims"},
		{"exp huge", webhookRequest{body: consentToken(map[string]any{"exp": 1e300})}, 400, "invalid_claims"},
		{"iat missing", webhookRequest{body: consentToken(map[string]any{"iat": dropClaim{}})}, 400, "invalid_claims"},
		{"iat null", webhookRequest{body: consentToken(map[string]any{"iat": nil})}, 400, "invalid_claims"},
		{"nbf a string", webhookRequest{body: consentToken(map[string]any{"nbf": "now"})}, 400, "invalid_claims"},
		{"exp equal to iat", webhookRequest{body: func(now time.Time) string {
			return consentToken(map[string]any{"exp": now.Unix()})(now)
		}}, 400, "invalid_claims"},
		{"exp past", webhookRequest{body: func(now time.Time) string {
			return consentToken(map[string]any{"iat": now.Unix() - 400, "nbf": now.Unix() - 400, "exp": now.Unix() - 100})(now)
		}}, 400, "token_expired"},
		{"exp past by the clock skew exactly", webhookRequest{body: func(now time.Time) string {
			return consentToken(map[string]any{"iat": now.Unix() - 360, "nbf": now.Unix() - 360, "exp": now.Unix() - 60})(now)
		}}, 400, "token_expired"},
		{"iat in the future", webhookRequest{body: func(now time.Time) string {
			return consentToken(map[string]any{"iat": now.Unix() + 120, "nbf": dropClaim{}, "exp": now.Unix() + 420})(now)
		}}, 400, "token_not_yet_valid"},
		{"nbf in the future", webhookRequest{body: func(now time.Time) string {
			return consentToken(map[string]any{"nbf": now.Unix() + 120})(now)
		}}, 400, "token_not_yet_valid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newWebhookSite(t, nil)
			switch tc.req.query {
			case "":
				tc.req.query = "secret=" + webhookSecret
			case "-":
				tc.req.query = ""
			}
			status, code, header := s.send(t, tc.req)
			if status != tc.status || code != tc.code {
				t.Errorf("answer = %d %s, want %d %s\n%s", status, code, tc.status, tc.code, s.logs)
			}
			if got := s.received(); len(got) != 0 {
				t.Errorf("OnRevoked ran with %+v", got)
			}
			switch status {
			case http.StatusMethodNotAllowed:
				if got := header.Get("Allow"); got != http.MethodPost {
					t.Errorf("Allow = %q, want POST", got)
				}
			case http.StatusUnauthorized:
				if got := header.Get("WWW-Authenticate"); got != "Bearer" {
					t.Errorf("WWW-Authenticate = %q, want Bearer", got)
				}
			}
			if got := header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", got)
			}
			logs := s.logs.String()
			if !strings.Contains(logs, `"msg":"vippslogin: consent webhook refused"`) || !strings.Contains(logs, `"kind":"`+tc.code+`"`) {
				t.Errorf("no log record of kind %s:\n%s", tc.code, logs)
			}
			if strings.Contains(logs, webhookSub) || strings.Contains(logs, "someone-else") {
				t.Errorf("the log shows a claim of the refused token:\n%s", logs)
			}
			body := ""
			if tc.req.body != nil {
				body = tc.req.body(s.clock.Now())
			}
			s.checkLogs(t, body)
		})
	}
}

func TestConsentWebhookSignedToken(t *testing.T) {
	s := newWebhookSite(t, nil)
	signed := s.provider().Sign(map[string]any{"typ": "JWT"}, map[string]any{
		"event": "CONSENT_REVOKED", "sub": webhookSub, "iat": s.clock.Now().Unix(), "exp": s.clock.Now().Unix() + 300,
	})
	status, code, _ := s.send(t, webhookRequest{query: "secret=" + webhookSecret, body: fixedBody(signed)})
	if status != http.StatusBadRequest || code != "unsupported_alg" {
		t.Errorf("answer = %d %s, want 400 unsupported_alg: a signature this handler does not check must not be trusted", status, code)
	}
	if len(s.received()) != 0 {
		t.Error("OnRevoked ran")
	}
	s.checkLogs(t, signed)
}

func TestConsentWebhookMaxBodyBytes(t *testing.T) {
	s := newWebhookSite(t, func(c *webhook.Config) { c.MaxBodyBytes = 1024 })
	pad := func(n int) func(time.Time) string {
		return consentToken(map[string]any{"pad": strings.Repeat("p", n)})
	}
	if status, code, _ := s.send(t, webhookRequest{query: "secret=" + webhookSecret, body: pad(1000)}); status != http.StatusRequestEntityTooLarge || code != "body_too_large" {
		t.Errorf("answer = %d %s, want 413 body_too_large", status, code)
	}
	if status, _, _ := s.send(t, webhookRequest{query: "secret=" + webhookSecret, body: pad(500)}); status != http.StatusNoContent {
		t.Errorf("status = %d for a body within the bound, want 204", status)
	}
}

func TestConsentWebhookHookFails(t *testing.T) {
	s := newWebhookSite(t, nil)
	s.fail = errors.New("user store is down")
	resp, err := s.provider().SendConsentRevoked(context.Background(), s.url(), webhookSub)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var e struct{ Error string }
	_ = json.Unmarshal(b, &e)
	if resp.StatusCode != http.StatusInternalServerError || e.Error != "internal_error" {
		t.Errorf("answer = %d %s, want 500 internal_error", resp.StatusCode, b)
	}
	if strings.Contains(string(b), "user store") {
		t.Errorf("the answer shows the hook's error: %s", b)
	}
	logs := s.logs.String()
	if !strings.Contains(logs, `"level":"ERROR","msg":"vippslogin: consent webhook failed"`) || !strings.Contains(logs, "user store is down") {
		t.Errorf("the hook's error is not logged at error:\n%s", logs)
	}
	s.checkLogs(t, vippstest.ConsentRevokedToken(webhookSub, s.clock.Now()))

	// The sender tries again, and this time the hook succeeds.
	s.mu.Lock()
	s.fail = nil
	s.mu.Unlock()
	resp, err = s.provider().SendConsentRevoked(context.Background(), s.url(), webhookSub)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || len(s.received()) != 2 {
		t.Errorf("retry: status %d and %d calls of OnRevoked, want 204 and 2", resp.StatusCode, len(s.received()))
	}
}

func TestNewConfig(t *testing.T) {
	hook := func(context.Context, webhook.ConsentRevoked) error { return nil }
	valid := webhook.Config{Secret: webhookSecret, OnRevoked: hook}
	if _, err := webhook.New(valid); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	cases := []struct {
		name  string
		edit  func(*webhook.Config)
		field string
	}{
		{"no secret", func(c *webhook.Config) { c.Secret = "" }, "Secret"},
		{"short secret", func(c *webhook.Config) { c.Secret = vippslogin.Secret(webhookSecret[:31]) }, "Secret"},
		{"long secret", func(c *webhook.Config) { c.Secret = vippslogin.Secret(strings.Repeat("a", 513)) }, "Secret"},
		{"secret with a character to escape", func(c *webhook.Config) { c.Secret = webhookSecret + "+" }, "Secret"},
		{"secret with padding", func(c *webhook.Config) { c.Secret = webhookSecret + "==" }, "Secret"},
		{"no hook", func(c *webhook.Config) { c.OnRevoked = nil }, "OnRevoked"},
		{"negative clock skew", func(c *webhook.Config) { c.ClockSkew = -time.Second }, "ClockSkew"},
		{"clock skew too large", func(c *webhook.Config) { c.ClockSkew = 6 * time.Minute }, "ClockSkew"},
		{"body bound too small", func(c *webhook.Config) { c.MaxBodyBytes = 1023 }, "MaxBodyBytes"},
		{"body bound too large", func(c *webhook.Config) { c.MaxBodyBytes = 1<<20 + 1 }, "MaxBodyBytes"},
		{"negative body bound", func(c *webhook.Config) { c.MaxBodyBytes = -1 }, "MaxBodyBytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := valid
			tc.edit(&cfg)
			h, err := webhook.New(cfg)
			if !errors.Is(err, vippslogin.ErrInvalidConfig) || h != nil {
				t.Fatalf("New = %v, %v; want nil and ErrInvalidConfig", h, err)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Errorf("error %q does not name %s", err, tc.field)
			}
			if secret := string(cfg.Secret); len(secret) > 8 && strings.Contains(err.Error(), secret[:8]) {
				t.Errorf("error %q shows the secret", err)
			}
		})
	}
}

// FuzzConsentWebhook sends arbitrary bodies with the right secret: the
// handler must not panic, must answer with one of its statuses, and must
// call OnRevoked only for a well-formed CONSENT_REVOKED token.
func FuzzConsentWebhook(f *testing.F) {
	now := time.Unix(1592571488, 0)
	f.Add([]byte("eyJhbGciOiJub25lIiwidHlwIjogIkpXVCJ9Cg.eyJleHAiOjE1OTI1NzE3ODgsImlhdCI6MTU5MjU3MTQ4OCwibmJmIjoxNTkyNTcxNDg4LCJzdWIiOiJjOWQxMDQ0NC1kOTkyLTQ4NTAtYWM2MC05ZDM1MDIwOTUwMDgiLCJldmVudCI6IkNPTlNFTlRfUkVWT0tFRCJ9"))
	f.Add([]byte(vippstest.ConsentRevokedToken(webhookSub, now) + ".\n"))
	f.Add([]byte(unsecuredJWT(`{"alg":"none","alg":"none"}`, consentClaims(now, nil))))
	f.Add([]byte(unsecuredJWT(`{"alg":"HS256"}`, consentClaims(now, nil))))
	f.Add([]byte(unsecuredJWT(noneJWTHeader, consentClaims(now, map[string]any{"sub": "a\x00b"}))))
	f.Add([]byte(unsecuredJWT(noneJWTHeader, `{"event":"CONSENT_REVOKED","sub":"x","iat":1592571488,"exp":1e999}`)))
	f.Add([]byte(".."))
	f.Add([]byte(""))

	var mu sync.Mutex
	var got []webhook.ConsentRevoked
	h, err := webhook.New(webhook.Config{
		Secret: webhookSecret,
		OnRevoked: func(_ context.Context, e webhook.ConsentRevoked) error {
			mu.Lock()
			got = append(got, e)
			mu.Unlock()
			return nil
		},
		Logger: slog.New(slog.DiscardHandler),
		Now:    func() time.Time { return now.Add(10 * time.Second) },
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		mu.Lock()
		got = nil
		mu.Unlock()
		r := httptest.NewRequest(http.MethodPost, webhookPath+"?secret="+webhookSecret, bytes.NewReader(body))
		r.Header.Set("Content-Type", "text/plain")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		mu.Lock()
		events := got
		mu.Unlock()

		switch w.Code {
		case http.StatusNoContent:
			if len(events) != 1 {
				t.Fatalf("204 with %d calls of OnRevoked", len(events))
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			if len(events) != 0 {
				t.Fatalf("%d, yet OnRevoked ran", w.Code)
			}
			return
		default:
			t.Fatalf("status %d", w.Code)
		}

		// Decode the accepted body independently of the handler.
		parts := strings.Split(strings.Trim(string(body), " \t\r\n"), ".")
		if len(parts) < 2 || len(parts) > 3 || len(parts) == 3 && parts[2] != "" {
			t.Fatalf("accepted %q: not header.payload[.]", body)
		}
		var header, claims map[string]any
		for i, v := range []*map[string]any{&header, &claims} {
			b, err := base64.RawURLEncoding.DecodeString(parts[i])
			if err != nil {
				t.Fatalf("accepted %q: part %d: %v", body, i, err)
			}
			if err := json.Unmarshal(b, v); err != nil || *v == nil {
				t.Fatalf("accepted %q: part %d is not a JSON object: %v", body, i, err)
			}
		}
		e := events[0]
		if header["alg"] != "none" || claims["event"] != "CONSENT_REVOKED" || claims["sub"] != e.Subject || e.Subject == "" {
			t.Fatalf("accepted %q as %+v", body, e)
		}
		if clk := now.Add(10 * time.Second); !e.ExpiresAt.After(e.IssuedAt) || e.IssuedAt.After(clk.Add(time.Minute)) || !clk.Before(e.ExpiresAt.Add(time.Minute)) {
			t.Fatalf("accepted %q with times %v to %v", body, e.IssuedAt, e.ExpiresAt)
		}
	})
}

// A site that forgets what it got from Vipps about a user when the user
// withdraws consent in the app. The mock provider sends the event as Vipps
// does, to the URL registered at Vipps, with the shared secret in its query.
func ExampleNew() {
	const secret = "9d4e1f7a2c6b8e0f3a5d7c9b1e4f6a8d" // from the environment in a real site; e.g. openssl rand -hex 32

	hook, err := webhook.New(webhook.Config{
		Secret: secret,
		OnRevoked: func(ctx context.Context, e webhook.ConsentRevoked) error {
			// The event is unsigned: a hint, not a proof. Forget the
			// profile data from Vipps and ask for consent at the next
			// login; do not delete the account.
			fmt.Println("forget the Vipps profile of", e.Subject)
			return nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/webhooks/vipps-consent", hook)
	site := httptest.NewServer(mux) // an https site in production
	defer site.Close()

	idp, err := vippstest.New(vippstest.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer idp.Close()
	resp, err := idp.SendConsentRevoked(context.Background(),
		site.URL+"/webhooks/vipps-consent?secret="+secret, "c3a9f3e2-5d1b-4f0e-9a6c-2b7d8e4f1a05")
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println(resp.Status)
	// Output:
	// forget the Vipps profile of c3a9f3e2-5d1b-4f0e-9a6c-2b7d8e4f1a05
	// 204 No Content
}
