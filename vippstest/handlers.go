package vippstest

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vippslogin/vippslogin/internal/jose"
)

// endpoint counts the request, keeps its headers and applies the fault set
// for e before handing the request to h.
func (p *Provider) endpoint(e Endpoint, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.hits[e]++
		p.headers[e] = r.Header.Clone()
		f := p.faults[e]
		p.mu.Unlock()
		if p.fault(w, r, f) {
			return
		}
		h(w, r)
	})
}

// fault applies f and reports whether it answered the request.
func (p *Provider) fault(w http.ResponseWriter, r *http.Request, f Fault) bool {
	if f.Delay > 0 {
		// The wait's channels are made here, in the request's goroutine,
		// so that inside a testing/synctest bubble (see Provider.Handler)
		// the bubble's clock moves past it.
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		defer context.AfterFunc(p.closed, cancel)()
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			if p.closed.Err() != nil {
				hangUp(w)
			}
			return true
		}
	}
	if f.Down {
		hangUp(w)
		return true
	}
	if f.Status == 0 {
		return false
	}
	if f.Body == "" {
		code := "invalid_request"
		if f.Status >= 500 {
			code = "server_error"
		}
		writeError(w, f.Status, code, "fault injected by vippstest")
		return true
	}
	ct := "text/plain; charset=utf-8"
	switch {
	case json.Valid([]byte(f.Body)):
		ct = "application/json"
	case strings.HasPrefix(f.Body, "<"):
		ct = "text/html; charset=utf-8"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(f.Status)
	_, _ = w.Write([]byte(f.Body))
	return true
}

// hangUp closes the connection of w without an answer.
func hangUp(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Makes net/http abort the response and close the connection.
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

// discoveryDocument is the provider's OpenID configuration: the fields and
// values of Vipps' documented example, with the provider's own URLs
// (login-api/api-guide/browser-flow-integration.md, "OpenID configuration"),
// and nothing Vipps does not advertise: no code_challenge_methods_supported
// and no backchannel_authentication_endpoint. The revocation and
// end-session endpoints are advertised as at Vipps but not served.
// authorization_response_iss_parameter_supported (RFC 9207) appears only
// with Config.IssuerParameter, which Vipps does not offer.
type discoveryDocument struct {
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	JWKSURI                           string   `json:"jwks_uri"`
	SubjectTypes                      []string `json:"subject_types_supported"`
	ResponseTypes                     []string `json:"response_types_supported"`
	Claims                            []string `json:"claims_supported"`
	GrantTypes                        []string `json:"grant_types_supported"`
	ResponseModes                     []string `json:"response_modes_supported"`
	UserinfoEndpoint                  string   `json:"userinfo_endpoint,omitempty"`
	Scopes                            []string `json:"scopes_supported"`
	TokenEndpointAuthMethods          []string `json:"token_endpoint_auth_methods_supported"`
	UserinfoSigningAlgs               []string `json:"userinfo_signing_alg_values_supported"`
	IDTokenSigningAlgs                []string `json:"id_token_signing_alg_values_supported"`
	RequestParameterSupported         bool     `json:"request_parameter_supported"`
	RequestURIParameterSupported      bool     `json:"request_uri_parameter_supported"`
	RequireRequestURIRegistration     bool     `json:"require_request_uri_registration"`
	ClaimsParameterSupported          bool     `json:"claims_parameter_supported"`
	RevocationEndpoint                string   `json:"revocation_endpoint"`
	BackchannelLogoutSupported        bool     `json:"backchannel_logout_supported"`
	BackchannelLogoutSessionSupported bool     `json:"backchannel_logout_session_supported"`
	FrontchannelLogoutSupported       bool     `json:"frontchannel_logout_supported"`
	FrontchannelLogoutSessionSupport  bool     `json:"frontchannel_logout_session_supported"`
	EndSessionEndpoint                string   `json:"end_session_endpoint"`
	IssParameterSupported             bool     `json:"authorization_response_iss_parameter_supported,omitempty"`
}

func (p *Provider) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	base := p.URL()
	p.mu.Lock()
	algs := p.signingAlgsLocked()
	p.mu.Unlock()
	userinfo := base + userinfoPath
	if p.noUserinfo {
		userinfo = ""
	}
	w.Header().Set("Cache-Control", "max-age=3600")
	writeJSON(w, http.StatusOK, discoveryDocument{
		Issuer:                        p.Issuer(),
		AuthorizationEndpoint:         base + authorizePath,
		TokenEndpoint:                 base + tokenPath,
		JWKSURI:                       base + jwksPath,
		SubjectTypes:                  []string{"public", "pairwise"},
		ResponseTypes:                 []string{"code", "code id_token", "id_token", "token id_token", "token", "token id_token code"},
		Claims:                        []string{"sub"},
		GrantTypes:                    []string{"authorization_code", "implicit", "client_credentials", "refresh_token"},
		ResponseModes:                 []string{"query", "fragment"},
		UserinfoEndpoint:              userinfo,
		Scopes:                        []string{"offline", "openid", "address", "name", "email", "phoneNumber", "nin", "birthDate", "api_version_2"},
		TokenEndpointAuthMethods:      []string{methodPost, methodBasic, "private_key_jwt", "none"},
		UserinfoSigningAlgs:           []string{"none", "RS256"},
		IDTokenSigningAlgs:            algs,
		RequestParameterSupported:     true,
		RequestURIParameterSupported:  true,
		RequireRequestURIRegistration: true,
		RevocationEndpoint:            base + issuerPath + "oauth2/revoke",
		EndSessionEndpoint:            base + issuerPath + "oauth2/sessions/logout",
		IssParameterSupported:         p.issParam,
	})
}

