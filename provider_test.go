package vippslogin_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vippslogin/vippslogin"
	"github.com/vippslogin/vippslogin/vippstest"
)

func TestTokenEndpointRejected(t *testing.T) {
	tests := []struct {
		name       string
		setup      func(h *harness)
		want       error
		wantStatus int    // the *ProviderError's StatusCode; 0 for none
		wantCode   string // the *ProviderError's Code
	}{
		{
			name: "invalid_grant",
			setup: func(h *harness) {
				h.idp.SetFault(vippstest.Token, vippstest.Fault{Status: 400, Body: `{"error":"invalid_grant","error_description":"x"}`})
			},
			want:       &vippslogin.ProviderError{},
			wantStatus: 400,
			wantCode:   "invalid_grant",
		},
		{
			name:       "status 500",
			setup:      func(h *harness) { h.idp.SetFault(vippstest.Token, vippstest.Fault{Status: 500}) },
			want:       &vippslogin.ProviderError{},
			wantStatus: 500,
			wantCode:   "server_error",
		},
		{
			name:  "down",
			setup: func(h *harness) { h.idp.SetFault(vippstest.Token, vippstest.Fault{Down: true}) },
			want:  &vippslogin.Error{Err: vippslogin.ErrProviderUnavailable, Reason: "token"},
		},
		{
			name:       "wrong client authentication method",
			setup:      func(h *harness) { h.idp.SetTokenAuthMethod("client_secret_post") },
			want:       &vippslogin.ProviderError{},
			wantStatus: 401,
			wantCode:   "invalid_client",
		},
		{
			name: "token_type not bearer",
			setup: func(h *harness) {
				h.idp.SetFault(vippstest.Token, vippstest.Fault{Status: 200, Body: `{"access_token":"a","token_type":"mac","id_token":"x.y.z"}`})
			},
			want: &vippslogin.Error{Err: vippslogin.ErrBadResponse, Reason: "token"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			tc.setup(h)
			b := h.browser()
			resp, _ := b.get(b.startLogin("/profile"))
			err := h.lastErr()
			b.wantRefused(resp, tc.want)
			var te *vippslogin.ProviderError
			if got := errors.As(err, &te); got != (tc.wantStatus != 0) {
				t.Fatalf("errors.As(%v, *ProviderError) = %v, want %v", err, got, tc.wantStatus != 0)
			}
			if te == nil {
				return
			}
			if te.StatusCode != tc.wantStatus || te.Code != tc.wantCode {
				t.Errorf("ProviderError = %d %q, want %d %q", te.StatusCode, te.Code, tc.wantStatus, tc.wantCode)
			}
		})
	}
}

// The slow-endpoint tests: the provider takes far longer than HTTPTimeout.
// The page that failed answers within HTTPTimeout plus a second with a
// clear 504, nothing is logged in, and a login after the provider speeds up
// works with the same Client.

func TestTokenEndpointTimeout(t *testing.T) {
	runFaultCase(t, slowCase(vippstest.Token, &vippslogin.Error{Err: vippslogin.ErrProviderUnavailable, Reason: "timeout"}))
}

func TestUserinfoTimeout(t *testing.T) {
	runFaultCase(t, slowCase(vippstest.Userinfo, &vippslogin.Error{Err: vippslogin.ErrProviderUnavailable, Reason: "timeout"}))
}

func TestKeySetTimeout(t *testing.T) {
	runFaultCase(t, slowCase(vippstest.JWKS, vippslogin.ErrProviderUnavailable))
}

func TestDiscoveryTimeout(t *testing.T) {
	runFaultCase(t, slowCase(vippstest.Discovery, vippslogin.ErrProviderUnavailable))
}

