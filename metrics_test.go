package vippslogin_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vippslogin/vippslogin"
	"github.com/vippslogin/vippslogin/vippstest"
)

// The records of a login's steps, in the order the package documentation
// lists them.
const (
	recStarted   = "vippslogin: login started"
	recCallback  = "vippslogin: callback received"
	recExchanged = "vippslogin: code exchanged"
	recVerified  = "vippslogin: id token verified"
	recUserinfo  = "vippslogin: userinfo fetched"
	recFinished  = "vippslogin: login finished"
	recCall      = "vippslogin: provider call"
)

var loginIDPattern = regexp.MustCompile(`^[0-9a-f]{12}$`)

// requestIDKey is the context key under which the test sites' middleware
// keeps the request's X-Request-Id, as a site keeps its trace and request
// ids.
type requestIDKey struct{}

// withRequestID is a site's middleware that puts the request's
// X-Request-Id into its context.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id := r.Header.Get("X-Request-Id"); id != "" {
			r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
		}
		next.ServeHTTP(w, r)
	})
}

// requestIDHandler is a site's slog.Handler that adds the request id it
// finds in a record's context.
type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id, ok := ctx.Value(requestIDKey{}).(string); ok {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}

// callSpy is a RoundTripper for Config.HTTPClient that records, for each
// call to the provider, its endpoint, the request id its context carries,
// and the form it posted.
type callSpy struct {
	next  http.RoundTripper // http.DefaultTransport when nil
	mu    sync.Mutex
	calls []spiedCall
}

type spiedCall struct {
	endpoint, requestID string
	form                url.Values
}

// endpointOf names the mock provider's endpoint by the last element of
// its path, as Metrics.ProviderCall does.
func endpointOf(p string) string {
	switch path.Base(p) {
	case "openid-configuration":
		return "discovery"
	case "jwks.json":
		return "jwks"
	case "authentication":
		return "backchannel"
	case "user-exists":
		return "user_exists"
	}
	return path.Base(p)
}