func (p *Provider) serveJWKS(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	keys := []*jose.SigningKey{p.key}
	for i := len(p.oldKeys) - 1; i >= 0; i-- {
		keys = append(keys, p.oldKeys[i])
	}
	keys = append(keys, p.phoneKeysLocked()...)
	p.mu.Unlock()
	body, err := jose.PublicJWKS(keys...)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "server_error", "cannot encode the key set")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "max-age=3600")
	_, _ = w.Write(body)
}

// serveAuthorize checks an authorization request. Requests with a bad
// client_id or redirect_uri get an error page, since there is nowhere safe
// to send the user; other bad requests are sent back to the client.
func (p *Provider) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if name := repeated(q, "client_id", "redirect_uri", "msn"); name != "" {
		p.errorPage(w, r, "invalid_request", name+" is given more than once")
		return
	}
	if p.authorizeClientID(q.Get("client_id"), q.Get("msn")) != p.clientID {
		p.errorPage(w, r, "invalid_request", "unknown client_id")
		return
	}
	redirectURI := q.Get("redirect_uri")
	if !p.redirectAllowed(redirectURI) {
		p.errorPage(w, r, "invalid_request", "redirect_uri is not registered for this client")
		return
	}
	g := grant{
		redirectURI:     redirectURI,
		state:           q.Get("state"),
		scope:           q.Get("scope"),
		nonce:           q.Get("nonce"),
		challenge:       q.Get("code_challenge"),
		challengeMethod: q.Get("code_challenge_method"),
		requestedAt:     p.now(),
		acr:             q.Get("acr_values"),
		flow:            q.Get("requested_flow"),
	}
	if g.challengeMethod == "" {
		g.challengeMethod = "plain" // as at Vipps
	}
	if desc := checkAuthorize(q, g); desc != "" {
		p.redirectError(w, r, g, "invalid_request", desc)
		return
	}
	p.mu.Lock()
	hookErr := p.hooks.AuthorizeError
	g.sub = p.sub
	p.mu.Unlock()
	if hookErr != "" {
		p.redirectError(w, r, g, hookErr, "error set in vippstest Hooks.AuthorizeError")
		return
	}
	if p.autoApprove {
		p.approve(w, r, g)
		return
	}
	p.showConsent(w, r, g)
}

