package vippslogin_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/vippslogin/vippslogin"
	"github.com/vippslogin/vippslogin/vippstest"
)

func TestLoginFlow(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	if got := b.profile(); got != nil {
		t.Fatalf("profile before login = %v, want 401", got)
	}
	b.login("/profile?tab=1")
	claims := b.profile()
	if claims == nil {
		t.Fatal("not logged in after login")
	}
	if claims["sub"] == "" || claims["name"] == nil || claims["email"] == nil {
		t.Errorf("claims = %v", claims)
	}
	resp, _ := b.get("/profile")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("browser profile status %d", resp.StatusCode)
	}
}

func TestRequireLogin(t *testing.T) {
	const loginProfile = "/auth/login?return_to=%2Fprofile"
	tests := []struct {
		name         string
		method, path string
		header       []string
		wantStatus   int
		wantLogin    string // the Location, or the JSON login_url
		wantHX       string // the HX-Redirect header
	}{
		{name: "browser GET", method: "GET", path: "/profile", wantStatus: 303, wantLogin: loginProfile},
		{name: "browser GET with query", method: "GET", path: "/profile?tab=2&x=%2F", wantStatus: 303,
			wantLogin: "/auth/login?return_to=" + url.QueryEscape("/profile?tab=2&x=%2F")},
		{name: "HEAD", method: "HEAD", path: "/profile", wantStatus: 303, wantLogin: loginProfile},
		{name: "navigation", method: "GET", path: "/profile", header: []string{"Sec-Fetch-Mode", "navigate"}, wantStatus: 303, wantLogin: loginProfile},
		{name: "browser accepting HTML and JSON", method: "GET", path: "/profile",
			header: []string{"Accept", "text/html,application/json;q=0.9"}, wantStatus: 303, wantLogin: loginProfile},
		{name: "API client", method: "GET", path: "/profile", header: []string{"Accept", "application/json"}, wantStatus: 401, wantLogin: loginProfile},
		{name: "XHR", method: "GET", path: "/profile", header: []string{"X-Requested-With", "XMLHttpRequest"}, wantStatus: 401, wantLogin: loginProfile},
		{name: "fetch", method: "GET", path: "/profile", header: []string{"Sec-Fetch-Mode", "cors"}, wantStatus: 401, wantLogin: loginProfile},
		{name: "htmx", method: "GET", path: "/profile", header: []string{"HX-Request", "true"}, wantStatus: 401, wantLogin: loginProfile, wantHX: loginProfile},
		{
			name: "htmx on a site page", method: "GET", path: "/profile",
			header:     []string{"HX-Request", "true", "HX-Current-URL", "{site}/shop?item=2"},
			wantStatus: 401,
			wantLogin:  "/auth/login?return_to=%2Fshop%3Fitem%3D2",
			wantHX:     "/auth/login?return_to=%2Fshop%3Fitem%3D2",
		},
		{
			name: "htmx on another site's page", method: "GET", path: "/profile",
			header:     []string{"HX-Request", "true", "HX-Current-URL", "https://evil.example/shop"},
			wantStatus: 401, wantLogin: loginProfile, wantHX: loginProfile,
		},
		{name: "POST", method: "POST", path: "/profile", wantStatus: 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			b := h.browser()
			header := slices.Clone(tc.header)
			for i := range header {
				header[i] = strings.ReplaceAll(header[i], "{site}", h.site.URL)
			}
			resp, body := b.do(tc.method, tc.path, nil, header...)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d; body %q", resp.StatusCode, tc.wantStatus, body)
			}
			if got := resp.Header.Get("HX-Redirect"); got != tc.wantHX {
				t.Errorf("HX-Redirect %q, want %q", got, tc.wantHX)
			}
			if got := resp.Header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", got)
			}
			if tc.wantStatus == http.StatusSeeOther {
				if got := resp.Header.Get("Location"); got != tc.wantLogin {
					t.Errorf("Location %q, want %q", got, tc.wantLogin)
				}
				return
			}
			h.wantErr(vippslogin.ErrNotLoggedIn)
			if tc.method != "GET" {
				return
			}
			code, loginURL := jsonError(t, resp, body)
			if code != "login_required" {
				t.Errorf(`"error" %q, want "login_required"`, code)
			}
			if loginURL != tc.wantLogin {
				t.Errorf("login_url %q, want %q", loginURL, tc.wantLogin)
			}
		})
	}
}