func (s *callSpy) RoundTrip(r *http.Request) (*http.Response, error) {
	c := spiedCall{endpoint: endpointOf(r.URL.Path)}
	c.requestID, _ = r.Context().Value(requestIDKey{}).(string)
	if r.Body != nil {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		c.form, _ = url.ParseQuery(string(body))
	}
	s.mu.Lock()
	s.calls = append(s.calls, c)
	s.mu.Unlock()
	if s.next != nil {
		return s.next.RoundTrip(r)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// took returns the calls recorded since the n-th, and how many there are in all.
func (s *callSpy) took(n int) ([]spiedCall, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls[n:]), len(s.calls)
}

// metricsSpy counts what Config.Metrics is told.
type metricsSpy struct {
	mu       sync.Mutex
	started  int
	finished int
	failed   map[string]int // by kind
	calls    map[string]int // by endpoint
	errs     map[string]int // failed calls by endpoint
}

func (m *metricsSpy) metrics(t *testing.T) vippslogin.Metrics {
	m.failed, m.calls, m.errs = map[string]int{}, map[string]int{}, map[string]int{}
	return vippslogin.Metrics{
		LoginStarted: func(context.Context) {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.started++
		},
		LoginFinished: func(context.Context) {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.finished++
		},
		LoginFailed: func(_ context.Context, kind string) {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.failed[kind]++
		},
		ProviderCall: func(_ context.Context, endpoint string, d time.Duration, err error) {
			m.mu.Lock()
			defer m.mu.Unlock()
			if d < 0 {
				t.Errorf("ProviderCall(%s) took %v", endpoint, d)
			}
			m.calls[endpoint]++
			if err != nil {
				m.errs[endpoint]++
			}
		},
	}
}

// counts returns what m has counted: started, finished, failed by kind,
// calls and failed calls by endpoint.
func (m *metricsSpy) counts() (int, int, map[string]int, map[string]int, map[string]int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.started, m.finished, maps.Clone(m.failed), maps.Clone(m.calls), maps.Clone(m.errs)
}

// TestLoginRecords reads the records of one login: every step in order,
// DEBUG for the steps and the calls to the provider, one INFO for the
// finished login, one login_id on all of them, durations on the calls, sub
// only when finished, and none of the login's secrets anywhere.
func TestLoginRecords(t *testing.T) {
	spy := &callSpy{}
	h := newHarness(t, options{site: func(c *vippslogin.Config) { c.HTTPClient = &http.Client{Transport: spy} }})
	var mu sync.Mutex
	var idTokens []string
	h.idp.SetHooks(vippstest.Hooks{IDToken: func(header, claims map[string]any) string {
		tok := h.idp.Sign(header, claims)
		mu.Lock()
		idTokens = append(idTokens, tok)
		mu.Unlock()
		return tok
	}})

	b := h.browser()
	resp, _ := b.get("/auth/login?return_to=" + url.QueryEscape("/profile?tab=orders"))
	authz := resp.Header.Get("Location")
	resp, _ = b.get(authz)
	cb := resp.Header.Get("Location")
	if resp, _ = b.get(cb); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("callback: status %d (error %v)", resp.StatusCode, h.lastErr())
	}

	recs := logLines(t, h)
	var steps []string
	var infos int
	ids := map[any]int{}
	calls := map[any]int{}
	for _, rec := range recs {
		msg, _ := rec["msg"].(string)
		if rec["level"] == "INFO" {
			infos++
		}
		if msg == recCall {
			calls[rec["endpoint"]]++
			if d, ok := rec["duration"].(float64); !ok || d < 0 {
				t.Errorf("provider call without a duration: %v", rec)
			}
			if rec["level"] != "DEBUG" || rec["error"] != nil {
				t.Errorf("provider call record %v, want DEBUG without error", rec)
			}
			if rec["endpoint"] != "discovery" { // discovery is fetched before the login exists
				ids[rec["login_id"]]++
			}
			continue
		}
		steps = append(steps, msg)
		ids[rec["login_id"]]++
		if want := map[bool]string{true: "INFO", false: "DEBUG"}[msg == recFinished]; rec["level"] != want {
			t.Errorf("%q at %v, want %s", msg, rec["level"], want)
		}
		if rec["flow"] != "default" {
			t.Errorf("%q: flow %v, want default", msg, rec["flow"])
		}
		if _, has := rec["sub"]; has != (msg == recFinished) {
			t.Errorf("%q: sub %v; want it only on the finished record", msg, rec["sub"])
		}
		switch msg {
		case recStarted:
			if rec["return_to"] != "/profile" || rec["step_up"] != false {
				t.Errorf("started: return_to %v, step_up %v; want /profile (its path only), false", rec["return_to"], rec["step_up"])
			}
		case recFinished:
			if rec["sub"] != vippstest.DefaultUsers()[0].Sub {
				t.Errorf("finished: sub %v", rec["sub"])
			}
		}
	}
	if want := []string{recStarted, recCallback, recExchanged, recVerified, recUserinfo, recFinished}; !slices.Equal(steps, want) {
		t.Errorf("steps\n%q, want\n%q", steps, want)
	}
	if infos != 1 {
		t.Errorf("%d INFO records, want 1", infos)
	}
	if len(ids) != 1 {
		t.Errorf("login_ids %v, want one for all the login's records", ids)
	}
	for id := range ids {
		if s, _ := id.(string); !loginIDPattern.MatchString(s) {
			t.Errorf("login_id %v, want 12 hex digits", id)
		}
	}
	if want := map[any]int{"discovery": 1, "jwks": 1, "token": 1, "userinfo": 1}; !maps.Equal(calls, want) {
		t.Errorf("provider calls %v, want %v", calls, want)
	}

	token, _ := spy.took(0)
	var verifier string
	for _, c := range token {
		if c.endpoint == "token" {
			verifier = c.form.Get("code_verifier")
		}
	}
	mu.Lock()
	secrets := map[string]string{
		"state":          queryParam(t, cb, "state"),
		"code":           queryParam(t, cb, "code"),
		"nonce":          queryParam(t, authz, "nonce"),
		"code_challenge": queryParam(t, authz, "code_challenge"),
		"code_verifier":  verifier,
		"ID token":       idTokens[0],
		"access token":   strings.TrimPrefix(h.idp.LastHeader(vippstest.Userinfo).Get("Authorization"), "Bearer "),
		"client secret":  h.idp.ClientSecret(),
	}
	mu.Unlock()
	logs := h.logs.String()
	for name, v := range secrets {
		if len(v) < 8 {
			t.Fatalf("the %s %q was not caught", name, v)
		}
		if strings.Contains(logs, v) {
			t.Errorf("the log holds the %s", name)
		}
	}
	t.Logf("the records of one login:\n%s", logs)
}

