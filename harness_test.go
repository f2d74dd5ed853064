package vippslogin_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"
	"github.com/vippslogin/vippslogin"
	"github.com/vippslogin/vippslogin/internal/testsvc"
	"github.com/vippslogin/vippslogin/vippstest"
)

// clock is a settable clock shared by the site and the mock provider. In a
// testing/synctest bubble (inBubble) it is the bubble's clock: Now is
// time.Now, and Advance sleeps, which moves the bubble's clock by exactly
// that once every goroutine of the bubble waits.
type clock struct {
	mu     sync.Mutex
	now    time.Time
	bubble bool
}

// newClock starts at the real time: session stores (scs memstore, Redis)
// expire records by the real clock, so a fixed date would make every record
// look expired once the real clock passes it.
func newClock() *clock { return &clock{now: time.Now().UTC().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	if c.bubble {
		return time.Now()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	if c.bubble {
		time.Sleep(d)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// harness is a site using vippslogin against a vippstest provider.
type harness struct {
	t        testing.TB
	clock    *clock
	idp      *vippstest.Provider
	sessions *scs.SessionManager
	auth     *vippslogin.Client
	site     *httptest.Server
	url      string // the site's public address: site.URL unless options.baseURL
	logs     *syncBuffer
	// calls records the site's requests to the provider, in a bubble
	// (inBubble); nil elsewhere.
	calls *callLog

	mu   sync.Mutex
	errs []error // errors given to the error handler
}

type options struct {
	idp  func(*vippstest.Config)
	site func(*vippslogin.Config)
	// stripPrefix mounts the auth routes with http.StripPrefix("/auth", ...)
	// instead of with the prefix left on.
	stripPrefix bool
	// store is the scs store of the site's sessions; scs's memstore when nil.
	store scs.Store
	// sameProvider makes the site another instance beside an existing
	// harness: it shares that harness's mock provider and clock.
	sameProvider *harness
	// baseURL is the site's public address, when it is not the site's own
	// listener (behind a load balancer, say).
	baseURL string
	// routes adds the test's own routes to the site's mux.
	routes func(mux *http.ServeMux, auth *vippslogin.Client)
	// wrap puts the site's own middleware around everything it serves.
	wrap func(next http.Handler) http.Handler
}

func newHarness(t testing.TB, opts ...options) *harness {
	t.Helper()
	h := &harness{t: t, clock: newClock(), logs: &syncBuffer{}}
	var shared *harness
	for _, o := range opts {
		if o.sameProvider != nil {
			shared = o.sameProvider
		}
	}
	if shared != nil {
		h.clock, h.idp = shared.clock, shared.idp
	} else {
		idpCfg := vippstest.Config{AutoApprove: true, Now: h.clock.Now}
		for _, o := range opts {
			if o.idp != nil {
				o.idp(&idpCfg)
			}
		}
		idp, err := vippstest.New(idpCfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(idp.Close)
		h.idp = idp
	}

	h.site = httptest.NewUnstartedServer(nil)
	base := "http://" + h.site.Listener.Addr().String()
	for _, o := range opts {
		if o.baseURL != "" {
			base = o.baseURL
		}
	}
	h.url = base
	h.sessions = scs.New()
	// No cleanup goroutine: it would outlive the test, holding its sessions.
	h.sessions.Store = memstore.NewWithCleanupInterval(0)
	for _, o := range opts {
		if o.store != nil {
			h.sessions.Store = o.store
		}
	}
	h.newClient(base, nil, opts)
	auth := h.auth

	mux := http.NewServeMux()
	strip := false
	for _, o := range opts {
		strip = strip || o.stripPrefix
	}
	if strip {
		mux.Handle("/auth/", http.StripPrefix("/auth", auth.Handler()))
	} else {
		mux.Handle("/auth/", auth.Handler())
	}
	mux.Handle("/profile", auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := vippslogin.ClaimsFromContext(r.Context())
		if !ok {
			http.Error(w, "no claims", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(c)
	})))
	mux.HandleFunc("/visit", func(w http.ResponseWriter, r *http.Request) {
		h.sessions.Put(r.Context(), "visited", true)
		_, _ = io.WriteString(w, "hello")
	})
	mux.Handle("/public", auth.LoadClaims(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, ok := vippslogin.ClaimsFromContext(r.Context()); ok {
			_, _ = io.WriteString(w, "hello "+c.Subject)
			return
		}
		_, _ = io.WriteString(w, "hello guest")
	})))
	for _, o := range opts {
		if o.routes != nil {
			o.routes(mux, auth)
		}
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "home") })
	var handler http.Handler = auth.LoadAndSave(mux)
	for _, o := range opts {
		if o.wrap != nil {
			handler = o.wrap(handler)
		}
	}
	h.site.Config.Handler = handler
	h.site.Start()
	t.Cleanup(h.site.Close)
	return h
}

