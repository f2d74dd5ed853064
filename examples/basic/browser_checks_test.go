package main

import (
	"encoding/json"
	"net/url"
	"strings"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/vippslogin/vippslogin/vippstest"
)

// secretWords must never show on a page: the site keeps tokens server-side.
var secretWords = []string{"access_token", "id_token", "refresh_token", "client_secret"}

// consentWords are what the mock provider's consent page says, by
// language: its heading, the words before the user's name, and its
// buttons.
var consentWords = map[string][4]string{
	"en": {"Log in with Vipps", "You log in as ", "Approve", "Cancel"},
	"nb": {"Logg inn med Vipps", "Du logger inn som ", "Godkjenn", "Avbryt"},
}

// checkConsentPage checks that the browser shows the mock provider's
// consent page for the site, logging in as user, in the tab's language.
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
	b.mu.Lock()
	lang := b.lang
	b.mu.Unlock()
	w := consentWords[lang]
	b.textHas("body", w[0], w[1]+user.Name, w[2], w[3])
	if got := b.eval(`document.documentElement.lang`); got != lang {
		b.t.Errorf("consent page: <html lang=%q>, want %q", got, lang)
	}
}

// consentText is a text that the consent page for user shows in the
// tab's language, for screenshot.
func (b *chromiumTab) consentText(user vippstest.User) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return consentWords[b.lang][1] + user.Name
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
	b.screenshot("home", "Welcome")
	b.click(loginButton)
	b.checkConsentPage(want)
	b.screenshot("consent", b.consentText(want))
}

// link finds a link by its visible text, buttonNamed a button, and
// logoutButton the button of a form that logs out.
func link(text string) chromedp.Search {
	return chromedp.Search(`//a[normalize-space(.)="` + text + `"]`)
}

func buttonNamed(text string) chromedp.Search {
	return chromedp.Search(`//button[normalize-space(.)="` + text + `"]`)
}

func logoutButtonNamed(text string) chromedp.Search {
	return chromedp.Search(`//form[@action="/auth/logout"]//button[normalize-space(.)="` + text + `"]`)
}

// checkLanguage checks that the page that resp brought speaks lang, in its
// Content-Language header and its <html lang>.
func (b *chromiumTab) checkLanguage(resp *network.Response, lang string) {
	b.t.Helper()
	var got any
	for k, v := range resp.Headers {
		if strings.EqualFold(k, "Content-Language") {
			got = v
		}
	}
	if got != lang {
		b.t.Errorf("%s: Content-Language %v, want %q", b.location(), got, lang)
	}
	if got := b.eval(`document.documentElement.lang`); got != lang {
		b.t.Errorf("%s: <html lang=%q>, want %q", b.location(), got, lang)
	}
}

// layoutJS measures the page: the widths of the window and of the page,
// and the words outside <code> that break across lines.
const layoutJS = `(() => {
	const broken = [];
	const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
	for (let n = walk.nextNode(); n; n = walk.nextNode()) {
		if (n.parentElement.closest("code")) continue;
		for (const m of n.data.matchAll(/\S+/g)) {
			const r = document.createRange();
			r.setStart(n, m.index);
			r.setEnd(n, m.index + m[0].length);
			const lines = new Set([...r.getClientRects()].map(c => Math.round(c.bottom)));
			if (lines.size > 1) broken.push(m[0]);
		}
	}
	return JSON.stringify({
		window: window.innerWidth,
		page: document.documentElement.scrollWidth,
		broken: broken,
	});
})()`

// checkFits checks that the page fits a screen width CSS pixels wide (see
// resize): nothing sticks out sideways, and no word breaks across lines.
func (b *chromiumTab) checkFits(width int) {
	b.t.Helper()
	var got struct {
		Window, Page int
		Broken       []string
	}
	if err := json.Unmarshal([]byte(b.eval(layoutJS)), &got); err != nil {
		b.t.Fatalf("measure the page: %v", err)
	}
	loc := b.location()
	// A phone's browser widens the window to a page that does not fit:
	// then the window, not the page, is wider than the screen.
	if got.Window != width {
		b.t.Errorf("%s: the window is %d px wide, want %d", loc, got.Window, width)
	}
	if got.Page > got.Window {
		b.t.Errorf("%s: the page is %d px wide, wider than the %d px window", loc, got.Page, got.Window)
	}
	if len(got.Broken) > 0 {
		b.t.Errorf("%s: at %d px, words break across lines: %q", loc, width, got.Broken)
	}
}
