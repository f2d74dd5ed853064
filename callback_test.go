package vippslogin_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/vippslogin/vippslogin"
	"github.com/vippslogin/vippslogin/vippstest"
)

func TestCallbackStateRejected(t *testing.T) {
	tests := []struct {
		name string
		// call starts a login in b and makes the callback request to test,
		// returning its answer.
		call func(h *harness, b *browser) *http.Response
		want error
	}{
		{
			name: "state missing",
			call: func(h *harness, b *browser) *http.Response {
				cb := editQuery(h.t, b.startLogin("/profile"), func(q url.Values) { q.Del("state") })
				resp, _ := b.get(cb)
				return resp
			},
			want: vippslogin.ErrBadCallback,
		},
		{
			name: "state of no pending login",
			call: func(h *harness, b *browser) *http.Response {
				cb := editQuery(h.t, b.startLogin("/profile"), func(q url.Values) { q.Set("state", randomToken()) })
				resp, _ := b.get(cb)
				return resp
			},
			want: &vippslogin.Error{Err: vippslogin.ErrBadCallback, Reason: "other_browser"},
		},
		{
			name: "state not shaped like ours",
			call: func(h *harness, b *browser) *http.Response {
				cb := editQuery(h.t, b.startLogin("/profile"), func(q url.Values) { q.Set("state", "short") })
				resp, _ := b.get(cb)
				return resp
			},
			want: &vippslogin.Error{Err: vippslogin.ErrBadCallback, Reason: "other_browser"},
		},
		{
			name: "replayed after logout",
			call: func(h *harness, b *browser) *http.Response {
				cb := b.startLogin("/profile")
				if resp, _ := b.get(cb); resp.StatusCode != http.StatusSeeOther {
					h.t.Fatalf("first callback: status %d (error %v)", resp.StatusCode, h.lastErr())
				}
				if resp, _ := b.logout(nil); resp.StatusCode != http.StatusSeeOther {
					h.t.Fatalf("logout: status %d", resp.StatusCode)
				}
				resp, _ := b.get(cb)
				return resp
			},
			want: &vippslogin.Error{Err: vippslogin.ErrBadCallback, Reason: "replayed"},
		},
		{
			name: "expired",
			call: func(h *harness, b *browser) *http.Response {
				cb := b.startLogin("/profile")
				h.clock.Advance(10*time.Minute + time.Second)
				resp, _ := b.get(cb)
				return resp
			},
			want: vippslogin.ErrLoginExpired,
		},
		{
			name: "opened in another browser",
			call: func(h *harness, b *browser) *http.Response {
				cb := b.startLogin("/profile")
				other := h.browser()
				resp, _ := other.get(cb)
				if resp.StatusCode < 400 {
					h.t.Fatalf("other browser: status %d, want an error", resp.StatusCode)
				}
				if _, body := other.get("/public"); body != "hello guest" {
					h.t.Fatalf("the other browser is logged in: /public says %q", body)
				}
				return resp
			},
			want: &vippslogin.Error{Err: vippslogin.ErrBadCallback, Reason: "other_browser"},
		},
		{
			name: "repeated state",
			call: func(h *harness, b *browser) *http.Response {
				cb := b.startLogin("/profile")
				resp, _ := b.get(cb + "&state=" + queryParam(h.t, cb, "state"))
				return resp
			},
			want: vippslogin.ErrBadCallback,
		},
		{
			name: "repeated code",
			call: func(h *harness, b *browser) *http.Response {
				cb := b.startLogin("/profile")
				resp, _ := b.get(cb + "&code=" + randomToken())
				return resp
			},
			want: vippslogin.ErrBadCallback,
		},
		{
			name: "code missing",
			call: func(h *harness, b *browser) *http.Response {
				cb := editQuery(h.t, b.startLogin("/profile"), func(q url.Values) { q.Del("code") })
				resp, _ := b.get(cb)
				return resp
			},
			want: vippslogin.ErrBadCallback,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			b := h.browser()
			resp := tc.call(h, b)
			b.wantRefused(resp, tc.want)
		})
	}
}