// checkAuthorize returns what is wrong with an authorization request whose
// client_id and redirect_uri are good, or "".
func checkAuthorize(q url.Values, g grant) string {
	if name := repeated(q, "response_type", "scope", "state", "nonce", "code_challenge", "code_challenge_method",
		"requested_flow", "app_callback_uri", "final_redirect_is_app", "acr_values"); name != "" {
		return name + " is given more than once"
	}
	switch {
	case q.Get("response_type") != "code":
		return "response_type must be code"
	case !slices.Contains(strings.Fields(g.scope), "openid"):
		return "scope must contain openid"
	case g.state == "":
		return "state is missing"
	case len(g.state) < 8:
		return "state must be at least 8 characters long"
	case g.challengeMethod != "S256" && g.challengeMethod != "plain":
		return "code_challenge_method must be S256 or plain"
	case g.acr != "" && g.acr != "urn:vipps:acr:app_auth":
		return "acr_values must be urn:vipps:acr:app_auth"
	}
	switch f := q.Get("final_redirect_is_app"); f {
	case "", "true", "false":
	default:
		return "final_redirect_is_app must be true or false"
	}
	app := q.Get("app_callback_uri")
	switch g.flow {
	case "", "automatic_return_from_vipps_app":
	case "app_to_app":
		if app == "" {
			return "app_callback_uri is required with requested_flow=app_to_app"
		}
		if err := checkAppCallbackURI(app); err != nil {
			return "app_callback_uri: " + err.Error()
		}
		return ""
	case "app_to_app_v2":
		if g.challengeMethod != "S256" {
			return "requested_flow=app_to_app_v2 needs PKCE with S256"
		}
	default:
		return "unknown requested_flow"
	}
	if app != "" {
		return "app_callback_uri is only allowed with requested_flow=app_to_app"
	}
	return ""
}

// checkAppCallbackURI applies Vipps' rules for an app callback URI: an
// absolute URI with no fragment; a custom scheme needs a path
// (myapp://login, not myapp://).
func checkAppCallbackURI(uri string) error {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme == "" || strings.Contains(uri, "#") {
		return errors.New("must be an absolute URI without a fragment")
	}
	if rest := strings.TrimPrefix(strings.TrimPrefix(uri, u.Scheme+":"), "//"); rest == "" || rest == "/" {
		return errors.New("a custom scheme needs a path")
	}
	return nil
}

// redirectAllowed reports whether uri may be used as a redirect URI.
func (p *Provider) redirectAllowed(uri string) bool {
	if checkRedirectURI(uri) != nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.redirectURIs) > 0 {
		return slices.Contains(p.redirectURIs, uri)
	}
	u, _ := url.Parse(uri)
	return (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// approve issues a code for g and sends the user back with it.
func (p *Provider) approve(w http.ResponseWriter, r *http.Request, g grant) {
	code := randomToken()
	now := p.now()
	p.mu.Lock()
	p.sweepLocked(now)
	p.codes[code] = &authCode{grant: g, authTime: now, sid: newUUID(), expires: now.Add(p.codeTTL)}
	p.mu.Unlock()
	p.redirect(w, r, g.redirectURI, "code", code, "state", g.state, "scope", g.scope)
}

// redirectError sends the user back to the client with an error.
func (p *Provider) redirectError(w http.ResponseWriter, r *http.Request, g grant, code, desc string) {
	p.redirect(w, r, g.redirectURI, "error", code, "error_description", desc, "state", g.state)
}

// redirect sends the user to target with the query parameters in kv (name,
// value, name, value...), plus iss if configured. Spaces are encoded as
// %20, as at Vipps.
func (p *Provider) redirect(w http.ResponseWriter, r *http.Request, target string, kv ...string) {
	if p.issParam {
		kv = append(kv, "iss", p.Issuer())
	}
	var b strings.Builder
	b.WriteString(target)
	sep := "?"
	if strings.Contains(target, "?") {
		sep = "&"
	}
	for i := 0; i+1 < len(kv); i += 2 {
		b.WriteString(sep)
		sep = "&"
		b.WriteString(kv[i])
		b.WriteByte('=')
		b.WriteString(strings.ReplaceAll(url.QueryEscape(kv[i+1]), "+", "%20"))
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Location", b.String())
	w.WriteHeader(http.StatusFound)
}

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope"`
	IDToken     string `json:"id_token"`
}

// serveToken exchanges an authorization code. The client is authenticated
// before the code is looked at, so a request that fails client
// authentication leaves the code usable; any later failure uses it up.
func (p *Provider) serveToken(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", "the body is not a valid form")
		return
	}
	form := r.PostForm
	if form.Get("grant_type") == "" {
		writeError(w, http.StatusBadRequest, "invalid_request", "grant_type is missing")
		return
	}
	if !p.authenticateClient(r) {
		refuseClient(w, r)
		return
	}
	switch form.Get("grant_type") {
	case grantCIBA, grantCIBARedirect:
		p.serveCIBAToken(w, r) // login from phone number, in ciba.go
		return
	}
	if form.Get("grant_type") != "authorization_code" {
		writeError(w, http.StatusBadRequest, "unsupported_grant_type", "only authorization_code is supported")
		return
	}

	now := p.now()
	token := randomToken()
	p.mu.Lock()
	c, ok := p.codes[form.Get("code")]
	var replayed bool
	if ok {
		replayed = c.used
		if replayed {
			// RFC 6749 section 4.1.2: revoke what the code gave.
			c.replayed = true
			delete(p.tokens, c.accessToken)
		} else {
			c.used = true
			c.accessToken = token
		}
	}
	p.mu.Unlock()
	switch {
	case !ok:
		writeError(w, http.StatusBadRequest, "invalid_grant", "unknown authorization code")
		return
	case replayed:
		writeError(w, http.StatusBadRequest, "invalid_grant", "the authorization code has been used already")
		return
	case !now.Before(c.expires):
		writeError(w, http.StatusBadRequest, "invalid_grant", "the authorization code has expired")
		return
	case form.Get("redirect_uri") != c.redirectURI:
		writeError(w, http.StatusBadRequest, "invalid_grant", "redirect_uri does not match the authorization request")
		return
	}
	// PKCE is optional at Vipps (login-api/api-guide/browser-flow-integration.md,
	// "OAuth 2.0 Authorize": code_challenge "Optional"): a code asked for
	// without a challenge needs no verifier.
	if c.challenge != "" {
		if desc := checkVerifier(form.Get("code_verifier"), c.challenge, c.challengeMethod); desc != "" {
			writeError(w, http.StatusBadRequest, "invalid_grant", desc)
			return
		}
	}

	p.mu.Lock()
	replayed = c.replayed // by a request that came in meanwhile
	if !replayed {
		p.sweepLocked(now)
		p.tokens[token] = &accessToken{sub: c.sub, sid: c.sid, scopes: strings.Fields(c.scope), expires: now.Add(p.accessTTL)}
	}
	p.mu.Unlock()
	if replayed {
		writeError(w, http.StatusBadRequest, "invalid_grant", "the authorization code has been used already")
		return
	}

	idToken, err := p.idToken(c, token, now)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "server_error", "cannot sign the ID token")
		return
	}
	writeJSON(w, http.StatusOK, tokenResponse{
		AccessToken: token,
		TokenType:   "bearer",
		ExpiresIn:   max(int64(p.accessTTL/time.Second)-1, 0),
		Scope:       c.scope,
		IDToken:     idToken,
	})
}

