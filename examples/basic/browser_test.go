package main

import (
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/vippslogin/vippslogin/internal/testsvc"
	"github.com/vippslogin/vippslogin/vippstest"
)

// The browser tests drive a real headless Chromium through the site and the
// consent page of the mock provider, clicking what a user would click. They
// need a Chromium binary (see testsvc.Chromium); without one they are
// skipped, or fail under CI=true.
//
// Each page the browser lands on is saved as a full-page PNG in a temporary
// directory that the test logs. Set SCREENSHOT_DIR to keep them there
// instead, one directory per test.

// Selectors for what a user sees and clicks. The XPath ones find links and
// buttons by their visible text.
const (
	loginButton   = chromedp.Search(`//a[normalize-space(.)="Log in with Vipps"]`)
	logoutButton  = chromedp.Search(`//form[@action="/auth/logout"]//button[normalize-space(.)="Log out"]`)
	tryAgainLink  = chromedp.Search(`//a[normalize-space(.)="Try again"]`)
	approveButton = chromedp.Search(`//button[@id="approve"]`)
	cancelButton  = chromedp.Search(`//button[@id="cancel"]`)
)

func TestBrowserLoginAndLogout(t *testing.T) {
	chromium := testsvc.Chromium(t)
	srv, _ := startSite(t, nil)
	b := startChromium(t, chromium, srv.URL)
	want := vippstest.DefaultUsers()[0]

	// 1, 2. The home page's button leads to the provider's consent page.
	b.loginFromHome(want)

	// 3. Approving ends on the profile page, showing the test user.
	resp := b.click(approveButton)
	if resp.Status != 200 {
		t.Errorf("after approving: status %d, want 200", resp.Status)
	}
	b.waitVisible(logoutButton)
	if path := b.path(); path != "/profile" {
		t.Fatalf("after approving: at %s, want /profile", b.location())
	}
	if h1 := b.text("main h1"); h1 != want.Name {
		t.Errorf("profile heading: got %q, want %q", h1, want.Name)
	}
	b.textHas("body", want.Name, want.Email, "+47 912 34 567", want.Sub, "Log out")
	b.checkSawCode()
	b.checkNoSecrets()
	b.screenshot("profile", want.Name, "+47 912 34 567")

	// 4. Logging out ends on the home page, logged out.
	resp = b.click(logoutButton)
	b.waitVisible(loginButton)
	if path := b.path(); resp.Status != 200 || path != "/" {
		t.Errorf("after logging out: got %d at %s, want 200 at /", resp.Status, b.location())
	}
	b.textHas("body", "Welcome", "Log in with Vipps")
	b.textLacks("body", want.Name, "Log out")
	b.screenshot("logged-out", "Welcome")

	// 5. The profile now asks for a login again.
	b.open("/profile")
	b.checkConsentPage(want)
	b.screenshot("profile-needs-login", b.consentText(want))
}

func TestBrowserLoginCancelled(t *testing.T) {
	chromium := testsvc.Chromium(t)
	srv, _ := startSite(t, nil)
	b := startChromium(t, chromium, srv.URL)
	want := vippstest.DefaultUsers()[0]

	b.loginFromHome(want)

	// Cancelling shows the library's texts in the site's page, not JSON.
	resp := b.click(cancelButton)
	b.waitVisible(tryAgainLink)
	if resp.Status != 400 {
		t.Errorf("after cancelling: status %d, want 400", resp.Status)
	}
	if ct := b.eval(`document.contentType`); resp.MimeType != "text/html" || ct != "text/html" {
		t.Errorf("after cancelling: MIME type %q, document %q, want text/html", resp.MimeType, ct)
	}
	if title := b.eval(`document.title`); title != "You cancelled the login · vippslogin example" {
		t.Errorf("after cancelling: title %q", title)
	}
	body := b.text("body")
	if strings.HasPrefix(strings.TrimSpace(body), "{") {
		t.Errorf("after cancelling: the page is JSON:\n%s", body)
	}
	b.textHas("header", "vippslogin example") // the site's layout
	b.textHas("body", "You cancelled the login", "nothing was shared", "Try again", "Back to the site")
	b.textLacks("body", "access_denied", "error_description")
	b.checkNoSecrets()
	back := b.attr(chromedp.Search(`//a[normalize-space(.)="Back to the site"]`), "href")
	if back != "/" {
		t.Errorf(`"Back to the site": href %q, want "/"`, back)
	}
	href := b.attr(tryAgainLink, "href")
	if u, err := url.Parse(href); err != nil || u.Path != "/auth/login" || u.Query().Get("return_to") != "/profile" {
		t.Errorf(`"Try again": href %q, want /auth/login?return_to=/profile`, href)
	}
	b.screenshot("cancelled", "You cancelled the login")

	// Nobody is logged in: in another tab, the profile asks for a login.
	other := b.newTab()
	other.open("/profile")
	other.checkConsentPage(want)
	other.screenshot("other-tab-profile-needs-login", other.consentText(want))
	other.close()

	// Trying again works: approve this time.
	b.click(tryAgainLink)
	b.checkConsentPage(want)
	b.screenshot("try-again-consent", b.consentText(want))
	resp = b.click(approveButton)
	b.waitVisible(logoutButton)
	if path := b.path(); resp.Status != 200 || path != "/profile" {
		t.Fatalf("after trying again and approving: got %d at %s, want 200 at /profile", resp.Status, b.location())
	}
	b.textHas("main h1", want.Name)
	b.checkSawCode()
	b.checkNoSecrets()
	b.screenshot("profile", want.Name)
}