func TestRequireLoginFollowed(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	resp, _ := b.get("/profile?tab=2")
	loginURL := resp.Header.Get("Location")
	resp, _ = b.get(loginURL)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("login: status %d", resp.StatusCode)
	}
	resp, _ = b.get(resp.Header.Get("Location"))
	resp, _ = b.get(resp.Header.Get("Location"))
	if got, want := resp.Header.Get("Location"), "/profile?tab=2"; resp.StatusCode != http.StatusSeeOther || got != want {
		t.Fatalf("callback: status %d Location %q, want 303 %q", resp.StatusCode, got, want)
	}
	if resp, _ := b.get("/profile?tab=2"); resp.StatusCode != http.StatusOK {
		t.Errorf("profile after login: status %d", resp.StatusCode)
	}
}

func TestLoadClaims(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	resp, body := b.get("/public")
	if resp.StatusCode != http.StatusOK || body != "hello guest" {
		t.Fatalf("logged out: status %d body %q, want 200 %q", resp.StatusCode, body, "hello guest")
	}
	b.login("/public")
	sub, _ := b.profile()["sub"].(string)
	if sub == "" {
		t.Fatal("no sub after login")
	}
	resp, body = b.get("/public")
	if want := "hello " + sub; resp.StatusCode != http.StatusOK || body != want {
		t.Errorf("logged in: status %d body %q, want 200 %q", resp.StatusCode, body, want)
	}
}

func TestLoginReturnTo(t *testing.T) {
	rt := func(s string) string { return "return_to=" + url.QueryEscape(s) }
	tests := []struct {
		name  string
		query string
		ok    bool
	}{
		{name: "protocol-relative", query: rt("//evil.example")},
		{name: "backslash", query: rt("/\\evil.example")},
		{name: "absolute URL", query: rt("https://evil.example/")},
		{name: "javascript", query: rt("javascript:alert(1)")},
		{name: "host without slash", query: rt("evil.example")},
		{name: "tab", query: rt("/\tevil")},
		{name: "CR LF", query: rt("/\r\nSet-Cookie:x=1")},
		{name: "scheme with one slash", query: rt("http:/evil")},
		{name: "too long", query: rt("/" + strings.Repeat("a", 4999))},
		{name: "repeated", query: rt("/a") + "&" + rt("/b")},
		{name: "root", query: rt("/"), ok: true},
		{name: "path with query", query: rt("/a/b?c=d"), ok: true},
		{name: "escaped slashes", query: rt("/%2F%2Fevil"), ok: true},
		{name: "none", query: "", ok: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			b := h.browser()
			before := h.idp.Hits(vippstest.Authorize)
			resp, _ := b.get("/auth/login?" + tc.query)
			if tc.ok {
				if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), h.idp.URL()+"/") {
					t.Fatalf("status %d Location %q, want 302 to the provider (error %v)", resp.StatusCode, resp.Header.Get("Location"), h.lastErr())
				}
				return
			}
			if got, want := resp.StatusCode, http.StatusBadRequest; got != want {
				t.Fatalf("status %d, want %d (Location %q)", got, want, resp.Header.Get("Location"))
			}
			h.wantErr(&vippslogin.Error{Err: vippslogin.ErrInvalidRequest, Reason: "return_to"})
			if loc := resp.Header.Get("Location"); loc != "" {
				t.Errorf("Location %q, want none", loc)
			}
			if got := h.idp.Hits(vippstest.Authorize); got != before {
				t.Errorf("authorize hits %d, want %d", got, before)
			}
		})
	}
}

