package main

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
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

// browserTimeout bounds a whole browser test, so that a hung browser or
// site fails the test rather than hanging it.
const browserTimeout = 60 * time.Second

// Selectors for what a user sees and clicks. The XPath ones find links and
// buttons by their visible text.
const (
	loginButton   = chromedp.Search(`//a[normalize-space(.)="Log in with Vipps"]`)
	logoutButton  = chromedp.Search(`//form[@action="/auth/logout"]//button[normalize-space(.)="Log out"]`)
	tryAgainLink  = chromedp.Search(`//a[normalize-space(.)="Try again"]`)
	approveButton = chromedp.Search(`//button[@id="approve"]`)
	cancelButton  = chromedp.Search(`//button[@id="cancel"]`)
)

// secretWords must never show on a page: the site keeps tokens server-side.
var secretWords = []string{"access_token", "id_token", "refresh_token", "client_secret"}

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
	b.screenshot("profile")

	// 4. Logging out ends on the home page, logged out.
	resp = b.click(logoutButton)
	b.waitVisible(loginButton)
	if path := b.path(); resp.Status != 200 || path != "/" {
		t.Errorf("after logging out: got %d at %s, want 200 at /", resp.Status, b.location())
	}
	b.textHas("body", "Welcome", "Log in with Vipps")
	b.textLacks("body", want.Name, "Log out")
	b.screenshot("logged-out")

	// 5. The profile now asks for a login again.
	b.open("/profile")
	b.checkConsentPage(want)
	b.screenshot("profile-needs-login")
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
	b.screenshot("cancelled")

	// Nobody is logged in: in another tab, the profile asks for a login.
	other := b.newTab()
	other.open("/profile")
	other.checkConsentPage(want)
	other.screenshot("other-tab-profile-needs-login")
	other.close()

	// Trying again works: approve this time.
	b.click(tryAgainLink)
	b.checkConsentPage(want)
	b.screenshot("try-again-consent")
	resp = b.click(approveButton)
	b.waitVisible(logoutButton)
	if path := b.path(); resp.Status != 200 || path != "/profile" {
		t.Fatalf("after trying again and approving: got %d at %s, want 200 at /profile", resp.Status, b.location())
	}
	b.textHas("main h1", want.Name)
	b.checkSawCode()
	b.checkNoSecrets()
	b.screenshot("profile")
}

// chromiumTab is one tab of a headless Chromium that a test drives. Its methods
// stop the test on an error.
type chromiumTab struct {
	t      *testing.T
	ctx    context.Context
	cancel context.CancelFunc // closes the tab; nil for the first tab
	site   string             // base URL of the site, no trailing slash
	*shared
}

// shared is what the tabs of one browser share.
type shared struct {
	dir string // where screenshots go

	mu        sync.Mutex
	shots     int      // number of screenshots taken
	callbacks []string // URLs of the requests to the site's /auth/callback
}

// startChromium starts the Chromium at path (from testsvc.Chromium),
// headless and with a fresh profile, for a test of the site at siteURL, and
// returns its first tab. The browser is closed when the test ends, and at
// the latest when browserTimeout has passed.
func startChromium(t *testing.T, path, siteURL string) *chromiumTab {
	t.Helper()
	profile := t.TempDir()
	dir := t.TempDir()
	if d := os.Getenv("SCREENSHOT_DIR"); d != "" {
		dir = filepath.Join(d, t.Name())
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshots in %s", dir)

	opts := []chromedp.ExecAllocatorOption{chromedp.ExecPath(path), chromedp.UserDataDir(profile)}
	for _, f := range testsvc.ChromiumFlags {
		name, value, ok := strings.Cut(strings.TrimPrefix(f, "--"), "=")
		if ok {
			opts = append(opts, chromedp.Flag(name, value))
		} else {
			opts = append(opts, chromedp.Flag(name, true))
		}
	}
	// Not t.Context(): it ends before the cleanups run, which would kill the
	// browser instead of closing it.
	ctx, stop := context.WithTimeout(context.Background(), browserTimeout)
	allocCtx, allocCancel := chromedp.NewExecAllocator(ctx, opts...)
	ctx, browserCancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		if ctx.Err() == nil {
			cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
			if err := chromedp.Cancel(cctx); err != nil {
				t.Errorf("close the browser: %v", err)
			}
			ccancel()
		}
		browserCancel()
		allocCancel()
		stop()
		checkNoLeftovers(t, profile)
	})

	b := &chromiumTab{t: t, ctx: ctx, site: strings.TrimSuffix(siteURL, "/"), shared: &shared{dir: dir}}
	b.listen() // starts the browser
	return b
}

