// Command basic is a small web site with "Log in with Vipps MobilePay",
// built on net/http, scs sessions and vippslogin.
//
// Without credentials it runs in dev mode: it starts a mock of the Vipps
// MobilePay login provider inside the process (package vippstest) and logs
// in against that, so the whole login works on a laptop without network or
// a Vipps account:
//
//	go run ./examples/basic
//
// and open http://127.0.0.1:8080/. With the client id and secret of a sales
// unit in the Vipps MobilePay test environment it logs in with Vipps:
//
//	VIPPS_CLIENT_ID=... VIPPS_CLIENT_SECRET=... go run ./examples/basic
//
// Register the redirect URI that the site logs at start-up
// (http://127.0.0.1:8080/auth/callback by default) for the sales unit in the
// Vipps MobilePay portal first.
//
// The site speaks English or Norwegian (Bokmål), as the browser's
// Accept-Language prefers, through the whole login: its own pages, the
// login button, vippslogin's pages and the mock provider's. It takes the
// language from vippslogin.Language, so a middleware that sets one with
// vippslogin.WithLanguage changes the site's pages and vippslogin's alike.
// A failed or cancelled login shows vippslogin's texts in the site's own
// layout (vippslogin.PageFor); API clients get vippslogin's JSON.
//
// # Environment
//
//	ADDR                 listen address; default 127.0.0.1:8080
//	BASE_URL             public base URL; default http:// + ADDR.
//	                     The redirect URI is BASE_URL + /auth/callback, and
//	                     cookies are Secure when BASE_URL is https.
//	VIPPS_CLIENT_ID      client id of the sales unit; leave it and
//	VIPPS_CLIENT_SECRET  the client secret both empty for dev mode
//	VIPPS_ISSUER         issuer URL; default the Vipps test environment.
//	                     Ignored in dev mode.
//	VIPPS_SCOPES         space-separated scopes; default
//	                     "openid name email phoneNumber"
//	VIPPS_TOKEN_AUTH     client_secret_basic (default) or client_secret_post
//	SESSION_STORE        memory (default) or redis
//	REDIS_ADDR           host:port of Redis, for SESSION_STORE=redis;
//	                     default 127.0.0.1:6379
//	LOG_LEVEL            info (default), or debug for a record of each
//	                     step of every login and each call to Vipps
//
// # Routes
//
//	GET  /               home page, public
//	GET  /profile        what Vipps shared; JSON for Accept: application/json
//	GET  /auth/login     starts a login; ?return_to=/path says where it ends
//	GET  /auth/callback  where Vipps sends the user back
//	GET  /auth/logout    a page whose button logs out, for logout links
//	POST /auth/logout    ends the session
//	GET  /healthz        200 while the process serves requests
//	GET  /readyz         200 when the login provider (and Redis, when
//	                     used) can be reached, else 503
//	GET  /metrics        Prometheus metrics: logins started, finished
//	                     and failed by kind, and the time calls to Vipps
//	                     take (see metrics.go)
//
// # Logs
//
// Every request gets an id (X-Request-Id), which every log record of the
// request carries, vippslogin's included: grep one id to follow a login.
package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/alexedwards/scs/v2"
	"github.com/redis/go-redis/v9"

	"github.com/vippslogin/vippslogin"
	"github.com/vippslogin/vippslogin/vippstest"
)

func main() {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cmp.Or(os.Getenv("LOG_LEVEL"), "info"))); err != nil {
		fmt.Fprintln(os.Stderr, "LOG_LEVEL is not debug, info, warn or error")
		os.Exit(2)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if err := run(logger, os.Getenv); err != nil {
		logger.Error("exiting with an error", "error", err)
		os.Exit(1)
	}
}

// config is the site's configuration, read from the environment.
type config struct {
	Addr         string
	BaseURL      string // "" until the listener's address is known
	ClientID     string
	ClientSecret vippslogin.Secret
	Issuer       string
	Scopes       []string
	TokenAuth    string
	SessionStore string // "memory" or "redis"
	RedisAddr    string
}

// devMode reports whether the site logs in against the embedded mock
// provider instead of Vipps.
func (c config) devMode() bool { return c.ClientID == "" && c.ClientSecret == "" }