// refuseClient answers a request whose client authentication failed.
func refuseClient(w http.ResponseWriter, r *http.Request) {
	if _, _, basic := r.BasicAuth(); basic {
		w.Header().Set("WWW-Authenticate", `Basic realm="vippstest"`)
	}
	writeError(w, http.StatusUnauthorized, "invalid_client", "Client authentication failed")
}

// authenticateClient checks the client's credentials, accepting only the
// configured method.
func (p *Provider) authenticateClient(r *http.Request) bool {
	if valid, partner := p.partnerAuthenticated(r); partner {
		return valid
	}
	p.mu.Lock()
	method := p.authMethod
	p.mu.Unlock()
	user, pass, basic := r.BasicAuth()
	_, hasHeader := r.Header["Authorization"]
	_, postSecret := r.PostForm["client_secret"]
	switch method {
	case methodBasic:
		if !basic || postSecret {
			return false
		}
		// RFC 6749 section 2.3.1: both parts are form-encoded first.
		var err1, err2 error
		user, err1 = url.QueryUnescape(user)
		pass, err2 = url.QueryUnescape(pass)
		if err1 != nil || err2 != nil {
			return false
		}
		if id := r.PostForm.Get("client_id"); id != "" && id != user {
			return false
		}
	case methodPost:
		if hasHeader {
			return false
		}
		user, pass = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	default:
		return false
	}
	okID := subtle.ConstantTimeCompare([]byte(user), []byte(p.clientID))
	okSecret := subtle.ConstantTimeCompare([]byte(pass), []byte(p.clientSecret))
	return okID&okSecret == 1
}

