package vippslogin_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"
	"github.com/vippslogin/vippslogin"
	"github.com/vippslogin/vippslogin/internal/testsvc"
	"github.com/vippslogin/vippslogin/vippstest"
)

// recordingStore is an scs store that keeps its data in a memstore and
// records every key it is asked to find and commit.
type recordingStore struct {
	mem *memstore.MemStore

	mu      sync.Mutex
	finds   []string
	commits []storeCommit
}

type storeCommit struct {
	token  string
	expiry time.Time
}

func newRecordingStore() *recordingStore {
	return &recordingStore{mem: memstore.NewWithCleanupInterval(0)}
}

func (s *recordingStore) Find(token string) ([]byte, bool, error) {
	s.mu.Lock()
	s.finds = append(s.finds, token)
	s.mu.Unlock()
	return s.mem.Find(token)
}

func (s *recordingStore) Commit(token string, b []byte, expiry time.Time) error {
	s.mu.Lock()
	s.commits = append(s.commits, storeCommit{token, expiry})
	s.mu.Unlock()
	return s.mem.Commit(token, b, expiry)
}

func (s *recordingStore) Delete(token string) error { return s.mem.Delete(token) }

// mark returns how many finds and commits the store has seen so far.
func (s *recordingStore) mark() (finds, commits int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.finds), len(s.commits)
}

// since returns the keys found and committed after mark.
func (s *recordingStore) since(finds, commits int) (found []string, committed []storeCommit) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.finds[finds:]...), append([]storeCommit(nil), s.commits[commits:]...)
}

// loginKeys returns the keys of the login records in the store.
func (s *recordingStore) loginKeys(t *testing.T) []string {
	t.Helper()
	all, err := s.mem.All()
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range all {
		if strings.HasPrefix(k, loginRecordPrefix) {
			keys = append(keys, k)
		}
	}
	return keys
}

// A session cookie cannot name a pending login's record: scs neither
// loads it as a session nor, with an IdleTimeout that makes it commit
// every session it loads, writes over it, whatever form of the key the
// cookie holds.
func TestSessionCookieCannotNamePendingRecord(t *testing.T) {
	rec := newRecordingStore()
	h := newHarness(t, options{store: rec, site: func(c *vippslogin.Config) {
		// Set before the site serves (c.Sessions is h.sessions): scs
		// then re-commits every session it loads, so a cookie that could
		// name a record would rewrite it.
		c.Sessions.IdleTimeout = time.Hour
	}})
	if h.sessions.IdleTimeout != time.Hour {
		t.Fatal("IdleTimeout not set on the site's session manager")
	}
	b := h.browser()
	_, commitsBefore := rec.mark()
	cb := b.startLogin("/profile")
	// b has no session yet, so the one commit of starting a login is its
	// record.
	_, started := rec.since(0, commitsBefore)
	if len(started) != 1 {
		t.Fatalf("starting one login committed %v, want its record only", started)
	}
	key := started[0].token
	if len(key) != 43 || !strings.HasPrefix(key, loginRecordPrefix) {
		t.Errorf("the pending login's key is %q, want 43 characters starting with %q", key, loginRecordPrefix)
	}
	record, found, _ := rec.mem.Find(key)
	if !found {
		t.Fatalf("no record under %q", key)
	}
	t.Logf("the pending login's key: %q", key)

	forms := []struct{ name, cookie string }{
		{"as it is", "session=" + key},
		{"quoted", `session="` + key + `"`},
		{"percent-encoded", "session=" + url.QueryEscape(key)},
		{"without its ';'", "session=" + key[1:]},
		{"as a second cookie", "other=1; session=" + key},
	}
	finds, commits := rec.mark()
	for _, f := range forms {
		c := h.browser()
		c.Jar = nil // only the Cookie header given
		resp, body := c.get("/visit", "Cookie", f.cookie)
		if resp.StatusCode != http.StatusOK || body != "hello" {
			t.Errorf("%s: /visit answered %d %q", f.name, resp.StatusCode, body)
		}
		for _, sc := range resp.Cookies() {
			if sc.Name == "session" && (sc.Value == key || strings.HasPrefix(sc.Value, ";")) {
				t.Errorf("%s: /visit set the session cookie %q", f.name, sc.Value)
			}
		}
		if _, body := c.get("/public", "Cookie", f.cookie); body != "hello guest" {
			t.Errorf("%s: /public says %q, want %q", f.name, body, "hello guest")
		}
	}
	found2, committed := rec.since(finds, commits)
	for _, k := range found2 {
		if k == key {
			t.Errorf("a session cookie made the store look up the pending key %q", key)
		}
	}
	for _, c := range committed {
		if c.token == key || strings.HasPrefix(c.token, ";") {
			t.Errorf("a request with a forged session cookie committed %q (expiry %v)", c.token, c.expiry)
		}
	}
	if after, found, _ := rec.mem.Find(key); !found || !bytes.Equal(after, record) {
		t.Errorf("the pending record changed: found %v, same %v", found, bytes.Equal(after, record))
	}
	t.Logf("%d forged cookies: the store saw %d finds and %d commits, none of the pending key", len(forms), len(found2), len(committed))

	resp, _ := b.get(cb)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/profile" {
		t.Fatalf("callback after the forged cookies: %d %q, want 303 /profile (error %v)",
			resp.StatusCode, resp.Header.Get("Location"), h.lastErr())
	}
	if b.profile() == nil {
		t.Error("not logged in after the callback")
	}
}