// newTab opens another tab of the browser. It shares the cookies.
func (b *chromiumTab) newTab() *chromiumTab {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	tab := &chromiumTab{t: b.t, ctx: ctx, cancel: cancel, site: b.site, shared: b.shared}
	tab.listen()
	return tab
}

// close closes a tab that newTab opened.
func (b *chromiumTab) close() {
	b.t.Helper()
	if err := chromedp.Cancel(b.ctx); err != nil {
		b.t.Errorf("close the tab: %v", err)
	}
	b.cancel()
}

// listen notes where the provider sends the tab back to the site: the
// authorization code in those URLs must never show on a page.
func (b *chromiumTab) listen() {
	b.t.Helper()
	err := chromedp.Listen(b.ctx, func(ev any) {
		if ev, ok := ev.(*network.EventRequestWillBeSent); ok && strings.HasPrefix(ev.Request.URL, b.site+"/auth/callback") {
			b.mu.Lock()
			b.callbacks = append(b.callbacks, ev.Request.URL)
			b.mu.Unlock()
		}
	})
	if err != nil {
		b.t.Fatalf("start chromium or open a tab: %v", err)
	}
}

// checkNoLeftovers fails the test if processes of the browser that used
// profile still run, and ends them. It looks in /proc, so only on Linux.
func checkNoLeftovers(t *testing.T, profile string) {
	t.Helper()
	want := []byte("--user-data-dir=" + profile)
	find := func() []int {
		entries, err := os.ReadDir("/proc")
		if err != nil {
			return nil
		}
		var pids []int
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == os.Getpid() {
				continue
			}
			cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			if err != nil {
				continue
			}
			for arg := range bytes.SplitSeq(cmdline, []byte{0}) {
				if bytes.Equal(arg, want) {
					pids = append(pids, pid)
					break
				}
			}
		}
		return pids
	}
	// Children can take a moment to follow the browser out.
	deadline := time.Now().Add(5 * time.Second)
	pids := find()
	for len(pids) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		pids = find()
	}
	if len(pids) > 0 {
		t.Errorf("chromium processes left running after the browser closed: %v", pids)
		for _, pid := range pids {
			if p, err := os.FindProcess(pid); err == nil {
				_ = p.Kill()
			}
		}
	}
}

// stepTimeout bounds one step, so that a step that hangs leaves time to
// tell where the browser was.
const stepTimeout = 15 * time.Second

func runStep[T any](b *chromiumTab, a chromedp.Action[T]) (T, error) {
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	return chromedp.Run(ctx, a)
}

func doStep(b *chromiumTab, steps ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	return chromedp.Do(ctx, steps...)
}

func responseStep(b *chromiumTab, steps ...chromedp.Action[chromedp.Void]) (*network.Response, error) {
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	return chromedp.RunResponse(ctx, steps...)
}

