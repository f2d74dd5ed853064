package vippslogin_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
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
	resp, err = http.Get(site.URL + "/auth/logout")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /auth/logout = %d, want 405", resp.StatusCode)
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
