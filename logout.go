package vippslogin

import (
	"cmp"
	"html/template"
	"net/http"
)

// Logging out.
//
// POST /logout ends the session. GET /logout is for the logout links many
// sites have: it shows a page whose button POSTs the logout, and changes
// nothing itself, since a GET may come from a prefetch, a link preview or
// another site's <img>, none of which may log anyone out.

// LogoutHandler ends the local session on POST and redirects to return_to
// (a same-site path from the form or query) or Config.DefaultReturnTo.
// Cross-origin requests are refused (http.CrossOriginProtection), and
// other methods than POST answer 405: the page for a logout link (GET)
// is served by [Client.Handler] and [Client.MountChi]. Vipps has no
// provider logout: the user stays logged in at Vipps if they chose to be
// remembered there.
func (c *Client) LogoutHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
			return
		}
		c.logout(w, r)
	})
}

func (c *Client) logout(w http.ResponseWriter, r *http.Request) {
	if err := c.csrf.Check(r); err != nil {
		c.fail(w, r, newErr(ErrInvalidRequest, "cross_origin", "%v", err))
		return
	}
	if c.refuseWithoutSession(w, r, nil) {
		return // the session stays as it is: nothing to end while it cannot be reached
	}
	returnTo := c.s.DefaultReturnTo
	if r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	}
	if rt := c.returnPath(r.FormValue("return_to")); rt != "" {
		returnTo = rt
	}
	if err := c.s.SessionStore.Destroy(r.Context()); err != nil {
		c.fail(w, r, wrapStore(err))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, returnTo, http.StatusSeeOther)
}

// logoutLink answers GET and HEAD /logout with a page whose button POSTs
// the logout, carrying return_to when it is a path on this site. It does
// not touch the session.
func (c *Client) logoutLink(w http.ResponseWriter, r *http.Request) {
	returnTo := c.returnPath(r.URL.Query().Get("return_to"))
	l := pickLanguage(r)
	t := msgs[l].logout
	setPageHeaders(w.Header(), l.tag())
	writePage(w, r, http.StatusOK, logoutPage, logoutView{
		pageView: pageView{Lang: l.tag(), Title: t.title},
		Message:  t.message,
		Action:   c.s.basePath + c.s.AuthPath + "/logout",
		ReturnTo: returnTo,
		LogOut:   t.logOut,
		Stay:     t.stay,
		Back:     cmp.Or(returnTo, c.s.DefaultReturnTo),
	})
}

// logoutText is the logout link's page in one language.
type logoutText struct {
	title, message string
	// logOut labels the button that logs out, stay the link back.
	logOut, stay string
}

// logoutView is the data of logoutPage.
type logoutView struct {
	pageView
	Message  string
	Action   string // the logout route
	ReturnTo string // "" when none, or none acceptable, was given
	LogOut   string
	Stay     string
	Back     string // where Stay leads: return_to or Config.DefaultReturnTo
}

var logoutPage = template.Must(template.Must(pageLayout.Clone()).Parse(`{{define "content" -}}
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
<form method="post" action="{{.Action}}">
{{- with .ReturnTo}}
<input type="hidden" name="return_to" value="{{.}}">
{{- end}}
<button class="button" type="submit">{{.LogOut}}</button>
<a class="quiet" href="{{.Back}}">{{.Stay}}</a>
</form>
{{- end}}`))
