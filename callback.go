package vippslogin

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// CallbackHandler finishes a login where the provider sends the browser
// back (GET /callback).
//
// It refuses a callback whose state names no pending login of this browser,
// one that is expired or already used, and one whose iss parameter (RFC 9207,
// required when discovery advertises it) is not the issuer. It exchanges the
// code with the PKCE verifier and the exact redirect URI, verifies the ID
// token (see the package documentation), fetches userinfo and requires its
// sub to be the ID token's, renews the session token, runs
// Config.AfterLogin, saves the verified claims (never the tokens) and
// redirects to the login's return_to.
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
	ctx := r.Context()
	q := r.URL.Query()
	for _, k := range []string{"state", "code", "error", "error_description", "iss"} {
		if len(q[k]) > 1 {
			c.fail(w, r, c.loginErr("", fmt.Errorf("%w: repeated %s", ErrBadCallback, k)))
			return
		}
	}
	state := q.Get("state")
	secret, states := c.readBinding(r)

	if code := q.Get("error"); code != "" {
		returnTo := ""
		if validToken(state) {
			if rec, _ := c.takePending(ctx, state); rec != nil {
				if c.boundTo(rec, secret) {
					returnTo = rec.ReturnTo
				} else {
					c.putBack(ctx, state, rec)
				}
			}
			c.forget(w, secret, states, state)
		}
		c.fail(w, r, c.loginErr(returnTo, &ProviderError{Code: safeText(code), Description: safeText(q.Get("error_description"))}))
		return
	}
	if state == "" {
		c.fail(w, r, c.loginErr("", ErrStateMissing))
		return
	}
	var rec *pendingLogin
	if validToken(state) {
		var err error
		if rec, err = c.takePending(ctx, state); err != nil {
			c.fail(w, r, c.loginErr("", err))
			return
		}
	}
	started := slices.Contains(states, state)
	if started {
		c.forget(w, secret, states, state)
	}
	now := c.s.Now()
	expired := rec != nil && now.Sub(time.Unix(rec.Created, 0)) > c.s.PendingLoginTTL
	if rec == nil || rec.Done || expired {
		returnTo := c.s.DefaultReturnTo
		if rec != nil {
			returnTo = rec.ReturnTo
		}
		if claims, err := c.loadClaims(ctx); err == nil && claims != nil {
			// Another tab finished a login first, or this is a reload of a
			// finished one: go on rather than strand the user.
			http.Redirect(w, r, returnTo, http.StatusSeeOther)
			return
		}
		var err error
		switch {
		case rec != nil && rec.Done:
			err = ErrLoginReplayed
		case expired || started:
			err = ErrLoginExpired
		default:
			err = ErrStateMismatch
		}
		c.fail(w, r, c.loginErr(returnTo, err))
		return
	}
	fail := func(err error) { c.fail(w, r, c.loginErr(rec.ReturnTo, err)) }
	bound := c.boundTo(rec, secret)
	switch {
	case bound && rec.Handoff:
		// This browser started the login, which finished in another one
		// (FlowAutomaticReturn): pick it up here.
		c.pickUp(w, r, state, rec)
		return
	case !bound && rec.Handoff:
		c.putBack(ctx, state, rec)
		if c.confirmFor(r, state, rec) {
			c.askToConfirm(w, r, rec) // a reload of the page asking
			return
		}
		fail(ErrBrowserMismatch)
		return
	case !bound && !c.crossBrowser(rec):
		// Whoever knows the state must not be able to use up the login of
		// the browser that started it.
		c.putBack(ctx, state, rec)
		fail(ErrBrowserMismatch)
		return
	}

	meta, err := c.provider.metadata(ctx)
	if err == nil {
		err = checkCallbackParams(q, meta)
	}
	if err != nil {
		if !bound {
			c.putBack(ctx, state, rec)
		}
		fail(err)
		return
	}

	// Leave a tombstone, so that a reload of this callback is recognised.
	if err := c.putPending(ctx, state, rec.tombstone(), now.Add(c.s.PendingLoginTTL)); err != nil {
		fail(wrapStore(err))
		return
	}

	claims, err := c.finish(ctx, meta, q.Get("code"), rec)
	if err != nil {
		fail(err)
		return
	}
	if !bound {
		// Back in another browser: ask it before logging it in.
		c.handOff(w, r, state, rec, claims)
		return
	}
	c.complete(w, r, claims, rec.ReturnTo)
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
		return fmt.Errorf("%w: %q", ErrInvalidReturnTo, safeText(path))
	}
	slot.path = clean
	return nil
}