// TestFailureRecordLevels checks the level and kind of the record of each
// sort of failure, that the record names the login once it is known, and
// that Metrics.LoginFailed gets the same kind.
func TestFailureRecordLevels(t *testing.T) {
	tests := []struct {
		name    string
		opts    options
		fail    func(t *testing.T, h *harness)
		kind    string
		level   string
		loginID bool // the record names the login
	}{
		{
			name: "cancelled at the provider",
			fail: func(t *testing.T, h *harness) {
				h.idp.SetHooks(vippstest.Hooks{AuthorizeError: "access_denied"})
				b := h.browser()
				b.get(b.startLogin("/profile"))
			},
			kind: "access_denied", level: "INFO", loginID: true,
		},
		{
			name: "visitor went away",
			fail: func(t *testing.T, h *harness) {
				b := h.browser()
				cb := b.startLogin("/profile")
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				req := httptest.NewRequestWithContext(ctx, http.MethodGet, cb, nil)
				u, _ := url.Parse(h.url)
				for _, c := range b.Jar.Cookies(u) {
					req.AddCookie(c)
				}
				h.site.Config.Handler.ServeHTTP(httptest.NewRecorder(), req)
			},
			kind: "cancelled", level: "INFO", loginID: true,
		},
		{
			name: "callback in another browser",
			fail: func(t *testing.T, h *harness) {
				cb := h.browser().startLogin("/profile")
				h.browser().get(cb)
			},
			kind: "other_browser", level: "WARN", loginID: true,
		},
		{
			name: "callback without state or code",
			fail: func(t *testing.T, h *harness) { h.browser().get("/auth/callback") },
			kind: "invalid_callback", level: "WARN",
		},
		{
			name: "provider down",
			fail: func(t *testing.T, h *harness) {
				h.idp.SetFault(vippstest.Discovery, vippstest.Fault{Down: true})
				h.browser().get("/auth/login")
			},
			kind: "provider_unavailable", level: "ERROR",
		},
		{
			name: "token endpoint answers 500",
			fail: func(t *testing.T, h *harness) {
				h.idp.SetFault(vippstest.Token, vippstest.Fault{Status: 500})
				b := h.browser()
				b.get(b.startLogin("/profile"))
			},
			kind: "login_failed", level: "ERROR", loginID: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := &metricsSpy{}
			h := newHarness(t, tc.opts, options{site: func(c *vippslogin.Config) { c.Metrics = m.metrics(t) }})
			tc.fail(t, h)
			var failures []map[string]any
			for _, rec := range logLines(t, h) {
				if rec["kind"] != nil {
					failures = append(failures, rec)
				}
			}
			if len(failures) != 1 {
				t.Fatalf("%d failure records, want 1:\n%s", len(failures), h.logs)
			}
			rec := failures[0]
			if rec["kind"] != tc.kind || rec["level"] != tc.level || rec["msg"] != "vippslogin: "+tc.kind {
				t.Errorf("record %v, want kind %s at %s", rec, tc.kind, tc.level)
			}
			if id, _ := rec["login_id"].(string); loginIDPattern.MatchString(id) != tc.loginID {
				t.Errorf("login_id %q; want one: %v", id, tc.loginID)
			}
			if _, _, failed, _, _ := m.counts(); !maps.Equal(failed, map[string]int{tc.kind: 1}) {
				t.Errorf("LoginFailed counted %v, want %s once", failed, tc.kind)
			}
		})
	}
}