func TestCallbackReplayWhileLoggedIn(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	cb := b.startLogin("/shop?item=1")
	for i := range 2 { // the second is a reload of a finished login
		resp, _ := b.get(cb)
		if got, want := resp.StatusCode, http.StatusSeeOther; got != want {
			t.Fatalf("callback %d: status %d, want %d (error %v)", i+1, got, want, h.lastErr())
		}
		if got, want := resp.Header.Get("Location"), "/shop?item=1"; got != want {
			t.Errorf("callback %d: Location %q, want %q", i+1, got, want)
		}
	}
	if got := h.idp.Hits(vippstest.Token); got != 1 {
		t.Errorf("token endpoint hits = %d, want 1: a reload must not redeem the code again", got)
	}
	if b.profile() == nil {
		t.Error("not logged in")
	}
}

func TestCallbackOtherTabFinishedFirst(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	cbA := b.startLogin("/a")
	cbB := b.startLogin("/b")
	if resp, _ := b.get(cbA); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("tab A: status %d (error %v)", resp.StatusCode, h.lastErr())
	}
	errs := h.errCount()
	h.clock.Advance(11 * time.Minute)
	resp, _ := b.get(cbB)
	if got, want := resp.StatusCode, http.StatusSeeOther; got != want {
		t.Fatalf("tab B: status %d, want %d (error %v)", got, want, h.lastErr())
	}
	if got, want := resp.Header.Get("Location"), "/b"; got != want {
		t.Errorf("tab B: Location %q, want %q", got, want)
	}
	if got := h.errCount(); got != errs {
		t.Errorf("tab B reached the error handler: %v", h.lastErr())
	}
}

func TestTwoTabs(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	tabs := []struct{ returnTo, callback string }{
		{returnTo: "/first"},
		{returnTo: "/second?x=1"},
	}
	for i := range tabs {
		tabs[i].callback = b.startLogin(tabs[i].returnTo)
	}
	for _, i := range []int{1, 0} { // the second tab finishes first
		resp, _ := b.get(tabs[i].callback)
		if got, want := resp.StatusCode, http.StatusSeeOther; got != want {
			t.Fatalf("tab %d: status %d, want %d (error %v)", i+1, got, want, h.lastErr())
		}
		if got, want := resp.Header.Get("Location"), tabs[i].returnTo; got != want {
			t.Errorf("tab %d: Location %q, want %q", i+1, got, want)
		}
	}
	if got, want := h.idp.Hits(vippstest.Token), 2; got != want {
		t.Errorf("token endpoint hits = %d, want %d", got, want)
	}
}

func TestSessionRenewedAtLogin(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	b.get("/visit")
	before := b.cookie("session")
	if before == "" {
		t.Fatal("no session cookie after /visit")
	}
	b.login("/profile")
	after := b.cookie("session")
	if after == "" || after == before {
		t.Fatalf("session cookie %q after login, want a new value (before %q)", after, before)
	}
	if b.profile() == nil {
		t.Fatal("not logged in")
	}

	site, _ := url.Parse(h.site.URL)
	withCookie := func(value string) *browser {
		nb := h.browser()
		nb.Jar.SetCookies(site, []*http.Cookie{{Name: "session", Value: value, Path: "/"}})
		return nb
	}
	if got := withCookie(before).profile(); got != nil {
		t.Errorf("the session token from before the login is logged in as %v", got["sub"])
	}
	if got := withCookie(after).profile(); got == nil {
		t.Error("the session token from after the login is not logged in")
	}
}

func TestProviderErrors(t *testing.T) {
	tests := []struct {
		name, code string
	}{
		{"user cancelled", "access_denied"},
		{"server error", "server_error"},
		{"login required", "login_required"},
		{"invalid app callback uri", "invalid_app_callback_uri"},
		{"app callback uri not registered", "app_callback_uri_not_registered"},
		{"outdated app version", "outdated_app_version"},
		{"wrong challenge", "wrong_challenge"},
		{"unknown reject reason", "unknown_reject_reason"},
		{"undocumented code", "temporarily_unavailable_v2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.idp.SetHooks(vippstest.Hooks{AuthorizeError: tc.code})
			b := h.browser()

			resp, body := b.get(b.startLogin("/shop"))
			err := h.lastErr()
			b.wantRefused(resp)
			var pe *vippslogin.ProviderError
			if !errors.As(err, &pe) {
				t.Fatalf("error = %v, want a *ProviderError", err)
			}
			if pe.Code != tc.code {
				t.Errorf("Code = %q, want %q", pe.Code, tc.code)
			}
			cancelled := tc.code == "access_denied"
			if got := errors.Is(err, vippslogin.ErrLoginCancelled); got != cancelled {
				t.Errorf("errors.Is(err, ErrLoginCancelled) = %v, want %v", got, cancelled)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Errorf("Content-Type = %q, want HTML", ct)
			}
			if cancelled {
				if !strings.Contains(body, "cancelled") {
					t.Errorf("page does not say the login was cancelled:\n%s", body)
				}
				if want := `href="/auth/login?return_to=%2Fshop">Try again</a>`; !strings.Contains(body, want) {
					t.Errorf("page has no link %s:\n%s", want, body)
				}
			}

			resp, body = b.get(b.startLogin("/shop"), "Accept", "application/json")
			if resp.StatusCode < 400 {
				t.Fatalf("JSON: status %d, want an error", resp.StatusCode)
			}
			want := tc.code
			if tc.code == "temporarily_unavailable_v2" {
				want = "unknown" // anyone can write a code into a URL
			}
			if code, _ := jsonError(t, resp, body); code != want {
				t.Errorf(`JSON "error" = %q, want %q`, code, want)
			}
		})
	}
}