func TestTokenAuthMethods(t *testing.T) {
	tests := []struct {
		name      string
		opts      options
		wantBasic bool // the Authorization header carries the credentials
	}{
		{name: "client_secret_basic by default", wantBasic: true},
		{
			name: "client_secret_post",
			opts: options{
				idp:  func(c *vippstest.Config) { c.TokenAuthMethod = "client_secret_post" },
				site: func(c *vippslogin.Config) { c.TokenAuthMethod = "client_secret_post" },
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.opts)
			b := h.browser()
			b.login("/profile")
			if b.profile() == nil {
				t.Fatal("not logged in")
			}
			auth := h.idp.LastHeader(vippstest.Token).Get("Authorization")
			if got := strings.HasPrefix(auth, "Basic "); got != tc.wantBasic {
				t.Errorf("token request Authorization %q: Basic = %v, want %v", auth, got, tc.wantBasic)
			}
		})
	}
}

func TestSystemHeaders(t *testing.T) {
	tests := []struct {
		name, msn string
	}{
		{name: "without merchant serial number"},
		{name: "with merchant serial number", msn: "123456"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, options{site: func(c *vippslogin.Config) { c.MerchantSerialNumber = tc.msn }})
			h.browser().login("/")
			want := map[string]string{
				"Vipps-System-Name":           "testshop",
				"Vipps-System-Version":        "1.2.3",
				"Vipps-System-Plugin-Name":    "vippslogin",
				"Vipps-System-Plugin-Version": vippslogin.PluginVersion,
				"Merchant-Serial-Number":      tc.msn,
			}
			for _, e := range []vippstest.Endpoint{vippstest.Discovery, vippstest.JWKS, vippstest.Token, vippstest.Userinfo} {
				hdr := h.idp.LastHeader(e)
				if hdr == nil {
					t.Errorf("%s: no request", e)
					continue
				}
				for name, value := range want {
					if got := hdr.Get(name); got != value {
						t.Errorf("%s: %s = %q, want %q", e, name, got, value)
					}
				}
			}
		})
	}
}

func TestDiscoveryOutage(t *testing.T) {
	h := newHarness(t)
	h.idp.SetFault(vippstest.Discovery, vippstest.Fault{Down: true})
	b := h.browser()
	resp, body := b.get("/auth/login?return_to=%2Fshop")
	if got, want := resp.StatusCode, http.StatusServiceUnavailable; got != want {
		t.Fatalf("status %d, want %d", got, want)
	}
	h.wantErr(vippslogin.ErrProviderUnavailable)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") || !strings.Contains(body, "<html") {
		t.Errorf("Content-Type %q, body %q: want an HTML page", ct, body)
	}
	if got := resp.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", got)
	}

	// Within the back-off the provider is not asked again.
	hits := h.idp.Hits(vippstest.Discovery)
	if resp, _ := b.get("/auth/login"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("second try: status %d, want 503", resp.StatusCode)
	}
	if got := h.idp.Hits(vippstest.Discovery); got != hits {
		t.Errorf("discovery hits %d right after a failure, want %d", got, hits)
	}

	h.idp.SetFault(vippstest.Discovery, vippstest.Fault{})
	h.clock.Advance(3 * time.Second)
	b.login("/shop")
	if b.profile() == nil {
		t.Error("not logged in after the provider came back")
	}
}

func TestKeySetOutage(t *testing.T) {
	tests := []struct {
		name  string
		fault vippstest.Fault
	}{
		{name: "status 500", fault: vippstest.Fault{Status: 500}},
		{name: "garbage", fault: vippstest.Fault{Status: 200, Body: "garbage"}},
		{name: "down", fault: vippstest.Fault{Down: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.idp.SetFault(vippstest.JWKS, tc.fault)
			b := h.browser()
			resp, _ := b.get(b.startLogin("/profile"))
			b.wantRefused(resp, vippslogin.ErrProviderUnavailable)

			h.idp.SetFault(vippstest.JWKS, vippstest.Fault{})
			h.clock.Advance(3 * time.Second)
			resp, _ = b.get(b.startLogin("/profile"))
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("login after the key set came back: status %d, want 303 (error %v)", resp.StatusCode, h.lastErr())
			}
			if b.profile() == nil {
				t.Error("not logged in after the key set came back")
			}
		})
	}
}