// A login that took too long is told so honestly in the browser that
// started it, whether its record is still in the store but stale or the
// store has let it go; in another browser the same URL says it was
// started elsewhere.
func TestExpiredLoginPage(t *testing.T) {
	type texts struct{ expired, otherBrowser, tryAgain string }
	langs := []struct {
		name, acceptLanguage string
		texts
	}{
		{"English", "en", texts{"Your login took too long", "This login was started in another browser", "Try again"}},
		{"Norwegian", "nb", texts{"Innloggingen tok for lang tid", "Innloggingen ble startet i en annen nettleser", "Prøv igjen"}},
	}
	cases := []struct {
		name string
		// expire makes the login of rec expire.
		expire func(t *testing.T, h *harness, rec *recordingStore)
		// tryAgain is the link the page offers to log in again.
		tryAgain string
	}{
		{
			name:     "record stale",
			expire:   func(t *testing.T, h *harness, rec *recordingStore) { h.clock.Advance(11 * time.Minute) },
			tryAgain: "/auth/login?return_to=%2Fprofile",
		},
		{
			name: "record gone",
			expire: func(t *testing.T, h *harness, rec *recordingStore) {
				keys := rec.loginKeys(t)
				if len(keys) != 1 {
					t.Fatalf("login records %q, want one", keys)
				}
				for _, k := range keys {
					_ = rec.mem.Delete(k)
				}
			},
			// Where the login was going went with its record: the
			// browser's cookie holds only its states. Any return_to will
			// do.
			tryAgain: "/auth/login",
		},
	}
	for _, l := range langs {
		for _, tc := range cases {
			t.Run(l.name+"/"+tc.name, func(t *testing.T) {
				rec := newRecordingStore()
				h := newHarness(t, options{store: rec})
				b := h.browser()
				cb := b.startLogin("/profile")
				tc.expire(t, h, rec)

				resp, body := b.get(cb, "Accept-Language", l.acceptLanguage)
				if resp.StatusCode != http.StatusBadRequest {
					t.Errorf("status %d, want 400", resp.StatusCode)
				}
				if err := h.lastErr(); !errors.Is(err, vippslogin.ErrLoginExpired) {
					t.Errorf("error %v, want ErrLoginExpired", err)
				}
				wantTitle(t, body, l.expired)
				m := regexp.MustCompile(`<a class="button" href="([^"]*)">` + regexp.QuoteMeta(l.tryAgain) + `</a>`).FindStringSubmatch(body)
				if m == nil || !(m[1] == tc.tryAgain || tc.tryAgain == "/auth/login" && strings.HasPrefix(m[1], "/auth/login")) {
					t.Errorf("page has no %q link to %s:\n%s", l.tryAgain, tc.tryAgain, body)
				}
				if b.profile() != nil {
					t.Error("logged in by an expired login")
				}

				t.Run("another browser", func(t *testing.T) {
					resp, body := h.browser().get(cb, "Accept-Language", l.acceptLanguage)
					if resp.StatusCode != http.StatusBadRequest {
						t.Errorf("status %d, want 400", resp.StatusCode)
					}
					if err := h.lastErr(); !errors.Is(err, &vippslogin.Error{Err: vippslogin.ErrBadCallback, Reason: "other_browser"}) {
						t.Errorf("error %v, want ErrBadCallback other_browser", err)
					}
					wantTitle(t, body, l.otherBrowser)
				})
			})
		}
	}
}

