package vippslogin_test

import (
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/go-chi/chi/v5"
	"github.com/vippslogin/vippslogin"
	"github.com/vippslogin/vippslogin/vippstest"
)

// A site with one protected page, logging in against the mock provider. A
// browser that asks for the page is sent through the login and back.
func ExampleNew() {
	idp, err := vippstest.New(vippstest.Config{AutoApprove: true})
	if err != nil {
		log.Fatal(err)
	}
	defer idp.Close()

	site := httptest.NewUnstartedServer(nil)
	sessions := scs.New()
	auth, err := vippslogin.New(vippslogin.Config{
		ClientID:     idp.ClientID(),
		ClientSecret: vippslogin.Secret(idp.ClientSecret()),
		Issuer:       idp.Issuer(), // or Environment: vippslogin.Test
		BaseURL:      "http://" + site.Listener.Addr().String(),
		Sessions:     sessions,
		Scopes:       []string{"openid", "name"},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer auth.Close()
	idp.AddRedirectURI(auth.RedirectURI())

	account := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, _ := vippslogin.ClaimsFromContext(r.Context())
		fmt.Fprintf(w, "Hello, %s!", claims.Name)
	})
	mux := http.NewServeMux()
	mux.Handle("/auth/", auth.Handler())
	mux.Handle("/account", auth.RequireLogin(account))
	site.Config.Handler = auth.LoadAndSave(mux)
	site.Start()
	defer site.Close()

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	resp, err := browser.Get(site.URL + "/account")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.Request.URL.Path, string(body))
	// Output: /account Hello, Kari Nordmann!
}

// RequireLogin redirects a browser to the login route, but answers API,
// XHR, fetch and htmx requests with 401 and JSON.
func ExampleClient_RequireLogin() {
	sessions := scs.New()
	sessions.Cookie.Secure = true
	auth, err := vippslogin.New(vippslogin.Config{
		ClientID:     "client-id",
		ClientSecret: "client-secret",
		Environment:  vippslogin.Test,
		BaseURL:      "https://shop.example",
		Sessions:     sessions,
	})
	if err != nil {
		log.Fatal(err)
	}
	orders := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "your orders") })
	h := auth.LoadAndSave(auth.RequireLogin(orders))

	page := httptest.NewRequest(http.MethodGet, "https://shop.example/orders?page=2", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, page)
	fmt.Println(w.Code, w.Header().Get("Location"))

	api := httptest.NewRequest(http.MethodGet, "https://shop.example/orders", nil)
	api.Header.Set("Accept", "application/json")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, api)
	fmt.Println(w.Code, strings.TrimSpace(w.Body.String()))
	// Output:
	// 303 /auth/login?return_to=%2Forders%3Fpage%3D2
	// 401 {"error":"login_required","message":"You need to log in to see this page.","login_url":"/auth/login?return_to=%2Forders"}
}

// LoadAndSave keeps a site serving while its session store is down: a
// visitor whose session cannot be loaded sees public pages as a guest, and
// pages that need a login answer 503 instead of starting a login.
func ExampleClient_LoadAndSave() {
	sessions := scs.New()
	sessions.Store = unreachableStore{} // Redis is down, say
	auth, err := vippslogin.New(vippslogin.Config{
		ClientID:     "client-id",
		ClientSecret: "client-secret",
		Environment:  vippslogin.Test,
		BaseURL:      "http://localhost:8080",
		Sessions:     sessions,
		Logger:       slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	sessions.ErrorFunc = auth.SessionError // for a store that fails while a session is saved

	mux := http.NewServeMux()
	mux.Handle("/auth/", auth.Handler())
	mux.Handle("/{$}", auth.LoadClaims(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if claims, ok := vippslogin.ClaimsFromContext(r.Context()); ok {
			fmt.Fprintf(w, "Welcome back, %s", claims.Name)
			return
		}
		fmt.Fprint(w, "Welcome, guest")
	})))
	mux.Handle("/orders", auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "your orders")
	})))
	h := auth.LoadAndSave(mux) // in place of sessions.LoadAndSave(mux)

	for _, path := range []string{"/", "/orders"} {
		r := httptest.NewRequest(http.MethodGet, "http://localhost:8080"+path, nil)
		r.Header.Set("Accept", "application/json")
		r.AddCookie(&http.Cookie{Name: "session", Value: "token-of-a-logged-in-visitor"})
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Println(path, w.Code, strings.TrimSpace(w.Body.String()), w.Header().Values("Set-Cookie"))
	}
	// Output:
	// / 200 Welcome, guest []
	// /orders 503 {"error":"session_unavailable","message":"This site can't reach its session storage at the moment. Please try again in a minute."} []
}

// unreachableStore is an scs store that cannot be reached.
type unreachableStore struct{}

var errUnreachableStore = errors.New("connection refused")

func (unreachableStore) Find(string) ([]byte, bool, error)      { return nil, false, errUnreachableStore }
func (unreachableStore) Commit(string, []byte, time.Time) error { return errUnreachableStore }
func (unreachableStore) Delete(string) error                    { return errUnreachableStore }

