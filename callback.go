package vippslogin

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
)

// CallbackHandler finishes a login where the provider sends the browser
// back (GET /callback).
//
// It refuses a callback whose state names no pending login of this browser,
// one that is expired or already used, and one whose iss parameter (RFC 9207,
// required when discovery advertises it) is not the issuer. It exchanges the
// code with the PKCE verifier and the exact redirect URI, verifies the ID
// token (see the package documentation), fetches userinfo, when the
// provider has a userinfo endpoint, and requires its sub to be the ID
// token's, renews the session token, runs
// Config.AfterLogin, saves the verified claims (never the tokens) and
// redirects to the login's return_to.
//
// A login started with FlowAutomaticReturn may come back in another browser
// than the one that started it: that browser is asked to confirm who is
// logging in before it is logged in (see FlowAutomaticReturn). Any other
// login is finished only in the browser that started it.
//
// When the provider reports an error, such as access_denied for a cancelled
// login, the error handler gets a *ProviderError. When the pending login is
// gone but the browser is already logged in (another tab finished first),
// the callback goes on to where the login was headed instead of failing.
func (c *Client) CallbackHandler() http.Handler { return http.HandlerFunc(c.callback) }

func (c *Client) callback(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	if c.refuseWithoutSession(w, r, func(err error) error { return c.loginErr("", err) }) {
		return // the pending login is left for when the store is back
	}
	ctx := r.Context()
	q := r.URL.Query()
	for _, k := range []string{"state", "code", "error", "error_description", "iss"} {
		if len(q[k]) > 1 {
			c.fail(w, r, c.loginErr("", newErr(ErrBadCallback, "malformed", "repeated %s", k)))
			return
		}
	}
	state := q.Get("state")
	if q.Get("error") != "" {
		c.providerError(w, r, state, q)
		return
	}
	if state == "" || q.Get("code") == "" {
		// Nothing to look up: a callback like this was never sent by the
		// provider, or lost its query on the way.
		c.fail(w, r, c.loginErr("", newErr(ErrBadCallback, "malformed", "state or code missing")))
		return
	}
	if r.Method == http.MethodHead {
		// A link preview or checker probing the URL: the code is for the
		// browser's GET, and is not spent here.
		w.WriteHeader(http.StatusOK)
		return
	}
	rec, status, bound, err := c.pending.lookup(ctx, r, state)
	if err != nil {
		c.fail(w, r, c.loginErr("", err))
		return
	}
	if rec != nil {
		// The records of this request name the login, failures too.
		r = r.WithContext(withLogin(ctx, loginID(state), flowName(rec.Flow)))
		ctx = r.Context()
	}
	returnTo := c.s.DefaultReturnTo
	if rec != nil && (bound || rec.Flow == FlowAutomaticReturn) {
		returnTo = rec.ReturnTo // not shown to a browser the login may not end in
	}
	fail := func(err error) { c.fail(w, r, c.loginErr(returnTo, err)) }

	switch {
	case status == loginUsed && c.askAgain(w, r):
		return // a reload of the page that asks to confirm
	case status != loginPending:
		c.pending.forget(w, r, state)
		if claims, err := c.sessionClaims(ctx); err == nil && claims != nil {
			// Another tab finished a login first, or this is a reload of a
			// finished one: go on rather than strand the user.
			http.Redirect(w, r, returnTo, http.StatusSeeOther)
			return
		}
		switch {
		case status == loginUnknown, rec != nil && !bound && rec.Flow != FlowAutomaticReturn:
			// Or the login of another browser: its fate is not this one's.
			fail(errOtherBrowser())
		case status == loginExpired:
			fail(ErrLoginExpired)
		default:
			fail(errReplayed())
		}
		return
	case !bound && rec.Flow != FlowAutomaticReturn:
		// Only a login with automatic return from the app may come back
		// in another browser: whoever else knows the state must not use
		// up the login of the browser that started it.
		fail(errOtherBrowser())
		return
	}
	c.s.logStep(ctx, slog.LevelDebug, recCallbackReceived, slog.Bool("same_browser", bound))
	meta, err := c.provider.metadata(ctx)
	if err == nil {
		err = checkCallbackParams(q, meta)
	}
	if err != nil {
		fail(err)
		return
	}
	if rec, err = c.pending.consume(ctx, w, r, state, rec); rec == nil {
		fail(cmp.Or(err, errReplayed())) // another request took it first
		return
	}
	claims, err := c.finish(ctx, meta, q.Get("code"), rec)
	switch {
	case err != nil:
		fail(err)
	case bound:
		c.complete(w, r, claims, rec.ReturnTo)
	default:
		c.handOff(w, r, rec, claims)
	}
}

