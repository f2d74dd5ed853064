package vippslogin

import (
	"crypto/subtle"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// Logins that come back in another browser.
//
// With FlowAutomaticReturn the Vipps or MobilePay app sends the user back
// by itself, and the phone may open the callback in another browser than
// the one that started the login (iOS Chrome to Safari, say). That browser
// has none of the site's cookies, so the callback cannot be tied to the
// browser that started the login, and by default it fails
// (ErrBrowserMismatch).
//
// With Config.CrossBrowserReturn the Client finishes such a login anyway,
// found by its state on the server: it exchanges the code with the PKCE
// verifier and verifies the tokens as always, but does not log the new
// browser in at once. A callback URL is a login link anyone can be handed:
// an attacker could log in with their own Vipps account, keep the callback
// and send it to a victim, whose browser would then be logged in to the
// attacker's account (login CSRF) and store the victim's data there. So the
// new browser is shown who is logging in, "Continue as Kari Nordmann?", and
// only a click on Continue (a same-origin POST, with a secret in a cookie
// set by the callback) logs it in. Meanwhile the browser that started the
// login picks the login up by itself when its own callback arrives.

// errDeclined: the browser a login came back to chose not to continue.
var errDeclined = fmt.Errorf("%w: declined in the browser it came back to", ErrLoginCancelled)

// crossBrowser reports whether rec, arriving in a browser that did not
// start it, may be finished there.
func (c *Client) crossBrowser(rec *pendingLogin) bool {
	return c.s.CrossBrowserReturn && rec.Flow == FlowAutomaticReturn && !rec.Handoff && !rec.Done
}

// confirmCookie is the cookie that lets a browser confirm a login that
// came back to it: the login's state and a secret, in a Secure, HttpOnly
// cookie, never in a URL or a page.
func (c *Client) confirmCookie() string {
	if c.s.secure {
		return "__Host-vippslogin-confirm"
	}
	return "vippslogin-confirm"
}

func (c *Client) readConfirm(r *http.Request) (state, secret string) {
	ck, err := r.Cookie(c.confirmCookie())
	if err != nil {
		return "", ""
	}
	state, secret, ok := strings.Cut(ck.Value, ".")
	if !ok || !validToken(state) || !validToken(secret) {
		return "", ""
	}
	return state, secret
}

func (c *Client) setConfirm(w http.ResponseWriter, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name:     c.confirmCookie(),
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   c.s.secure,
		SameSite: http.SameSiteLaxMode,
	})
}

// confirmFor reports whether the request's browser holds the confirm
// secret of rec, the handed-off login with the given state.
func (c *Client) confirmFor(r *http.Request, state string, rec *pendingLogin) bool {
	cs, secret := c.readConfirm(r)
	if cs == "" || subtle.ConstantTimeCompare([]byte(cs), []byte(state)) != 1 {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(bindingHash(secret)), []byte(rec.Confirm)) == 1
}

// handOff keeps the verified claims of a login that came back in another
// browser, and asks that browser to confirm it.
func (c *Client) handOff(w http.ResponseWriter, r *http.Request, state string, rec *pendingLogin, claims *Claims) {
	data, err := encodeClaims(claims)
	if err != nil {
		c.fail(w, r, c.loginErr(rec.ReturnTo, err))
		return
	}
	secret := randomString()
	handoff := &pendingLogin{
		Verifier: rec.Verifier, // spent: the code is exchanged
		ReturnTo: rec.ReturnTo,
		Created:  rec.Created,
		Binding:  rec.Binding,
		Flow:     rec.Flow,
		Handoff:  true,
		Claims:   data,
		Confirm:  bindingHash(secret),
	}
	expiry := time.Unix(rec.Created, 0).Add(c.s.PendingLoginTTL)
	if err := c.putPending(r.Context(), state, handoff, expiry); err != nil {
		c.fail(w, r, c.loginErr(rec.ReturnTo, wrapStore(err)))
		return
	}
	c.setConfirm(w, state+"."+secret, max(1, int(time.Until(expiry)/time.Second)))
	c.s.Logger.LogAttrs(r.Context(), slog.LevelInfo, "vippslogin: login came back in another browser; asking it to confirm")
	c.askToConfirm(w, r, handoff)
}

// askToConfirm shows the page that asks a browser to confirm a login that
// came back to it.
func (c *Client) askToConfirm(w http.ResponseWriter, r *http.Request, rec *pendingLogin) {
	claims, err := c.claims.decode(rec.Claims)
	if err != nil {
		c.fail(w, r, c.loginErr(rec.ReturnTo, wrapStore(errCorruptRecord)))
		return
	}
	writeConfirmPage(w, r, c.s.basePath+c.s.AuthPath+"/confirm", claims)
}