// TestProviderDownAtStart starts the site while every endpoint of the
// provider is unreachable: the site serves its public pages, a login gets a
// friendly 503, and once the provider is back logins work with the same
// Client.
func TestProviderDownAtStart(t *testing.T) {
	h := newHarness(t)
	for _, e := range allEndpoints {
		h.idp.SetFault(e, vippstest.Fault{Down: true})
	}
	b := h.browser()

	for path, want := range map[string]string{"/": "home", "/public": "hello guest"} {
		if resp, body := b.get(path); resp.StatusCode != http.StatusOK || body != want {
			t.Errorf("GET %s: %d %q, want 200 %q", path, resp.StatusCode, body, want)
		}
	}
	if n := h.idp.Hits(vippstest.Discovery); n != 0 {
		t.Errorf("public pages asked the provider for discovery %d times", n)
	}

	// A browser gets a page for people.
	resp, body := b.get("/auth/login?return_to=%2Fprofile")
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("login: status %d, want 503 (error %v)", resp.StatusCode, h.lastErr())
	}
	h.wantErr(vippslogin.ErrProviderUnavailable)
	wantHumanErrorPage(t, h, resp, body, "provider_unavailable", "/profile")
	if page := html.UnescapeString(body); !strings.Contains(page, providerUnavailableMessage) {
		t.Errorf("page does not say %q:\n%s", providerUnavailableMessage, page)
	}
	wantFaultLogged(t, h, "provider_unavailable", "ERROR", "/auth/login", http.StatusServiceUnavailable)
	if rec := lastLogRecord(t, h, "vippslogin: provider_unavailable"); !strings.Contains(fmt.Sprint(rec["error"]), "discovery") {
		t.Errorf("log record %v does not say discovery failed", rec)
	}

	// An API client gets the documented JSON.
	resp, body = b.get("/auth/login", "Accept", "application/json")
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("login as an API client: status %d, want 503", resp.StatusCode)
	}
	wantJSONError(t, resp, body, "provider_unavailable", "/auth/login")
	if !strings.Contains(body, providerUnavailableMessage) {
		t.Errorf("JSON %s does not say %q", body, providerUnavailableMessage)
	}

	// Guarded pages send browsers to the login and refuse API clients.
	resp, _ = b.get("/profile")
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/auth/login?return_to=%2Fprofile" {
		t.Errorf("/profile: %d %q, want 303 to the login", resp.StatusCode, loc)
	}
	resp, body = b.get("/profile", "Accept", "application/json")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/profile as an API client: status %d, want 401", resp.StatusCode)
	}
	wantJSONError(t, resp, body, "login_required", "/auth/login?return_to=%2Fprofile")
	if err := h.auth.Ready(context.Background()); !errors.Is(err, vippslogin.ErrProviderUnavailable) {
		t.Errorf("Ready = %v, want ErrProviderUnavailable", err)
	}
	if resp, body := b.get("/public"); resp.StatusCode != http.StatusOK || body != "hello guest" {
		t.Errorf("/public after the failed login: %d %q", resp.StatusCode, body)
	}
	wantNoClaims(t, h, b)

	// The provider comes back. A failed discovery is retried after a back-off
	// of 2s by the configured clock.
	for _, e := range allEndpoints {
		h.idp.SetFault(e, vippstest.Fault{})
	}
	h.clock.Advance(2 * time.Second)
	b.login("/profile")
	claims := b.profile()
	if claims == nil || claims["sub"] == "" {
		t.Fatalf("not logged in after the provider came back: %v", claims)
	}
	if _, body := b.get("/public"); body != fmt.Sprint("hello ", claims["sub"]) {
		t.Errorf("/public after the login: %q", body)
	}
	if err := h.auth.Ready(context.Background()); err != nil {
		t.Errorf("Ready after the provider came back: %v", err)
	}
}