// configFromEnv reads the configuration with getenv (os.Getenv outside
// tests) and checks what vippslogin.New does not.
func configFromEnv(getenv func(string) string) (config, error) {
	cfg := config{
		Addr:         cmp.Or(getenv("ADDR"), "127.0.0.1:8080"),
		BaseURL:      getenv("BASE_URL"),
		ClientID:     getenv("VIPPS_CLIENT_ID"),
		ClientSecret: vippslogin.Secret(getenv("VIPPS_CLIENT_SECRET")),
		Issuer:       getenv("VIPPS_ISSUER"),
		Scopes:       strings.Fields(getenv("VIPPS_SCOPES")),
		TokenAuth:    cmp.Or(getenv("VIPPS_TOKEN_AUTH"), "client_secret_basic"),
		SessionStore: cmp.Or(getenv("SESSION_STORE"), "memory"),
		RedisAddr:    cmp.Or(getenv("REDIS_ADDR"), "127.0.0.1:6379"),
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = []string{"openid", "name", "email", "phoneNumber"}
	}
	switch {
	case cfg.ClientID != "" && cfg.ClientSecret == "":
		return config{}, errors.New("VIPPS_CLIENT_ID is set but VIPPS_CLIENT_SECRET is empty: " +
			"set both to log in with Vipps MobilePay, or neither to use the embedded mock provider")
	case cfg.ClientID == "" && cfg.ClientSecret != "":
		return config{}, errors.New("VIPPS_CLIENT_SECRET is set but VIPPS_CLIENT_ID is empty: " +
			"set both to log in with Vipps MobilePay, or neither to use the embedded mock provider")
	}
	switch cfg.TokenAuth {
	case "client_secret_basic", "client_secret_post":
	default:
		return config{}, fmt.Errorf("VIPPS_TOKEN_AUTH=%q is not client_secret_basic or client_secret_post", cfg.TokenAuth)
	}
	switch cfg.SessionStore {
	case "memory", "redis":
	default:
		return config{}, fmt.Errorf("SESSION_STORE=%q is not memory or redis", cfg.SessionStore)
	}
	return cfg, nil
}

// defaultBaseURL returns "http://" + addr. Where addr leaves the host or
// port open (":8080", "127.0.0.1:0"), it uses localhost and the port the
// listener got, so that the redirect URI names a page a browser can open.
func defaultBaseURL(addr string, got net.Addr) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	if port == "0" {
		if _, p, err := net.SplitHostPort(got.String()); err == nil {
			port = p
		}
	}
	return "http://" + net.JoinHostPort(host, port)
}

// run serves the site until SIGINT or SIGTERM, then shuts it down.
func run(logger *slog.Logger, getenv func(string) string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cfg, err := configFromEnv(getenv)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	if cfg.BaseURL == "" {
		cfg.BaseURL = defaultBaseURL(cfg.Addr, ln.Addr())
	}
	s, err := newSite(cfg, logger)
	if err != nil {
		return err
	}
	defer s.Close()

	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second, // the callback may call the provider four times
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	logger.Info("the site is up; open it in a browser", "url", strings.TrimSuffix(cfg.BaseURL, "/")+"/", "listen", ln.Addr().String())

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	stop() // a second signal kills the process at once
	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}

// site is the wired-up web site.
type site struct {
	handler  http.Handler
	auth     *vippslogin.Client
	sessions *scs.SessionManager

	closers   []func()
	closeOnce sync.Once
}

// Close releases what newSite started, last first.
func (s *site) Close() {
	s.closeOnce.Do(func() {
		for i := len(s.closers) - 1; i >= 0; i-- {
			s.closers[i]()
		}
	})
}