// checkCallbackParams checks the iss and code of a successful callback.
func checkCallbackParams(q url.Values, meta *metadata) error {
	if iss := q.Get("iss"); iss != "" && iss != meta.Issuer {
		return fmt.Errorf("%w: iss is not the issuer", ErrBadCallback)
	} else if iss == "" && meta.IssParameter {
		return fmt.Errorf("%w: iss missing", ErrBadCallback)
	}
	if code := q.Get("code"); code == "" || len(code) > 4096 {
		return fmt.Errorf("%w: code missing", ErrBadCallback)
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
			fail(fmt.Errorf("%w: %w", ErrLoginRefused, err))
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
	c.s.Logger.LogAttrs(ctx, slog.LevelInfo, "vippslogin: login", slog.String("sub", claims.Subject))
	http.Redirect(w, r, returnTo, http.StatusSeeOther)
}

// finish exchanges the code, verifies the ID token and fetches userinfo.
func (c *Client) finish(ctx context.Context, meta *metadata, code string, rec *pendingLogin) (*Claims, error) {
	tok, err := c.exchange(ctx, meta, code, rec.Verifier)
	if err != nil {
		return nil, err
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		return nil, idTokenErr(ErrMalformedToken, "no id_token in the token response")
	}
	idClaims, err := c.verifyIDToken(ctx, meta, rawID, rec.Nonce, tok.AccessToken)
	if err != nil {
		return nil, err
	}
	if acr, _ := idClaims["acr"].(string); rec.ACR != "" && acr != rec.ACR {
		return nil, idTokenErr(ErrAuthContext, "acr %q, want %q", safeText(acr), rec.ACR)
	}
	return c.userClaims(ctx, meta, tok.AccessToken, idClaims)
}

// userClaims fetches userinfo with the access token, checks that it is
// about the ID token's subject, and adds what the ID token says about how
// and when the user logged in.
func (c *Client) userClaims(ctx context.Context, meta *metadata, accessToken string, idClaims map[string]any) (*Claims, error) {
	info, err := c.userinfo(ctx, meta, accessToken)
	if err != nil {
		return nil, err
	}
	if sub, _ := info["sub"].(string); sub != idClaims["sub"] {
		return nil, ErrSubjectMismatch
	}
	for _, k := range []string{"sub", "auth_time", "acr", "amr", "sid"} {
		if v, ok := idClaims[k]; ok {
			if _, have := info[k]; !have || k != "sid" {
				info[k] = v
			}
		}
	}
	claims := claimsFromMap(info)
	return &claims, nil
}

// encodeClaims is what a session keeps of claims: their JSON, if it fits.
func encodeClaims(claims *Claims) ([]byte, error) {
	data, err := json.Marshal(claims.Raw)
	if err == nil && len(data) > maxClaimsSize {
		err = fmt.Errorf("%w: %d bytes of claims is more than a session holds", ErrUserinfo, len(data))
	}
	return data, err
}

func (c *Client) exchange(ctx context.Context, meta *metadata, code, verifier string) (*oauth2.Token, error) {
	ctx, cancel := context.WithTimeout(ctx, c.s.HTTPTimeout)
	defer cancel()
	if c.partner != nil {
		// Fetch (or reuse) the partner's access token first, so that its
		// failure is reported as such.
		if _, err := c.partner.token(); err != nil {
			return nil, err
		}
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, c.tokenClient())
	tok, err := c.oauth(meta).Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil {
			te := &TokenError{StatusCode: re.Response.StatusCode, Code: re.ErrorCode, Description: re.ErrorDescription}
			if !validErrorCode(te.Code) {
				te.Code = ""
			}
			return nil, te
		}
		return nil, upstreamErr(ctx, ErrTokenExchange, "token endpoint", err)
	}
	if !strings.EqualFold(tok.TokenType, "bearer") {
		return nil, fmt.Errorf("%w: token_type %q is not bearer", ErrTokenExchange, safeText(tok.TokenType))
	}
	return tok, nil
}