// wantTitle checks that an HTML page has title as its title and heading.
func wantTitle(t *testing.T, body, title string) {
	t.Helper()
	for _, want := range []string{"<title>" + title + "</title>", "<h1>" + title + "</h1>"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s:\n%s", want, body)
		}
	}
}

// A flood of forged callbacks, from a visitor who can write anything into
// the URL, writes few log records, none at level ERROR, none with a kind
// the visitor chose, and no text that could forge or hide a log line.
func TestForgedCallbacksLogLittle(t *testing.T) {
	const forged = 1000
	h := newHarness(t)
	b := h.browser()
	madeUp := "evil_code\n{\"level\":\"ERROR\",\"msg\":\"forged\"}\r\n\x1b[31mred\x1b[0m\u202egnp.exe\u200b" + strings.Repeat("A", 5000)
	forgeries := []struct {
		kind string
		url  func() string
	}{
		{"other_browser", func() string { return "/auth/callback?state=" + randomToken() + "&code=" + randomToken() }},
		{"invalid_client", func() string { return "/auth/callback?error=invalid_client" }},
		{"unknown", func() string {
			return "/auth/callback?" + url.Values{"error": {madeUp}, "error_description": {madeUp}, "state": {randomToken()}}.Encode()
		}},
		{"access_denied", func() string { return "/auth/callback?error=access_denied&state=" + randomToken() }},
		{"invalid_callback", func() string { return "/auth/callback" }},
		{"invalid_callback", func() string { return "/auth/callback?state=" + randomToken() }},
		{"invalid_callback", func() string { return "/auth/callback?code=x&code=y" }},
	}
	sent := map[string]int{}
	for i := range forged {
		f := forgeries[i%len(forgeries)]
		resp, _ := b.get(f.url())
		if resp.StatusCode < 400 {
			t.Fatalf("forged callback %d (%s): status %d", i, f.kind, resp.StatusCode)
		}
		sent[f.kind]++
	}

	recs := logLines(t, h)
	perKind := map[string]int{}
	for _, rec := range recs {
		kind, _ := rec["kind"].(string)
		perKind[kind]++
		if rec["level"] == "ERROR" {
			t.Errorf("record at level ERROR: %v", rec)
		}
		if _, known := sent[kind]; !known {
			t.Errorf("record of kind %q, not one of %v", clip(kind), sent)
		}
		if kind == madeUp || strings.Contains(kind, "evil") {
			t.Errorf("a record's kind is the made-up code: %q", clip(kind))
		}
		for k, v := range rec {
			s, ok := v.(string)
			if !ok {
				continue
			}
			if r, bad := badRune(s); bad {
				t.Errorf("attribute %s holds %U: %q", k, r, clip(s))
			}
			if strings.Contains(s, strings.Repeat("A", 201)) {
				t.Errorf("attribute %s holds more than 200 bytes of the made-up code: %d bytes", k, len(s))
			}
		}
		if pe, ok := rec["provider_error"].(string); ok && len(pe) > 64+len("…") {
			t.Errorf("provider_error of %d bytes, want at most 64 and …: %q", len(pe), clip(pe))
		}
		if pd, ok := rec["provider_error_description"].(string); ok && len(pd) > 200+len("…") {
			t.Errorf("provider_error_description of %d bytes, want at most 200 and …: %q", len(pd), clip(pd))
		}
	}
	t.Logf("%d forged callbacks %v: %d log records %v", forged, sent, len(recs), perKind)
	for kind, n := range perKind {
		if n > 10 {
			t.Errorf("%d records of kind %q, want at most 10", n, kind)
		}
	}
	if len(recs) > 60 {
		t.Errorf("%d log records in all, want at most 60", len(recs))
	}
	if perKind["unknown"] == 0 {
		t.Error("no record of the made-up provider error")
	}

	// Ten seconds on, the next record counts those held back.
	h.clock.Advance(10 * time.Second)
	before := len(recs)
	b.get(forgeries[0].url())
	recs = logLines(t, h)
	if len(recs) != before+1 {
		t.Fatalf("one more forged callback made %d records, want 1", len(recs)-before)
	}
	last := recs[len(recs)-1]
	held := sent["other_browser"] - 10
	if last["kind"] != "other_browser" || last["suppressed"] != float64(held) {
		t.Errorf("record after 10 s: kind %v, suppressed %v; want other_browser, %d", last["kind"], last["suppressed"], held)
	}
}

