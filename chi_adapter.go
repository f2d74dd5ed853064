package vippslogin

import (
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/go-chi/chi/v5"
)

// MountChi registers the routes [Client.Handler] serves on r, at
// Config.AuthPath below r:
//
//	r := chi.NewRouter()
//	r.Use(auth.LoadAndSave)
//	auth.MountChi(r) // /auth/login, /auth/callback, /auth/logout, /auth/confirm
//	r.With(auth.RequireLogin).Get("/account", account)
//
// They are GET /login, GET /callback, GET and HEAD /logout (the page of a
// logout link), POST /logout and POST /confirm.
//
// Over r.Mount("/auth", auth.Handler()) it gives three things:
//   - the routes sit at the path the redirect URI is built from, so the two
//     cannot drift apart;
//   - each route is registered for its method, so chi answers other methods
//     with its 405 and Allow header, and unknown paths with the site's own
//     NotFound handler;
//   - it knows where it was mounted: when r is a sub-router (r.Route("/shop",
//     ...)) whose prefix BaseURL does not include, the redirect URI would
//     name a path no route serves, and the first login fails at once with a
//     configuration error that says so, instead of after the round trip to
//     Vipps.
func (c *Client) MountChi(r chi.Router) {
	var once sync.Once
	var mountErr error
	check := func(next http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, req *http.Request) {
			if rctx := chi.RouteContext(req.Context()); rctx != nil {
				once.Do(func() { mountErr = c.checkChiMount(rctx.RoutePattern()) })
				if mountErr != nil {
					c.fail(w, req, mountErr)
					return
				}
			}
			next(w, req)
		}
	}
	r.Route(c.s.AuthPath, func(r chi.Router) {
		for _, rt := range c.routes() {
			r.Method(rt.method, rt.path, check(rt.handler))
		}
	})
}

// checkChiMount compares the pattern chi matched with the paths the
// configuration expects. A proxy may strip BaseURL's path, so the route may
// be served with or without it.
func (c *Client) checkChiMount(pattern string) error {
	var route string
	for _, rt := range c.routes() {
		if strings.HasSuffix(pattern, rt.path) {
			route = rt.path
		}
	}
	full := c.s.basePath + c.s.AuthPath + route
	if pattern == full || pattern == c.s.AuthPath+route {
		return nil
	}
	return fmt.Errorf("%w: chi serves the auth routes at %q, but the redirect URI %q expects %q: "+
		"include the sub-router's prefix in Config.BaseURL, or mount the routes on the root router",
		ErrInvalidConfig, pattern, c.s.redirectURI, full)
}
