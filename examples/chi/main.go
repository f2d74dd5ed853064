// Command chi is a small web site with "Log in with Vipps MobilePay" on the
// chi router. Run it without credentials and it logs in against a mock
// provider that it starts inside the process (package vippstest):
//
//	go run ./examples/chi
//
// With the client id and secret of a sales unit in the Vipps MobilePay test
// environment it logs in with Vipps; register the redirect URI that it logs
// at start-up in the portal first.
//
// # Environment
//
//	ADDR                 listen address; default 127.0.0.1:8080
//	BASE_URL             public base URL; default http:// + ADDR
//	VIPPS_CLIENT_ID      client id; leave it and the secret empty to use
//	VIPPS_CLIENT_SECRET  the embedded mock provider
//	VIPPS_ISSUER         issuer URL; default the Vipps test environment
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/go-chi/chi/v5"

	"github.com/vippslogin/vippslogin"
	"github.com/vippslogin/vippslogin/vippstest"
)

func main() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(logger); err != nil {
		logger.Error("exiting with an error", "error", err)
		os.Exit(1)
	}
}

func run(logger *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	addr := cmp.Or(os.Getenv("ADDR"), "127.0.0.1:8080")
	baseURL := cmp.Or(os.Getenv("BASE_URL"), "http://"+addr)
	handler, cleanup, err := newApp(os.Getenv, baseURL, logger)
	if err != nil {
		return err
	}
	defer cleanup()

	srv := &http.Server{
		Addr:              addr,
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	served := make(chan error, 1)
	go func() { served <- srv.ListenAndServe() }()
	logger.Info("the site is up; open it in a browser", "url", strings.TrimSuffix(baseURL, "/")+"/")
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}

// newApp builds the site's router. Without VIPPS_CLIENT_ID and
// VIPPS_CLIENT_SECRET it starts the mock provider, which cleanup stops.
func newApp(getenv func(string) string, baseURL string, logger *slog.Logger) (_ http.Handler, _ func(), err error) {
	var closers []func()
	cleanup := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	defer func() {
		if err != nil {
			cleanup()
		}
	}()

	sessions := scs.New()
	sessions.Lifetime = 12 * time.Hour
	sessions.Cookie.Secure = strings.HasPrefix(baseURL, "https://")

	cfg := vippslogin.Config{
		ClientID:     getenv("VIPPS_CLIENT_ID"),
		ClientSecret: vippslogin.Secret(getenv("VIPPS_CLIENT_SECRET")),
		Environment:  vippslogin.Test,
		Issuer:       getenv("VIPPS_ISSUER"),
		BaseURL:      baseURL,
		Sessions:     sessions,
		Scopes:       []string{"openid", "name", "email", "phoneNumber"},
		Logger:       logger,
	}
	var mock *vippstest.Provider
	switch {
	case cfg.ClientID == "" && cfg.ClientSecret == "":
		if mock, err = vippstest.New(vippstest.Config{}); err != nil {
			return nil, nil, err
		}
		closers = append(closers, mock.Close)
		cfg.ClientID, cfg.ClientSecret, cfg.Issuer = mock.ClientID(), vippslogin.Secret(mock.ClientSecret()), mock.Issuer()
	case cfg.ClientID == "" || cfg.ClientSecret == "":
		return nil, nil, errors.New("set both VIPPS_CLIENT_ID and VIPPS_CLIENT_SECRET, or neither to use the embedded mock provider")
	}
	auth, err := vippslogin.New(cfg)
	if err != nil {
		return nil, nil, err
	}
	closers = append(closers, func() { _ = auth.Close() })
	if mock != nil {
		mock.AddRedirectURI(auth.RedirectURI())
		logger.Warn("dev mode is on: logins go to the embedded mock provider; never run this in production", "issuer", mock.Issuer())
	} else {
		logger.Info("logging in with Vipps MobilePay", "issuer", cmp.Or(cfg.Issuer, "https://apitest.vipps.no/access-management-1.0/access/"), "redirect_uri", auth.RedirectURI())
	}

	r := chi.NewRouter()
	// auth.LoadAndSave is sessions.LoadAndSave that keeps serving while the
	// session store is down, and reads scs's sessions in a tenth of the time.
	r.Use(auth.LoadAndSave)
	auth.MountChi(r) // GET /auth/login, GET /auth/callback, GET and POST /auth/logout
	r.With(auth.LoadClaims).Get("/", func(w http.ResponseWriter, r *http.Request) {
		c, _ := vippslogin.ClaimsFromContext(r.Context()) // nil when logged out
		render(w, "home", c)
	})
	r.With(auth.RequireLogin).Get("/profile", func(w http.ResponseWriter, r *http.Request) {
		c, _ := vippslogin.ClaimsFromContext(r.Context())
		w.Header().Add("Vary", "Accept")
		if strings.Contains(r.Header.Get("Accept"), "application/json") {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			_ = json.NewEncoder(w).Encode(c)
			return
		}
		render(w, "profile", c)
	})
	return r, cleanup, nil
}

func render(w http.ResponseWriter, name string, c *vippslogin.Claims) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("Cache-Control", "no-store")
	_ = pages.ExecuteTemplate(w, name, c)
}

var pages = template.Must(template.New("").Parse(`
{{define "top"}}<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>vippslogin on chi</title>
<style>
body{margin:0;font:17px/1.55 system-ui,sans-serif;color:#1f1f1f;background:#f6f3f0}
main{max-width:36rem;margin:3rem auto;padding:2rem;background:#fff;border-radius:14px;box-shadow:0 1px 4px rgba(0,0,0,.08)}
.button{display:inline-block;font:inherit;font-size:1.2rem;font-weight:700;padding:.8rem 1.6rem;border:0;border-radius:999px;background:#ff5b24;color:#fff;text-decoration:none;cursor:pointer}
.button.quiet{font-size:1rem;background:#1f1f1f}
a:focus-visible,.button:focus-visible{outline:3px solid #1f1f1f;outline-offset:3px}
dt{color:#5c5650}
dd{margin:0 0 .75rem}
</style>
</head>
<body>
<main>{{end}}

{{define "bottom"}}</main>
</body>
</html>{{end}}

{{define "logout"}}<form method="post" action="/auth/logout"><button class="button quiet" type="submit">Log out</button></form>{{end}}

{{define "home"}}{{template "top"}}
{{if .}}
<h1>Hello{{with .Name}}, {{.}}{{end}}</h1>
<p><a href="/profile">See your profile</a></p>
{{template "logout"}}
{{else}}
<h1>Welcome</h1>
<p>An example of "Log in with Vipps MobilePay" on chi.</p>
<a class="button" href="/auth/login?return_to=/profile">Log in with Vipps</a>
{{end}}
{{template "bottom"}}{{end}}

{{define "profile"}}{{template "top"}}
<h1>Your profile</h1>
<dl>
{{with .Name}}<dt>Name</dt><dd>{{.}}</dd>{{end}}
{{with .Email}}<dt>Email</dt><dd>{{.}}</dd>{{end}}
{{with .PhoneNumber}}<dt>Phone</dt><dd>+{{.}}</dd>{{end}}
<dt>User id (sub)</dt><dd>{{.Subject}}</dd>
</dl>
{{template "logout"}}
<p><a href="/">Home</a></p>
{{template "bottom"}}{{end}}
`))
