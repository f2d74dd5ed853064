package main

import (
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/alexedwards/scs/v2"

	"github.com/vippslogin/vippslogin"
)

// newVippsloginSite builds the site with package vippslogin, as
// examples/basic does without its pages, metrics and logs. It returns the
// site's handler and its redirect URI.
func newVippsloginSite(o options) (http.Handler, string, error) {
	sessions := scs.New() // memory store
	auth, err := vippslogin.New(vippslogin.Config{
		ClientID:     o.ClientID,
		ClientSecret: vippslogin.Secret(o.ClientSecret),
		Issuer:       o.Issuer,
		ProviderName: "Vipps MobilePay",
		BaseURL:      o.BaseURL,
		Sessions:     sessions,
		Scopes:       scopes,
		// All the benchmark's browsers come from 127.0.0.1, which the
		// default of 60 logins a minute per source would turn away; the
		// limiter still runs for every login.
		LoginsPerMinute: 1 << 30,
		// The hand-written site logs nothing either.
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return nil, "", err
	}
	sessions.ErrorFunc = auth.SessionError

	mux := http.NewServeMux()
	mux.Handle("/auth/", auth.Handler())
	mux.Handle("GET /profile", auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := vippslogin.ClaimsFromContext(r.Context())
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(c)
	})))
	return auth.LoadAndSave(mux), auth.RedirectURI(), nil
}
