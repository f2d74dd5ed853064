package main

import (
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/vippslogin/vippslogin/vippstest"
)

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

func TestLogin(t *testing.T) {
	srv := httptest.NewUnstartedServer(nil)
	handler, cleanup, err := newApp(func(string) string { return "" }, "http://"+srv.Listener.Addr().String(), slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	t.Cleanup(cleanup)
	srv.Config.Handler = handler
	srv.Start()
	t.Cleanup(srv.Close)

	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar}

	_, page := get(t, c, srv.URL+"/", "")
	if !strings.Contains(page, `href="/auth/login?return_to=/profile"`) {
		t.Fatalf("home page has no login button:\n%s", page)
	}

	// The mock provider's consent page: post "approve" to its form.
	resp, page := get(t, c, srv.URL+"/auth/login?return_to=/profile", "")
	action := regexp.MustCompile(`<form[^>]*\baction="([^"]*)"`).FindStringSubmatch(page)
	request := regexp.MustCompile(`name="request"\s+value="([^"]*)"`).FindStringSubmatch(page)
	if resp.StatusCode != http.StatusOK || action == nil || request == nil {
		t.Fatalf("login: got %d, want the consent page:\n%s", resp.StatusCode, page)
	}
	target, err := resp.Request.URL.Parse(html.UnescapeString(action[1]))
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"request": {html.UnescapeString(request[1])}, "decision": {"approve"}}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, target.String(), strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, _ = do(t, c, req)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/profile" {
		t.Fatalf("after approving: got %d at %s, want 200 at /profile", resp.StatusCode, resp.Request.URL)
	}

	want := vippstest.DefaultUsers()[0]
	resp, body := get(t, c, srv.URL+"/profile", "application/json")
	var claims map[string]any
	if err := json.Unmarshal([]byte(body), &claims); resp.StatusCode != http.StatusOK || err != nil {
		t.Fatalf("GET /profile as JSON: got %d, %v: %s", resp.StatusCode, err, body)
	}
	if claims["sub"] != want.Sub || claims["name"] != want.Name {
		t.Errorf("claims: got sub %v name %v, want %q %q", claims["sub"], claims["name"], want.Sub, want.Name)
	}

	req, err = http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/auth/logout", nil)
	if err != nil {
		t.Fatal(err)
	}
	do(t, c, req)
	if resp, _ := get(t, c, srv.URL+"/profile", "application/json"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /profile after logout: got %d, want 401", resp.StatusCode)
	}
}

func TestOneCredentialOnly(t *testing.T) {
	env := map[string]string{"VIPPS_CLIENT_ID": "id"}
	_, _, err := newApp(func(k string) string { return env[k] }, "http://127.0.0.1:8080", slog.New(slog.DiscardHandler))
	if err == nil {
		t.Fatal("newApp with VIPPS_CLIENT_ID only: got no error")
	}
}
