package vippstest

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vippslogin/vippslogin/internal/jose"
)

// Login from phone number (CIBA, "merchant-initiated login") as Vipps runs
// it: the backchannel authentication endpoint starts a login for a phone
// number, the user answers on the phone, and the client polls the token
// endpoint with the CIBA grant, or, in the redirect variant
// (requested_flow=login_to_webpage), gets a code at its redirect URI and
// exchanges it with Vipps' ciba-redirect grant.

// Paths and grant types of the login from phone number.
const (
	backchannelPath   = "/vipps-login-ciba/api/backchannel/authentication"
	userExistsPath    = "/vipps-login-ciba/api/v1/user-exists"
	grantCIBA         = "urn:openid:params:grant-type:ciba"
	grantCIBARedirect = "urn:vipps:params:grant-type:ciba-redirect"
	flowLoginToWeb    = "login_to_webpage"
	// userExistsField is the form field of the phone number at user-exists.
	userExistsField = "loginHint"
	// cibaContentType is the content type of the token endpoint's answers
	// in the guide's examples of polling.
	cibaContentType = "application/json;charset=UTF-8"
)

const (
	// Backchannel is the backchannel authentication endpoint, which starts a
	// login from phone number. Polls go to the Token endpoint.
	Backchannel Endpoint = "backchannel"
	// UserExists is the endpoint that tells whether a phone number belongs
	// to a user.
	UserExists Endpoint = "user-exists"
)

// Limits of the login from phone number, as Vipps documents them.
const (
	minRequestedExpiry = 60
	maxRequestedExpiry = 900
	slowDownStep       = 5 * time.Second // CIBA section 11
	// maxPendingPerPhone logins may wait for the same user at once; one more
	// gets 429 with Retry-After.
	maxPendingPerPhone = 5
	phoneRetryAfter    = "30"
)

var bindingMessageRE = regexp.MustCompile(`^[A-Z0-9\-]{5,8}$`)

// PhoneDecision is what the user does with a login from phone number in
// the app.
type PhoneDecision int

const (
	// PhonePending means the user has not answered yet.
	PhonePending PhoneDecision = iota
	// PhoneApproved means the user confirmed the login.
	PhoneApproved
	// PhoneDeclined means the user declined it.
	PhoneDeclined
)

// String returns "pending", "approved" or "declined".
func (d PhoneDecision) String() string {
	switch d {
	case PhoneApproved:
		return "approved"
	case PhoneDeclined:
		return "declined"
	}
	return "pending"
}

// PhoneAnswer is how the simulated user answers a login from phone number,
// and how long after it started; see Config.PhoneApproval.
type PhoneAnswer struct {
	Decision PhoneDecision
	After    time.Duration
}

// PhoneLogin is a login from phone number as the provider sees it, for
// tests to inspect ([Provider.PhoneLogins]).
type PhoneLogin struct {
	AuthReqID      string
	PhoneNumber    string // MSISDN digits from login_hint
	BindingMessage string
	Scope          string
	Nonce          string
	RedirectURI    string // set in the redirect variant
	Started        time.Time
	Expires        time.Time
	Decision       PhoneDecision
	// Polls are the times of the token requests for the login, by the
	// provider's clock, those answered with an error included.
	Polls []time.Time
}

// PollFault makes the next polls for logins from phone number misbehave;
// see [Provider.SetPollFault]. Each count is used up by one poll; SlowDown
// goes first.
type PollFault struct {
	// SlowDown is how many of the next polls get slow_down, each adding 5
	// seconds to the login's interval.
	SlowDown int
	// TooManyRequests is how many of the next polls get status 429.
	TooManyRequests int
	// RetryAfter is the Retry-After header sent with those 429s, seconds
	// or an HTTP date; "" sends none.
	RetryAfter string
}

// phoneState is the provider's state of logins from phone number.
type phoneState struct {
	interval time.Duration
	expiry   time.Duration
	approval func(PhoneLogin) PhoneAnswer

	// Guarded by Provider.mu:
	logins []*phoneLogin // oldest first
	byID   map[string]*phoneLogin
	codes  map[string]*phoneLogin
	fault  PollFault
	ecKey  *jose.SigningKey // made at the first redirect login
}

