package vippslogin

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Client is a configured Vipps MobilePay Login relying party. It serves the
// login, callback and logout routes and guards the site's pages. It is safe
// for concurrent use.
type Client struct {
	s        *settings
	provider *provider
	csrf     *http.CrossOriginProtection
	mux      *http.ServeMux
	readable *readableClaims
	pending  *pendingLogins
	limits   *startLimits
	logs     logGate
	partner  *partnerAuth // with Config.Partner
	tokens   *tokenEndpoint
	verifier *verifier
}

// New checks cfg and returns a Client. It does not touch the network:
// discovery and the key set are fetched on first use (or by
// [Client.Ready]), so a site starts even while the provider is down. The
// errors it returns wrap ErrInvalidConfig and say which field to fix.
func New(cfg Config) (*Client, error) {
	s, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	c := &Client{
		s:        s,
		provider: newProvider(s),
		csrf:     http.NewCrossOriginProtection(),
		readable: newReadableClaims(),
		pending: &pendingLogins{records: newRecords(s.Sessions, s.Now), ttl: s.PendingLoginTTL, now: s.Now,
			perBrowser: s.MaxPendingLogins, secure: s.secure},
		limits: newStartLimits(s.LoginsPerMinute, s.PendingLoginTTL, s.MaxStartedLogins),
	}
	if s.Partner != nil {
		c.partner = newPartnerAuth(s)
	}
	c.tokens = newTokenEndpoint(s, c.partner)
	c.verifier = &verifier{s: s, provider: c.provider, partner: c.partner != nil}
	if s.secure && cfg.Sessions != nil && !cfg.Sessions.Cookie.Secure {
		s.Logger.Warn("vippslogin: BaseURL is https but the session cookie is not Secure; set Sessions.Cookie.Secure = true")
	}
	if err := c.csrf.AddTrustedOrigin(s.base.Scheme + "://" + s.base.Host); err != nil {
		return nil, configErr("BaseURL", "%v", err)
	}
	// The routes answer both with AuthPath stripped (http.StripPrefix) and
	// without.
	mux := http.NewServeMux()
	registerRoutes(mux, "", c)
	registerRoutes(mux, s.basePath+s.AuthPath, c)
	if s.basePath != "" {
		registerRoutes(mux, s.AuthPath, c)
	}
	c.mux = mux
	return c, nil
}

// route is one of the routes the Client serves below AuthPath.
type route struct {
	method, path string
	handler      http.HandlerFunc
}

// routes is the one table of the Client's routes, which both Handler and
// MountChi serve.
func (c *Client) routes() []route {
	return []route{
		{http.MethodGet, "/login", c.login},
		{http.MethodGet, "/callback", c.callback},
		{http.MethodGet, "/logout", c.logoutLink},  // a logout link: a page whose button POSTs
		{http.MethodHead, "/logout", c.logoutLink}, // for chi, which serves HEAD only where told
		{http.MethodPost, "/logout", c.logout},
		{http.MethodPost, "/confirm", c.confirm}, // a login that came back in another browser
	}
}

func registerRoutes(mux *http.ServeMux, prefix string, c *Client) {
	for _, rt := range c.routes() {
		mux.Handle(rt.method+" "+prefix+rt.path, rt.handler)
	}
}

// Close stops the background refresh of the provider's key set.
func (c *Client) Close() error {
	c.provider.cancel()
	return nil
}

// Ready fetches the provider's discovery document and key set, if they are
// not cached yet, and reports whether that worked. Call it at start-up to
// fail fast, or from a readiness probe. A nil error means logins can start.
func (c *Client) Ready(ctx context.Context) error {
	return c.provider.ready(ctx)
}

// RedirectURI returns the redirect URI the client sends to the provider:
// BaseURL + AuthPath + "/callback". Register exactly this string in the Vipps
// MobilePay portal.
func (c *Client) RedirectURI() string { return c.s.redirectURI }