// newClient makes h.auth, the site's Client at base against h.idp, with
// httpClient (nil for the default) and the options' changes.
func (h *harness) newClient(base string, httpClient *http.Client, opts []options) {
	h.t.Helper()
	cfg := vippslogin.Config{
		ClientID:     h.idp.ClientID(),
		ClientSecret: vippslogin.Secret(h.idp.ClientSecret()),
		Issuer:       h.idp.Issuer(),
		BaseURL:      base,
		Sessions:     h.sessions,
		Scopes:       []string{"openid", "name", "email", "phoneNumber", "address", "birthDate"},
		Now:          h.clock.Now,
		HTTPClient:   httpClient,
		Logger:       slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		ErrorHandler: h.errorHandler,
		System:       vippslogin.SystemInfo{Name: "testshop", Version: "1.2.3"},
	}
	for _, o := range opts {
		if o.site != nil {
			o.site(&cfg)
		}
	}
	auth, err := vippslogin.New(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = auth.Close() })
	h.auth = auth
	h.sessions.ErrorFunc = auth.SessionError
	h.idp.AddRedirectURI(auth.RedirectURI())
}

// inBubble runs f in a testing/synctest bubble, with a harness whose site
// and mock provider both read the bubble's clock (h.clock.Now is
// time.Now there, and Advance sleeps): time in a bubble is fake and moves
// only while every goroutine of it waits, so minutes of polling a login
// from phone number take no real time, and the timers of the package are
// the ones under test. The provider is made outside the bubble, since its
// server listens on the network, where a waiting goroutine would hold the
// bubble's clock still; it serves the site's Client in process
// (testsvc.InProcess), in the bubble. The harness has no site server and
// no browsers: it is for tests of the Client's methods. Of opts, only idp,
// site and store apply; site may wrap c.HTTPClient's transport.
func inBubble(t *testing.T, f func(t *testing.T, h *harness), opts ...options) {
	t.Helper()
	idpCfg := vippstest.Config{AutoApprove: true} // Now: time.Now, the bubble's in the handler
	for _, o := range opts {
		if o.stripPrefix || o.sameProvider != nil || o.baseURL != "" || o.routes != nil || o.wrap != nil {
			t.Fatal("inBubble: a harness in a bubble has no site server; only idp, site and store apply")
		}
		if o.idp != nil {
			o.idp(&idpCfg)
		}
	}
	idp, err := vippstest.New(idpCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(idp.Close)
	// scs.New starts a memstore whose cleanup goroutine never ends: made
	// in the bubble, it would outlive it.
	sessions := scs.New()
	sessions.Store = memstore.NewWithCleanupInterval(0)
	for _, o := range opts {
		if o.store != nil {
			sessions.Store = o.store
		}
	}
	synctest.Test(t, func(t *testing.T) {
		h := &harness{t: t, clock: &clock{bubble: true}, idp: idp, sessions: sessions, logs: &syncBuffer{}}
		h.url = "http://127.0.0.1:1" // no server: the Client's URLs only
		h.calls = &callLog{next: testsvc.InProcess{Handler: idp.Handler()}}
		h.newClient(h.url, &http.Client{Transport: h.calls}, opts)
		f(t, h)
	})
}

// callLog is an http.RoundTripper that records when each request was sent
// (by the clock of the goroutine that sends it) and to which endpoint of
// the mock provider, and passes it on to next.
type callLog struct {
	next  http.RoundTripper
	mu    sync.Mutex
	calls []loggedCall
}

type loggedCall struct {
	endpoint string // as endpointOf names it
	at       time.Time
}

func (l *callLog) RoundTrip(r *http.Request) (*http.Response, error) {
	l.mu.Lock()
	l.calls = append(l.calls, loggedCall{endpointOf(r.URL.Path), time.Now()})
	l.mu.Unlock()
	return l.next.RoundTrip(r)
}

// times returns when the requests to endpoint were sent, in order.
func (l *callLog) times(endpoint string) []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	var at []time.Time
	for _, c := range l.calls {
		if c.endpoint == endpoint {
			at = append(at, c.at)
		}
	}
	return at
}

// lastErr returns the last error the error handler got.
func (h *harness) lastErr() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.errs) == 0 {
		return nil
	}
	return h.errs[len(h.errs)-1]
}

// errorHandler is the sites' Config.ErrorHandler: it notes err for
// lastErr and answers as the package does.
func (h *harness) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	h.mu.Lock()
	h.errs = append(h.errs, err)
	h.mu.Unlock()
	vippslogin.WriteError(w, r, err)
}

// browser is a cookie-keeping client that does not follow redirects.
type browser struct {
	h *harness
	*http.Client
	// confirmLogin is the login the last confirmation page shown asked
	// about (its form's hidden "login" field).
	confirmLogin string
}