func TestIssuerParameter(t *testing.T) {
	tests := []struct {
		name string
		edit func(q url.Values)
		want error // nil: the login works
	}{
		{name: "as sent", edit: func(url.Values) {}},
		{name: "other issuer", edit: func(q url.Values) { q.Set("iss", "https://evil.example/access-management-1.0/access/") }, want: vippslogin.ErrBadCallback},
		{name: "removed", edit: func(q url.Values) { q.Del("iss") }, want: vippslogin.ErrBadCallback},
		{name: "repeated", edit: func(q url.Values) { q.Add("iss", q.Get("iss")) }, want: vippslogin.ErrBadCallback},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, options{idp: func(c *vippstest.Config) { c.IssuerParameter = true }})
			b := h.browser()
			cb := b.startLogin("/profile")
			if got, want := queryParam(t, cb, "iss"), h.idp.Issuer(); got != want {
				t.Fatalf("provider sent iss %q, want %q", got, want)
			}
			resp, _ := b.get(editQuery(t, cb, tc.edit))
			if tc.want != nil {
				b.wantRefused(resp, tc.want)
				return
			}
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/profile" {
				t.Fatalf("status %d location %q, want 303 /profile (error %v)", resp.StatusCode, resp.Header.Get("Location"), h.lastErr())
			}
			if b.profile() == nil {
				t.Error("not logged in")
			}
		})
	}
}

// A HEAD of the callback URL (a link preview, a checker) spends nothing:
// the browser's own GET then finishes the login.
func TestCallbackHeadSpendsNothing(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	cb := b.startLogin("/profile")
	if resp, _ := b.do(http.MethodHead, cb, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("HEAD callback: %d", resp.StatusCode)
	}
	if n := h.idp.Hits(vippstest.Token); n != 0 {
		t.Fatalf("HEAD redeemed the code (%d token requests)", n)
	}
	if resp, _ := b.get(cb); resp.StatusCode != http.StatusSeeOther || b.profile() == nil {
		t.Fatalf("GET callback after HEAD: %d (error %v)", resp.StatusCode, h.lastErr())
	}
}

// A refused login leaves nobody logged in: not an earlier user of the
// browser, nor what AfterLogin put in the session before refusing.
// errNoAccount is the error AfterLogin refuses a login with.
var errNoAccount = errors.New("no such account")

// AfterLogin can send the user elsewhere than the login's return_to.
func TestSetReturnTo(t *testing.T) {
	var setErrs []error
	h := newHarness(t, options{site: func(c *vippslogin.Config) {
		c.AfterLogin = func(_ http.ResponseWriter, r *http.Request, _ *vippslogin.Claims) error {
			setErrs = append(setErrs,
				vippslogin.SetReturnTo(r, "https://evil.example/"),
				vippslogin.SetReturnTo(r, "//evil.example/"),
				vippslogin.SetReturnTo(r, "/link?from=vipps"))
			return nil
		}
	}})
	b := h.browser()
	resp, _ := b.get(b.startLogin("/profile"))
	if got := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || got != "/link?from=vipps" {
		t.Fatalf("callback: %d %q, want 303 /link?from=vipps", resp.StatusCode, got)
	}
	if !errors.Is(setErrs[0], &vippslogin.Error{Err: vippslogin.ErrInvalidRequest, Reason: "return_to"}) || !errors.Is(setErrs[1], &vippslogin.Error{Err: vippslogin.ErrInvalidRequest, Reason: "return_to"}) || setErrs[2] != nil {
		t.Errorf("SetReturnTo errors: %v", setErrs)
	}
	if b.profile() == nil {
		t.Error("not logged in")
	}
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	if err := vippslogin.SetReturnTo(req, "/x"); err == nil {
		t.Error("SetReturnTo outside AfterLogin did not fail")
	}
}

