package vippslogin_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2/memstore"

	"github.com/vippslogin/vippslogin"
)

// failingStore is an scs store that fails on demand, as a store that
// cannot be reached does.
type failingStore struct {
	mem  *memstore.MemStore
	down atomic.Bool
}

var errUnreachable = errors.New("dial tcp 192.0.2.1:6379: connect: connection refused")

func newFailingStore() *failingStore {
	return &failingStore{mem: memstore.NewWithCleanupInterval(0)}
}

func (s *failingStore) Find(token string) ([]byte, bool, error) {
	if s.down.Load() {
		return nil, false, errUnreachable
	}
	return s.mem.Find(token)
}

func (s *failingStore) Commit(token string, b []byte, expiry time.Time) error {
	if s.down.Load() {
		return errUnreachable
	}
	return s.mem.Commit(token, b, expiry)
}

func (s *failingStore) Delete(token string) error {
	if s.down.Load() {
		return errUnreachable
	}
	return s.mem.Delete(token)
}

// outageRecord is the message of the record LoadAndSave writes for a
// request it serves without its session.
const outageRecord = "vippslogin: session store unavailable; serving the request without its session"

// outageRoutes adds a stylesheet and a page that needs step-up to the
// harness's site.
var outageRoutes = options{routes: func(mux *http.ServeMux, auth *vippslogin.Client) {
	mux.HandleFunc("GET /static/site.css", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css")
		_, _ = io.WriteString(w, "body { margin: 0 }")
	})
	mux.Handle("GET /vault", auth.RequireStepUp(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "vault")
	})))
}}

// wantServedWithoutSession checks what b, logged in as sub, gets while the
// session store cannot be reached: pages that need no login as to a
// logged-out visitor, and 503 from pages that need one and from the login
// routes, with nothing saved and the session cookie left alone; one warning
// for each request and no other record.
func wantServedWithoutSession(t *testing.T, h *harness, b *browser, sub string) {
	t.Helper()
	token := b.cookie("session")
	if token == "" {
		t.Fatal("the browser has no session cookie")
	}
	logged := len(h.logs.String())
	requests := 0
	get := func(path string, header ...string) (*http.Response, string) {
		t.Helper()
		requests++
		resp, body := b.get(path, header...)
		if sc := resp.Header.Values("Set-Cookie"); len(sc) > 0 {
			for _, c := range sc {
				if strings.HasPrefix(c, "session=") {
					t.Errorf("GET %s set the session cookie: %s", path, c)
				}
			}
		}
		return resp, body
	}
	wantUnavailable := func(what string, resp *http.Response, body string) {
		t.Helper()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("%s: %d (Location %q), want 503", what, resp.StatusCode, resp.Header.Get("Location"))
		}
		if strings.Contains(body, "connection refused") || strings.Contains(body, sub) {
			t.Errorf("%s shows the store's error or the user: %s", what, body)
		}
	}

	resp, body := get("/public")
	if resp.StatusCode != http.StatusOK || body != "hello guest" {
		t.Errorf("public page: %d %q, want 200 and the guest's page", resp.StatusCode, body)
	}
	if vary := strings.Join(resp.Header.Values("Vary"), ","); !strings.Contains(vary, "Cookie") {
		t.Errorf("public page: Vary %q, want Cookie in it", vary)
	}
	if resp, body := get("/static/site.css"); resp.StatusCode != http.StatusOK || body != "body { margin: 0 }" {
		t.Errorf("stylesheet: %d %q, want 200 and the stylesheet", resp.StatusCode, body)
	}
	if resp, body := get("/visit"); resp.StatusCode != http.StatusOK || body != "hello" {
		t.Errorf("a page that writes to the session: %d %q, want 200 and the page", resp.StatusCode, body)
	}

	resp, body = get("/profile", "Accept", "text/html")
	wantUnavailable("protected page", resp, body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") || !strings.Contains(body, "session storage") {
		t.Errorf("protected page: %s, want a page that says why: %s", ct, body)
	}
	h.wantErr(vippslogin.ErrSessionStore)
	resp, body = get("/profile", "Accept", "application/json")
	wantUnavailable("protected page as JSON", resp, body)
	if code, _ := jsonError(t, resp, body); code != "session_unavailable" {
		t.Errorf("protected page as JSON: error %q, want session_unavailable", code)
	}
	resp, body = get("/vault")
	wantUnavailable("step-up page", resp, body)
	resp, body = get("/auth/login?return_to=/profile")
	wantUnavailable("GET /auth/login", resp, body)
	h.wantErr(vippslogin.ErrSessionStore)
	resp, body = get("/auth/callback?state=" + randomToken() + "&code=c0de")
	wantUnavailable("GET /auth/callback", resp, body)
	requests++
	resp, body = b.logout(nil)
	wantUnavailable("POST /auth/logout", resp, body)
	requests++
	resp, body = b.do(http.MethodPost, "/auth/confirm", strings.NewReader(url.Values{"action": {"continue"}, "login": {randomToken()}}.Encode()),
		"Sec-Fetch-Site", "same-origin")
	wantUnavailable("POST /auth/confirm", resp, body)
	h.wantErr(vippslogin.ErrSessionStore)

	if got := b.cookie("session"); got != token {
		t.Errorf("the session cookie changed from %q to %q", token, got)
	}
	recs := 0
	for _, line := range strings.Split(strings.TrimSpace(h.logs.String()[logged:]), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["msg"] != outageRecord || rec["level"] != "WARN" || rec["kind"] != "session_unavailable" || rec["error"] == nil {
			t.Errorf("log record %s, want only the outage's warnings", line)
			continue
		}
		recs++
	}
	if recs != requests {
		t.Errorf("%d outage records for %d requests, want one each:\n%s", recs, requests, h.logs.String()[logged:])
	}
}