// fatal stops the test with what went wrong and where the browser was.
func (b *chromiumTab) fatal(what string, err error) {
	b.t.Helper()
	loc, text := "?", ""
	if b.ctx.Err() == nil {
		if l, lerr := runStep(b, chromedp.Location()); lerr == nil {
			loc = l
		}
		text, _ = runStep(b, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	}
	b.t.Fatalf("%s (at %s): %v\npage text:\n%s", what, loc, err, text)
}

// open navigates to path on the site and returns the response that
// ends the navigation, after any redirects.
func (b *chromiumTab) open(path string) *network.Response {
	b.t.Helper()
	resp, err := runStep(b, chromedp.NavigateResponse(b.site+path))
	if err != nil {
		b.fatal("open "+path, err)
	}
	return resp
}

// click clicks the first element sel finds, waits for the page it leads
// to, and returns that page's response, after any redirects.
func (b *chromiumTab) click(sel chromedp.Search) *network.Response {
	b.t.Helper()
	resp, err := responseStep(b, chromedp.Click(sel))
	if err != nil {
		b.fatal(fmt.Sprintf("click %s", sel), err)
	}
	if resp == nil {
		b.fatal(fmt.Sprintf("click %s", sel), fmt.Errorf("no page loaded"))
	}
	return resp
}

func (b *chromiumTab) waitVisible(sel chromedp.Search) {
	b.t.Helper()
	if err := doStep(b, chromedp.WaitVisible(sel)); err != nil {
		b.fatal(fmt.Sprintf("wait for %s", sel), err)
	}
}

// text returns the visible text of the first element that the CSS
// selector css finds.
func (b *chromiumTab) text(css string) string {
	b.t.Helper()
	s, err := runStep(b, chromedp.Text(chromedp.CSS(css)))
	if err != nil {
		b.fatal("read the text of "+css, err)
	}
	return s
}

func (b *chromiumTab) textHas(css string, want ...string) {
	b.t.Helper()
	text := b.text(css)
	for _, w := range want {
		if !strings.Contains(text, w) {
			b.t.Errorf("%s: the text at %s does not contain %q:\n%s", b.location(), css, w, text)
		}
	}
}

func (b *chromiumTab) textLacks(css string, unwanted ...string) {
	b.t.Helper()
	text := b.text(css)
	for _, w := range unwanted {
		if strings.Contains(text, w) {
			b.t.Errorf("%s: the text at %s contains %q:\n%s", b.location(), css, w, text)
		}
	}
}

func (b *chromiumTab) attr(sel chromedp.Search, name string) string {
	b.t.Helper()
	res, err := runStep(b, chromedp.AttributeValue(sel, name))
	if err != nil {
		b.fatal(fmt.Sprintf("read %s of %s", name, sel), err)
	}
	if !res.Exists {
		b.t.Errorf("%s has no %s attribute", sel, name)
	}
	return res.Value
}

// eval evaluates a JavaScript expression that gives a string.
func (b *chromiumTab) eval(expr string) string {
	b.t.Helper()
	s, err := runStep(b, chromedp.Evaluate[string](expr))
	if err != nil {
		b.fatal("evaluate "+expr, err)
	}
	return s
}

func (b *chromiumTab) location() string {
	b.t.Helper()
	loc, err := runStep(b, chromedp.Location())
	if err != nil {
		b.t.Fatalf("read the location: %v", err)
	}
	return loc
}

// path returns the path of the current page if it is on the site, else
// the whole URL.
func (b *chromiumTab) path() string {
	b.t.Helper()
	loc := b.location()
	if rest, ok := strings.CutPrefix(loc, b.site); ok {
		u, err := url.Parse(rest)
		if err == nil {
			return u.Path
		}
	}
	return loc
}

var screenshotName = regexp.MustCompile(`^[a-z0-9-]+$`)

// screenshot saves a full-page PNG of the current page as NN-name.png.
func (b *chromiumTab) screenshot(name string) {
	b.t.Helper()
	if !screenshotName.MatchString(name) {
		b.t.Fatalf("bad screenshot name %q", name)
	}
	buf, err := runStep(b, chromedp.FullScreenshot(100))
	if err != nil {
		b.fatal("screenshot "+name, err)
	}
	b.mu.Lock()
	b.shots++
	n := b.shots
	b.mu.Unlock()
	file := filepath.Join(b.dir, fmt.Sprintf("%02d-%s.png", n, name))
	if err := os.WriteFile(file, buf, 0o644); err != nil {
		b.t.Fatal(err)
	}
	saved, err := os.ReadFile(file)
	if err != nil {
		b.t.Fatal(err)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(saved))
	if err != nil || cfg.Width == 0 || cfg.Height == 0 {
		b.t.Errorf("screenshot %s: not a PNG image (%d bytes): %v", file, len(saved), err)
	}
}

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
