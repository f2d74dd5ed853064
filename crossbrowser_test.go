package vippslogin_test

import (
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/vippslogin/vippslogin"
)

// crossBrowserHarness is a site whose /start begins logins with automatic
// return from the app, with CrossBrowserReturn as given.
func crossBrowserHarness(t *testing.T, on bool) *harness {
	return newHarness(t, withLoginRoute(vippslogin.LoginOptions{Flow: vippslogin.FlowAutomaticReturn}),
		options{site: func(c *vippslogin.Config) { c.CrossBrowserReturn = on }})
}

// startAutomatic starts a login with automatic return in b and returns the
// callback URL the app would open.
func startAutomatic(t *testing.T, b *browser) string {
	t.Helper()
	resp, _ := b.get("/start?return_to=/profile")
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("start: status %d (error %v)", resp.StatusCode, b.h.lastErr())
	}
	resp, _ = b.get(resp.Header.Get("Location"))
	cb := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.Contains(cb, "code=") {
		t.Fatalf("authorize: %d %q", resp.StatusCode, cb)
	}
	return cb
}

// wantConfirmPage checks that resp asks to confirm the login of name.
func wantConfirmPage(t *testing.T, resp *http.Response, body, name string) {
	t.Helper()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("want the confirmation page, got %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	text := html.UnescapeString(body)
	for _, s := range []string{name, `action="/auth/confirm"`, `value="continue"`, `value="cancel"`} {
		if !strings.Contains(text, s) {
			t.Errorf("the confirmation page lacks %q:\n%s", s, body)
		}
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", resp.Header.Get("Cache-Control"))
	}
}

// confirm answers the confirmation page in b.
func (b *browser) confirm(action string, header ...string) (*http.Response, string) {
	b.h.t.Helper()
	return b.do(http.MethodPost, "/auth/confirm", strings.NewReader(url.Values{"action": {action}}.Encode()), header...)
}

func TestCrossBrowserReturnOffByDefault(t *testing.T) {
	h := crossBrowserHarness(t, false)
	a, other := h.browser(), h.browser()
	cb := startAutomatic(t, a)
	resp, _ := other.get(cb)
	other.wantRefused(resp, vippslogin.ErrBrowserMismatch)
	// The login is intact for the browser that started it.
	if resp, _ := a.get(cb); resp.StatusCode != http.StatusSeeOther || a.profile() == nil {
		t.Fatalf("callback in the starting browser: %d (error %v)", resp.StatusCode, h.lastErr())
	}
}

func TestCrossBrowserReturnConfirmed(t *testing.T) {
	h := crossBrowserHarness(t, true)
	a, other := h.browser(), h.browser()
	cb := startAutomatic(t, a)

	resp, body := other.get(cb)
	wantConfirmPage(t, resp, body, "Kari Nordmann")
	for _, secret := range []string{queryParam(t, cb, "code"), queryParam(t, cb, "state")} {
		if strings.Contains(body, secret) {
			t.Errorf("the confirmation page shows the code or state")
		}
	}
	if other.profile() != nil {
		t.Fatal("logged in before confirming")
	}
	// A reload shows the same question.
	resp, body = other.get(cb)
	wantConfirmPage(t, resp, body, "Kari Nordmann")

	resp, _ = other.confirm("continue")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/profile" {
		t.Fatalf("continue: %d %q (error %v)", resp.StatusCode, resp.Header.Get("Location"), h.lastErr())
	}
	if c := other.profile(); c == nil || c["name"] != "Kari Nordmann" {
		t.Fatalf("profile after confirming: %v", c)
	}
	// The confirmation is single-use.
	if resp, _ := other.confirm("continue"); resp.StatusCode < 400 {
		t.Errorf("a second confirmation: status %d", resp.StatusCode)
	}
	// The starting browser's own callback now finds the login finished.
	resp, _ = a.get(cb)
	a.wantRefused(resp, vippslogin.ErrLoginReplayed)
}

// The browser that started the login picks it up when its own callback
// arrives; the other browser's confirmation then fails.
func TestCrossBrowserReturnPickedUp(t *testing.T) {
	h := crossBrowserHarness(t, true)
	a, other := h.browser(), h.browser()
	cb := startAutomatic(t, a)
	resp, body := other.get(cb)
	wantConfirmPage(t, resp, body, "Kari Nordmann")

	resp, _ = a.get(cb)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/profile" {
		t.Fatalf("pick-up: %d %q (error %v)", resp.StatusCode, resp.Header.Get("Location"), h.lastErr())
	}
	if a.profile() == nil {
		t.Fatal("the starting browser is not logged in")
	}
	resp, _ = other.confirm("continue")
	other.wantRefused(resp, vippslogin.ErrLoginReplayed)
}

