package main

import (
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vippslogin/vippslogin/internal/testsvc"
	"github.com/vippslogin/vippslogin/vippstest"
)

// TestMain runs the tests and says how many were skipped for a missing
// service (Redis, Chromium), which go test does not show without -v.
func TestMain(m *testing.M) { os.Exit(testsvc.Main(m)) }

// startSite serves the site in dev mode on a loopback port, with BASE_URL
// set to that port, as a deployed site would have it.
func startSite(t *testing.T, env map[string]string) (*httptest.Server, *site) {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	full := map[string]string{"BASE_URL": "http://" + srv.Listener.Addr().String()}
	for k, v := range env {
		full[k] = v
	}
	cfg, err := configFromEnv(func(k string) string { return full[k] })
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	s, err := newSite(cfg, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	srv.Config.Handler = s.handler
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, s
}

// newBrowser returns a client with a cookie jar that follows redirects.
func newBrowser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar}
}

func get(t *testing.T, c *http.Client, u, accept string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	return do(t, c, req)
}

func do(t *testing.T, c *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

var (
	formAction   = regexp.MustCompile(`<form[^>]*\baction="([^"]*)"`)
	requestField = regexp.MustCompile(`name="request"\s+value="([^"]*)"`)
)

// decide starts a login at the site, answers the mock provider's consent
// page with decision ("approve" or "cancel"), and returns where the browser
// ended up.
func decide(t *testing.T, c *http.Client, siteURL, decision string) (*http.Response, string) {
	t.Helper()
	resp, page := get(t, c, siteURL+"/auth/login?return_to=/profile", "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `id="approve"`) {
		t.Fatalf("login: got %d %s, want the consent page:\n%s", resp.StatusCode, resp.Request.URL, page)
	}
	action := formAction.FindStringSubmatch(page)
	request := requestField.FindStringSubmatch(page)
	if action == nil || request == nil {
		t.Fatalf("consent page has no form action or request field:\n%s", page)
	}
	target, err := resp.Request.URL.Parse(html.UnescapeString(action[1]))
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"request": {html.UnescapeString(request[1])}, "decision": {decision}}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, target.String(), strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, c, req)
}

func TestLogin(t *testing.T) {
	for _, method := range []string{"client_secret_basic", "client_secret_post"} {
		t.Run(method, func(t *testing.T) { testLogin(t, map[string]string{"VIPPS_TOKEN_AUTH": method}) })
	}
}

func testLogin(t *testing.T, env map[string]string) {
	srv, _ := startSite(t, env)
	c := newBrowser(t)
	want := vippstest.DefaultUsers()[0]

	resp, page := decide(t, c, srv.URL, "approve")
	if got := resp.Request.URL.Path; resp.StatusCode != http.StatusOK || got != "/profile" {
		t.Fatalf("after approving: got %d at %s, want 200 at /profile", resp.StatusCode, got)
	}
	for _, s := range []string{want.Name, want.Email, "+47 912 34 567", want.Sub, `action="/auth/logout"`} {
		if !strings.Contains(html.UnescapeString(page), s) {
			t.Errorf("profile page does not show %q", s)
		}
	}

	resp, body := get(t, c, srv.URL+"/profile", "application/json")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /profile as JSON: got %d, want 200: %s", resp.StatusCode, body)
	}
	var claims map[string]any
	if err := json.Unmarshal([]byte(body), &claims); err != nil {
		t.Fatalf("GET /profile as JSON: %v: %s", err, body)
	}
	for k, v := range map[string]string{"sub": want.Sub, "name": want.Name, "email": want.Email, "phone_number": want.PhoneNumber} {
		if claims[k] != v {
			t.Errorf("claim %s: got %v, want %q", k, claims[k], v)
		}
	}

	_, page = get(t, c, srv.URL+"/", "")
	if !strings.Contains(page, want.Name) || !strings.Contains(page, `href="/profile"`) || !strings.Contains(page, `action="/auth/logout"`) {
		t.Errorf("home page when logged in lacks the name, profile link or logout form:\n%s", page)
	}

	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/auth/logout", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, page = do(t, c, req)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/" || !strings.Contains(page, "Log in with Vipps") {
		t.Errorf("after logout: got %d at %s, want the logged-out home page", resp.StatusCode, resp.Request.URL)
	}
	if resp, _ := get(t, c, srv.URL+"/profile", "application/json"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /profile after logout: got %d, want 401", resp.StatusCode)
	}
}