// badRune returns the first control or format character in s, or an ESC,
// U+202E or U+FFFD.
func badRune(s string) (rune, bool) {
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == 0x1b || r == '\u202e' || r == unicode.ReplacementChar {
			return r, true
		}
	}
	return 0, false
}

// clip shortens s for a failure message.
func clip(s string) string {
	if len(s) > 100 {
		return s[:100] + fmt.Sprintf("... (%d bytes)", len(s))
	}
	return s
}

// A browser's list of its logins is only a list: a cookie that names
// another browser's state does not make starting logins forget (delete)
// that login.
func TestForeignStateInBindingCookie(t *testing.T) {
	h := newHarness(t)
	victim, attacker := h.browser(), h.browser()
	cb := victim.startLogin("/profile")
	u, _ := url.Parse(h.url)
	attacker.Jar.SetCookies(u, []*http.Cookie{{Name: "vippslogin", Value: randomToken() + "." + queryParam(t, cb, "state"), Path: "/"}})
	for range 6 { // more than MaxPendingLogins: the oldest state is dropped
		if resp, _ := attacker.get("/auth/login"); resp.StatusCode != http.StatusFound {
			t.Fatalf("start: %d", resp.StatusCode)
		}
	}
	if resp, _ := victim.get(cb); resp.StatusCode != http.StatusSeeOther || victim.profile() == nil {
		t.Fatalf("the victim's callback: %d (error %v)", resp.StatusCode, h.lastErr())
	}
}