func newPhoneState(cfg Config) (phoneState, error) {
	s := phoneState{
		interval: cfg.PhoneLoginInterval,
		expiry:   cfg.PhoneLoginExpiry,
		approval: cfg.PhoneApproval,
		byID:     make(map[string]*phoneLogin),
		codes:    make(map[string]*phoneLogin),
	}
	switch {
	case s.interval < 0 || s.interval > 5*time.Minute:
		return s, errors.New("vippstest: PhoneLoginInterval is outside 0 to 5m")
	case s.interval == 0:
		s.interval = 5 * time.Second
	}
	// Whole seconds, rounded up, as the interval is sent.
	s.interval = (s.interval + time.Second - 1) / time.Second * time.Second
	switch {
	case s.expiry == 0:
		s.expiry = 10 * time.Minute
	case s.expiry < minRequestedExpiry*time.Second || s.expiry > maxRequestedExpiry*time.Second:
		return s, errors.New("vippstest: PhoneLoginExpiry is outside 1m to 15m")
	}
	return s, nil
}

// phoneLogin is a started login from phone number.
type phoneLogin struct {
	id, phone, sub, scope, nonce, binding, redirectURI string
	started, expires                                   time.Time
	interval                                           time.Duration
	polls                                              []time.Time
	decision                                           PhoneDecision
	auto                                               *PhoneAnswer
	expired                                            bool // by ExpirePhoneLogin
	ended                                              bool // its outcome has been delivered
	decided                                            time.Time
	sid                                                string
	code                                               string
	codeExpires                                        time.Time
	codeUsed                                           bool
}

func (l *phoneLogin) view() PhoneLogin {
	return PhoneLogin{
		AuthReqID:      l.id,
		PhoneNumber:    l.phone,
		BindingMessage: l.binding,
		Scope:          l.scope,
		Nonce:          l.nonce,
		RedirectURI:    l.redirectURI,
		Started:        l.started,
		Expires:        l.expires,
		Decision:       l.decision,
		Polls:          slices.Clone(l.polls),
	}
}

// PhoneLogins returns the logins from phone number started so far, oldest
// first. Logins that ended long ago may have been forgotten.
func (p *Provider) PhoneLogins() []PhoneLogin {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]PhoneLogin, 0, len(p.phone.logins))
	for _, l := range p.phone.logins {
		out = append(out, l.view())
	}
	return out
}

// ApprovePhoneLogin confirms, as the user would in the app, the latest
// login for the phone number (MSISDN digits with country code, e.g.
// "4791234567") that still waits for an answer. For a polled login it
// returns ""; the next poll gets the tokens. For the redirect variant it
// returns the URL that the app would open in the phone's browser,
// redirect_uri?code=..., whose code the client exchanges with the
// urn:vipps:params:grant-type:ciba-redirect grant.
func (p *Provider) ApprovePhoneLogin(phone string) (redirect string, err error) {
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.waitingLocked(phone, now)
	if l == nil {
		return "", fmt.Errorf("vippstest: no login from phone number waits for %q", phone)
	}
	l.decision, l.decided = PhoneApproved, now
	if l.redirectURI == "" {
		return "", nil
	}
	l.code = randomToken()
	l.codeExpires = now.Add(p.codeTTL)
	l.sid = newUUID()
	p.phone.codes[l.code] = l
	sep := "?"
	if strings.Contains(l.redirectURI, "?") {
		sep = "&"
	}
	return l.redirectURI + sep + "code=" + url.QueryEscape(l.code), nil
}

// DeclinePhoneLogin declines, as the user would in the app, the latest
// login for the phone number that still waits for an answer. The next poll
// gets access_denied; a redirect login just never comes back.
func (p *Provider) DeclinePhoneLogin(phone string) error {
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.waitingLocked(phone, now)
	if l == nil {
		return fmt.Errorf("vippstest: no login from phone number waits for %q", phone)
	}
	l.decision, l.decided = PhoneDeclined, now
	if l.redirectURI != "" {
		l.ended = true
	}
	return nil
}