// TestReturnToSameSite follows an accepted but odd return_to through the
// login and checks where the browser ends.
func TestReturnToSameSite(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	resp, _ := b.get(b.startLogin("/%2F%2Fevil"))
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || loc != "/%2F%2Fevil" {
		t.Fatalf("callback: status %d Location %q, want 303 %q", resp.StatusCode, loc, "/%2F%2Fevil")
	}
	site, _ := url.Parse(h.site.URL)
	if got, _ := site.Parse(loc); got.Host != site.Host {
		t.Errorf("Location %q resolves to host %q, want %q", loc, got.Host, site.Host)
	}
}

func TestResponseHeaders(t *testing.T) {
	h := newHarness(t)
	b := h.browser()

	resp, _ := b.get("/auth/login?return_to=%2Fprofile")
	if got := resp.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("login: Cache-Control %q, want no-store", got)
	}
	cb := b.startLogin("/profile")
	resp, _ = b.get(cb)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("callback: status %d (error %v)", resp.StatusCode, h.lastErr())
	}
	for name, want := range map[string]string{"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"} {
		if got := resp.Header.Get(name); got != want {
			t.Errorf("callback: %s %q, want %q", name, got, want)
		}
	}

	b = h.browser() // not logged in, so a bad callback is an error
	resp, _ = b.get(editQuery(t, b.startLogin("/profile"), func(q url.Values) { q.Set("state", randomToken()) }))
	if resp.StatusCode < 400 {
		t.Fatalf("bad callback: status %d", resp.StatusCode)
	}
	for name, want := range map[string]string{"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"} {
		if got := resp.Header.Get(name); got != want {
			t.Errorf("error answer: %s %q, want %q", name, got, want)
		}
	}
}

func TestNoSecretsInLogsOrPages(t *testing.T) {
	h := newHarness(t)
	var mu sync.Mutex
	secrets := map[string]string{} // what it is: its value
	keep := func(name, value string) {
		mu.Lock()
		defer mu.Unlock()
		if value == "" {
			t.Errorf("%s is empty", name)
		}
		secrets[name] = value
	}
	// The site's answers: bodies and Location headers. The state is in the
	// redirect to the provider by design, so it is looked for in the logs
	// only.
	var pages []string
	flow := func(name string, b *browser) {
		resp, body := b.get("/auth/login?return_to=%2Fprofile")
		pages = append(pages, body)
		resp, _ = b.get(resp.Header.Get("Location")) // the provider's answer
		cb := resp.Header.Get("Location")
		keep(name+" code", queryParam(t, cb, "code"))
		resp, body = b.get(cb)
		pages = append(pages, body, resp.Header.Get("Location"))
		_, body = b.get("/profile")
		pages = append(pages, body)
		keep(name+" access token", strings.TrimPrefix(h.idp.LastHeader(vippstest.Userinfo).Get("Authorization"), "Bearer "))
	}
	signAndKeep := func(name string) func(header, claims map[string]any) string {
		return func(header, claims map[string]any) string {
			tok := h.idp.Sign(header, claims)
			keep(name+" ID token", tok)
			return tok
		}
	}

	h.idp.SetHooks(vippstest.Hooks{IDToken: signAndKeep("good login")})
	flow("good login", h.browser())
	h.idp.SetHooks(vippstest.Hooks{
		IDToken:  signAndKeep("refused login"),
		Userinfo: func(claims map[string]any) { claims["sub"] = "someone-else" },
	})
	b := h.browser()
	cb := b.startLogin("/profile")
	keep("refused login state", queryParam(t, cb, "state"))
	keep("refused login code", queryParam(t, cb, "code"))
	resp, body := b.get(cb)
	pages = append(pages, body, resp.Header.Get("Location"))
	h.wantErr(&vippslogin.Error{Err: vippslogin.ErrBadResponse, Reason: "subject"})
	keep("refused login access token", strings.TrimPrefix(h.idp.LastHeader(vippstest.Userinfo).Get("Authorization"), "Bearer "))

	logs := h.logs.String()
	if !strings.Contains(logs, "subject_mismatch") && !strings.Contains(logs, "login_failed") {
		t.Fatalf("the refused login was not logged:\n%s", logs)
	}
	mu.Lock()
	defer mu.Unlock()
	if got, want := len(secrets), 7; got != want {
		t.Fatalf("collected %d secrets, want %d: %v", got, want, secrets)
	}
	for name, value := range secrets {
		if strings.Contains(logs, value) {
			t.Errorf("the logs contain the %s:\n%s", name, logs)
		}
		if strings.HasSuffix(name, "state") {
			continue
		}
		for _, page := range pages {
			if strings.Contains(page, value) {
				t.Errorf("an answer of the site contains the %s:\n%s", name, page)
			}
		}
	}
}