// TestMetricsCounts counts what Config.Metrics is told over a login, a
// failed login and a refused start, and that other failures are not
// counted as logins.
func TestMetricsCounts(t *testing.T) {
	m := &metricsSpy{}
	h := newHarness(t, options{site: func(c *vippslogin.Config) { c.Metrics = m.metrics(t) }})
	b := h.browser()
	b.login("/profile")

	h.idp.SetFault(vippstest.Token, vippstest.Fault{Status: 500})
	other := h.browser()
	resp, _ := other.get(other.startLogin("/profile"))
	other.wantRefused(resp, &vippslogin.ProviderError{})
	h.idp.SetFault(vippstest.Token, vippstest.Fault{})

	if resp, _ := b.get("/auth/login?return_to=" + url.QueryEscape("https://elsewhere.example/")); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("refused start: status %d, want 400", resp.StatusCode)
	}
	if resp, _ := b.logout(nil, "Sec-Fetch-Site", "cross-site"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site logout: status %d, want 403", resp.StatusCode)
	}

	started, finished, failed, calls, errs := m.counts()
	if started != 2 || finished != 1 {
		t.Errorf("started %d, finished %d; want 2, 1", started, finished)
	}
	if want := map[string]int{"login_failed": 1, "invalid_return_to": 1}; !maps.Equal(failed, want) {
		t.Errorf("failed %v, want %v", failed, want)
	}
	if want := map[string]int{"discovery": 1, "jwks": 1, "token": 2, "userinfo": 1}; !maps.Equal(calls, want) {
		t.Errorf("provider calls %v, want %v", calls, want)
	}
	if want := map[string]int{"token": 1}; !maps.Equal(errs, want) {
		t.Errorf("failed provider calls %v, want %v", errs, want)
	}
}

// TestRecordsCarryRequestContext: a site whose slog.Handler reads a request
// id from the context finds it on every record of the package, those of the
// calls to the provider and of failures included.
func TestRecordsCarryRequestContext(t *testing.T) {
	h := newHarness(t, options{
		wrap: withRequestID,
		site: func(c *vippslogin.Config) { c.Logger = slog.New(requestIDHandler{c.Logger.Handler()}) },
	})
	b := h.browser()
	resp, _ := b.get("/auth/login", "X-Request-Id", "start")
	resp, _ = b.get(resp.Header.Get("Location"))
	if resp, _ = b.get(resp.Header.Get("Location"), "X-Request-Id", "callback"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("callback: status %d", resp.StatusCode)
	}
	b.get("/auth/callback", "X-Request-Id", "forged")

	recs := logLines(t, h)
	if len(recs) < 10 {
		t.Fatalf("%d records, want the login's and the failure's:\n%s", len(recs), h.logs)
	}
	for _, rec := range recs {
		want := "callback"
		switch {
		case rec["msg"] == recStarted, rec["endpoint"] == "discovery":
			want = "start"
		case rec["kind"] != nil:
			want = "forged"
		}
		if rec["request_id"] != want {
			t.Errorf("record %q has request_id %v, want %s", rec["msg"], rec["request_id"], want)
		}
	}
}

// TestProviderCallsCarryRequestContext: every call to the provider is a
// request with the context of the request or call that needs it, so that a
// tracing transport in Config.HTTPClient sees the site's trace.
func TestProviderCallsCarryRequestContext(t *testing.T) {
	spy := &callSpy{}
	h := newHarness(t, options{
		wrap: withRequestID,
		site: func(c *vippslogin.Config) { c.HTTPClient = &http.Client{Transport: spy} },
	})
	ctxWith, wantCalls := spyCalls(t, spy)

	if err := h.auth.Ready(ctxWith("ready")); err != nil {
		t.Fatal(err)
	}
	wantCalls("Ready", "discovery ready", "jwks ready")

	login := func(id string) {
		t.Helper()
		b := h.browser()
		resp, _ := b.get("/auth/login", "X-Request-Id", id+" start")
		resp, _ = b.get(resp.Header.Get("Location"))
		if resp, _ = b.get(resp.Header.Get("Location"), "X-Request-Id", id); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("callback: status %d (error %v)", resp.StatusCode, h.lastErr())
		}
	}
	login("callback")
	wantCalls("a login", "token callback", "userinfo callback")

	// A token signed with a new key refetches discovery and the key set,
	// for the callback that needs them.
	h.idp.RotateKey()
	login("rotated")
	wantCalls("a login after key rotation", "token rotated", "discovery rotated", "jwks rotated", "userinfo rotated")
}