func TestRefusedLoginLogsOut(t *testing.T) {
	refuse := false
	var h *harness
	h = newHarness(t, options{site: func(c *vippslogin.Config) {
		c.AfterLogin = func(_ http.ResponseWriter, r *http.Request, _ *vippslogin.Claims) error {
			h.sessions.Put(r.Context(), "account", "42")
			if refuse {
				return errNoAccount
			}
			return nil
		}
	}})
	b := h.browser()
	b.login("/")
	if b.profile() == nil {
		t.Fatal("the first login failed")
	}
	refuse = true
	resp, _ := b.get(b.startLogin("/profile"))
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("refused login: status %d, want 403", resp.StatusCode)
	}
	b.wantRefused(resp, errNoAccount)
}

// A request from another browser that knows the state must not use up the
// login of the browser that started it.
func TestForeignCallbackLeavesLoginIntact(t *testing.T) {
	for _, name := range []string{"code", "error"} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			b := h.browser()
			cb := b.startLogin("/profile")
			foreign := cb
			if name == "error" {
				foreign = h.site.URL + "/auth/callback?error=access_denied&state=" + queryParam(t, cb, "state")
			}
			resp, _ := h.browser().get(foreign)
			if resp.StatusCode < 400 {
				t.Fatalf("foreign callback: status %d", resp.StatusCode)
			}
			if name == "code" {
				h.wantErr(&vippslogin.Error{Err: vippslogin.ErrBadCallback, Reason: "other_browser"})
			}
			resp, _ = b.get(cb)
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/profile" {
				t.Fatalf("own callback after a foreign one: %d %q (error %v)", resp.StatusCode, resp.Header.Get("Location"), h.lastErr())
			}
		})
	}
}

// BenchmarkLogin measures a complete login against the mock provider over
// loopback HTTP: the login route, the provider's authorize, and the callback
// with its code exchange, ID token verification and userinfo fetch. The mock
// provider runs in the same process, so its work (signing the ID token, for
// one) is counted too; bench/ measures the relying party alone.
func BenchmarkLogin(b *testing.B) {
	h := newHarness(b, options{site: func(c *vippslogin.Config) { c.LoginsPerMinute = 1 << 30 }})
	br := h.browser()
	br.login("/") // warm the discovery and key caches
	b.ReportAllocs()
	for b.Loop() {
		resp, _ := br.get(br.startLogin("/"))
		if resp.StatusCode != http.StatusSeeOther {
			b.Fatal(fmt.Sprint("callback status ", resp.StatusCode))
		}
	}
}

// BenchmarkCallback measures the callback alone, over loopback HTTP: the
// code exchange at the in-process mock provider (whose work is counted),
// the ID token's checks, userinfo, and the session's renewal and save. The
// login's start and the provider's authorize run outside the timer.
func BenchmarkCallback(b *testing.B) {
	h := newHarness(b, options{site: func(c *vippslogin.Config) { c.LoginsPerMinute = 1 << 30 }})
	br := h.browser()
	br.login("/")
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		cb := br.startLogin("/")
		b.StartTimer()
		resp, _ := br.get(cb)
		if resp.StatusCode != http.StatusSeeOther {
			b.Fatal(fmt.Sprint("callback status ", resp.StatusCode))
		}
	}
}

// BenchmarkLoginStart measures the login route in process, for a new
// browser each time: the limits, a pending login's record and binding
// cookie, and the redirect to the provider.
func BenchmarkLoginStart(b *testing.B) {
	h := newHarness(b, options{site: func(c *vippslogin.Config) { c.LoginsPerMinute = 1 << 30 }})
	h.browser().login("/")
	site := h.auth.LoadAndSave(h.auth.Handler())
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		site.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/auth/login?return_to=%2Fprofile", nil))
		if w.Code != http.StatusFound {
			b.Fatalf("status %d", w.Code)
		}
	}
}