// TestFaultsNeverHalfLogIn fails a login at each way the provider can fail
// and checks that the user gets a clear page with the right status, the
// operator an error record, that nothing is logged in, that the failed
// callback cannot be finished later, and that a login from the same browser
// works once the fault is gone. The slow variants are in the *Timeout tests.
func TestFaultsNeverHalfLogIn(t *testing.T) {
	refused := &vippslogin.ProviderError{}
	token := func(name string, f vippstest.Fault, status, tokenStatus int, want error) faultCase {
		return faultCase{name: "token " + name, endpoint: vippstest.Token, fault: f, status: status,
			kind: "login_failed", want: []error{want}, tokenStatus: tokenStatus}
	}
	keys := func(name string, f vippstest.Fault) faultCase {
		return faultCase{name: "jwks " + name, endpoint: vippstest.JWKS, fault: f, status: http.StatusServiceUnavailable,
			kind: "provider_unavailable", want: []error{vippslogin.ErrProviderUnavailable}}
	}
	userinfo := func(name string, f vippstest.Fault, want error) faultCase {
		return faultCase{name: "userinfo " + name, endpoint: vippstest.Userinfo, fault: f, status: http.StatusBadGateway,
			kind: "login_failed", want: []error{want}}
	}
	discovery := func(name string, f vippstest.Fault) faultCase {
		return faultCase{name: "discovery " + name, endpoint: vippstest.Discovery, fault: f, atLogin: true,
			status: http.StatusServiceUnavailable, kind: "provider_unavailable", want: []error{vippslogin.ErrProviderUnavailable}}
	}
	tests := []faultCase{
		token("500", vippstest.Fault{Status: 500}, http.StatusBadGateway, 500, refused),
		token("502", vippstest.Fault{Status: 502}, http.StatusBadGateway, 502, refused),
		token("503", vippstest.Fault{Status: 503}, http.StatusBadGateway, 503, refused),
		token("500 with an HTML body", vippstest.Fault{Status: 500, Body: "<html>oops</html>"}, http.StatusBadGateway, 500, refused),
		token("down", vippstest.Fault{Down: true}, http.StatusBadGateway, 0,
			&vippslogin.Error{Err: vippslogin.ErrProviderUnavailable, Reason: "token"}),
		token("garbage with 200", vippstest.Fault{Status: 200, Body: "garbage"}, http.StatusBadGateway, 0,
			&vippslogin.Error{Err: vippslogin.ErrBadResponse, Reason: "token"}),
		token("token_type not bearer", vippstest.Fault{Status: 200, Body: `{"access_token":"a","token_type":"mac","id_token":"x.y.z"}`}, http.StatusBadGateway, 0,
			&vippslogin.Error{Err: vippslogin.ErrBadResponse, Reason: "token"}),
		{
			name: "token invalid_grant", endpoint: vippstest.Token,
			fault:  vippstest.Fault{Status: 400, Body: `{"error":"invalid_grant","error_description":"x"}`},
			status: http.StatusBadRequest, kind: "login_failed", level: "WARN",
			want: []error{&vippslogin.ProviderError{}}, tokenStatus: 400,
		},
		{
			name:   "token wrong client authentication method",
			setup:  func(h *harness) { h.idp.SetTokenAuthMethod("client_secret_post") },
			clear:  func(h *harness) { h.idp.SetTokenAuthMethod("client_secret_basic") },
			status: http.StatusBadGateway, kind: "login_failed",
			want: []error{&vippslogin.ProviderError{}}, tokenStatus: 401,
		},
		keys("500", vippstest.Fault{Status: 500}),
		keys("garbage", vippstest.Fault{Status: 200, Body: "garbage"}),
		{
			// A well-formed key set without the token's key reads as a
			// rotation the site cannot follow, not as an outage.
			name: "jwks empty key set", endpoint: vippstest.JWKS,
			fault:  vippstest.Fault{Status: 200, Body: `{"keys":[]}`},
			status: http.StatusBadGateway, kind: "login_failed",
			want: []error{vippslogin.ErrInvalidIDToken, &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "unknown_key"}},
		},
		keys("down", vippstest.Fault{Down: true}),
		userinfo("500", vippstest.Fault{Status: 500}, vippslogin.ErrBadResponse),
		userinfo("503", vippstest.Fault{Status: 503}, vippslogin.ErrBadResponse),
		userinfo("down", vippstest.Fault{Down: true}, &vippslogin.Error{Err: vippslogin.ErrProviderUnavailable, Reason: "userinfo"}),
		userinfo("garbage", vippstest.Fault{Status: 200, Body: "garbage"}, vippslogin.ErrBadResponse),
		userinfo("401", vippstest.Fault{Status: 401, Body: `{"error":"invalid_token"}`}, vippslogin.ErrBadResponse),
		discovery("down", vippstest.Fault{Down: true}),
		discovery("500", vippstest.Fault{Status: 500}),
		discovery("garbage", vippstest.Fault{Status: 200, Body: "garbage"}),
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { runFaultCase(t, tc) })
	}
}