// With SESSION_STORE=redis the whole login, and logout, run on scs's Redis
// store against a real redis-server.
func TestLoginWithRedis(t *testing.T) {
	addr := testsvc.RedisAddr(t)
	env := map[string]string{"SESSION_STORE": "redis", "REDIS_ADDR": addr}
	srv, _ := startSite(t, env)
	if resp, body := get(t, http.DefaultClient, srv.URL+"/readyz", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /readyz with Redis up: %d %s", resp.StatusCode, body)
	}
	testLogin(t, env)
}

// The site starts while Redis is down: it serves public pages, says it is
// not ready, and answers what needs the store with a clear 503. Once Redis
// is up logins work with no restart. Redis going down under a logged-in
// browser leaves it the home page, as to a guest, and a clear 503 for the
// profile; a restart (this Redis keeps nothing) costs the sessions it held
// but nothing else.
func TestRedisDown(t *testing.T) {
	r := testsvc.StartRedis(t)
	r.Stop()
	srv, _ := startSite(t, map[string]string{"SESSION_STORE": "redis", "REDIS_ADDR": r.Addr})
	c := newBrowser(t)
	if resp, body := get(t, c, srv.URL+"/readyz", ""); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "session store") {
		t.Errorf("GET /readyz with Redis down: %d %q, want 503 naming the session store", resp.StatusCode, body)
	}
	if resp, _ := get(t, c, srv.URL+"/healthz", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz with Redis down: %d, want 200", resp.StatusCode)
	}
	if resp, page := get(t, c, srv.URL+"/", ""); resp.StatusCode != http.StatusOK || !strings.Contains(page, "Log in with Vipps") {
		t.Errorf("GET / for a new visitor with Redis down: %d, want the public home page:\n%s", resp.StatusCode, page)
	}
	wantStoreDown := func(what string, resp *http.Response, page string) {
		t.Helper()
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(page, "session storage") {
			t.Errorf("%s with Redis down: %d, want 503 and a page that says why:\n%s", what, resp.StatusCode, page)
		}
		if strings.Contains(page, r.Addr) || strings.Contains(page, "refused") {
			t.Errorf("%s: the page shows the store's error:\n%s", what, page)
		}
	}
	resp, page := get(t, c, srv.URL+"/auth/login?return_to=/profile", "")
	wantStoreDown("GET /auth/login", resp, page)

	r.Start()
	if resp, body := get(t, c, srv.URL+"/readyz", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /readyz once Redis is up: %d %s", resp.StatusCode, body)
	}
	if resp, page := decide(t, c, srv.URL, "approve"); resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/profile" {
		t.Fatalf("login once Redis is up: %d at %s:\n%s", resp.StatusCode, resp.Request.URL, page)
	}

	r.Stop()
	if resp, page := get(t, c, srv.URL+"/", ""); resp.StatusCode != http.StatusOK || !strings.Contains(page, "Log in with Vipps") {
		t.Errorf("GET / for a logged-in browser with Redis down: %d, want the home page as to a guest:\n%s", resp.StatusCode, page)
	} else if sc := resp.Header.Values("Set-Cookie"); len(sc) > 0 {
		t.Errorf("GET / with Redis down set cookies: %q", sc)
	}
	resp, page = get(t, c, srv.URL+"/profile", "")
	wantStoreDown("GET /profile", resp, page)
	resp, page = get(t, c, srv.URL+"/profile", "application/json")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(page, `"error":"session_unavailable"`) {
		t.Errorf("GET /profile as JSON with Redis down: %d %s, want 503 session_unavailable", resp.StatusCode, page)
	}
	r.Start() // empty: the session is gone, so the browser logs in again
	waitReady(t, srv.URL)
	if resp, page := decide(t, c, srv.URL, "approve"); resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/profile" {
		t.Errorf("login after Redis restarted: %d at %s:\n%s", resp.StatusCode, resp.Request.URL, page)
	}
}