// LoginURL returns the site-absolute URL of the login route that returns to
// returnTo afterwards. An empty or unacceptable returnTo is left out, so the
// login ends at Config.DefaultReturnTo.
func (c *Client) LoginURL(returnTo string) string {
	if rt := c.returnPath(returnTo); rt != "" {
		return c.s.loginPath + "?return_to=" + url.QueryEscape(rt)
	}
	return c.s.loginPath
}

// Handler serves the login (GET /login), callback (GET /callback) and logout
// (POST /logout) routes, and the page of a logout link (GET /logout),
// whose button POSTs the logout. Mount it at AuthPath either with the
// prefix stripped or not:
//
//	mux.Handle("/auth/", http.StripPrefix("/auth", auth.Handler()))
//	mux.Handle("/auth/", auth.Handler())
//
// It must run inside [Client.LoadAndSave] or the scs SessionManager's
// LoadAndSave. While the session store cannot be reached, its routes
// answer 503 (see [Client.LoadAndSave]).
func (c *Client) Handler() http.Handler { return c.mux }

// LoginHandler starts a login: GET ?return_to=/path redirects the browser to
// the provider's authorization endpoint with a fresh state, nonce and PKCE
// S256 challenge. return_to must be a path on this site; without it the
// login ends at Config.DefaultReturnTo. HEAD answers 200 and starts nothing.
func (c *Client) LoginHandler() http.Handler { return http.HandlerFunc(c.login) }

// RequireLogin lets logged-in requests through to next, with their claims in
// the context ([ClaimsFromContext]). Others are not: a browser GET or HEAD is
// redirected to the login route and back to where it was afterwards; API,
// XHR, fetch and htmx requests (Accept: application/json, X-Requested-With,
// HX-Request, or Sec-Fetch-Mode other than navigate) get 401 JSON with a
// login_url, and htmx requests an HX-Redirect header too, so a background
// request never starts a login; other methods get 401. A request that
// [Client.LoadAndSave] served without its session, because the store is
// down, gets 503 (ErrSessionStore).
//
// It must run inside [Client.LoadAndSave] or the scs SessionManager's
// LoadAndSave. It fits both mux.Handle(p, auth.RequireLogin(h)) and chi's
// r.Use(auth.RequireLogin).
func (c *Client) RequireLogin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r, in := c.withClaims(w, r, true); {
		case r == nil:
		case in:
			next.ServeHTTP(w, r)
		default:
			c.loginRequired(w, r)
		}
	})
}

// LoadClaims puts the claims of logged-in requests in the context and lets
// every request through, for pages that show more to logged-in users but are
// public. A request that [Client.LoadAndSave] served without its session
// goes through as logged out. It must run inside LoadAndSave.
func (c *Client) LoadClaims(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r, _ := c.withClaims(w, r, false); r != nil {
			next.ServeHTTP(w, r)
		}
	})
}

// withClaims returns r with the session's claims in its context, and
// whether there were any. When the session store fails, or when the page
// needs a login and LoadAndSave served r without its session, it answers
// the request itself and returns nil.
func (c *Client) withClaims(w http.ResponseWriter, r *http.Request, needLogin bool) (*http.Request, bool) {
	if needLogin && c.refuseWithoutSession(w, r, nil) {
		return nil, false
	}
	claims, err := c.sessionClaims(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return nil, false
	}
	if claims == nil {
		return r, false
	}
	return r.WithContext(&ctxClaims{Context: r.Context(), encoded: claims}), true
}

// sessionClaims returns the session's encoded claims, or nil when it is not
// logged in. Claims that do not decode are treated as logged out.
func (c *Client) sessionClaims(ctx context.Context) ([]byte, error) {
	b, err := c.s.SessionStore.Load(ctx)
	if err != nil {
		return nil, wrapStore(err)
	}
	if len(b) == 0 {
		return nil, nil
	}
	if !c.readable.check(b) {
		c.s.Logger.LogAttrs(ctx, levelWarn, "vippslogin: session holds unreadable claims; treating it as logged out")
		return nil, nil
	}
	return b, nil
}