// newSite builds the site for cfg. In dev mode it starts the mock provider
// too. Close the site when done with it.
func newSite(cfg config, logger *slog.Logger) (_ *site, err error) {
	s := &site{}
	logger = slog.New(logHandler{logger.Handler()}) // with the request's id
	reg := newRegistry()
	defer func() {
		if err != nil {
			s.Close()
		}
	}()

	base, err := url.Parse(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("BASE_URL=%q is not a URL: %w", cfg.BaseURL, err)
	}
	s.sessions = scs.New()
	s.sessions.Lifetime = 12 * time.Hour
	s.sessions.Cookie.HttpOnly = true
	s.sessions.Cookie.SameSite = http.SameSiteLaxMode
	s.sessions.Cookie.Secure = base.Scheme == "https"
	release, storeReady, err := useSessionStore(s.sessions, cfg, logger)
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, release)

	p := &pages{logger: logger}
	vcfg := vippslogin.Config{
		ClientID:        cfg.ClientID,
		ClientSecret:    cfg.ClientSecret,
		Environment:     vippslogin.Test,
		Issuer:          cfg.Issuer,
		BaseURL:         cfg.BaseURL,
		Sessions:        s.sessions,
		Scopes:          cfg.Scopes,
		TokenAuthMethod: cfg.TokenAuth,
		System:          vippslogin.SystemInfo{Name: "vippslogin-example-basic"},
		Logger:          logger,
		ErrorHandler:    p.showError, // failures in the site's own layout
		Metrics:         newLoginMetrics(reg).metrics(),
	}
	var mock *vippstest.Provider
	if cfg.devMode() {
		mock, err = vippstest.New(vippstest.Config{TokenAuthMethod: cfg.TokenAuth})
		if err != nil {
			return nil, fmt.Errorf("start the mock provider: %w", err)
		}
		s.closers = append(s.closers, mock.Close)
		vcfg.ClientID = mock.ClientID()
		vcfg.ClientSecret = vippslogin.Secret(mock.ClientSecret())
		vcfg.Issuer = mock.Issuer()
	}
	s.auth, err = vippslogin.New(vcfg)
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func() { _ = s.auth.Close() })
	// A store that fails while a session is saved shows the library's
	// clear page. One that fails while a session is loaded is handled by
	// auth.LoadAndSave below.
	s.sessions.ErrorFunc = s.auth.SessionError

	if mock != nil {
		mock.AddRedirectURI(s.auth.RedirectURI())
		logger.Warn("dev mode is on: VIPPS_CLIENT_ID and VIPPS_CLIENT_SECRET are empty, so logins go to "+
			"the embedded mock provider (vippstest), where anyone can log in as a test user; never run this in production",
			"issuer", mock.Issuer())
		if cfg.Issuer != "" {
			logger.Warn("VIPPS_ISSUER is ignored in dev mode")
		}
	} else {
		logger.Info("logging in with Vipps MobilePay; register the redirect URI for the sales unit in the portal",
			"issuer", cmp.Or(cfg.Issuer, "https://apitest.vipps.no/access-management-1.0/access/"), "redirect_uri", s.auth.RedirectURI())
	}

	p.auth = s.auth
	mux := http.NewServeMux()
	mux.Handle("/auth/", s.auth.Handler())
	mux.Handle("GET /{$}", s.auth.LoadClaims(http.HandlerFunc(p.home)))
	mux.Handle("GET /profile", s.auth.RequireLogin(http.HandlerFunc(p.profile)))
	mux.HandleFunc("GET /healthz", healthz)
	mux.HandleFunc("GET /readyz", storeReadyz(storeReady, logger, p.readyz))
	mux.Handle("GET /metrics", metricsHandler(reg))
	// auth.LoadAndSave is sessions.LoadAndSave that keeps serving while
	// Redis is down (the home page as to a guest, and 503 for the profile
	// and the login routes), and reads scs's sessions in a tenth of the
	// time.
	s.handler = withRequestID(s.auth.LoadAndSave(mux))
	return s, nil
}

// storeReadyz answers 503 while the session store does not answer, and
// otherwise hands over to next.
func storeReadyz(ready func(context.Context) error, logger *slog.Logger, next http.HandlerFunc) http.HandlerFunc {
	if ready == nil {
		return next
	}
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			logger.Warn("not ready: the session store does not answer", "error", err)
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "session store unavailable")
			return
		}
		next(w, r)
	}
}

// useSessionStore points sessions at the store that SESSION_STORE names. It
// returns a function that releases the store, and a check of whether the
// store answers, for /readyz (nil when there is nothing to check).
func useSessionStore(sessions *scs.SessionManager, cfg config, logger *slog.Logger) (release func(), ready func(context.Context) error, err error) {
	switch cfg.SessionStore {
	case "memory":
		// scs.New made one. Its cleanup goroutine is left running:
		// MemStore.StopCleanup races with the goroutine's start.
		return func() {}, nil, nil
	case "redis":
		client := redis.NewClient(&redis.Options{
			Addr:         cfg.RedisAddr,
			DialTimeout:  2 * time.Second,
			ReadTimeout:  2 * time.Second,
			WriteTimeout: 2 * time.Second,
			// One dial per try: with go-redis' five, 100 ms apart, on each
			// of a command's four tries, every request waited 1.7 s while
			// Redis was down. A command is still tried four times.
			DialerRetries: 1,
		})
		sessions.Store = goredisstore.New(client)
		ready = func(ctx context.Context) error { return client.Ping(ctx).Err() }
		// The site starts even when Redis is not up yet; /readyz says so
		// until it is.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			logger.Warn("Redis does not answer yet; sessions fail until it does", "redis_addr", cfg.RedisAddr, "error", err)
		} else {
			logger.Info("sessions are kept in Redis", "redis_addr", cfg.RedisAddr)
		}
		return func() { _ = client.Close() }, ready, nil
	}
	return nil, nil, fmt.Errorf("SESSION_STORE=%q is not memory or redis", cfg.SessionStore)
}