// ExpirePhoneLogin makes the latest login for the phone number that has not
// ended expire at once: its next poll gets expired_token, and its redirect
// code, if any, stops working.
func (p *Provider) ExpirePhoneLogin(phone string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.phone.logins) - 1; i >= 0; i-- {
		if l := p.phone.logins[i]; l.phone == phone && !l.ended {
			l.expired = true
			return nil
		}
	}
	return fmt.Errorf("vippstest: no login from phone number for %q", phone)
}

// SetPollFault makes the next polls for logins from phone number misbehave
// as f says. The zero PollFault restores normal answers.
func (p *Provider) SetPollFault(f PollFault) {
	p.mu.Lock()
	p.phone.fault = f
	p.mu.Unlock()
}

// waitingLocked returns the latest login for phone that waits for the
// user's answer. The caller holds p.mu.
func (p *Provider) waitingLocked(phone string, now time.Time) *phoneLogin {
	for i := len(p.phone.logins) - 1; i >= 0; i-- {
		l := p.phone.logins[i]
		if l.phone == phone && l.decision == PhonePending && !l.ended && !l.expired && now.Before(l.expires) {
			return l
		}
	}
	return nil
}

// phoneKeysLocked returns the keys of the login from phone number that the
// JWKS publishes. The caller holds p.mu.
func (p *Provider) phoneKeysLocked() []*jose.SigningKey {
	if p.phone.ecKey == nil {
		return nil
	}
	return []*jose.SigningKey{p.phone.ecKey}
}

// userByPhone returns the user with the phone number.
func (p *Provider) userByPhone(msisdn string) (User, bool) {
	for _, u := range p.users {
		if u.PhoneNumber == msisdn {
			return u, true
		}
	}
	return User{}, false
}

// loginHint reads login_hint=urn:msisdn:<digits>.
func loginHint(v string) (string, bool) {
	msisdn, ok := strings.CutPrefix(v, "urn:msisdn:")
	if !ok || len(msisdn) < 8 || len(msisdn) > 15 || strings.Trim(msisdn, "0123456789") != "" {
		return "", false
	}
	return msisdn, true
}