func TestContextWithClaims(t *testing.T) {
	greet := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := vippslogin.ClaimsFromContext(r.Context())
		if !ok {
			http.Error(w, "who are you?", http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, "hello "+c.Name)
	})
	tests := []struct {
		name       string
		claims     *vippslogin.Claims // nil: no ContextWithClaims
		wrap       bool
		wantStatus int
		wantBody   string
	}{
		{name: "logged in", claims: &vippslogin.Claims{Subject: "u1", Name: "Ada"}, wrap: true, wantStatus: 200, wantBody: "hello Ada"},
		{name: "no claims", wantStatus: 401, wantBody: "who are you?\n"},
		{name: "nil claims", wrap: true, wantStatus: 401, wantBody: "who are you?\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/account", nil)
			if tc.wrap {
				r = r.WithContext(vippslogin.ContextWithClaims(r.Context(), tc.claims))
			}
			w := httptest.NewRecorder()
			greet.ServeHTTP(w, r)
			if got := w.Code; got != tc.wantStatus {
				t.Errorf("status %d, want %d", got, tc.wantStatus)
			}
			if got := w.Body.String(); got != tc.wantBody {
				t.Errorf("body %q, want %q", got, tc.wantBody)
			}
		})
	}
}

func TestMountWithStripPrefix(t *testing.T) {
	h := newHarness(t, options{stripPrefix: true})
	b := h.browser()
	resp, _ := b.get("/profile")
	if got, want := resp.Header.Get("Location"), "/auth/login?return_to=%2Fprofile"; got != want {
		t.Fatalf("Location %q, want %q", got, want)
	}
	b.login("/profile")
	if b.profile() == nil {
		t.Fatal("not logged in")
	}
	if resp, _ := b.logout(url.Values{"return_to": {"/bye"}}); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/bye" {
		t.Fatalf("logout: status %d Location %q, want 303 /bye", resp.StatusCode, resp.Header.Get("Location"))
	}
	if b.profile() != nil {
		t.Error("logged in after logout")
	}
	// The logout link's page posts to the logout route at its full path.
	b.login("/profile")
	resp, body := b.get("/auth/logout")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `<form method="post" action="/auth/logout">`) {
		t.Errorf("GET logout: status %d, want 200 and a form that posts to /auth/logout:\n%s", resp.StatusCode, body)
	}
	if b.profile() == nil {
		t.Error("GET logout logged the browser out")
	}
}

// RequireLogin binds the browser when it sends it to log in, so tabs sent
// at the same moment share one binding.
func TestRequireLoginBindsBrowser(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	resp, _ := b.get("/profile")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("status %d", resp.StatusCode)
	}
	secret := b.cookie("vippslogin")
	if len(secret) != 43 {
		t.Fatalf("binding cookie %q after the redirect to login", secret)
	}
	cb1 := b.startLogin("/one")
	cb2 := b.startLogin("/two")
	for _, cb := range []string{cb2, cb1} {
		if resp, _ := b.get(cb); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("callback: %d (error %v)", resp.StatusCode, h.lastErr())
		}
	}
	if got := b.cookie("vippslogin"); got[:43] != secret {
		t.Errorf("binding secret changed from %q to %q", secret, got)
	}
}