// providerError answers a callback that carries the provider's error. A
// pending login of this browser is over with it; the login of another
// browser is left as it is.
func (c *Client) providerError(w http.ResponseWriter, r *http.Request, state string, q url.Values) {
	ctx := r.Context()
	returnTo := ""
	if rec, status, bound, err := c.pending.lookup(ctx, r, state); err == nil && status == loginPending && bound && r.Method != http.MethodHead {
		if _, err := c.pending.consume(ctx, w, r, state, rec); err == nil {
			returnTo = rec.ReturnTo
			r = r.WithContext(withLogin(ctx, loginID(state), flowName(rec.Flow)))
		}
	}
	c.fail(w, r, c.loginErr(returnTo, &ProviderError{Code: safeText(q.Get("error")), Description: safeText(q.Get("error_description"))}))
}

// returnToKey is the context key of the slot SetReturnTo fills.
type returnToKey struct{}

type returnSlot struct{ path string }

// SetReturnTo, called from Config.AfterLogin, makes the login end at path,
// a path on this site, instead of at the login's return_to: a page that
// asks the user to link their account, say. It fails, and changes nothing,
// when path is not a same-site path or when it is not called from
// AfterLogin.
func SetReturnTo(r *http.Request, path string) error {
	slot, _ := r.Context().Value(returnToKey{}).(*returnSlot)
	if slot == nil {
		return errors.New("vippslogin: SetReturnTo called outside Config.AfterLogin")
	}
	clean, err := cleanReturnTo(path)
	if err != nil || clean == "" {
		return newErr(ErrInvalidRequest, "return_to", "%q", safeText(path))
	}
	slot.path = clean
	return nil
}

// checkCallbackParams checks the iss and code of a successful callback.
func checkCallbackParams(q url.Values, meta *metadata) error {
	if iss := q.Get("iss"); iss != "" && iss != meta.Issuer {
		return newErr(ErrBadCallback, "malformed", "iss is not the issuer")
	} else if iss == "" && meta.IssParameter {
		return newErr(ErrBadCallback, "malformed", "iss missing")
	}
	if code := q.Get("code"); code == "" || len(code) > 4096 {
		return newErr(ErrBadCallback, "malformed", "code missing")
	}
	return nil
}

// complete logs the browser in with claims: it renews the session, runs
// Config.AfterLogin, saves the claims and redirects to returnTo.
func (c *Client) complete(w http.ResponseWriter, r *http.Request, claims *Claims, returnTo string) {
	ctx := r.Context()
	fail := func(err error) { c.fail(w, r, c.loginErr(returnTo, err)) }
	if err := c.s.SessionStore.Renew(ctx); err != nil {
		fail(wrapStore(err))
		return
	}
	if c.s.AfterLogin != nil {
		slot := &returnSlot{}
		r = r.WithContext(context.WithValue(ctx, returnToKey{}, slot))
		if err := c.s.AfterLogin(w, r, claims); err != nil {
			// Leave nobody logged in: not an earlier user of this browser,
			// nor whatever AfterLogin put in the session.
			if derr := c.s.SessionStore.Destroy(ctx); derr != nil {
				err = errors.Join(err, wrapStore(derr))
			}
			fail(joinRefused(err))
			return
		}
		if slot.path != "" {
			returnTo = slot.path
		}
	}
	data, err := encodeClaims(claims)
	if err != nil {
		fail(err)
		return
	}
	if err := c.s.SessionStore.Save(ctx, data); err != nil {
		fail(wrapStore(err))
		return
	}
	if sub, _ := claims.Raw["sub"].(string); sub != "" {
		c.readable.remember(data) // the next request need not decode them
	}
	if f := c.s.Metrics.LoginFinished; f != nil {
		f(ctx)
	}
	c.s.logStep(ctx, slog.LevelInfo, recLoginFinished, slog.String("sub", claims.Subject))
	http.Redirect(w, r, returnTo, http.StatusSeeOther)
}

// finish exchanges the code, verifies the ID token and fetches userinfo
// (when the provider has a userinfo endpoint).
func (c *Client) finish(ctx context.Context, meta *metadata, code string, rec *pendingLogin) (*Claims, error) {
	// RFC 6749 section 4.1.3, with RFC 7636's code_verifier.
	tok, err := c.tokens.redeem(ctx, meta, url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {c.s.redirectURI},
		"code_verifier": {rec.Verifier},
	})
	if err != nil {
		return nil, err
	}
	c.s.logStep(ctx, slog.LevelDebug, recCodeExchanged)
	idClaims, err := c.verifier.check(ctx, meta, tok.IDToken, idTokenWant{nonce: rec.nonce()}, tok.AccessToken)
	if err != nil {
		return nil, err
	}
	if acr, _ := idClaims["acr"].(string); rec.ACR != "" && acr != rec.ACR {
		return nil, idTokenErr("acr", "acr %q, want %q", safeText(acr), rec.ACR)
	}
	c.s.logStep(ctx, slog.LevelDebug, recIDTokenVerified)
	return c.userClaims(ctx, meta, tok.AccessToken, idClaims)
}
