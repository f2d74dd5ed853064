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

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/vippslogin/vippslogin/internal/testsvc"
)

// browserTimeout bounds a whole browser test, so that a hung browser or
// site fails the test rather than hanging it.
const browserTimeout = 60 * time.Second

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

	mu             sync.Mutex
	shots          int      // number of screenshots taken
	callbacks      []string // URLs of the requests to the site's /auth/callback
	acceptLanguage string   // what the tabs send as Accept-Language; "" for Chromium's own
	lang           string   // the language the pages must speak: "en" or "nb"
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

	b := &chromiumTab{t: t, ctx: ctx, site: strings.TrimSuffix(siteURL, "/"), shared: &shared{dir: dir, lang: "en"}}
	b.listen() // starts the browser
	return b
}

// newTab opens another tab of the browser. It shares the cookies.
func (b *chromiumTab) newTab() *chromiumTab {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	tab := &chromiumTab{t: b.t, ctx: ctx, cancel: cancel, site: b.site, shared: b.shared}
	tab.listen()
	tab.useLanguage()
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

// speak makes the tab, and the tabs opened from it later, send
// acceptLanguage as their Accept-Language header, as a browser set to
// that language does, and expect pages in lang ("en" or "nb").
func (b *chromiumTab) speak(acceptLanguage, lang string) {
	b.t.Helper()
	b.mu.Lock()
	b.acceptLanguage, b.lang = acceptLanguage, lang
	b.mu.Unlock()
	b.useLanguage()
}

// useLanguage applies the language set with speak to the tab.
func (b *chromiumTab) useLanguage() {
	b.t.Helper()
	b.mu.Lock()
	lang := b.acceptLanguage
	b.mu.Unlock()
	if lang == "" {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	version, err := chromedp.CallBrowser(ctx, browser.GetVersion, cdp.Empty{})
	if err != nil {
		b.fatal("read the user agent", err)
	}
	_, err = chromedp.Call(ctx, emulation.SetUserAgentOverride,
		emulation.SetUserAgentOverrideParams{UserAgent: version.UserAgent, AcceptLanguage: lang})
	if err != nil {
		b.fatal("set the language to "+lang, err)
	}
}

// resize makes the tab a phone's screen of width by height CSS pixels, in
// portrait, where the page's viewport meta element counts.
func (b *chromiumTab) resize(width, height int64) {
	b.t.Helper()
	err := doStep(b, chromedp.EmulateViewport(width, height, chromedp.EmulateMobile, chromedp.EmulatePortrait))
	if err != nil {
		b.fatal(fmt.Sprintf("resize to %dx%d", width, height), err)
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
	// Children can take a moment to follow the browser out: a bounded poll
	// of real processes, against a hang, not a speed limit.
	deadline := time.Now().Add(30 * time.Second)
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

// screenshot saves a full-page PNG of the current page as NN-name.png,
// after checking that the page shows each of want, so that every picture
// is known to show what its name says.
func (b *chromiumTab) screenshot(name string, want ...string) {
	b.t.Helper()
	if !screenshotName.MatchString(name) {
		b.t.Fatalf("bad screenshot name %q", name)
	}
	if len(want) == 0 {
		b.t.Fatalf("screenshot %s: say what the page must show", name)
	}
	b.textHas("body", want...)
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