// While the session store cannot be reached, a logged-in browser is served
// public pages as a guest and 503 where it needs its login; once the store
// is back, so is the login, in the same session.
func TestSessionStoreOutage(t *testing.T) {
	store := newFailingStore()
	h := newHarness(t, options{store: store}, outageRoutes)
	b := h.browser()
	b.login("/profile")
	token := b.cookie("session")
	claims := b.profile()
	if claims == nil {
		t.Fatal("not logged in")
	}
	sub := claims["sub"].(string)

	store.down.Store(true)
	wantServedWithoutSession(t, h, b, sub)

	// A new visitor has no session to load: public pages are served as
	// ever, and a page that saves a session meets the failure when it
	// commits, which the session manager's ErrorFunc (SessionError)
	// answers.
	guest := h.browser()
	if resp, body := guest.get("/public"); resp.StatusCode != http.StatusOK || body != "hello guest" {
		t.Errorf("public page for a new visitor: %d %q", resp.StatusCode, body)
	}
	if resp, _ := guest.get("/visit"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("saving a new session with the store down: %d, want 503", resp.StatusCode)
	}

	store.down.Store(false)
	wantSessionBack(t, b, sub, token, "after the store is back")
}

// wantSessionBack fails t unless b is logged in as sub again, in the
// session of token, as it was before the store went away.
func wantSessionBack(t *testing.T, b *browser, sub, token, when string) {
	t.Helper()
	if c := b.profile(); c == nil || c["sub"] != sub {
		t.Fatalf("%s: profile %v, want logged in as %s", when, c, sub)
	}
	if resp, body := b.get("/public"); resp.StatusCode != http.StatusOK || body != "hello "+sub {
		t.Errorf("public page %s: %d %q", when, resp.StatusCode, body)
	}
	if got := b.cookie("session"); got != token {
		t.Errorf("session cookie %q %s, want the same session %q", got, when, token)
	}
}

// The records of requests served without their session are bounded in rate
// like the package's other records: ten per ten seconds, the next one
// counting those held back.
func TestSessionStoreOutageLogBounded(t *testing.T) {
	store := newFailingStore()
	h := newHarness(t, options{store: store})
	b := h.browser()
	b.login("/profile")
	store.down.Store(true)
	for range 25 {
		if resp, _ := b.get("/public"); resp.StatusCode != http.StatusOK {
			t.Fatalf("public page: %d", resp.StatusCode)
		}
	}
	if n := len(logRecordsOf(t, h, outageRecord)); n != 10 {
		t.Errorf("%d records for 25 requests in a moment, want 10", n)
	}
	h.clock.Advance(10 * time.Second)
	b.get("/public")
	recs := logRecordsOf(t, h, outageRecord)
	if len(recs) != 11 || recs[10]["suppressed"] != float64(15) {
		t.Errorf("ten seconds later: %d records, the last %v; want 11, the last with suppressed 15", len(recs), recs[len(recs)-1])
	}
}

// A logged-in session is small: at most 1 KiB in the store with the
// scopes a site usually asks for, and the pending login's record is gone
// from it.
func TestSessionSize(t *testing.T) {
	store := memstore.New()
	h := newHarness(t, options{store: store, site: func(c *vippslogin.Config) {
		c.Scopes = []string{"openid", "name", "email", "phoneNumber"}
	}})
	h.browser().login("/")
	all, err := store.All()
	if err != nil {
		t.Fatal(err)
	}
	sessions := 0
	for key, b := range all {
		if strings.HasPrefix(key, ";") {
			continue // the used login's record, until it expires
		}
		sessions++
		if len(b) > 1<<10 {
			t.Errorf("the session takes %d bytes, want at most 1024", len(b))
		}
		t.Logf("a logged-in session: %d bytes", len(b))
	}
	if sessions != 1 {
		t.Errorf("%d sessions in the store, want 1", sessions)
	}
}

// Client.LoadAndSave reads scs's default gob sessions with decoders that
// have read the sessions' type definitions before: a logged-in request
// takes a fraction of the allocations of scs's own LoadAndSave (about 30
// against 207; under the race detector, sync.Pool drops some decoders).
func TestClientLoadAndSaveDecodesFast(t *testing.T) {
	h := newHarness(t)
	br := h.browser()
	br.login("/profile")
	req := httptest.NewRequest(http.MethodGet, "/profile", nil)
	req.AddCookie(&http.Cookie{Name: h.sessions.Cookie.Name, Value: br.cookie(h.sessions.Cookie.Name)})
	allocs := func(handler http.Handler) float64 {
		return testing.AllocsPerRun(50, func() { handler.ServeHTTP(httptest.NewRecorder(), req) })
	}
	fast, slow := allocs(h.auth.LoadAndSave(okHandler)), allocs(h.sessions.LoadAndSave(okHandler))
	if fast > slow/2 {
		t.Errorf("a request through Client.LoadAndSave takes %v allocations, scs's LoadAndSave %v: the session is decoded as by scs.GobCodec", fast, slow)
	}
}
