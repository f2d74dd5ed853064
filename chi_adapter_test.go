package vippslogin_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/alexedwards/scs/v2"
	"github.com/go-chi/chi/v5"
	"github.com/vippslogin/vippslogin"
	"github.com/vippslogin/vippslogin/vippstest"
)

// chiSite starts a chi site whose routes are set up by route, with BaseURL
// = site URL + basePath.
func chiSite(t *testing.T, basePath string, route func(r chi.Router, auth *vippslogin.Client)) (*httptest.Server, *vippstest.Provider, *error) {
	t.Helper()
	idp, err := vippstest.New(vippstest.Config{AutoApprove: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(idp.Close)
	site := httptest.NewUnstartedServer(nil)
	sessions := scs.New()
	var lastErr error
	auth, err := vippslogin.New(vippslogin.Config{
		ClientID:     idp.ClientID(),
		ClientSecret: vippslogin.Secret(idp.ClientSecret()),
		Issuer:       idp.Issuer(),
		BaseURL:      "http://" + site.Listener.Addr().String() + basePath,
		Sessions:     sessions,
		Scopes:       []string{"openid", "name"},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			lastErr = err
			vippslogin.WriteError(w, r, err)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = auth.Close() })
	idp.AddRedirectURI(auth.RedirectURI())
	r := chi.NewRouter()
	r.Use(sessions.LoadAndSave)
	route(r, auth)
	site.Config.Handler = r
	site.Start()
	t.Cleanup(site.Close)
	return site, idp, &lastErr
}

func hello(w http.ResponseWriter, r *http.Request) {
	c, _ := vippslogin.ClaimsFromContext(r.Context())
	fmt.Fprintf(w, "hello %s", c.Name)
}

func TestMountChi(t *testing.T) {
	site, _, _ := chiSite(t, "", func(r chi.Router, auth *vippslogin.Client) {
		auth.MountChi(r)
		r.With(auth.RequireLogin).Get("/account", hello)
	})
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	resp, err := browser.Get(site.URL + "/account")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "hello Kari Nordmann" {
		t.Fatalf("GET /account after login = %d %q", resp.StatusCode, body)
	}

	// chi answers other methods with 405 and Allow.
	resp, err = http.Post(site.URL+"/auth/login", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	allow := strings.Join(resp.Header.Values("Allow"), ", ")
	if resp.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(allow, "GET") {
		t.Errorf("POST /auth/login = %d, Allow %q; want 405 with GET allowed", resp.StatusCode, allow)
	}
	req, err := http.NewRequest(http.MethodDelete, site.URL+"/auth/logout", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	allow = strings.Join(resp.Header.Values("Allow"), ", ")
	if resp.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(allow, "GET") || !strings.Contains(allow, "POST") {
		t.Errorf("DELETE /auth/logout = %d, Allow %q; want 405 with GET and POST allowed", resp.StatusCode, allow)
	}
}

func TestMountChiSubRouter(t *testing.T) {
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	t.Run("prefix in BaseURL", func(t *testing.T) {
		site, idp, _ := chiSite(t, "/shop", func(r chi.Router, auth *vippslogin.Client) {
			r.Route("/shop", func(r chi.Router) { auth.MountChi(r) })
		})
		resp, err := noFollow.Get(site.URL + "/shop/auth/login")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), idp.URL()) {
			t.Fatalf("login = %d %q, want a redirect to the provider", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
	t.Run("prefix missing from BaseURL", func(t *testing.T) {
		site, idp, lastErr := chiSite(t, "", func(r chi.Router, auth *vippslogin.Client) {
			r.Route("/shop", func(r chi.Router) { auth.MountChi(r) })
		})
		resp, err := noFollow.Get(site.URL + "/shop/auth/login")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusInternalServerError {
			t.Fatalf("login = %d, want 500", resp.StatusCode)
		}
		if !errors.Is(*lastErr, vippslogin.ErrInvalidConfig) || !strings.Contains((*lastErr).Error(), "/shop/auth/login") {
			t.Errorf("error = %v, want an ErrInvalidConfig naming the route", *lastErr)
		}
		if n := idp.Hits(vippstest.Authorize); n != 0 {
			t.Errorf("provider saw %d authorize requests, want 0", n)
		}
	})
}

// MountChi and Handler serve the same routes, from one table: every route
// chi has below /auth is one Handler serves for the same method, and the
// list is the one the package documents.
func TestMountChiRoutes(t *testing.T) {
	var auth *vippslogin.Client
	site, _, _ := chiSite(t, "", func(r chi.Router, a *vippslogin.Client) {
		auth = a
		a.MountChi(r)
	})
	_ = site
	r := chi.NewRouter()
	auth.MountChi(r)
	var got []string
	err := chi.Walk(r, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		got = append(got, method+" "+route)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	want := []string{"GET /auth/callback", "GET /auth/login", "GET /auth/logout", "HEAD /auth/logout",
		"POST /auth/confirm", "POST /auth/logout"}
	if !slices.Equal(got, want) {
		t.Errorf("chi routes %q, want %q", got, want)
	}
	mux := auth.Handler().(*http.ServeMux)
	for _, route := range got {
		method, path, _ := strings.Cut(route, " ")
		_, pattern := mux.Handler(httptest.NewRequest(method, path, nil))
		if pattern == "" || !strings.HasPrefix(pattern, method+" ") {
			t.Errorf("Handler does not serve %s (pattern %q)", route, pattern)
		}
	}
}

// With chi, a login that came back in another browser is finished by the
// confirmation page's Continue button (POST /auth/confirm).
func TestMountChiConfirm(t *testing.T) {
	site, _, lastErr := chiSite(t, "", func(r chi.Router, auth *vippslogin.Client) {
		auth.MountChi(r)
		r.Get("/start", func(w http.ResponseWriter, r *http.Request) {
			auth.StartLogin(w, r, vippslogin.LoginOptions{Flow: vippslogin.FlowAutomaticReturn, ReturnTo: "/account"})
		})
		r.With(auth.RequireLogin).Get("/account", hello)
	})
	newBrowser := func() *http.Client {
		jar, _ := cookiejar.New(nil)
		return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	starter, other := newBrowser(), newBrowser()
	get := func(c *http.Client, u string) (*http.Response, string) {
		t.Helper()
		resp, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	resp, _ := get(starter, site.URL+"/start")
	authz := resp.Header.Get("Location")
	resp, _ = get(other, authz)
	cb := resp.Header.Get("Location")
	resp, body := get(other, cb)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `action="/auth/confirm"`) {
		t.Fatalf("callback in another browser: %d (error %v)\n%s", resp.StatusCode, *lastErr, body)
	}
	login := confirmLoginField.FindStringSubmatch(body)
	if login == nil {
		t.Fatalf("the confirmation page names no login:\n%s", body)
	}
	resp, err := other.PostForm(site.URL+"/auth/confirm", url.Values{"action": {"continue"}, "login": {login[1]}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/account" {
		t.Fatalf("Continue: %d %q (error %v)", resp.StatusCode, resp.Header.Get("Location"), *lastErr)
	}
	if resp, body := get(other, site.URL+"/account"); resp.StatusCode != http.StatusOK || body != "hello Kari Nordmann" {
		t.Fatalf("GET /account after Continue = %d %q", resp.StatusCode, body)
	}
	if resp, _ := get(starter, site.URL+"/account"); resp.StatusCode == http.StatusOK {
		t.Fatal("the starting browser is logged in")
	}
}

// With chi, under a sub-router, a logout link shows the page, also to
// HEAD, and logs nobody out; the page's form, which posts to the route at
// its full path, does.
func TestMountChiLogoutLink(t *testing.T) {
	site, _, lastErr := chiSite(t, "/shop", func(r chi.Router, auth *vippslogin.Client) {
		r.Route("/shop", func(r chi.Router) {
			auth.MountChi(r)
			r.With(auth.RequireLogin).Get("/account", hello)
		})
	})
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	noFollow := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(c *http.Client, method, u string, body io.Reader) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(method, site.URL+u, body)
		if err != nil {
			t.Fatal(err)
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Sec-Fetch-Site", "same-origin")
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	loggedIn := func() bool {
		t.Helper()
		resp, _ := do(noFollow, http.MethodGet, "/shop/account", nil)
		return resp.StatusCode == http.StatusOK
	}
	if resp, body := do(browser, http.MethodGet, "/shop/account", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d %q (error %v)", resp.StatusCode, body, *lastErr)
	}

	resp, body := do(noFollow, http.MethodGet, "/shop/auth/logout?return_to=/shop/bye", nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("GET: %d, Cache-Control %q; want 200, no-store", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	action, form := logoutForm(t, body)
	if action != "/shop/auth/logout" || form.Get("return_to") != "/shop/bye" {
		t.Errorf("form posts %v to %q, want return_to /shop/bye to /shop/auth/logout", form, action)
	}
	if resp, body := do(noFollow, http.MethodHead, "/shop/auth/logout", nil); resp.StatusCode != http.StatusOK || body != "" {
		t.Errorf("HEAD: %d with body %q, want 200 and none", resp.StatusCode, body)
	}
	if !loggedIn() {
		t.Fatal("GET or HEAD logged the browser out")
	}

	resp, _ = do(noFollow, http.MethodPost, action, strings.NewReader(form.Encode()))
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/shop/bye" {
		t.Fatalf("POST: %d %q, want 303 /shop/bye (error %v)", resp.StatusCode, resp.Header.Get("Location"), *lastErr)
	}
	if loggedIn() {
		t.Error("still logged in after posting the form")
	}
}
