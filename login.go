package vippslogin

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// The login route: the options a login may ask for, starting one (the
// login route and StartLogin), and where it returns to.

// stepUpACR is the authentication context class Vipps names when the user
// confirmed the login in the app, even though the browser was remembered
// ("step-up", "in-app confirmation"). Asking for it needs Vipps' advanced
// login tier.
const stepUpACR = "urn:vipps:acr:app_auth"

// Flow is Vipps' requested_flow authorization parameter. The zero value
// is Vipps' ordinary web flow: the user comes back in the browser that
// started the login.
type Flow string

// The flows a browser login may ask for.
const (
	// FlowAutomaticReturn brings the user back from the Vipps or MobilePay
	// app by itself, but possibly into another browser than the one that
	// started the login (iOS Chrome to Safari, say), without the site's
	// cookies. Such a login finishes in the browser it comes back to, once
	// that browser confirms who is logging in; the browser that started it
	// gets nothing from it.
	FlowAutomaticReturn Flow = "automatic_return_from_vipps_app"
	// FlowAppToApp is the older flow for the site's own app: Vipps sends
	// the user to LoginOptions.AppCallbackURI, which the app opens.
	FlowAppToApp Flow = "app_to_app"
	// FlowAppToAppV2 is the newer app flow; PKCE, which the Client always
	// uses, is required with it.
	FlowAppToAppV2 Flow = "app_to_app_v2"
)

// LoginOptions are Vipps' optional authorization parameters for one login.
// The zero value is an ordinary browser login.
type LoginOptions struct {
	// ReturnTo is the same-site path the login ends at. Empty means the
	// request's return_to query parameter, else Config.DefaultReturnTo.
	ReturnTo string

	// Flow is sent as requested_flow.
	Flow Flow

	// AppCallbackURI is where Vipps sends the user with FlowAppToApp, and
	// only then; it is required there and must be registered in the
	// portal. It is an https URL or an app's custom scheme with something
	// after it ("myapp://login", not "myapp://").
	AppCallbackURI string

	// FinalRedirectIsApp tells Vipps that the redirect URI opens an app,
	// so that the last redirect reaches it (final_redirect_is_app=true).
	FinalRedirectIsApp bool

	// StepUp asks the user to confirm the login in the app even if the
	// browser is remembered (acr_values=urn:vipps:acr:app_auth). The login
	// then fails unless the ID token's acr is urn:vipps:acr:app_auth.
	StepUp bool
}

// Validate reports what in o Vipps would refuse, as an error wrapping
// ErrInvalidRequest (reason "login_options").
func (o LoginOptions) Validate() error {
	bad := func(format string, args ...any) error {
		return newErr(ErrInvalidRequest, "login_options", format, args...)
	}
	switch o.Flow {
	case "", FlowAutomaticReturn, FlowAppToApp, FlowAppToAppV2:
	default:
		return bad("unknown flow %q", safeText(string(o.Flow)))
	}
	if o.ReturnTo != "" {
		if rt, err := cleanReturnTo(o.ReturnTo); err != nil || rt == "" {
			return bad("ReturnTo %q is not a path on this site", safeText(o.ReturnTo))
		}
	}
	switch {
	case o.Flow == FlowAppToApp && o.AppCallbackURI == "":
		return bad("AppCallbackURI is required with %s", FlowAppToApp)
	case o.Flow != FlowAppToApp && o.AppCallbackURI != "":
		return bad("AppCallbackURI is only sent with %s", FlowAppToApp)
	case o.AppCallbackURI != "":
		if err := checkAppCallbackURI(o.AppCallbackURI); err != nil {
			return bad("AppCallbackURI: %v", err)
		}
	}
	return nil
}

// checkAppCallbackURI applies Vipps' rules for an app callback URI: an
// absolute URI without a fragment, https (http for localhost only) or a
// custom scheme followed by a path or host.
func checkAppCallbackURI(s string) error {
	if len(s) > 1024 || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return errors.New("too long, or has spaces or control characters")
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return errors.New("not an absolute URI")
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return errors.New("has a fragment")
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		if u.Host == "" {
			return errors.New("https URI without a host")
		}
	case "http":
		if h := u.Hostname(); h != "localhost" && h != "127.0.0.1" && h != "::1" {
			return errors.New("http is for localhost only")
		}
	case "javascript", "data", "file", "vbscript":
		return fmt.Errorf("scheme %q is not allowed", u.Scheme)
	default:
		rest := strings.TrimPrefix(strings.TrimPrefix(s, u.Scheme+":"), "//")
		if rest == "" || rest == "/" {
			return errors.New("a custom scheme needs a path, like myapp://login")
		}
	}
	return nil
}

// authParams returns the authorization request parameters o adds.
func (o LoginOptions) authParams() url.Values {
	v := url.Values{}
	if o.Flow != "" {
		v.Set("requested_flow", string(o.Flow))
	}
	if o.AppCallbackURI != "" {
		v.Set("app_callback_uri", o.AppCallbackURI)
	}
	if o.FinalRedirectIsApp {
		v.Set("final_redirect_is_app", "true")
	}
	if o.StepUp {
		v.Set("acr_values", stepUpACR)
	}
	return v
}