// faultCase is a way for the provider to fail a login, and what the site
// must answer.
type faultCase struct {
	name string
	// endpoint gets fault; or setup makes the fault and clear undoes it.
	endpoint     vippstest.Endpoint
	fault        vippstest.Fault
	setup, clear func(h *harness)
	// atLogin: the login fails when it starts, at /auth/login, not at the
	// callback.
	atLogin bool
	// timeout is the site's HTTPTimeout; when set, the failing request must
	// take at least timeout, and fail with the reason "timeout" (want) long before the
	// fault's delay would let the provider answer.
	timeout time.Duration

	status      int     // the site's answer
	kind        string  // the error code in JSON and in the log record
	level       string  // of the log record; ERROR when empty
	want        []error // each must match the handler's error (errors.Is)
	tokenStatus int     // the *ProviderError's StatusCode; 0 for none
}

// slowCase makes e answer long after a 300ms HTTPTimeout.
func slowCase(e vippstest.Endpoint, want error) faultCase {
	return faultCase{
		name:     string(e) + " slow",
		endpoint: e,
		fault:    vippstest.Fault{Delay: 10 * time.Second},
		atLogin:  e == vippstest.Discovery,
		timeout:  300 * time.Millisecond,
		status:   http.StatusGatewayTimeout,
		kind:     "provider_timeout",
		want:     []error{&vippslogin.Error{Err: vippslogin.ErrProviderUnavailable, Reason: "timeout"}, want},
	}
}

var allEndpoints = []vippstest.Endpoint{vippstest.Discovery, vippstest.Authorize, vippstest.Token, vippstest.JWKS, vippstest.Userinfo}

// providerUnavailableMessage is what the default error handler tells users
// about ErrProviderUnavailable.
const providerUnavailableMessage = "Logging in with Vipps MobilePay is not possible right now. Please try again in a few minutes."

// faultTitles are the headings of the error page by error code.
var faultTitles = map[string]string{
	"provider_unavailable": "Vipps MobilePay can't be reached",
	"provider_timeout":     "Vipps MobilePay is slow to answer",
	"login_failed":         "We couldn't finish your login",
}

