package vippslogin

import (
	"html/template"
	"log/slog"
	"net/http"
	"strings"
)

// Logins that come back in another browser.
//
// With FlowAutomaticReturn the Vipps or MobilePay app sends the user back
// by itself, and the phone may open the callback in another browser than
// the one that started the login (iOS Chrome to Safari, say). That browser
// has none of the site's cookies, and Vipps asks that such logins complete
// all the same (login-api/api-guide/flows/automatic-return.md). So a
// callback of such a login is finished in whichever browser receives it,
// with its code: the code is exchanged with the PKCE verifier and the
// tokens verified as always.
//
// That browser is not logged in at once. A callback URL is a login link
// anyone can be handed: an attacker could log in with their own Vipps
// account, keep the callback and send it to a victim, whose browser would
// then be logged in to the attacker's account (login CSRF). So the browser
// is shown who is logging in, "Continue as Kari Nordmann?", and only a
// click on Continue (a same-origin POST, with a secret in a cookie set by
// the callback) logs it in. A login whose claims name nobody (the scope
// edited down to openid, say) cannot be shown, and is refused.
//
// The browser that started the login gets nothing from it: a browser is
// logged in only by a callback it received itself, with the code.

// handOff keeps the verified claims of a login that came back in another
// browser, and asks that browser to confirm it.
func (c *Client) handOff(w http.ResponseWriter, r *http.Request, rec *pendingLogin, claims *Claims) {
	fail := func(err error) { c.fail(w, r, c.loginErr(rec.ReturnTo, err)) }
	if personLabel(claims) == "" {
		fail(errNameless())
		return
	}
	data, err := encodeClaims(claims)
	if err != nil {
		fail(err)
		return
	}
	h := &handoff{Claims: data, ReturnTo: rec.ReturnTo, Created: c.s.Now().Unix()}
	if l := loginOf(r.Context()); l != nil {
		h.Login = l.id
	}
	if err := c.pending.handOff(r.Context(), w, h); err != nil {
		fail(err)
		return
	}
	c.s.logStep(r.Context(), slog.LevelDebug, recConfirmAsked)
	c.writeConfirmPage(w, r, h.ID, claims)
}

// askAgain shows the page that asks to confirm again, when the browser of
// r holds a login to confirm, and reports whether it did.
func (c *Client) askAgain(w http.ResponseWriter, r *http.Request) bool {
	h, status, err := c.pending.handoff(r.Context(), w, r, "")
	if err != nil || status != loginPending {
		return false
	}
	claims, err := decodeClaims(h.Claims)
	if err != nil {
		return false
	}
	c.writeConfirmPage(w, r, h.ID, claims)
	return true
}

// confirm answers the confirmation page: POST action=continue logs the
// browser in, action=cancel drops the login. Either uses it up.
func (c *Client) confirm(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if err := c.csrf.Check(r); err != nil {
		c.fail(w, r, newErr(ErrInvalidRequest, "cross_origin", "%v", err))
		return
	}
	if c.refuseWithoutSession(w, r, func(err error) error { return c.loginErr("", err) }) {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	action, id := r.PostFormValue("action"), r.PostFormValue("login")
	if action != "continue" && action != "cancel" || !validToken(id) {
		c.fail(w, r, c.loginErr("", newErr(ErrBadCallback, "malformed", "no action or login to confirm")))
		return
	}
	h, status, err := c.pending.handoff(r.Context(), w, r, id)
	if h != nil && validLoginID(h.Login) {
		r = r.WithContext(withLogin(r.Context(), h.Login, flowName(FlowAutomaticReturn)))
	}
	switch {
	case err != nil:
		c.fail(w, r, c.loginErr("", err))
	case status == loginUnknown:
		c.fail(w, r, c.loginErr("", newErr(ErrBadCallback, "other_browser", "no such login to confirm in this browser")))
	case status == loginExpired:
		c.fail(w, r, c.loginErr("", ErrLoginExpired))
	case action == "cancel":
		c.fail(w, r, c.loginErr(h.ReturnTo, errDeclined()))
	default:
		claims, err := decodeClaims(h.Claims)
		if err != nil {
			c.fail(w, r, c.loginErr(h.ReturnTo, wrapStore(errCorruptRecord)))
			return
		}
		c.complete(w, r, claims, h.ReturnTo)
	}
}

// personLabel is what the confirmation page calls the person the claims
// name: their name, phone number or e-mail address, or "" when they name
// nobody.
func personLabel(c *Claims) string {
	switch {
	case strings.TrimSpace(c.Name) != "":
		return strings.TrimSpace(c.Name)
	case strings.TrimSpace(c.PhoneNumber) != "":
		return "+" + strings.TrimSpace(c.PhoneNumber)
	}
	return strings.TrimSpace(c.Email)
}

// confirmText is the confirmation page in one language. "{name}" in title
// and message stands for the user's name, "{provider}" for
// Config.ProviderName.
type confirmText struct {
	title, message, cont, cancel string
}

// confirmView is the data of confirmPage.
type confirmView struct {
	pageView
	Message, Action, Login, Continue, Cancel string
}

var confirmPage = template.Must(template.Must(pageLayout.Clone()).Parse(`{{define "content" -}}
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
<form method="post" action="{{.Action}}">
<input type="hidden" name="login" value="{{.Login}}">
<button class="button" type="submit" name="action" value="continue">{{.Continue}}</button>
<button class="quiet" type="submit" name="action" value="cancel">{{.Cancel}}</button>
</form>
{{- end}}`))

// writeConfirmPage asks the browser whether to continue as the person the
// claims name (personLabel), the only thing shown of them.
func (c *Client) writeConfirmPage(w http.ResponseWriter, r *http.Request, login string, claims *Claims) {
	l := pickLanguage(r)
	t := msgs[l].confirm
	// One pass, so that a name holding "{provider}" stays as it is.
	fill := strings.NewReplacer("{name}", safeText(personLabel(claims)), "{provider}", c.s.ProviderName)
	action := c.s.basePath + c.s.AuthPath + "/confirm"
	setPageHeaders(w.Header(), l.tag())
	writePage(w, r, http.StatusOK, confirmPage, confirmView{
		pageView: pageView{Lang: l.tag(), Title: fill.Replace(t.title)},
		Message:  fill.Replace(t.message),
		Action:   action,
		Login:    login,
		Continue: t.cont,
		Cancel:   t.cancel,
	})
}