// A visitor who gives up while the provider is slow is not an error the
// operator must fix.
func TestCancelledCallbackIsNotAnError(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	cb := b.startLogin("/profile")
	h.idp.SetFault(vippstest.Token, vippstest.Fault{Delay: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, cb, nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := b.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	for h.idp.Hits(vippstest.Token) == 0 { // the exchange has started
		runtime.Gosched()
	}
	cancel()
	<-done
	h.idp.SetFault(vippstest.Token, vippstest.Fault{})
	for h.errCount() == 0 {
		runtime.Gosched()
	}
	if !errors.Is(h.lastErr(), context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", h.lastErr())
	}
	for _, rec := range logLines(t, h) {
		if rec["level"] == "ERROR" {
			t.Errorf("a cancelled callback logged an ERROR: %v", rec)
		}
	}
}

// Pending logins sit in the session store as session-shaped records, so
// scs's Iterate, which decodes every record, keeps working.
func TestSessionIterateWithPendingLogins(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	b.login("/profile")
	b.startLogin("/pending") // left pending
	h.browser().startLogin("/other")
	n := 0
	err := h.sessions.Iterate(context.Background(), func(ctx context.Context) error {
		n++
		return nil
	})
	if err != nil {
		t.Fatalf("Iterate: %v", err)
	}
	if n < 3 {
		t.Errorf("Iterate saw %d records, want the session and the pending logins", n)
	}
}

// While a login is pending, the same browser's parallel requests load and
// save its session. The pending login is a record of its own, so it
// survives them (with it inside the session, the last writer would win).
//
// Each store's commits are slowed down a little, as over a network, so that
// many requests hold a loaded session while the login saves its record:
// then a pending login kept in the session is lost nearly every run.
func TestPendingLoginSurvivesParallelRequests(t *testing.T) {
	const latency = 2 * time.Millisecond
	t.Run("memstore", func(t *testing.T) {
		store := memstore.NewWithCleanupInterval(0) // no cleanup goroutine: the test is short
		testPendingLoginSurvivesParallelRequests(t, slowCommits{store, latency})
	})
	t.Run("redis", func(t *testing.T) {
		client, prefix := testsvc.RedisClient(t)
		testPendingLoginSurvivesParallelRequests(t, slowCtxCommits{goredisstore.NewWithPrefix(client, prefix), latency})
	})
}

// slowCommits is an scs store whose commits take a while.
type slowCommits struct {
	scs.Store
	latency time.Duration
}

func (s slowCommits) Commit(token string, b []byte, expiry time.Time) error {
	time.Sleep(s.latency)
	return s.Store.Commit(token, b, expiry)
}

// slowCtxCommits is goredisstore with commits that take a while longer.
type slowCtxCommits struct {
	*goredisstore.RedisStore
	latency time.Duration
}

func (s slowCtxCommits) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	time.Sleep(s.latency)
	return s.RedisStore.CommitCtx(ctx, token, b, expiry)
}

func testPendingLoginSurvivesParallelRequests(t *testing.T, store scs.Store) {
	const parallel = 60
	h := newHarness(t, options{store: store})
	b := h.browser()
	b.get("/visit") // the browser has a session before the login starts
	loginURL := h.auth.LoginURL("/profile")
	// /profile sends the browser to log in, and binds it, so that the
	// parallel requests to /profile do not bind it anew while the login
	// sets its binding cookie.
	if resp, _ := b.get("/profile"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != loginURL || b.cookie("vippslogin") == "" {
		t.Fatalf("/profile: status %d location %q, want 303 %q and a binding cookie", resp.StatusCode, resp.Header.Get("Location"), loginURL)
	}

	// The parallel requests start together, are under way when the login
	// starts, go on while the provider asks the user, and stop before the
	// callback: they span the login's pending period.
	var (
		start, busy, stop = make(chan struct{}), make(chan struct{}), make(chan struct{})
		done, failed      atomic.Int32
		mu                sync.Mutex
		failures          []error
		wg                sync.WaitGroup
	)
	for i := range parallel {
		wg.Go(func() {
			<-start
			for r := 0; ; r++ {
				path := "/visit"
				if (i+r)%2 == 1 {
					path = "/profile"
				}
				if err := parallelGet(b, h.site.URL+path, loginURL); err != nil {
					failed.Add(1)
					mu.Lock()
					failures = append(failures, err)
					mu.Unlock()
				}
				if done.Add(1) == parallel/4 {
					close(busy)
				}
				select {
				case <-stop:
					return
				default:
				}
			}
		})
	}
	close(start)
	<-busy
	resp, _ := b.get("/auth/login?return_to=%2Fprofile")
	if resp.StatusCode != http.StatusFound {
		close(stop)
		wg.Wait()
		t.Fatalf("login: status %d, want 302 (error %v)", resp.StatusCode, h.lastErr())
	}
	resp, _ = b.get(resp.Header.Get("Location")) // the provider
	close(stop)
	wg.Wait()
	cb := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(cb, h.site.URL+"/auth/callback") {
		t.Fatalf("authorize: status %d, location %q", resp.StatusCode, cb)
	}
	for i, err := range failures {
		if i == 5 {
			break
		}
		t.Error(err)
	}
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d parallel requests failed", n, done.Load())
	}
	if c := h.errCount(); c != 0 {
		t.Fatalf("the error handler got %d errors during the parallel requests; last: %v", c, h.lastErr())
	}
	// The pending login survived: its callback succeeds.
	resp, _ = b.get(cb)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/profile" {
		t.Fatalf("callback after %d parallel requests: %d %q (error %v)", done.Load(), resp.StatusCode, resp.Header.Get("Location"), h.lastErr())
	}
	if b.profile() == nil {
		t.Fatal("not logged in")
	}
	t.Logf("%d parallel requests from %d goroutines during the login", done.Load(), parallel)
}

// parallelGet fetches u and checks the answer: 200 "hello" from /visit, and
// from /profile, which the browser is not logged in to, a redirect to
// loginURL.
func parallelGet(b *browser, u, loginURL string) error {
	resp, err := b.Get(u)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("GET %s: %v", u, err)
	}
	if strings.HasSuffix(u, "/visit") {
		if resp.StatusCode != http.StatusOK || string(body) != "hello" {
			return fmt.Errorf("GET %s: status %d %q, want 200 hello", u, resp.StatusCode, body)
		}
		return nil
	}
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != loginURL {
		return fmt.Errorf("GET %s: status %d location %q, want 303 %q", u, resp.StatusCode, resp.Header.Get("Location"), loginURL)
	}
	return nil
}