// Handlers behind RequireLogin read the verified claims from the context.
// ContextWithClaims puts claims there, so such handlers can be unit-tested
// without a login.
func ExampleClaimsFromContext() {
	greet := func(w http.ResponseWriter, r *http.Request) {
		claims, ok := vippslogin.ClaimsFromContext(r.Context())
		if !ok {
			http.Error(w, "not logged in", http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, "Hei, %s (%s)", claims.GivenName, claims.PhoneNumber)
	}

	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r = r.WithContext(vippslogin.ContextWithClaims(r.Context(), &vippslogin.Claims{
		Subject:     "c3a9f3e2-5d1b-4f0e-9a6c-2b7d8e4f1a05",
		GivenName:   "Kari",
		PhoneNumber: "4791234567",
	}))
	w := httptest.NewRecorder()
	greet(w, r)
	fmt.Println(w.Body.String())
	// Output: Hei, Kari (4791234567)
}

// newExampleSite starts the mock provider and a site whose Client logs in
// against it, with routes from mount; the caller closes what it returns.
func newExampleSite(mount func(auth *vippslogin.Client) http.Handler) (site *httptest.Server, closeAll func()) {
	idp, err := vippstest.New(vippstest.Config{AutoApprove: true})
	if err != nil {
		log.Fatal(err)
	}
	site = httptest.NewUnstartedServer(nil)
	sessions := scs.New()
	auth, err := vippslogin.New(vippslogin.Config{
		ClientID:     idp.ClientID(),
		ClientSecret: vippslogin.Secret(idp.ClientSecret()),
		Issuer:       idp.Issuer(),
		BaseURL:      "http://" + site.Listener.Addr().String(),
		Sessions:     sessions,
		Scopes:       []string{"openid", "name"},
		Logger:       slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	idp.AddRedirectURI(auth.RedirectURI())
	site.Config.Handler = auth.LoadAndSave(mount(auth))
	site.Start()
	return site, func() { site.Close(); auth.Close(); idp.Close() }
}

// MountChi puts the login, callback, logout and confirmation routes on a
// chi router, at Config.AuthPath; chi's middleware style guards pages.
func ExampleClient_MountChi() {
	site, closeAll := newExampleSite(func(auth *vippslogin.Client) http.Handler {
		r := chi.NewRouter()
		auth.MountChi(r)
		r.With(auth.RequireLogin).Get("/account", func(w http.ResponseWriter, r *http.Request) {
			claims, _ := vippslogin.ClaimsFromContext(r.Context())
			fmt.Fprintf(w, "Hello, %s!", claims.Name)
		})
		_ = chi.Walk(r, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
			fmt.Println(method, route)
			return nil
		})
		return r
	})
	defer closeAll()

	jar, _ := cookiejar.New(nil)
	resp, err := (&http.Client{Jar: jar}).Get(site.URL + "/account")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(string(body))
	// Unordered output:
	// GET /account
	// GET /auth/callback
	// POST /auth/confirm
	// GET /auth/login
	// GET /auth/logout
	// HEAD /auth/logout
	// POST /auth/logout
	// Hello, Kari Nordmann!
}

// StartLogin starts a login with Vipps' options from the site's own
// handler: here one that brings the user back from the app by itself and
// asks for the login to be confirmed in the app.
func ExampleClient_StartLogin() {
	site, closeAll := newExampleSite(func(auth *vippslogin.Client) http.Handler {
		mux := http.NewServeMux()
		mux.Handle("/auth/", auth.Handler())
		mux.HandleFunc("/checkout/login", func(w http.ResponseWriter, r *http.Request) {
			auth.StartLogin(w, r, vippslogin.LoginOptions{
				ReturnTo: "/checkout",
				Flow:     vippslogin.FlowAutomaticReturn,
				StepUp:   true,
			})
		})
		return mux
	})
	defer closeAll()

	noRedirects := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirects.Get(site.URL + "/checkout/login")
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	authz, _ := url.Parse(resp.Header.Get("Location"))
	q := authz.Query()
	fmt.Println(resp.StatusCode, authz.Path)
	fmt.Println("requested_flow:", q.Get("requested_flow"))
	fmt.Println("acr_values:", q.Get("acr_values"))
	fmt.Println("code_challenge_method:", q.Get("code_challenge_method"))
	// Output:
	// 302 /access-management-1.0/access/oauth2/auth
	// requested_flow: automatic_return_from_vipps_app
	// acr_values: urn:vipps:acr:app_auth
	// code_challenge_method: S256
}

// RequireStepUp guards a page that needs a login confirmed in the app: a
// user logged in the ordinary way is sent through such a login first.
func ExampleClient_RequireStepUp() {
	site, closeAll := newExampleSite(func(auth *vippslogin.Client) http.Handler {
		mux := http.NewServeMux()
		mux.Handle("/auth/", auth.Handler())
		mux.Handle("/account", auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, "account")
		})))
		mux.Handle("/transfer", auth.RequireStepUp(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			claims, _ := vippslogin.ClaimsFromContext(r.Context())
			fmt.Fprintf(w, "transfer, confirmed with %s", claims.ACR)
		})))
		return mux
	})
	defer closeAll()

	jar, _ := cookiejar.New(nil)
	var hops []string
	browser := &http.Client{Jar: jar, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		if r.URL.Host == strings.TrimPrefix(site.URL, "http://") && r.URL.Path == "/auth/login" {
			hops = append(hops, r.URL.RequestURI())
		}
		return nil
	}}
	for _, path := range []string{"/account", "/transfer"} {
		hops = nil
		resp, err := browser.Get(site.URL + path)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(path, hops, string(body))
	}
	// Output:
	// /account [/auth/login?return_to=%2Faccount] account
	// /transfer [/auth/login?return_to=%2Ftransfer&step_up=1] transfer, confirmed with urn:vipps:acr:app_auth
}