func (c *Client) userinfo(ctx context.Context, meta *metadata, accessToken string) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(ctx, c.s.HTTPTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, meta.UserinfoEndpoint, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUserinfo, err)
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Accept", "application/json")
	resp, err := c.s.HTTPClient.Do(req)
	if err != nil {
		return nil, upstreamErr(ctx, ErrUserinfo, "userinfo", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, fmt.Errorf("%w: userinfo answered %d", ErrUserinfo, resp.StatusCode)
	}
	var raw json.RawMessage
	if err := decodeJSON(resp, &raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUserinfo, err)
	}
	var claims Claims
	if len(raw) > maxClaimsSize {
		return nil, fmt.Errorf("%w: response too large", ErrUserinfo)
	}
	if err := claims.UnmarshalJSON(raw); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object", ErrUserinfo)
	}
	if claims.Subject == "" {
		return nil, fmt.Errorf("%w: no sub", ErrUserinfo)
	}
	return claims.Raw, nil
}

// putPending stores the pending login with the given state until expiry.
func (c *Client) putPending(ctx context.Context, state string, rec *pendingLogin, expiry time.Time) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return c.s.PendingStore.Put(ctx, pendingKey(state), data, expiry)
}

// takePending takes the pending login with the given state from the store.
func (c *Client) takePending(ctx context.Context, state string) (*pendingLogin, error) {
	b, err := c.s.PendingStore.Take(ctx, pendingKey(state))
	if err != nil {
		return nil, wrapStore(err)
	}
	if b == nil {
		return nil, nil
	}
	var rec pendingLogin
	if err := json.Unmarshal(b, &rec); err != nil || rec.Binding == "" || (!rec.Done && rec.Verifier == "") ||
		rec.Handoff && (len(rec.Claims) == 0 || rec.Confirm == "") {
		return nil, wrapStore(errCorruptRecord)
	}
	if _, err := cleanReturnTo(rec.ReturnTo); err != nil || rec.ReturnTo == "" {
		return nil, wrapStore(errCorruptRecord)
	}
	return &rec, nil
}

// putBack returns a pending login taken by a request from another browser.
func (c *Client) putBack(ctx context.Context, state string, rec *pendingLogin) {
	expiry := time.Unix(rec.Created, 0).Add(c.s.PendingLoginTTL)
	if err := c.putPending(ctx, state, rec, expiry); err != nil {
		c.s.Logger.LogAttrs(ctx, levelWarn, "vippslogin: could not put back a pending login", attrErr(err))
	}
}

// boundTo reports whether the browser's binding secret is the one the
// pending login was started with.
func (c *Client) boundTo(rec *pendingLogin, secret string) bool {
	if secret == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(bindingHash(secret)), []byte(rec.Binding)) == 1
}

// forget drops state from the browser's list of pending logins.
func (c *Client) forget(w http.ResponseWriter, secret string, states []string, state string) {
	if secret == "" {
		return
	}
	kept := slices.DeleteFunc(slices.Clone(states), func(s string) bool { return s == state })
	if len(kept) != len(states) {
		c.setBinding(w, secret, kept)
	}
}