// waitReady waits until the site's /readyz answers 200: after many failed
// dials go-redis fails fast, and probes Redis in the background until it
// answers.
func waitReady(t *testing.T, siteURL string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second) // against a hang, not a speed limit
	for {
		resp, body := get(t, http.DefaultClient, siteURL+"/readyz", "")
		if resp.StatusCode == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /readyz after Redis restarted: %d %s", resp.StatusCode, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestLoginCancelled(t *testing.T) {
	srv, _ := startSite(t, nil)
	c := newBrowser(t)
	resp, page := decide(t, c, srv.URL, "cancel")
	if resp.StatusCode < 400 {
		t.Errorf("after cancelling: got status %d, want >= 400", resp.StatusCode)
	}
	if !strings.Contains(page, "cancelled") || !strings.Contains(page, "Try again") {
		t.Errorf("after cancelling: the page does not say so or offer to try again:\n%s", page)
	}
	if resp, _ := get(t, c, srv.URL+"/profile", "application/json"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /profile after cancelling: got %d, want 401", resp.StatusCode)
	}
}

func TestProfileNeedsLogin(t *testing.T) {
	srv, _ := startSite(t, nil)
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	resp, body := get(t, c, srv.URL+"/profile", "application/json")
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Errorf("API client: got %d %s, want 401 JSON: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}

	resp, _ = get(t, c, srv.URL+"/profile", "text/html")
	loc, err := resp.Location()
	if resp.StatusCode/100 != 3 || err != nil || loc.Path != "/auth/login" || loc.Query().Get("return_to") != "/profile" {
		t.Errorf("browser: got %d to %v, want a redirect to /auth/login?return_to=/profile", resp.StatusCode, loc)
	}
}

func TestHealth(t *testing.T) {
	srv, _ := startSite(t, nil)
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, body := get(t, http.DefaultClient, srv.URL+path, "")
		if resp.StatusCode != http.StatusOK || body != "ok" {
			t.Errorf("GET %s: got %d %q, want 200 ok", path, resp.StatusCode, body)
		}
	}
}