func runFaultCase(t *testing.T, tc faultCase) {
	t.Helper()
	var opts options
	if tc.timeout > 0 {
		opts.site = func(c *vippslogin.Config) { c.HTTPTimeout = tc.timeout }
	}
	h := newHarness(t, opts)
	b := h.browser()
	const returnTo = "/profile"
	setup := func() {
		if tc.setup != nil {
			tc.setup(h)
		} else {
			h.idp.SetFault(tc.endpoint, tc.fault)
		}
	}

	var (
		resp     *http.Response
		body, cb string
		took     time.Duration
		path     = "/auth/callback"
	)
	if tc.atLogin {
		path = "/auth/login"
		setup()
		start := time.Now()
		resp, body = b.get("/auth/login?return_to=" + url.QueryEscape(returnTo))
		took = time.Since(start)
	} else {
		// The provider fails while the user is confirming in the app.
		cb = b.startLogin(returnTo)
		setup()
		start := time.Now()
		resp, body = b.get(cb)
		took = time.Since(start)
	}
	t.Logf("%s answered %d in %v", path, resp.StatusCode, took.Round(time.Millisecond))

	if tc.timeout > 0 && took < tc.timeout {
		t.Errorf("answered in %v, before the timeout of %v", took, tc.timeout)
	}
	if tc.setup == nil && h.idp.Hits(tc.endpoint) == 0 {
		t.Errorf("%s was never asked: the fault was not tried", tc.endpoint)
	}
	if resp.StatusCode != tc.status {
		t.Errorf("status %d, want %d (error %v)", resp.StatusCode, tc.status, h.lastErr())
	}
	err := h.lastErr()
	for _, target := range tc.want {
		if !errors.Is(err, target) {
			t.Errorf("error %v, want it to match %v", err, target)
		}
	}
	var te *vippslogin.ProviderError
	if got := errors.As(err, &te); got != (tc.tokenStatus != 0) {
		t.Errorf("errors.As(%v, *ProviderError) = %v, want %v", err, got, tc.tokenStatus != 0)
	} else if got && te.StatusCode != tc.tokenStatus {
		t.Errorf("ProviderError.StatusCode = %d, want %d", te.StatusCode, tc.tokenStatus)
	}
	wantHumanErrorPage(t, h, resp, body, tc.kind, returnTo)
	level := tc.level
	if level == "" {
		level = "ERROR"
	}
	wantFaultLogged(t, h, tc.kind, level, path, tc.status)

	// Nothing half-logs-in.
	if got := b.profile(); got != nil {
		t.Fatalf("logged in after a failed login as %v", got["sub"])
	}
	if _, body := b.get("/public"); body != "hello guest" {
		t.Errorf("/public after a failed login: %q", body)
	}
	wantNoClaims(t, h, b)

	if tc.clear != nil {
		tc.clear(h)
	} else {
		h.idp.SetFault(tc.endpoint, vippstest.Fault{})
	}
	if tc.atLogin {
		// A failed discovery is not retried for 2s by the configured clock.
		h.clock.Advance(2 * time.Second)
	} else {
		// Reloading the failed callback does not finish it now that the
		// provider works.
		resp, _ := b.get(cb)
		if resp.StatusCode != http.StatusBadRequest || !errors.Is(h.lastErr(), &vippslogin.Error{Err: vippslogin.ErrBadCallback, Reason: "replayed"}) {
			t.Errorf("reload of the failed callback: %d %v, want 400 ErrBadCallback (replayed)", resp.StatusCode, h.lastErr())
		}
		if got := b.profile(); got != nil {
			t.Fatalf("the reloaded callback logged in as %v", got["sub"])
		}
		wantNoClaims(t, h, b)
	}

	b.login(returnTo)
	if got := b.profile(); got == nil || got["sub"] == "" {
		t.Fatalf("not logged in by a login after the fault cleared: %v", got)
	}
}

