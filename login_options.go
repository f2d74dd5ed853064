package vippslogin

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// StepUpACR is the authentication context class Vipps names when the user
// confirmed the login in the app, even though the browser was remembered
// ("step-up", "in-app confirmation"). Asking for it needs Vipps' advanced
// login tier.
const StepUpACR = "urn:vipps:acr:app_auth"

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
	// then fails unless the ID token's acr is [StepUpACR].
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
		v.Set("acr_values", StepUpACR)
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
			c.fail(w, r, c.loginErr("", errReturnTo))
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
// the app ([StepUpACR]): a logged-in browser whose login was not is sent
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
			if claims, _ := ClaimsFromContext(r.Context()); claims.ACR == StepUpACR {
				next.ServeHTTP(w, r)
				return
			}
		}
		c.loginRequiredWith(w, r, true)
	})
}