// The same for a login from phone number: every call to the provider has
// the context of the call to the Client that needs it.
func TestPhoneLoginCallsCarryContext(t *testing.T) {
	spy := &callSpy{}
	inBubble(t, func(t *testing.T, h *harness) {
		ctxWith, wantCalls := spyCalls(t, spy)
		if err := h.auth.Ready(ctxWith("ready")); err != nil {
			t.Fatal(err)
		}
		wantCalls("Ready", "discovery ready", "jwks ready")
		if _, err := h.auth.UserExists(ctxWith("exists"), "+47 912 34 567"); err != nil {
			t.Fatal(err)
		}
		pl, err := h.auth.StartPhoneLogin(ctxWith("phone start"), vippslogin.PhoneLoginRequest{PhoneNumber: "+47 912 34 567"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.auth.WaitPhoneLogin(ctxWith("phone wait"), pl); err != nil {
			t.Fatal(err)
		}
		wantCalls("a login from phone number", "user_exists exists", "backchannel phone start", "token phone wait", "userinfo phone wait")
	}, phoneAnswer(vippstest.PhoneApproved, 0), options{site: func(c *vippslogin.Config) {
		spy.next = c.HTTPClient.Transport // in process, in the bubble
		c.HTTPClient = &http.Client{Transport: spy}
	}})
}

// spyCalls returns ctxWith, which makes a context with a request id, and
// wantCalls, which checks the calls spy saw since the last check: each
// "endpoint request-id".
func spyCalls(t *testing.T, spy *callSpy) (ctxWith func(id string) context.Context, wantCalls func(what string, want ...string)) {
	ctxWith = func(id string) context.Context { return context.WithValue(t.Context(), requestIDKey{}, id) }
	wantCalls = func(what string, want ...string) {
		t.Helper()
		calls, _ := spy.took(0)
		spy.mu.Lock()
		spy.calls = nil
		spy.mu.Unlock()
		var got []string
		for _, c := range calls {
			got = append(got, c.endpoint+" "+c.requestID)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: calls %q, want %q", what, got, want)
		}
	}
	return ctxWith, wantCalls
}

// TestPhoneLoginRecords: a login from phone number writes the steps it
// shares with a browser login and its INFO record, with one login_id and
// flow phone.
func TestPhoneLoginRecords(t *testing.T) {
	inBubble(t, func(t *testing.T, h *harness) {
		pl := startPhone(t, h, vippslogin.PhoneLoginRequest{})
		if _, _, err := waitPhone(t, h, pl); err != nil {
			t.Fatal(err)
		}
		var steps []string
		ids := map[any]bool{}
		for _, rec := range logLines(t, h) {
			if rec["msg"] == recCall {
				if rec["endpoint"] == "token" || rec["endpoint"] == "userinfo" {
					ids[rec["login_id"]] = true
				}
				continue
			}
			steps = append(steps, fmt.Sprint(rec["msg"], " ", rec["level"], " ", rec["flow"]))
			ids[rec["login_id"]] = true
		}
		want := []string{recExchanged + " DEBUG phone", recVerified + " DEBUG phone", recUserinfo + " DEBUG phone", "vippslogin: phone login INFO phone"}
		if !slices.Equal(steps, want) {
			t.Errorf("records\n%q, want\n%q", steps, want)
		}
		if len(ids) != 1 {
			t.Errorf("login_ids %v, want one", ids)
		}
	}, phoneAnswer(vippstest.PhoneApproved, 0))
}