// wantHumanErrorPage checks that resp, body is the default error handler's
// page for a browser about an error with the given code: HTML with the
// code's heading, a link to try the login to returnTo again, and nothing of
// the error's internals.
func wantHumanErrorPage(t testing.TB, h *harness, resp *http.Response, body, kind, returnTo string) {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type %q, want HTML; body %q", ct, body)
		return
	}
	if got := resp.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", got)
	}
	page := html.UnescapeString(body)
	title := faultTitles[kind]
	if !strings.Contains(page, "<html") || title == "" || !strings.Contains(page, "<h1>"+title+"</h1>") {
		t.Errorf("page without the heading %q:\n%s", title, page)
	}
	if retry := `href="/auth/login?return_to=` + url.QueryEscape(returnTo) + `"`; !strings.Contains(page, retry) {
		t.Errorf("page without a link to log in again (%s):\n%s", retry, page)
	}
	leaks := []string{
		"vippslogin:", "dial tcp", "connection refused", "connection reset", "EOF",
		"context deadline", "Client.Timeout", "goroutine", "panic", "server_error",
		"invalid_grant", "invalid_client", "fault injected", "token endpoint", "userinfo",
		"key set", "jwks", "discovery", "answered", "garbage",
		strings.TrimPrefix(h.idp.URL(), "http://"),
	}
	if err := h.lastErr(); err != nil {
		leaks = append(leaks, err.Error())
	}
	for _, leak := range leaks {
		if strings.Contains(page, leak) {
			t.Errorf("page shows %q:\n%s", leak, page)
		}
	}
}

// wantJSONError checks that resp, body is the documented JSON error with the
// given code and a login_url starting with loginURL, and nothing more.
func wantJSONError(t testing.TB, resp *http.Response, body, code, loginURL string) {
	t.Helper()
	gotCode, gotLogin := jsonError(t, resp, body)
	if gotCode != code || !strings.HasPrefix(gotLogin, loginURL) {
		t.Errorf("JSON error %q login_url %q, want %q and %q...", gotCode, gotLogin, code, loginURL)
	}
	var fields map[string]any
	if err := json.Unmarshal([]byte(body), &fields); err != nil {
		t.Fatalf("JSON %q: %v", body, err)
	}
	for k := range fields {
		if k != "error" && k != "message" && k != "login_url" {
			t.Errorf("JSON error has an undocumented field %q: %s", k, body)
		}
	}
	if got := resp.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", got)
	}
}

// logRecordsOf returns h's log records with the given message.
func logRecordsOf(t testing.TB, h *harness, msg string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(h.logs.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["msg"] == msg {
			recs = append(recs, rec)
		}
	}
	return recs
}

// lastLogRecord returns the last of h's log records with the given message.
func lastLogRecord(t testing.TB, h *harness, msg string) map[string]any {
	t.Helper()
	recs := logRecordsOf(t, h, msg)
	if len(recs) == 0 {
		t.Fatalf("no log record %q in\n%s", msg, h.logs.String())
	}
	return recs[len(recs)-1]
}

// wantFaultLogged checks that exactly one record tells the operator of the
// failed request to path, at level, with the handler's last error.
func wantFaultLogged(t testing.TB, h *harness, kind, level, path string, status int) {
	t.Helper()
	recs := logRecordsOf(t, h, "vippslogin: "+kind)
	if len(recs) != 1 {
		t.Errorf("%d log records %q, want 1:\n%s", len(recs), "vippslogin: "+kind, h.logs.String())
		if len(recs) == 0 {
			return
		}
	}
	rec := recs[0]
	if rec["level"] != level || rec["kind"] != kind || rec["path"] != path || rec["status"] != float64(status) {
		t.Errorf("log record %v, want level %s, kind %s, path %s, status %d", rec, level, kind, path, status)
	}
	if err := h.lastErr(); err == nil || rec["error"] != err.Error() {
		t.Errorf("log record error %q, want the handler's error %v", rec["error"], err)
	}
}