func (h *harness) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{h: h, Client: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// browserFrom is a browser whose connections come from the loopback
// address ip (127.0.0.2, say), so that the site sees another source.
func (h *harness) browserFrom(ip string) *browser {
	b := h.browser()
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	b.Transport = &http.Transport{DialContext: dialer.DialContext, MaxIdleConnsPerHost: 8}
	h.t.Cleanup(b.CloseIdleConnections)
	return b
}

// get fetches u (absolute, or a path on the site) with optional headers as
// name, value pairs, and returns the response with its body read.
func (b *browser) get(u string, header ...string) (*http.Response, string) {
	b.h.t.Helper()
	return b.do(http.MethodGet, u, nil, header...)
}

func (b *browser) do(method, u string, body io.Reader, header ...string) (*http.Response, string) {
	b.h.t.Helper()
	if strings.HasPrefix(u, "/") {
		u = b.h.url + u
	}
	req, err := http.NewRequestWithContext(context.Background(), method, u, body)
	if err != nil {
		b.h.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := b.Do(req)
	if err != nil {
		b.h.t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if m := confirmLoginField.FindSubmatch(data); m != nil {
		b.confirmLogin = string(m[1])
	}
	return resp, string(data)
}

var confirmLoginField = regexp.MustCompile(`name="login" value="([A-Za-z0-9_-]+)"`)

// startLogin starts a login and follows it through the provider, returning
// the callback URL the provider sent the browser to.
func (b *browser) startLogin(returnTo string) string {
	b.h.t.Helper()
	path := "/auth/login"
	if returnTo != "" {
		path += "?return_to=" + url.QueryEscape(returnTo)
	}
	resp, _ := b.get(path)
	if resp.StatusCode != http.StatusFound {
		b.h.t.Fatalf("login: status %d, want 302 (last error %v)", resp.StatusCode, b.h.lastErr())
	}
	authz := resp.Header.Get("Location")
	if !strings.HasPrefix(authz, b.h.idp.URL()) {
		b.h.t.Fatalf("login redirected to %q, not the provider", authz)
	}
	resp, _ = b.get(authz)
	cb := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(cb, b.h.url+"/auth/callback") {
		b.h.t.Fatalf("authorize: status %d, location %q", resp.StatusCode, cb)
	}
	return cb
}

// login logs in and checks that the callback redirects to returnTo.
func (b *browser) login(returnTo string) {
	b.h.t.Helper()
	resp, _ := b.get(b.startLogin(returnTo))
	want := returnTo
	if want == "" {
		want = "/"
	}
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
		b.h.t.Fatalf("callback: status %d location %q, want 303 %q (error %v)", resp.StatusCode, resp.Header.Get("Location"), want, b.h.lastErr())
	}
}

// profile fetches /profile as an API client and returns the claims, or nil
// when the answer is 401.
func (b *browser) profile() map[string]any {
	b.h.t.Helper()
	resp, body := b.get("/profile", "Accept", "application/json")
	switch resp.StatusCode {
	case http.StatusOK:
		var m map[string]any
		if err := json.Unmarshal([]byte(body), &m); err != nil {
			b.h.t.Fatalf("profile: %v in %q", err, body)
		}
		return m
	case http.StatusUnauthorized:
		return nil
	}
	b.h.t.Fatalf("profile: status %d: %s", resp.StatusCode, body)
	return nil
}

// cookie returns the value of the named cookie the browser holds for the site.
func (b *browser) cookie(name string) string {
	u, _ := url.Parse(b.h.url)
	for _, c := range b.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// wantErr checks that the last error the handler got matches target.
func (h *harness) wantErr(target error) {
	h.t.Helper()
	err := h.lastErr()
	if !errors.Is(err, target) {
		h.t.Fatalf("error = %v, want %v", err, target)
	}
}

// errCount returns how many errors the error handler has got.
func (h *harness) errCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.errs)
}

// wantRefused checks that resp, the answer to a request of b, is an error
// whose chain holds every target, and that b is not logged in afterwards.
func (b *browser) wantRefused(resp *http.Response, targets ...error) {
	b.h.t.Helper()
	if resp.StatusCode < 400 {
		b.h.t.Fatalf("status %d (location %q), want an error status (last error %v)",
			resp.StatusCode, resp.Header.Get("Location"), b.h.lastErr())
	}
	for _, target := range targets {
		b.h.wantErr(target)
	}
	if got := b.profile(); got != nil {
		b.h.t.Fatalf("logged in after a refused request as %v", got["sub"])
	}
}

// logout posts to the logout route as a same-origin form and returns the
// answer.
func (b *browser) logout(form url.Values, header ...string) (*http.Response, string) {
	b.h.t.Helper()
	header = append([]string{"Sec-Fetch-Site", "same-origin"}, header...)
	return b.do(http.MethodPost, "/auth/logout", strings.NewReader(form.Encode()), header...)
}

// editQuery returns rawURL with its query changed by edit.
func editQuery(t testing.TB, rawURL string, edit func(q url.Values)) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	edit(q)
	u.RawQuery = q.Encode()
	return u.String()
}

// queryParam returns the named query parameter of rawURL.
func queryParam(t testing.TB, rawURL, name string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get(name)
}

// randomToken returns 32 random bytes, base64url-encoded: 43 characters,
// shaped like the package's states.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// jsonError decodes the JSON error answer of the default error handler,
// which must have a message.
func jsonError(t testing.TB, resp *http.Response, body string) (code, loginURL string) {
	t.Helper()
	code, message, loginURL := jsonMessage(t, resp, body)
	if message == "" {
		t.Errorf("error body %q has no message", body)
	}
	return code, loginURL
}