// serveBackchannel starts a login from phone number.
func (p *Provider) serveBackchannel(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if err := r.ParseForm(); err != nil {
		writeCIBAError(w, http.StatusBadRequest, "invalid_request", "the body is not a valid form")
		return
	}
	if !p.authenticateClient(r) {
		refuseClient(w, r)
		return
	}
	form := r.PostForm
	if name := repeated(form, "login_hint", "scope", "binding_message", "requested_expiry", "requested_flow", "redirect_uri", "nonce", "state"); name != "" {
		writeCIBAError(w, http.StatusBadRequest, "invalid_request", name+" is given more than once")
		return
	}
	msisdn, ok := loginHint(form.Get("login_hint"))
	if !ok {
		writeCIBAError(w, http.StatusBadRequest, "invalid_request", "login_hint must be urn:msisdn: and the number with its country code")
		return
	}
	scope := form.Get("scope")
	scopes := strings.Fields(scope)
	flow, redirectURI := form.Get("requested_flow"), form.Get("redirect_uri")
	expiry := p.phone.expiry
	switch {
	case len(scopes) == 0:
		writeCIBAError(w, http.StatusBadRequest, "invalid_request", "scope is missing")
		return
	case slices.Contains(scopes, "nnin"):
		writeCIBAError(w, http.StatusBadRequest, "invalid_scope", "the nnin scope is not supported; use nin")
		return
	case form.Has("binding_message") && !bindingMessageRE.MatchString(form.Get("binding_message")):
		writeCIBAError(w, http.StatusBadRequest, "invalid_binding_message", "binding_message must match ^[A-Z0-9\\-]{5,8}$")
		return
	case flow != "" && flow != flowLoginToWeb:
		writeCIBAError(w, http.StatusBadRequest, "invalid_request", "requested_flow must be login_to_webpage")
		return
	case flow == flowLoginToWeb && !slices.Contains(scopes, "openid"):
		writeCIBAError(w, http.StatusBadRequest, "invalid_request", "scope must contain openid")
		return
	case flow == flowLoginToWeb && !p.redirectAllowed(redirectURI):
		writeCIBAError(w, http.StatusBadRequest, "invalid_request", "redirect_uri is missing or not registered for this client")
		return
	}
	if flow == "" {
		redirectURI = ""
	}
	if form.Has("requested_expiry") {
		n, err := strconv.Atoi(form.Get("requested_expiry"))
		if err != nil || n < minRequestedExpiry || n > maxRequestedExpiry {
			writeCIBAError(w, http.StatusBadRequest, "invalid_request", "requested_expiry must be a whole number from 60 to 900")
			return
		}
		expiry = time.Duration(n) * time.Second
	}
	u, ok := p.userByPhone(msisdn)
	if !ok {
		writeJSON(w, http.StatusBadRequest, map[string]string{
			"error":             "unknown_user_id",
			"error_code":        "invalid_user",
			"error_description": "no active user with this phone number",
		})
		return
	}
	var ecKey *jose.SigningKey
	if redirectURI != "" {
		p.mu.Lock()
		have := p.phone.ecKey != nil
		p.mu.Unlock()
		if !have {
			k, err := jose.NewECKey(newKid())
			if err != nil {
				writeCIBAError(w, http.StatusInternalServerError, "server_error", "cannot make a signing key")
				return
			}
			ecKey = k
		}
	}

	now := p.now()
	id := newAuthReqID()
	l := &phoneLogin{
		id:          id,
		phone:       msisdn,
		sub:         u.Sub,
		scope:       scope,
		nonce:       form.Get("nonce"),
		binding:     form.Get("binding_message"),
		redirectURI: redirectURI,
		started:     now,
		expires:     now.Add(expiry),
		interval:    p.phone.interval,
	}
	p.mu.Lock()
	if ecKey != nil && p.phone.ecKey == nil {
		p.phone.ecKey = ecKey
	}
	waiting := 0
	for _, o := range p.phone.logins {
		if o.phone == msisdn && o.decision == PhonePending && !o.ended && !o.expired && now.Before(o.expires) {
			waiting++
		}
	}
	if waiting >= maxPendingPerPhone {
		p.mu.Unlock()
		w.Header().Set("Retry-After", phoneRetryAfter)
		writeCIBAError(w, http.StatusTooManyRequests, "too_many_requests", "too many logins wait for this user")
		return
	}
	p.sweepPhoneLocked(now)
	p.phone.logins = append(p.phone.logins, l)
	p.phone.byID[id] = l
	p.mu.Unlock()

	if a := p.phone.approval; a != nil && redirectURI == "" {
		ans := a(l.view())
		p.mu.Lock()
		l.auto = &ans
		p.mu.Unlock()
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"auth_req_id": id,
		"expires_in":  int64(expiry / time.Second),
		"interval":    int64(p.phone.interval / time.Second),
	})
}

// sweepPhoneLocked forgets logins that ended or expired long ago, once
// there are many. The caller holds p.mu.
func (p *Provider) sweepPhoneLocked(now time.Time) {
	if len(p.phone.logins) < minSweep {
		return
	}
	p.phone.logins = slices.DeleteFunc(p.phone.logins, func(l *phoneLogin) bool {
		old := now.Sub(l.expires) > p.codeTTL
		if old {
			delete(p.phone.byID, l.id)
			delete(p.phone.codes, l.code)
		}
		return old
	})
}