// pickUp logs in the browser that started a login which finished in
// another browser.
func (c *Client) pickUp(w http.ResponseWriter, r *http.Request, state string, rec *pendingLogin) {
	claims, err := c.claims.decode(rec.Claims)
	if err != nil {
		c.fail(w, r, c.loginErr(rec.ReturnTo, wrapStore(errCorruptRecord)))
		return
	}
	if err := c.putPending(r.Context(), state, rec.tombstone(), c.s.Now().Add(c.s.PendingLoginTTL)); err != nil {
		c.fail(w, r, c.loginErr(rec.ReturnTo, wrapStore(err)))
		return
	}
	c.complete(w, r, claims, rec.ReturnTo)
}

// confirm answers the confirmation page: POST action=continue logs the
// browser in, action=cancel drops the login.
func (c *Client) confirm(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if err := c.csrf.Check(r); err != nil {
		c.fail(w, r, fmt.Errorf("%w: %v", ErrCrossOrigin, err))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	action := r.PostFormValue("action")
	state, secret := c.readConfirm(r)
	if state == "" || (action != "continue" && action != "cancel") {
		c.fail(w, r, c.loginErr("", fmt.Errorf("%w: no login to confirm", ErrStateMissing)))
		return
	}
	c.setConfirm(w, "", -1)
	ctx := r.Context()
	rec, err := c.takePending(ctx, state)
	if err != nil {
		c.fail(w, r, c.loginErr("", err))
		return
	}
	switch {
	case rec == nil:
		c.fail(w, r, c.loginErr("", ErrLoginExpired))
		return
	case rec.Done:
		// The browser that started the login picked it up first.
		c.putBack(ctx, state, rec)
		c.fail(w, r, c.loginErr(rec.ReturnTo, ErrLoginReplayed))
		return
	case !rec.Handoff || subtle.ConstantTimeCompare([]byte(bindingHash(secret)), []byte(rec.Confirm)) != 1:
		c.putBack(ctx, state, rec)
		c.fail(w, r, c.loginErr(rec.ReturnTo, ErrBrowserMismatch))
		return
	case c.s.Now().Sub(time.Unix(rec.Created, 0)) > c.s.PendingLoginTTL:
		c.fail(w, r, c.loginErr(rec.ReturnTo, ErrLoginExpired))
		return
	}
	if err := c.putPending(ctx, state, rec.tombstone(), c.s.Now().Add(c.s.PendingLoginTTL)); err != nil {
		c.fail(w, r, c.loginErr(rec.ReturnTo, wrapStore(err)))
		return
	}
	if action == "cancel" {
		c.fail(w, r, c.loginErr(rec.ReturnTo, errDeclined))
		return
	}
	claims, err := c.claims.decode(rec.Claims)
	if err != nil {
		c.fail(w, r, c.loginErr(rec.ReturnTo, wrapStore(errCorruptRecord)))
		return
	}
	c.complete(w, r, claims, rec.ReturnTo)
}

// confirmText is the confirmation page in one language. %s in title and
// message is the user's name.
type confirmText struct {
	title, message, unknown, cont, cancel string
}

// confirmView is the data of confirmPage.
type confirmView struct {
	pageView
	Message, Action, Continue, Cancel string
}

var confirmPage = template.Must(template.Must(pageLayout.Clone()).Parse(`{{define "content" -}}
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
<form method="post" action="{{.Action}}">
<button class="button" type="submit" name="action" value="continue">{{.Continue}}</button>
<button class="quiet" type="submit" name="action" value="cancel">{{.Cancel}}</button>
</form>
{{- end}}`))

// writeConfirmPage asks the browser whether to continue as the user the
// claims name. The name is the only thing shown of them.
func writeConfirmPage(w http.ResponseWriter, r *http.Request, action string, claims *Claims) {
	l := pickLanguage(r)
	t := msgs[l].confirm
	name := safeText(claims.Name)
	if name == "" {
		name = t.unknown
	}
	setPageHeaders(w.Header(), l)
	writePage(w, r, http.StatusOK, confirmPage, confirmView{
		pageView: pageView{Lang: l.tag(), Title: fmt.Sprintf(t.title, name)},
		Message:  fmt.Sprintf(t.message, name),
		Action:   action,
		Continue: t.cont,
		Cancel:   t.cancel,
	})
}
