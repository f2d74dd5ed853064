package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// handwritten is what a site writes without package vippslogin: go-oidc
// verifies ID tokens and fetches userinfo, x/oauth2 builds the authorization
// URL and exchanges the code, scs keeps the session, and the site itself
// makes and checks state, nonce and the PKCE verifier.
type handwritten struct {
	sessions *scs.SessionManager
	oauth    oauth2.Config
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
	client   *http.Client // for the calls to the provider
}

// Session keys.
const (
	keyState    = "oidc.state"
	keyNonce    = "oidc.nonce"
	keyVerifier = "oidc.verifier"
	keyClaims   = "claims"
)

// newHandwrittenSite builds the hand-written site. It reads the provider's
// discovery document at once. It returns the site's handler and its
// redirect URI.
func newHandwrittenSite(o options) (http.Handler, string, error) {
	client := &http.Client{Timeout: 10 * time.Second} // http.DefaultTransport
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// go-oidc keeps the client of this context (not the context) for the
	// key set's fetches.
	provider, err := oidc.NewProvider(oidc.ClientContext(ctx, client), o.Issuer)
	if err != nil {
		return nil, "", fmt.Errorf("discovery: %w", err)
	}
	h := &handwritten{
		sessions: scs.New(), // memory store
		oauth: oauth2.Config{
			ClientID:     o.ClientID,
			ClientSecret: o.ClientSecret,
			Endpoint:     provider.Endpoint(),
			RedirectURL:  o.BaseURL + "/auth/callback",
			Scopes:       scopes,
		},
		provider: provider,
		verifier: provider.Verifier(&oidc.Config{ClientID: o.ClientID}),
		client:   client,
	}
	// Vipps accepts one client authentication method; client_secret_basic
	// is the default, so do not let x/oauth2 guess.
	h.oauth.Endpoint.AuthStyle = oauth2.AuthStyleInHeader

	mux := http.NewServeMux()
	mux.HandleFunc("GET /auth/login", h.login)
	mux.HandleFunc("GET /auth/callback", h.callback)
	mux.HandleFunc("GET /profile", h.profile)
	return h.sessions.LoadAndSave(mux), h.oauth.RedirectURL, nil
}

// login starts a login: fresh state, nonce and PKCE verifier in the
// session, then off to the provider.
func (h *handwritten) login(w http.ResponseWriter, r *http.Request) {
	state, nonce, verifier := rand.Text(), rand.Text(), oauth2.GenerateVerifier()
	ctx := r.Context()
	h.sessions.Put(ctx, keyState, state)
	h.sessions.Put(ctx, keyNonce, nonce)
	h.sessions.Put(ctx, keyVerifier, verifier)
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, h.oauth.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), http.StatusFound)
}

// callback finishes a login: checks state, exchanges the code with the
// verifier, verifies the ID token and its nonce, fetches userinfo for the
// same subject, renews the session and saves the claims.
func (h *handwritten) callback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	w.Header().Set("Cache-Control", "no-store")
	state := h.sessions.PopString(ctx, keyState)
	nonce := h.sessions.PopString(ctx, keyNonce)
	verifier := h.sessions.PopString(ctx, keyVerifier)
	q := r.URL.Query()
	if state == "" || subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(state)) != 1 {
		http.Error(w, "no login of this browser has this state", http.StatusBadRequest)
		return
	}
	if e := q.Get("error"); e != "" {
		http.Error(w, "the login was not completed: "+e, http.StatusForbidden)
		return
	}

	pctx := oidc.ClientContext(ctx, h.client) // x/oauth2 reads the same key
	token, err := h.oauth.Exchange(pctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		h.fail(w, "code exchange", err, http.StatusBadGateway)
		return
	}
	rawID, _ := token.Extra("id_token").(string)
	if rawID == "" {
		h.fail(w, "token response", fmt.Errorf("no id_token"), http.StatusBadGateway)
		return
	}
	idToken, err := h.verifier.Verify(pctx, rawID)
	if err != nil {
		h.fail(w, "ID token", err, http.StatusForbidden)
		return
	}
	if subtle.ConstantTimeCompare([]byte(idToken.Nonce), []byte(nonce)) != 1 {
		h.fail(w, "ID token", fmt.Errorf("nonce does not match"), http.StatusForbidden)
		return
	}
	if idToken.AccessTokenHash != "" {
		if err := idToken.VerifyAccessToken(token.AccessToken); err != nil {
			h.fail(w, "ID token", err, http.StatusForbidden)
			return
		}
	}
	info, err := h.provider.UserInfo(pctx, oauth2.StaticTokenSource(token))
	if err != nil {
		h.fail(w, "userinfo", err, http.StatusBadGateway)
		return
	}
	if info.Subject != idToken.Subject {
		h.fail(w, "userinfo", fmt.Errorf("sub %q is not the ID token's", info.Subject), http.StatusForbidden)
		return
	}

	// The claims: the ID token's, with userinfo's on top.
	claims := map[string]any{}
	if err := idToken.Claims(&claims); err != nil {
		h.fail(w, "ID token", err, http.StatusBadGateway)
		return
	}
	var fromUserinfo map[string]any
	if err := info.Claims(&fromUserinfo); err != nil {
		h.fail(w, "userinfo", err, http.StatusBadGateway)
		return
	}
	for k, v := range fromUserinfo {
		claims[k] = v
	}
	b, err := json.Marshal(claims)
	if err != nil {
		h.fail(w, "claims", err, http.StatusInternalServerError)
		return
	}
	if err := h.sessions.RenewToken(ctx); err != nil {
		h.fail(w, "session", err, http.StatusInternalServerError)
		return
	}
	h.sessions.Put(ctx, keyClaims, b)
	http.Redirect(w, r, "/profile", http.StatusSeeOther)
}

// profile answers the logged-in user's claims as JSON, or 401.
func (h *handwritten) profile(w http.ResponseWriter, r *http.Request) {
	b := h.sessions.GetBytes(r.Context(), keyClaims)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if b == nil {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"login_required","login_url":"/auth/login"}` + "\n"))
		return
	}
	_, _ = w.Write(append(b, '\n'))
}

// fail logs a failed login and answers it.
func (h *handwritten) fail(w http.ResponseWriter, step string, err error, status int) {
	log.Printf("login failed at %s: %v", step, err)
	http.Error(w, "login failed at "+step, status)
}