func TestReadyWithoutProvider(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := "http://" + ln.Addr().String() + "/"
	ln.Close()
	srv, _ := startSite(t, map[string]string{"VIPPS_CLIENT_ID": "id", "VIPPS_CLIENT_SECRET": "secret", "VIPPS_ISSUER": gone})
	if resp, _ := get(t, http.DefaultClient, srv.URL+"/readyz", ""); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET /readyz with the provider down: got %d, want 503", resp.StatusCode)
	}
	if resp, _ := get(t, http.DefaultClient, srv.URL+"/healthz", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz with the provider down: got %d, want 200", resp.StatusCode)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"client id only", map[string]string{"VIPPS_CLIENT_ID": "id"}, "VIPPS_CLIENT_SECRET is empty"},
		{"client secret only", map[string]string{"VIPPS_CLIENT_SECRET": "secret"}, "VIPPS_CLIENT_ID is empty"},
		{"bad token auth", map[string]string{"VIPPS_TOKEN_AUTH": "private_key_jwt"}, "VIPPS_TOKEN_AUTH"},
		{"bad session store", map[string]string{"SESSION_STORE": "disk"}, "SESSION_STORE"},
		{"no openid scope", map[string]string{"VIPPS_SCOPES": "name email"}, "openid"},
		{"http base URL", map[string]string{"BASE_URL": "http://shop.example"}, "https"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"BASE_URL": "http://127.0.0.1:8080"}
			for k, v := range tt.env {
				env[k] = v
			}
			cfg, err := configFromEnv(func(k string) string { return env[k] })
			if err == nil {
				var s *site
				s, err = newSite(cfg, slog.New(slog.DiscardHandler))
				if err == nil {
					s.Close()
				}
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v, want one that says %q", err, tt.want)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := configFromEnv(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:8080" || cfg.BaseURL != "" || !cfg.devMode() ||
		strings.Join(cfg.Scopes, " ") != "openid name email phoneNumber" ||
		cfg.TokenAuth != "client_secret_basic" || cfg.SessionStore != "memory" {
		t.Errorf("defaults: got %+v", cfg)
	}
}

func TestSecureCookie(t *testing.T) {
	for base, want := range map[string]bool{"https://shop.example": true, "http://127.0.0.1:8080": false} {
		cfg, err := configFromEnv(func(k string) string {
			return map[string]string{"BASE_URL": base, "VIPPS_CLIENT_ID": "id", "VIPPS_CLIENT_SECRET": "secret"}[k]
		})
		if err != nil {
			t.Fatal(err)
		}
		s, err := newSite(cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		ck := s.sessions.Cookie
		if ck.Secure != want || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode {
			t.Errorf("BASE_URL=%s: cookie Secure=%v HttpOnly=%v SameSite=%v, want Secure=%v, HttpOnly, Lax",
				base, ck.Secure, ck.HttpOnly, ck.SameSite, want)
		}
		if got, want := s.auth.RedirectURI(), base+"/auth/callback"; got != want {
			t.Errorf("redirect URI: got %q, want %q", got, want)
		}
		s.Close()
	}
}

func TestDefaultBaseURL(t *testing.T) {
	got := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 41234}
	tests := []struct{ addr, want string }{
		{"127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"localhost:8080", "http://localhost:8080"},
		{":8080", "http://localhost:8080"},
		{"0.0.0.0:8080", "http://localhost:8080"},
		{"127.0.0.1:0", "http://127.0.0.1:41234"},
		{"[::1]:8080", "http://[::1]:8080"},
	}
	for _, tt := range tests {
		if got := defaultBaseURL(tt.addr, got); got != tt.want {
			t.Errorf("defaultBaseURL(%q): got %q, want %q", tt.addr, got, tt.want)
		}
	}
}

// TestMetrics scrapes /metrics after a login and a cancelled login: the
// counters and the histogram of calls to the provider that vippslogin's
// Metrics feed are there, with the Go runtime's metrics.
func TestMetrics(t *testing.T) {
	srv, _ := startSite(t, nil)
	if resp, _ := decide(t, newBrowser(t), srv.URL, "approve"); resp.Request.URL.Path != "/profile" {
		t.Fatalf("after approving: at %s, want /profile", resp.Request.URL)
	}
	decide(t, newBrowser(t), srv.URL, "cancel")

	resp, body := get(t, http.DefaultClient, srv.URL+"/metrics", "")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{
		"vippslogin_logins_started_total 2\n",
		"vippslogin_logins_finished_total 1\n",
		`vippslogin_logins_failed_total{kind="access_denied"} 1` + "\n",
		`vippslogin_provider_call_duration_seconds_count{endpoint="discovery",outcome="ok"} 1` + "\n",
		`vippslogin_provider_call_duration_seconds_count{endpoint="jwks",outcome="ok"} 1` + "\n",
		`vippslogin_provider_call_duration_seconds_count{endpoint="token",outcome="ok"} 1` + "\n",
		`vippslogin_provider_call_duration_seconds_count{endpoint="userinfo",outcome="ok"} 1` + "\n",
		`vippslogin_provider_call_duration_seconds_bucket{endpoint="token",outcome="ok",le="+Inf"} 1` + "\n",
		"go_goroutines ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
}

// TestLogsCarryRequestID: every record of a login, vippslogin's too, carries
// the id of the request it belongs to, which the answer names.
func TestLogsCarryRequestID(t *testing.T) {
	var logs strings.Builder
	var mu sync.Mutex
	srv := httptest.NewUnstartedServer(nil)
	cfg, err := configFromEnv(envMap{"BASE_URL": "http://" + srv.Listener.Addr().String()}.get)
	if err != nil {
		t.Fatal(err)
	}
	s, err := newSite(cfg, slog.New(slog.NewJSONHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	srv.Config.Handler = s.handler
	srv.Start()
	t.Cleanup(srv.Close)

	c := newBrowser(t)
	var ids []string
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if id := req.Response.Header.Get("X-Request-Id"); id != "" {
			ids = append(ids, id)
		}
		return nil
	}
	if resp, _ := decide(t, c, srv.URL, "approve"); resp.Request.URL.Path != "/profile" {
		t.Fatalf("after approving: at %s, want /profile", resp.Request.URL)
	}

	mu.Lock()
	defer mu.Unlock()
	steps := 0
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		msg, _ := rec["msg"].(string)
		if !strings.HasPrefix(msg, "vippslogin: ") {
			continue
		}
		steps++
		if id, _ := rec["request_id"].(string); !slices.Contains(ids, id) {
			t.Errorf("record %q has request_id %q, not one of the login's requests %q", msg, id, ids)
		}
	}
	if steps < 6 {
		t.Errorf("%d records of vippslogin, want every step of the login:\n%s", steps, logs.String())
	}
}

// writerFunc is an io.Writer.
type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// envMap is an environment for configFromEnv.
type envMap map[string]string

func (e envMap) get(k string) string { return e[k] }