// StartLogin starts a login with opts from the site's own handler, as the
// login route does with none: it redirects the browser to Vipps, or answers
// an error itself (invalid options are a 500, since they are the site's
// mistake). Use it to offer app flows or step-up on a login link:
//
//	mux.HandleFunc("GET /login/app", func(w http.ResponseWriter, r *http.Request) {
//		auth.StartLogin(w, r, vippslogin.LoginOptions{Flow: vippslogin.FlowAppToAppV2})
//	})
func (c *Client) StartLogin(w http.ResponseWriter, r *http.Request, opts LoginOptions) {
	if err := opts.Validate(); err != nil {
		c.fail(w, r, fmt.Errorf("%w: %w", ErrInvalidConfig, err)) // the site's mistake: a 500
		return
	}
	returnTo := opts.ReturnTo
	if returnTo == "" {
		q := r.URL.Query()
		if len(q["return_to"]) > 1 {
			c.fail(w, r, c.loginErr("", errReturnTo()))
			return
		}
		rt, err := cleanReturnTo(q.Get("return_to"))
		if err != nil {
			c.fail(w, r, c.loginErr("", err))
			return
		}
		returnTo = rt
	} else {
		returnTo, _ = cleanReturnTo(returnTo)
	}
	if returnTo == "" || c.isAuthPath(returnTo) {
		returnTo = c.s.DefaultReturnTo
	}
	c.startLogin(w, r, returnTo, opts)
}

// RequireStepUp is RequireLogin for pages that need a login confirmed in
// the app (urn:vipps:acr:app_auth): a logged-in browser whose login was not is sent
// through a step-up login and back; background requests get 401 with a
// login_url that asks for step-up. Like RequireLogin, it answers 503 when
// [Client.LoadAndSave] served the request without its session.
func (c *Client) RequireStepUp(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, in := c.withClaims(w, r, true)
		if r == nil {
			return
		}
		if in {
			if claims, _ := ClaimsFromContext(r.Context()); claims != nil && claims.ACR == stepUpACR {
				next.ServeHTTP(w, r)
				return
			}
		}
		c.loginRequiredWith(w, r, true)
	})
}

func (c *Client) login(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodHead {
		// Link checkers and previews probe with HEAD: start nothing.
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		return
	}
	var opts LoginOptions
	switch v := r.URL.Query()["step_up"]; {
	case len(v) == 0:
	case len(v) == 1 && (v[0] == "1" || v[0] == "true"):
		opts.StepUp = true
	default:
		c.fail(w, r, c.loginErr("", newErr(ErrInvalidRequest, "login_options", "step_up must be 1")))
		return
	}
	c.StartLogin(w, r, opts)
}

// startLogin starts a login that ends at returnTo, a checked path.
func (c *Client) startLogin(w http.ResponseWriter, r *http.Request, returnTo string, opts LoginOptions) {
	if c.refuseWithoutSession(w, r, func(err error) error { return c.loginErr(returnTo, err) }) {
		return
	}
	meta, err := c.provider.metadata(r.Context())
	if err != nil {
		c.fail(w, r, c.loginErr(returnTo, err))
		return
	}

	now := c.s.Now()
	if wait, err := c.limits.allow(c.s.ClientIP(r), now); err != nil {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)))
		c.fail(w, r, c.loginErr(returnTo, err))
		return
	}
	verifier := oauth2.GenerateVerifier()
	rec := &pendingLogin{Verifier: verifier, ReturnTo: returnTo, Created: now.Unix(), Flow: opts.Flow}
	if opts.StepUp {
		rec.ACR = stepUpACR
	}
	state, err := c.pending.start(r.Context(), w, r, rec)
	if err != nil {
		c.fail(w, r, c.loginErr(returnTo, err))
		return
	}
	ctx := withLogin(r.Context(), loginID(state), flowName(opts.Flow))
	if f := c.s.Metrics.LoginStarted; f != nil {
		f(ctx)
	}
	path, _, _ := strings.Cut(returnTo, "?")
	c.s.logStep(ctx, slog.LevelDebug, recLoginStarted, slog.String("return_to", path), slog.Bool("step_up", opts.StepUp))

	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	params := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", rec.nonce())}
	for k, v := range opts.authParams() {
		params = append(params, oauth2.SetAuthURLParam(k, v[0]))
	}
	http.Redirect(w, r, c.partnerAuthURL(c.oauth(meta).AuthCodeURL(state, params...)), http.StatusFound)
}

// oauth returns the x/oauth2 configuration for the provider's endpoints.
func (c *Client) oauth(meta *metadata) *oauth2.Config {
	id := c.s.ClientID
	if c.partner != nil {
		id = "" // partnerAuthURL puts msn in its place
	}
	return &oauth2.Config{
		ClientID:    id,
		Endpoint:    oauth2.Endpoint{AuthURL: meta.AuthorizationEndpoint, TokenURL: meta.TokenEndpoint},
		RedirectURL: c.s.redirectURI,
		Scopes:      c.s.Scopes,
	}
}

// returnPath returns s when it is an acceptable return_to (cleanReturnTo)
// outside AuthPath, and "" otherwise.
func (c *Client) returnPath(s string) string {
	if rt, err := cleanReturnTo(s); err == nil && !c.isAuthPath(rt) {
		return rt
	}
	return ""
}

func (c *Client) isAuthPath(p string) bool {
	prefix := c.s.basePath + c.s.AuthPath
	return p == prefix || strings.HasPrefix(p, prefix+"/") || strings.HasPrefix(p, prefix+"?")
}

// cleanReturnTo accepts a same-site path with an optional query, and
// refuses anything a browser could take to another site: a scheme or host
// ("https://x", "//x"), a backslash ("/\x", which browsers read as "//x"),
// control characters and over-long values. "" is returned as "".
func cleanReturnTo(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	if len(s) > 2048 || s[0] != '/' || strings.HasPrefix(s, "//") || strings.ContainsRune(s, '\\') {
		return "", errReturnTo()
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return "", errReturnTo()
		}
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || !strings.HasPrefix(u.Path, "/") {
		return "", errReturnTo()
	}
	return s, nil
}
