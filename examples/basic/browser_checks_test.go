package main

import (
	"net/url"
	"strings"

	"github.com/chromedp/chromedp"

	"github.com/vippslogin/vippslogin/vippstest"
)

// secretWords must never show on a page: the site keeps tokens server-side.
var secretWords = []string{"access_token", "id_token", "refresh_token", "client_secret"}

// checkConsentPage checks that the browser shows the mock provider's
// consent page for the site, logging in as user.
func (b *chromiumTab) checkConsentPage(user vippstest.User) {
	b.t.Helper()
	b.waitVisible(approveButton)
	b.waitVisible(cancelButton)
	loc := b.location()
	u, err := url.Parse(loc)
	if err != nil {
		b.t.Fatalf("consent page: bad location %q: %v", loc, err)
	}
	site, _ := url.Parse(b.site)
	q := u.Query()
	if u.Host == site.Host || q.Get("redirect_uri") != b.site+"/auth/callback" ||
		q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || q.Get("client_id") == "" {
		b.t.Errorf("consent page: at %s, want the provider's authorization endpoint with a code request for the site", loc)
	}
	b.textHas("body", "Log in with Vipps", "You log in as "+user.Name, "Approve", "Cancel")
}

// checkSawCode checks that the browser was seen carrying an authorization
// code back to the site, so that checkNoSecrets has a code to look for.
func (b *chromiumTab) checkSawCode() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, cb := range b.callbacks {
		if u, err := url.Parse(cb); err == nil && u.Query().Get("code") != "" {
			return
		}
	}
	b.t.Errorf("saw no request to /auth/callback with a code, only %q", b.callbacks)
}

// checkNoSecrets checks that the current page, and the way to it, show no
// token and no authorization code that the browser carried back.
func (b *chromiumTab) checkNoSecrets() {
	b.t.Helper()
	loc := b.location()
	text := b.text("body")
	html, err := runStep(b, chromedp.OuterHTML(chromedp.CSS("html")))
	if err != nil {
		b.fatal("read the page", err)
	}
	for _, w := range secretWords {
		if strings.Contains(text, w) || strings.Contains(html, w) || strings.Contains(loc, w) {
			b.t.Errorf("%s: the page shows %q", loc, w)
		}
	}
	b.mu.Lock()
	callbacks := append([]string(nil), b.callbacks...)
	b.mu.Unlock()
	for _, cb := range callbacks {
		u, err := url.Parse(cb)
		if err != nil {
			b.t.Errorf("callback URL %q: %v", cb, err)
			continue
		}
		code := u.Query().Get("code")
		if code == "" {
			continue
		}
		if strings.Contains(text, code) || strings.Contains(html, code) || strings.Contains(loc, code) {
			b.t.Errorf("%s: the page shows the authorization code", loc)
		}
	}
	if u, err := url.Parse(loc); err == nil && u.Query().Has("code") {
		b.t.Errorf("the browser stays at %s, with a code in the address", loc)
	}
	entries, err := runStep(b, chromedp.NavigationEntries())
	if err != nil {
		b.fatal("read the history", err)
	}
	for _, e := range entries.Entries {
		if u, err := url.Parse(e.URL); err == nil && u.Query().Has("code") {
			b.t.Errorf("the history holds a URL with a code: %s", e.URL)
		}
	}
}

// loginFromHome opens the home page, checks that it offers to log in, and
// clicks its button, which must lead to the provider's consent page for want.
func (b *chromiumTab) loginFromHome(want vippstest.User) {
	b.t.Helper()
	b.open("/")
	b.waitVisible(loginButton)
	b.textHas("body", "Welcome", "Log in with Vipps")
	b.textLacks("body", "Log out")
	if href := b.attr(loginButton, "href"); href != loginLink {
		b.t.Errorf("login button: href %q, want %q", href, loginLink)
	}
	b.screenshot("home")
	b.click(loginButton)
	b.checkConsentPage(want)
	b.screenshot("consent")
}