// wantNoClaims checks that no session in the store, the browser's included,
// holds claims.
func wantNoClaims(t testing.TB, h *harness, b *browser) {
	t.Helper()
	n := 0
	err := h.sessions.Iterate(context.Background(), func(ctx context.Context) error {
		if len(h.sessions.GetBytes(ctx, "vippslogin.claims")) > 0 {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Iterate: %v", err)
	}
	if n != 0 {
		t.Errorf("%d sessions hold claims after a failed login (browser's session cookie %q)", n, b.cookie("session"))
	}
}

// developers/http-headers.md, "HTTP headers": the four Vipps-System-*
// headers are "required for plugins and partners", and strongly
// recommended for everyone: they are sent also when the site sets none,
// the system's from the program's build information, the plugin's as the
// package's own; the site may override each.
func TestSystemHeadersDefault(t *testing.T) {
	tests := []struct {
		name   string
		system vippslogin.SystemInfo
		want   map[string]string // "" : any non-empty value
	}{
		{"nothing set", vippslogin.SystemInfo{}, map[string]string{
			"Vipps-System-Name":           "vippslogin", // the main module of this test binary
			"Vipps-System-Version":        "",
			"Vipps-System-Plugin-Name":    "vippslogin",
			"Vipps-System-Plugin-Version": vippslogin.PluginVersion,
		}},
		{"each overridden", vippslogin.SystemInfo{Name: "acme", Version: "3.1.2", PluginName: "acme-webshop", PluginVersion: "4.5.6"}, map[string]string{
			"Vipps-System-Name":           "acme",
			"Vipps-System-Version":        "3.1.2",
			"Vipps-System-Plugin-Name":    "acme-webshop",
			"Vipps-System-Plugin-Version": "4.5.6",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, options{site: func(c *vippslogin.Config) { c.System = tc.system }})
			h.browser().login("/")
			for _, e := range []vippstest.Endpoint{vippstest.Discovery, vippstest.JWKS, vippstest.Token, vippstest.Userinfo} {
				hdr := h.idp.LastHeader(e)
				for name, want := range tc.want {
					got := hdr.Get(name)
					if want == "" && (got == "" || len(got) > 30) || want != "" && got != want {
						t.Errorf("%s: %s = %q, want %q", e, name, got, cmp.Or(want, "a value of 1 to 30 characters"))
					}
				}
			}
		})
	}
}

// A caller that gives up while discovery is slow returns at once, and
// does not fail the fetch for those after it. Discovery is held until the
// test lets it go: the first caller must return while it is held.
func TestDiscoveryCallerGivesUp(t *testing.T) {
	held := &holdDiscovery{arrived: make(chan struct{}), release: make(chan struct{})}
	h := newHarness(t, options{site: func(c *vippslogin.Config) { c.HTTPClient = &http.Client{Transport: held} }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.auth.Ready(ctx) }()
	<-held.arrived
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) || !errors.Is(err, vippslogin.ErrProviderUnavailable) {
		t.Fatalf("Ready cancelled while discovery is held: %v, want context.Canceled and ErrProviderUnavailable", err)
	}
	close(held.release)
	if err := h.auth.Ready(context.Background()); err != nil {
		t.Fatalf("Ready after a caller gave up: %v", err)
	}
	if n := h.idp.Hits(vippstest.Discovery); n != 1 {
		t.Errorf("discovery was fetched %d times, want once: the fetch outlives the caller that gave up", n)
	}
}

// holdDiscovery is a transport that holds the first request for the
// discovery document until release is closed, after closing arrived.
type holdDiscovery struct {
	arrived, release chan struct{}
	once             sync.Once
}

func (d *holdDiscovery) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/openid-configuration") {
		d.once.Do(func() {
			close(d.arrived)
			<-d.release
		})
	}
	return http.DefaultTransport.RoundTrip(r)
}

// Nothing is fetched twice: logins that start together on a cold Client
// share one fetch of discovery and one of the key set, and later logins,
// within discovery's max-age, fetch neither again.
func TestDiscoveryAndKeysFetchedOnce(t *testing.T) {
	h := newHarness(t, options{site: func(c *vippslogin.Config) { c.LoginsPerMinute = 1000 }})
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			b := h.browser()
			b.login("/")
		})
	}
	wg.Wait()
	h.wantHits("10 logins at once", 1, 1)
	for range 5 {
		h.clock.Advance(time.Minute)
		h.browser().login("/")
	}
	h.wantHits("5 more, over 5 minutes", 1, 1)
}