// checkVerifier returns what is wrong with a PKCE code verifier (RFC 7636),
// or "".
func checkVerifier(verifier, challenge, method string) string {
	if verifier == "" {
		return "code_verifier is missing"
	}
	if len(verifier) < 43 || len(verifier) > 128 || strings.IndexFunc(verifier, notUnreserved) >= 0 {
		return "code_verifier must be 43 to 128 unreserved characters"
	}
	want := verifier
	if method == "S256" {
		sum := sha256.Sum256([]byte(verifier))
		want = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(challenge)) != 1 {
		return "code_verifier does not match code_challenge"
	}
	return ""
}

func notUnreserved(c rune) bool {
	return !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~')
}

// idToken makes the ID token for the code c and the access token.
func (p *Provider) idToken(c *authCode, token string, now time.Time) (string, error) {
	p.mu.Lock()
	key := p.key
	hook := p.hooks.IDToken
	p.mu.Unlock()
	claims := p.idClaims(c.sub, c.nonce, c.sid, c.authTime, now)
	claims["rat"] = c.requestedAt.Unix()
	claims["at_hash"] = accessTokenHash(key.Alg, token)
	if c.acr != "" {
		claims["acr"] = c.acr // the user confirmed in the app
	}
	p.addProfileClaims(claims, c.sub, c.sid, c.scope)
	return signIDToken(key, hook, claims)
}

// idClaims returns the claims every ID token of the provider has.
func (p *Provider) idClaims(sub, nonce, sid string, authTime, now time.Time) map[string]any {
	return map[string]any{
		"iss":       p.Issuer(),
		"sub":       sub,
		"aud":       []any{p.clientID},
		"exp":       now.Add(p.idTTL).Unix(),
		"iat":       now.Unix(),
		"auth_time": authTime.Unix(),
		"jti":       newUUID(),
		"nonce":     nonce,
		"sid":       sid,
		"msn":       p.partner.msn,
	}
}

// signIDToken signs claims with key, after the IDToken hook, if any, had
// its say: a non-empty answer of the hook is the token.
func signIDToken(key *jose.SigningKey, hook func(header, claims map[string]any) string, claims map[string]any) (string, error) {
	header := map[string]any{"alg": key.Alg, "kid": key.Kid, "typ": "JWT"}
	if hook != nil {
		if s := hook(header, claims); s != "" {
			return s, nil
		}
	}
	return sign(key, header, claims)
}

func (p *Provider) serveUserinfo(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="vippstest"`)
		writeProblem(w, http.StatusUnauthorized, "Unauthorized", "a bearer token is required")
		return
	}
	now := p.now()
	p.mu.Lock()
	t, ok := p.tokens[token]
	hook := p.hooks.Userinfo
	p.mu.Unlock()
	if !ok || !now.Before(t.expires) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="vippstest", error="invalid_token"`)
		writeProblem(w, http.StatusUnauthorized, "Unauthorized", "the access token is unknown or has expired")
		return
	}
	u, _ := p.user(t.sub)
	claims := userinfoClaims(u, t.sid, t.scopes)
	if hook != nil {
		hook(claims)
	}
	writeJSON(w, http.StatusOK, claims)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"error":"server_error","error_code":500,"error_debug":"cannot encode the answer"}`)
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeError answers an error as Vipps' login API does: its ErrorResponse,
// {"error": name, "error_code": status, "error_debug": text}
// (login-api/docs/swagger.yaml, components.schemas.ErrorResponse).
func writeError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, struct {
		Error      string `json:"error"`
		ErrorCode  int    `json:"error_code"`
		ErrorDebug string `json:"error_debug,omitempty"`
	}{code, status, desc})
}

// writeProblem answers an error as Vipps' userinfo API does: its
// UserinfoError, a problem object with type, title, status (a string),
// detail and instance (userinfo-api/docs/swagger.yaml,
// components.schemas.UserinfoError).
func writeProblem(w http.ResponseWriter, status int, title, detail string) {
	body, _ := json.Marshal(map[string]string{
		"type":     "https://developer.vippsmobilepay.com/docs/knowledge-base/errors",
		"title":    title,
		"status":   strconv.Itoa(status),
		"detail":   detail,
		"instance": newUUID(),
	})
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// repeated returns the first of names that values holds more than once,
// or "".
func repeated(values url.Values, names ...string) string {
	for _, name := range names {
		if len(values[name]) > 1 {
			return name
		}
	}
	return ""
}