func (c *Client) loginRequired(w http.ResponseWriter, r *http.Request) {
	c.loginRequiredWith(w, r, false)
}

// loginRequiredWith sends a browser to log in and back, or answers 401; with
// stepUp, to a login confirmed in the app.
func (c *Client) loginRequiredWith(w http.ResponseWriter, r *http.Request, stepUp bool) {
	returnTo := r.URL.RequestURI()
	if isHTMX(r) {
		// htmx asks for a fragment; come back to the page it sits on.
		if u, err := url.Parse(r.Header.Get("HX-Current-URL")); err == nil && u.Host == c.s.base.Host && u.Scheme == c.s.base.Scheme {
			returnTo = u.RequestURI()
		}
	}
	loginURL := c.LoginURL(returnTo)
	if stepUp {
		sep := "?"
		if strings.Contains(loginURL, "?") {
			sep = "&"
		}
		loginURL += sep + "step_up=1"
	}
	if (r.Method == http.MethodGet || r.Method == http.MethodHead) && !isBackground(r) {
		c.pending.bind(w, r)
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, loginURL, http.StatusSeeOther)
		return
	}
	if isHTMX(r) {
		w.Header().Set("HX-Redirect", loginURL)
	}
	err := &loginError{returnTo: returnTo, loginURL: loginURL, home: c.s.DefaultReturnTo, err: ErrNotLoggedIn}
	c.s.ErrorHandler(w, c.withProviderName(r), err) // not logged: an anonymous visitor is not an event
}

// SessionError reports a failure of the site's session store the way the
// Client reports its own errors: as a structured log record, and through
// Config.ErrorHandler as ErrSessionStore (503, a human page for browsers and
// JSON for API clients). Set it as the scs session manager's ErrorFunc, so
// that a store that fails while a session is saved (Redis restarting, say)
// shows a clear page instead of a bare "Internal Server Error":
//
//	sessions.ErrorFunc = auth.SessionError
//
// With [Client.LoadAndSave] in place of the session manager's, a store
// that fails while a session is loaded no longer reaches ErrorFunc: the
// request is served without its session instead.
func (c *Client) SessionError(w http.ResponseWriter, r *http.Request, err error) {
	c.fail(w, r, wrapStore(err))
}

// fail logs err and hands it to the error handler. Records are bounded
// in rate by kind (logGate), since visitors cause most failures; a failed
// login is counted (Metrics.LoginFailed) all the same.
func (c *Client) fail(w http.ResponseWriter, r *http.Request, err error) {
	p := describe(err)
	if f := c.s.Metrics.LoginFailed; f != nil && loginFailure(err) {
		f(r.Context(), p.code)
	}
	if ok, suppressed := c.logs.allow(p.code+"/"+strconv.Itoa(p.level), c.s.Now()); ok {
		logError(c.s.Logger, r, err, p, suppressed)
	}
	c.s.ErrorHandler(w, c.withProviderName(r), err)
}

// loginFailure reports whether err, given to fail, is a failed or refused
// login: the login routes and StartLogin answer with a *loginError, or,
// for options the site got wrong, ErrInvalidRequest "login_options".
func loginFailure(err error) bool {
	var le *loginError
	return errors.As(err, &le) || reasonOf(err, ErrInvalidRequest) == "login_options"
}

func (c *Client) loginErr(returnTo string, err error) error {
	return &loginError{returnTo: returnTo, loginURL: c.LoginURL(returnTo), home: c.s.DefaultReturnTo, err: err}
}

func wrapStore(err error) error {
	if errors.Is(err, ErrSessionStore) {
		return err
	}
	return fmt.Errorf("%w: %v", ErrSessionStore, err)
}

// randomString returns 32 random bytes, base64url: 43 characters.
func randomString() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// validToken reports whether s looks like a randomString.
func validToken(s string) bool {
	if len(s) != 43 {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '_') {
			return false
		}
	}
	return true
}

const levelWarn = slog.LevelWarn

func attrErr(err error) slog.Attr { return slog.String("error", err.Error()) }