// sessionCookie logs a browser in through the harness and returns its
// session cookie.
func sessionCookie(b *testing.B, h *harness) *http.Cookie {
	b.Helper()
	br := h.browser()
	br.login("/profile")
	v := br.cookie(h.sessions.Cookie.Name)
	if v == "" {
		b.Fatal("no session cookie after login")
	}
	return &http.Cookie{Name: h.sessions.Cookie.Name, Value: v}
}

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })

func benchHandler(b *testing.B, h http.Handler, cookie *http.Cookie) {
	req := httptest.NewRequest(http.MethodGet, "/profile", nil)
	req.AddCookie(cookie)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusNoContent {
			b.Fatalf("status %d", w.Code)
		}
	}
}

// BenchmarkRequireLogin measures a logged-in request through scs's
// LoadAndSave and RequireLogin, which finds the claims in the session and
// puts them in the context, for a handler that does not read them.
// BenchmarkLoadAndSave is its floor.
func BenchmarkRequireLogin(b *testing.B) {
	h := newHarness(b)
	benchHandler(b, h.sessions.LoadAndSave(h.auth.RequireLogin(okHandler)), sessionCookie(b, h))
}

// BenchmarkRequireLoginReadClaims is BenchmarkRequireLogin for a handler
// that reads the claims.
func BenchmarkRequireLoginReadClaims(b *testing.B) {
	h := newHarness(b)
	read := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, ok := vippslogin.ClaimsFromContext(r.Context()); !ok || c.Subject == "" {
			b.Fatal("no claims")
		}
		w.WriteHeader(http.StatusNoContent)
	})
	benchHandler(b, h.sessions.LoadAndSave(h.auth.RequireLogin(read)), sessionCookie(b, h))
}

// BenchmarkLoadAndSave is the floor for BenchmarkRequireLogin: the same
// logged-in request through scs's LoadAndSave alone.
func BenchmarkLoadAndSave(b *testing.B) {
	h := newHarness(b)
	benchHandler(b, h.sessions.LoadAndSave(okHandler), sessionCookie(b, h))
}

// BenchmarkClientLoadAndSave is BenchmarkLoadAndSave through the Client's
// LoadAndSave, which keeps serving while the store is down and decodes
// scs's sessions faster.
func BenchmarkClientLoadAndSave(b *testing.B) {
	h := newHarness(b)
	benchHandler(b, h.auth.LoadAndSave(okHandler), sessionCookie(b, h))
}

// BenchmarkClientRequireLogin is BenchmarkRequireLogin inside the Client's
// LoadAndSave, as the package's examples mount it; its floor is
// BenchmarkClientLoadAndSave.
func BenchmarkClientRequireLogin(b *testing.B) {
	h := newHarness(b)
	benchHandler(b, h.auth.LoadAndSave(h.auth.RequireLogin(okHandler)), sessionCookie(b, h))
}

// The claims in a request's context are that request's own: a handler that
// changes them changes nothing for the next request of the same session,
// and a request's context still carries what was put in it before.
func TestClaimsAreTheRequestsOwn(t *testing.T) {
	type siteKey struct{}
	var seen []string
	h := newHarness(t, options{routes: func(mux *http.ServeMux, auth *vippslogin.Client) {
		mark := func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), siteKey{}, "marked")))
			})
		}
		mux.Handle("/mutate", mark(auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, ok := vippslogin.ClaimsFromContext(r.Context())
			if !ok || r.Context().Value(siteKey{}) != "marked" {
				t.Errorf("claims %v, site's value %v", ok, r.Context().Value(siteKey{}))
				return
			}
			seen = append(seen, c.Name+"/"+fmt.Sprint(c.Raw["name"]))
			c.Name, c.Raw["name"] = "Mallory", "Mallory"
			again, _ := vippslogin.ClaimsFromContext(r.Context())
			if again != c {
				t.Error("ClaimsFromContext gave another copy within one request")
			}
		}))))
	}})
	b := h.browser()
	b.login("/")
	for range 2 {
		b.get("/mutate")
	}
	if len(seen) != 2 || seen[0] != seen[1] || strings.Contains(seen[1], "Mallory") {
		t.Errorf("the claims the two requests saw: %q", seen)
	}
}