// serveUserExists tells whether a phone number belongs to a user. The
// client authenticates with HTTP Basic, whatever its token endpoint method
// (the token endpoint's method is accepted too). The phone number is read
// from loginHint, the one field the Login API's OpenAPI names for it
// (UserExistsRequestPayload, required), as urn:msisdn:<digits>; login_hint,
// the backchannel's name, is ignored like any other field.
func (p *Provider) serveUserExists(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if err := r.ParseForm(); err != nil {
		writeCIBAError(w, http.StatusBadRequest, "invalid_request", "the body is not a valid form")
		return
	}
	if !basicAuthenticated(r, p.clientID, p.clientSecret) && !p.authenticateClient(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="vippstest"`)
		writeCIBAError(w, http.StatusUnauthorized, "invalid_client", "Client authentication failed")
		return
	}
	msisdn, ok := loginHint(r.PostForm.Get(userExistsField))
	if !ok || len(r.PostForm[userExistsField]) > 1 {
		writeCIBAError(w, http.StatusBadRequest, "invalid_request", userExistsField+" is required: urn:msisdn: and the number with its country code")
		return
	}
	_, exists := p.userByPhone(msisdn)
	writeJSON(w, http.StatusOK, map[string]bool{"exists": exists})
}

// basicAuthenticated reports whether r carries the client's id and secret
// in an HTTP Basic header, form-encoded (RFC 6749 section 2.3.1).
func basicAuthenticated(r *http.Request, clientID, secret string) bool {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return false
	}
	user, err1 := url.QueryUnescape(user)
	pass, err2 := url.QueryUnescape(pass)
	okID := subtle.ConstantTimeCompare([]byte(user), []byte(clientID))
	okSecret := subtle.ConstantTimeCompare([]byte(pass), []byte(secret))
	return err1 == nil && err2 == nil && okID&okSecret == 1
}

// serveCIBAToken answers the token endpoint for the two grant types of the
// login from phone number. The client is already authenticated.
func (p *Provider) serveCIBAToken(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", cibaContentType)
	if r.PostForm.Get("grant_type") == grantCIBARedirect {
		p.serveCIBARedirectCode(w, r)
		return
	}
	if name := repeated(r.PostForm, "auth_req_id"); name != "" {
		writeCIBAError(w, http.StatusBadRequest, "invalid_request", name+" is given more than once")
		return
	}
	now := p.now()
	p.mu.Lock()
	l, ok := p.phone.byID[r.PostForm.Get("auth_req_id")]
	if !ok {
		p.mu.Unlock()
		writeCIBAError(w, http.StatusBadRequest, "invalid_grant", "unknown auth_req_id")
		return
	}
	var last time.Time
	if n := len(l.polls); n > 0 {
		last = l.polls[n-1]
	}
	l.polls = append(l.polls, now)
	f := &p.phone.fault
	refuse := func(status int, code, desc string) {
		p.mu.Unlock()
		writeCIBAError(w, status, code, desc)
	}
	switch {
	case l.redirectURI != "":
		refuse(http.StatusBadRequest, "invalid_grant", "this login finishes at its redirect_uri")
		return
	case l.ended:
		refuse(http.StatusBadRequest, "invalid_grant", "the login has ended")
		return
	case f.SlowDown > 0:
		f.SlowDown--
		l.interval += slowDownStep
		refuse(http.StatusBadRequest, "slow_down", "slow_down set in vippstest PollFault")
		return
	case f.TooManyRequests > 0:
		f.TooManyRequests--
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		refuse(http.StatusTooManyRequests, "too_many_requests", "429 set in vippstest PollFault")
		return
	case !last.IsZero() && now.Before(last.Add(l.interval)):
		l.interval += slowDownStep
		refuse(http.StatusBadRequest, "slow_down", "polled sooner than the interval allows")
		return
	case l.expired || !now.Before(l.expires):
		l.ended = true
		refuse(http.StatusBadRequest, "expired_token", "the login has expired")
		return
	}
	if l.decision == PhonePending && l.auto != nil && !now.Before(l.started.Add(l.auto.After)) {
		l.decision, l.decided = l.auto.Decision, now
	}
	switch l.decision {
	case PhonePending:
		refuse(http.StatusBadRequest, "authorization_pending", "The authorization request is still pending")
		return
	case PhoneDeclined:
		l.ended = true
		refuse(http.StatusBadRequest, "access_denied", "the user declined the login")
		return
	}
	l.ended = true
	l.sid = newUUID()
	p.mu.Unlock()
	p.issuePhoneTokens(w, l, now)
}

// serveCIBARedirectCode exchanges the code of a redirect login.
func (p *Provider) serveCIBARedirectCode(w http.ResponseWriter, r *http.Request) {
	if name := repeated(r.PostForm, "code"); name != "" {
		writeCIBAError(w, http.StatusBadRequest, "invalid_request", name+" is given more than once")
		return
	}
	now := p.now()
	p.mu.Lock()
	l, ok := p.phone.codes[r.PostForm.Get("code")]
	var desc string
	switch {
	case !ok:
		desc = "unknown code"
	case l.codeUsed:
		desc = "the code has been used already"
	case l.expired || !now.Before(l.codeExpires):
		desc = "the code has expired"
	}
	if ok {
		l.codeUsed = true
		l.ended = true
	}
	p.mu.Unlock()
	if desc != "" {
		writeCIBAError(w, http.StatusBadRequest, "invalid_grant", desc)
		return
	}
	p.issuePhoneTokens(w, l, now)
}

// issuePhoneTokens answers the token request of an approved login: an
// access token for userinfo and an ID token. A polled login's ID token is
// an RS256 one like the browser login's (the guide's example of it is a
// placeholder that shows no claims). A redirect login's is shaped like the
// guide's example (merchant-initiated-login-integration.md, "Redirect to
// browser", step 3): ES256, with exactly aud (a string), sub, authReqId
// (the spelling of the encoded example), iss, exp and iat; no nonce, no msn.
func (p *Provider) issuePhoneTokens(w http.ResponseWriter, l *phoneLogin, now time.Time) {
	token := randomToken()
	p.mu.Lock()
	p.sweepLocked(now)
	p.tokens[token] = &accessToken{sub: l.sub, sid: l.sid, scopes: strings.Fields(l.scope), expires: now.Add(p.accessTTL)}
	key := p.key
	if l.redirectURI != "" {
		key = p.phone.ecKey
	}
	hook := p.hooks.IDToken
	p.mu.Unlock()

	var claims map[string]any
	tokenType := "Bearer"
	if l.redirectURI != "" {
		claims = map[string]any{
			"aud":       p.clientID,
			"sub":       l.sub,
			"authReqId": l.id,
			"iss":       p.Issuer(),
			"exp":       now.Add(p.idTTL).Unix(),
			"iat":       now.Unix(),
		}
		tokenType = "bearer" // as in the example answer
	} else {
		claims = p.idClaims(l.sub, l.nonce, l.sid, l.decided, now)
		claims["at_hash"] = accessTokenHash(key.Alg, token)
	}
	p.addProfileClaims(claims, l.sub, l.sid, l.scope)
	idToken, err := signIDToken(key, hook, claims)
	if err != nil {
		writeCIBAError(w, http.StatusInternalServerError, "server_error", "cannot sign the ID token")
		return
	}
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, tokenResponse{
		AccessToken: token,
		TokenType:   tokenType,
		ExpiresIn:   max(int64(p.accessTTL/time.Second)-1, 0),
		Scope:       l.scope,
		IDToken:     idToken,
	})
}

// delegatedConsentsClaim is the userinfo claim of the delegatedConsents
// scope: a consent screen of the test merchant and the user's answers.
func delegatedConsentsClaim() map[string]any {
	consent := func(id string, accepted, required bool, text string) map[string]any {
		return map[string]any{"id": id, "accepted": accepted, "required": required, "textDisplayedToUser": text}
	}
	return map[string]any{
		"language":                 "EN",
		"heading":                  "Give consent",
		"text":                     "The test merchant would like to send you offers.",
		"termsDescription":         "By confirming, you accept the terms of the test merchant. You can withdraw your consents at any time.",
		"confirmConsentButtonText": "Confirm",
		"links": map[string]any{
			"termsLinkText":            "Terms of use",
			"termsLinkUrl":             "https://merchant.example/terms",
			"privacyStatementLinkText": "Privacy policy",
			"privacyStatementLinkUrl":  "https://merchant.example/privacy",
		},
		"timeOfConsent": "2026-01-01T12:00:00Z",
		"consents": []any{
			consent("email", true, true, "Receive offers by email"),
			consent("sms", false, false, "Receive offers by SMS"),
			consent("digital", true, false, "Receive digital marketing"),
			consent("personal", false, false, "Get offers made for you"),
		},
	}
}

// newAuthReqID returns an auth_req_id shaped like Vipps': 20 random bytes,
// base64url.
func newAuthReqID() string {
	b := make([]byte, 20)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// writeCIBAError answers an error of login from phone number as Vipps'
// guide shows it: {"error": code, "error_description": text}, as
// application/json;charset=UTF-8 (login-api/api-guide/flows/
// merchant-initiated-login-integration.md, "Call by call", step 2), not in
// the login API's ErrorResponse shape that writeError uses.
func writeCIBAError(w http.ResponseWriter, status int, code, desc string) {
	body, _ := json.Marshal(map[string]string{"error": code, "error_description": desc})
	w.Header().Set("Content-Type", cibaContentType)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
