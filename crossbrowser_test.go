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
// return from the app.
func crossBrowserHarness(t *testing.T, opts ...options) *harness {
	return newHarness(t, append([]options{withLoginRoute(vippslogin.LoginOptions{Flow: vippslogin.FlowAutomaticReturn})}, opts...)...)
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

// confirm answers the last confirmation page b was shown.
func (b *browser) confirm(action string, header ...string) (*http.Response, string) {
	b.h.t.Helper()
	form := url.Values{"action": {action}, "login": {b.confirmLogin}}
	return b.do(http.MethodPost, "/auth/confirm", strings.NewReader(form.Encode()), header...)
}

// A login with automatic return that comes back in another browser is
// finished there once that browser confirms who is logging in. Vipps asks
// that such logins complete without cookies
// (login-api/api-guide/flows/automatic-return.md).
func TestCrossBrowserReturnConfirmed(t *testing.T) {
	h := crossBrowserHarness(t)
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
	// The starting browser gets nothing from a login finished elsewhere.
	resp, _ = a.get(cb)
	a.wantRefused(resp, &vippslogin.Error{Err: vippslogin.ErrBadCallback, Reason: "replayed"})
}

// The takeover attempt: an attacker starts a login with automatic return
// and sends the authorization URL (on the provider's own domain) to a
// victim, who logs in there with their own account. The attacker's browser
// knows the state all along, and tries to pick the login up with it before,
// during and after the victim's confirmation. It must never be logged in.
func TestCrossBrowserReturnStarterNeverLoggedIn(t *testing.T) {
	h := crossBrowserHarness(t)
	attacker, victim := h.browser(), h.browser()
	resp, _ := attacker.get("/start?return_to=/profile")
	authz := resp.Header.Get("Location")
	state := queryParam(t, authz, "state")
	if resp.StatusCode != http.StatusFound || state == "" {
		t.Fatalf("start: %d %q", resp.StatusCode, authz)
	}
	const victimSub = "7b2e4c91-0a8d-4e3f-b6d2-95c1f0a7e368" // Ola Bjørnstad Hansen
	if err := h.idp.SetUser(victimSub); err != nil {
		t.Fatal(err)
	}
	tryPickUp := func(when string, withCodes bool) {
		t.Helper()
		urls := []string{"/auth/callback?state=" + state, "/auth/callback?state=" + state + "&code="}
		if withCodes {
			urls = append(urls, "/auth/callback?state="+state+"&code="+randomToken())
		}
		for _, u := range urls {
			resp, body := attacker.get(u)
			if resp.StatusCode < 400 && resp.StatusCode != http.StatusSeeOther {
				t.Errorf("%s: %s answered %d", when, u, resp.StatusCode)
			}
			if strings.Contains(html.UnescapeString(body), "Ola") {
				t.Errorf("%s: %s shows the victim's name", when, u)
			}
			if c := attacker.profile(); c != nil {
				t.Fatalf("%s: the attacker's browser is logged in as %v", when, c["name"])
			}
		}
	}
	tryPickUp("before the victim logs in", false)

	resp, _ = victim.get(authz)
	cb := resp.Header.Get("Location")
	if !strings.Contains(cb, "code=") {
		t.Fatalf("authorize in the victim's browser: %d %q", resp.StatusCode, cb)
	}
	tryPickUp("after the victim logged in at the provider", false)

	resp, body := victim.get(cb)
	wantConfirmPage(t, resp, body, "Ola Bjørnstad Hansen")
	tryPickUp("while the victim is asked to confirm", false)

	if resp, _ := victim.confirm("continue"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the victim's confirmation: %d (error %v)", resp.StatusCode, h.lastErr())
	}
	if c := victim.profile(); c == nil || c["sub"] != victimSub {
		t.Fatalf("the victim's own browser: %v", c)
	}
	tryPickUp("after the victim confirmed", true)
	if resp, _ := attacker.get(cb); attacker.profile() != nil {
		t.Fatalf("the victim's callback logged the attacker in (%d)", resp.StatusCode)
	}
}

// An attacker who edits the scope down to openid would make the page ask
// "Continue as this user?", naming nobody. Such a login is refused in the
// browser it came back to, and logs nobody in.
func TestCrossBrowserReturnNamelessRefused(t *testing.T) {
	h := crossBrowserHarness(t)
	attacker, victim := h.browser(), h.browser()
	resp, _ := attacker.get("/start?return_to=/profile")
	authz := editQuery(t, resp.Header.Get("Location"), func(q url.Values) { q.Set("scope", "openid") })
	resp, _ = victim.get(authz)
	cb := resp.Header.Get("Location")
	if !strings.Contains(cb, "code=") {
		t.Fatalf("authorize: %d %q", resp.StatusCode, cb)
	}
	resp, body := victim.get(cb)
	victim.wantRefused(resp, &vippslogin.Error{Err: vippslogin.ErrBadCallback, Reason: "nameless"})
	if text := html.UnescapeString(body); !strings.Contains(text, "can't show who is logging in") || strings.Contains(text, `value="continue"`) {
		t.Errorf("the page for a nameless login:\n%s", body)
	}
	if resp, _ := victim.confirm("continue"); resp.StatusCode < 400 || victim.profile() != nil {
		t.Fatalf("a confirmation after the refusal: %d", resp.StatusCode)
	}
	if attacker.profile() != nil {
		t.Fatal("the attacker's browser is logged in")
	}
}

// The Continue button logs in the person its page names, or nobody. An
// attacker who has a victim's browser show "Continue as <victim>?" and
// then, from another tab, opens the callback of the attacker's own login
// there (which replaces the secret the browser confirms with) does not get
// the victim's click to log the browser in as the attacker.
func TestCrossBrowserReturnContinueLogsInTheNamedPerson(t *testing.T) {
	h := crossBrowserHarness(t)
	attacker, victimStart, victim := h.browser(), h.browser(), h.browser()
	const victimSub = "7b2e4c91-0a8d-4e3f-b6d2-95c1f0a7e368" // Ola Bjørnstad Hansen
	attackerCB := startAutomatic(t, attacker)                // as Kari Nordmann, kept unused
	if err := h.idp.SetUser(victimSub); err != nil {
		t.Fatal(err)
	}
	resp, body := victim.get(startAutomatic(t, victimStart))
	wantConfirmPage(t, resp, body, "Ola Bjørnstad Hansen")
	victimPage := victim.confirmLogin

	resp, body = victim.get(attackerCB) // the other tab
	wantConfirmPage(t, resp, body, "Kari Nordmann")

	victim.confirmLogin = victimPage // the click on the first page
	resp, _ = victim.confirm("continue")
	victim.wantRefused(resp, &vippslogin.Error{Err: vippslogin.ErrBadCallback, Reason: "other_browser"})
}

func TestCrossBrowserReturnDeclined(t *testing.T) {
	h := crossBrowserHarness(t)
	a, other := h.browser(), h.browser()
	cb := startAutomatic(t, a)
	other.get(cb)
	resp, body := other.confirm("cancel")
	if !strings.Contains(html.UnescapeString(body), "chose not to continue") {
		t.Errorf("decline: %d %s", resp.StatusCode, body)
	}
	other.wantRefused(resp, vippslogin.ErrLoginCancelled)
	// Declined is declined: the starting browser cannot use it either.
	resp, _ = a.get(cb)
	a.wantRefused(resp, &vippslogin.Error{Err: vippslogin.ErrBadCallback, Reason: "replayed"})
}

func TestCrossBrowserReturnRejected(t *testing.T) {
	t.Run("confirm without the cookie", func(t *testing.T) {
		h := crossBrowserHarness(t)
		a, other := h.browser(), h.browser()
		cb := startAutomatic(t, a)
		other.get(cb)
		third := h.browser()
		third.confirmLogin = other.confirmLogin // the page's login is no secret; the cookie is
		resp, _ := third.confirm("continue")
		third.wantRefused(resp, &vippslogin.Error{Err: vippslogin.ErrBadCallback, Reason: "other_browser"})
		// The real confirmation still works.
		if resp, _ := other.confirm("continue"); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("confirm: %d (error %v)", resp.StatusCode, h.lastErr())
		}
	})
	t.Run("confirm with a forged secret", func(t *testing.T) {
		h := crossBrowserHarness(t)
		a, other := h.browser(), h.browser()
		cb := startAutomatic(t, a)
		other.get(cb)
		forger := h.browser()
		u, _ := url.Parse(h.url)
		forger.Jar.SetCookies(u, []*http.Cookie{{Name: "vippslogin-confirm", Value: randomToken(), Path: "/"}})
		forger.confirmLogin = other.confirmLogin
		resp, _ := forger.confirm("continue")
		forger.wantRefused(resp, vippslogin.ErrLoginExpired)
		if resp, _ := other.confirm("continue"); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("the real confirmation after a forged one: %d (error %v)", resp.StatusCode, h.lastErr())
		}
	})
	t.Run("cross-origin confirmation", func(t *testing.T) {
		h := crossBrowserHarness(t)
		a, other := h.browser(), h.browser()
		other.get(startAutomatic(t, a))
		resp, _ := other.confirm("continue", "Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example")
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("status %d, want 403", resp.StatusCode)
		}
		other.wantRefused(resp, &vippslogin.Error{Err: vippslogin.ErrInvalidRequest, Reason: "cross_origin"})
	})
	t.Run("unknown action", func(t *testing.T) {
		h := crossBrowserHarness(t)
		a, other := h.browser(), h.browser()
		other.get(startAutomatic(t, a))
		resp, _ := other.confirm("yes")
		other.wantRefused(resp, vippslogin.ErrBadCallback)
		if resp, _ := other.confirm("continue"); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("confirm after an unknown action: %d (error %v)", resp.StatusCode, h.lastErr())
		}
	})
	t.Run("expired", func(t *testing.T) {
		h := crossBrowserHarness(t)
		a, other := h.browser(), h.browser()
		other.get(startAutomatic(t, a))
		h.clock.Advance(11 * time.Minute)
		resp, body := other.confirm("continue")
		other.wantRefused(resp, vippslogin.ErrLoginExpired)
		if !strings.Contains(body, "took too long") {
			t.Errorf("page:\n%s", body)
		}
	})
	t.Run("ordinary logins stay bound to their browser", func(t *testing.T) {
		h := newHarness(t)
		b := h.browser()
		cb := b.startLogin("/profile")
		other := h.browser()
		resp, _ := other.get(cb)
		other.wantRefused(resp, &vippslogin.Error{Err: vippslogin.ErrBadCallback, Reason: "other_browser"})
		if resp, _ := b.get(cb); resp.StatusCode != http.StatusSeeOther || b.profile() == nil {
			t.Fatalf("the starting browser's own callback: %d (error %v)", resp.StatusCode, h.lastErr())
		}
	})
}

// AfterLogin runs when the other browser confirms, and can refuse there.
func TestCrossBrowserReturnAfterLogin(t *testing.T) {
	var seen []string
	h := crossBrowserHarness(t, options{site: func(c *vippslogin.Config) {
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
	h := crossBrowserHarness(t)
	a, other := h.browser(), h.browser()
	resp, body := other.get(startAutomatic(t, a), "Accept-Language", "nb-NO,nb;q=0.9,en;q=0.5")
	wantConfirmPage(t, resp, body, "Kari Nordmann")
	if resp.Header.Get("Content-Language") != "nb" || !strings.Contains(body, `lang="nb"`) {
		t.Errorf("Content-Language %q; page:\n%s", resp.Header.Get("Content-Language"), body)
	}
}