func TestCrossBrowserReturnDeclined(t *testing.T) {
	h := crossBrowserHarness(t, true)
	a, other := h.browser(), h.browser()
	cb := startAutomatic(t, a)
	other.get(cb)
	resp, body := other.confirm("cancel")
	if !strings.Contains(html.UnescapeString(body), "chose not to continue") {
		t.Errorf("decline: %d %s", resp.StatusCode, body)
	}
	other.wantRefused(resp, vippslogin.ErrLoginCancelled)
	// Declined is declined: the starting browser cannot pick it up either.
	resp, _ = a.get(cb)
	a.wantRefused(resp, vippslogin.ErrLoginReplayed)
}

func TestCrossBrowserReturnRejected(t *testing.T) {
	t.Run("confirm without the cookie", func(t *testing.T) {
		h := crossBrowserHarness(t, true)
		a, other := h.browser(), h.browser()
		cb := startAutomatic(t, a)
		other.get(cb)
		third := h.browser()
		resp, _ := third.confirm("continue")
		third.wantRefused(resp, vippslogin.ErrStateMissing)
		// The real confirmation still works.
		if resp, _ := other.confirm("continue"); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("confirm: %d (error %v)", resp.StatusCode, h.lastErr())
		}
	})
	t.Run("confirm with a forged secret", func(t *testing.T) {
		h := crossBrowserHarness(t, true)
		a, other := h.browser(), h.browser()
		cb := startAutomatic(t, a)
		other.get(cb)
		forger := h.browser()
		u, _ := url.Parse(h.url)
		forger.Jar.SetCookies(u, []*http.Cookie{{Name: "vippslogin-confirm", Value: queryParam(t, cb, "state") + "." + randomToken(), Path: "/"}})
		resp, _ := forger.confirm("continue")
		forger.wantRefused(resp, vippslogin.ErrBrowserMismatch)
		if resp, _ := other.confirm("continue"); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("the real confirmation after a forged one: %d (error %v)", resp.StatusCode, h.lastErr())
		}
	})
	t.Run("cross-origin confirmation", func(t *testing.T) {
		h := crossBrowserHarness(t, true)
		a, other := h.browser(), h.browser()
		other.get(startAutomatic(t, a))
		resp, _ := other.confirm("continue", "Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example")
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("status %d, want 403", resp.StatusCode)
		}
		other.wantRefused(resp, vippslogin.ErrCrossOrigin)
	})
	t.Run("unknown action", func(t *testing.T) {
		h := crossBrowserHarness(t, true)
		a, other := h.browser(), h.browser()
		other.get(startAutomatic(t, a))
		resp, _ := other.confirm("yes")
		other.wantRefused(resp, vippslogin.ErrStateMissing)
	})
	t.Run("expired", func(t *testing.T) {
		h := crossBrowserHarness(t, true)
		a, other := h.browser(), h.browser()
		other.get(startAutomatic(t, a))
		h.clock.Advance(11 * time.Minute)
		resp, _ := other.confirm("continue")
		other.wantRefused(resp, vippslogin.ErrLoginExpired)
	})
	t.Run("ordinary logins stay bound to their browser", func(t *testing.T) {
		h := newHarness(t, options{site: func(c *vippslogin.Config) { c.CrossBrowserReturn = true }})
		cb := h.browser().startLogin("/profile")
		other := h.browser()
		resp, _ := other.get(cb)
		other.wantRefused(resp, vippslogin.ErrBrowserMismatch)
	})
}

// AfterLogin runs when the other browser confirms, and can refuse there.
func TestCrossBrowserReturnAfterLogin(t *testing.T) {
	var seen []string
	h := newHarness(t, withLoginRoute(vippslogin.LoginOptions{Flow: vippslogin.FlowAutomaticReturn}),
		options{site: func(c *vippslogin.Config) {
			c.CrossBrowserReturn = true
			c.AfterLogin = func(_ http.ResponseWriter, _ *http.Request, claims *vippslogin.Claims) error {
				seen = append(seen, claims.Name)
				return nil
			}
		}})
	a, other := h.browser(), h.browser()
	other.get(startAutomatic(t, a))
	if len(seen) != 0 {
		t.Fatal("AfterLogin ran before the confirmation")
	}
	if resp, _ := other.confirm("continue"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("confirm: %d (error %v)", resp.StatusCode, h.lastErr())
	}
	if len(seen) != 1 || seen[0] != "Kari Nordmann" {
		t.Errorf("AfterLogin saw %v", seen)
	}
}

func TestCrossBrowserReturnNorwegian(t *testing.T) {
	h := crossBrowserHarness(t, true)
	a, other := h.browser(), h.browser()
	resp, body := other.get(startAutomatic(t, a), "Accept-Language", "nb-NO,nb;q=0.9,en;q=0.5")
	wantConfirmPage(t, resp, body, "Kari Nordmann")
	if resp.Header.Get("Content-Language") != "nb" || !strings.Contains(body, `lang="nb"`) {
		t.Errorf("Content-Language %q; page:\n%s", resp.Header.Get("Content-Language"), body)
	}
}
