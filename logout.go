package vippslogin

import (
	"fmt"
	"net/http"
)

// LogoutHandler ends the local session on POST and redirects to return_to
// (a same-site path from the form or query) or Config.DefaultReturnTo.
// Cross-origin requests are refused (http.CrossOriginProtection). Vipps has
// no provider logout: the user stays logged in at Vipps if they chose to be
// remembered there.
func (c *Client) LogoutHandler() http.Handler { return http.HandlerFunc(c.logout) }

func (c *Client) logout(w http.ResponseWriter, r *http.Request) {
	if err := c.csrf.Check(r); err != nil {
		c.fail(w, r, fmt.Errorf("%w: %v", ErrCrossOrigin, err))
		return
	}
	returnTo := c.s.DefaultReturnTo
	if r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	}
	if rt, err := cleanReturnTo(r.FormValue("return_to")); err == nil && rt != "" && !c.isAuthPath(rt) {
		returnTo = rt
	}
	if err := c.s.SessionStore.Destroy(r.Context()); err != nil {
		c.fail(w, r, wrapStore(err))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, returnTo, http.StatusSeeOther)
}
