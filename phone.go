package vippslogin

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Login from phone number is Vipps' name for OpenID Connect Client
// Initiated Backchannel Authentication (CIBA): the merchant's system starts a
// login for a phone number, the user confirms it in the Vipps or MobilePay
// app, and the merchant either polls the token endpoint for the result or,
// in the redirect variant, gets a code on a web page that the app opens.

// PhoneLoginRequest is a login from phone number to start.
type PhoneLoginRequest struct {
	// PhoneNumber is the user's mobile number with its country code, such
	// as "+47 912 34 567", "004791234567" or "4791234567". Spaces, dashes,
	// dots and parentheses are ignored. A number without "+" or "00" must
	// start with its country code: an 8-digit Norwegian number on its own
	// is refused rather than guessed to be Norwegian. Vipps documents login
	// from phone number for Norwegian numbers. Required.
	PhoneNumber string

	// Scopes are the scopes to ask for. "openid" is added when missing.
	// Besides the scopes of the browser login, "delegatedConsents" asks the
	// user for the consents set up for the sales unit (see
	// Claims.DelegatedConsents). The legacy "nnin" is refused; use "nin".
	// Default: Config.Scopes.
	Scopes []string

	// BindingMessage is shown both in the app and by the caller (on the
	// terminal or by the call-centre agent), so that the user can tell that
	// the login in the app is the one in front of them. It must match
	// ^[A-Z0-9-]{5,8}$, e.g. "4MZ-CQ3". Default: none.
	BindingMessage string

	// Expiry is how long the user has to answer, from 60 seconds to 15
	// minutes, sent as whole seconds. Default: the provider's (10 minutes
	// at Vipps).
	Expiry time.Duration

	// RedirectURI, when set, asks for the redirect variant
	// (requested_flow=login_to_webpage): once the user confirms, the app
	// opens RedirectURI?code=... in the phone's browser, and the page there
	// finishes the login with [Client.FinishPhoneLogin] instead of
	// [Client.WaitPhoneLogin]. It must be registered for the sales unit, be
	// https (http only for localhost) and have no fragment. Default: none.
	RedirectURI string
}

// PhoneLogin is a started login from phone number. Its exported fields are
// for showing; changing them changes nothing. It is a handle on a credential
// (the provider's auth_req_id, which it keeps to itself), so do not log it.
type PhoneLogin struct {
	// PhoneNumber is the number the login was started for: digits with the
	// country code, no "+" (e.g. "4791234567").
	PhoneNumber string
	// BindingMessage is the request's binding message, to show the user.
	BindingMessage string
	// ExpiresAt is when the provider gives up waiting for the user, by the
	// Client's clock.
	ExpiresAt time.Time
	// Interval is how long to wait between polls, as the provider first
	// asked (5 seconds when it did not say). WaitPhoneLogin waits longer
	// when the provider says slow_down.
	Interval time.Duration
	// RedirectURI is the request's RedirectURI: set for a login that
	// finishes with [Client.FinishPhoneLogin].
	RedirectURI string

	// st is behind a pointer so that printing a PhoneLogin shows none of
	// it.
	st *phoneLoginState
}

// phoneLoginState is what a PhoneLogin keeps to itself.
type phoneLoginState struct {
	authReqID string
	nonce     string
	expiresAt time.Time
	interval  time.Duration
	redirect  bool        // finished by FinishPhoneLogin
	busy      atomic.Bool // a WaitPhoneLogin is under way
	done      atomic.Bool // the login reached an end
}

// Limits of a login from phone number.
const (
	minPhoneExpiry     = time.Minute
	maxPhoneExpiry     = 15 * time.Minute
	defaultPollEvery   = 5 * time.Second
	minPollEvery       = time.Second
	maxPollEvery       = 5 * time.Minute
	slowDownStep       = 5 * time.Second // CIBA section 11: at least 5 s more
	maxRetryAfter      = time.Minute
	phoneExpiryGrace   = 5 * time.Second
	maxPollFailures    = 3 // transient poll failures in a row before giving up
	maxAuthReqIDLength = 1024
	userExistsPath     = "/vipps-login-ciba/api/v1/user-exists"
	backchannelPath    = "/vipps-login-ciba/api/backchannel/authentication"
	grantCIBA          = "urn:openid:params:grant-type:ciba"
	grantCIBARedirect  = "urn:vipps:params:grant-type:ciba-redirect"
)

var bindingMessageRE = regexp.MustCompile(`^[A-Z0-9\-]{5,8}$`)

// UserExists reports whether the provider has a user with the phone number
// who can log in from phone number, so that a terminal can offer the login
// only to those. phone is read as in PhoneLoginRequest.PhoneNumber. It posts
// loginHint=urn:msisdn:... (and the same as login_hint) to Vipps' user-exists
// endpoint, {issuer's origin}/vipps-login-ciba/api/v1/user-exists, with
// client_secret_basic authentication whatever Config.TokenAuthMethod says,
// and reads {"exists": true|false}. An answer with error_code invalid_user
// is false.
func (c *Client) UserExists(ctx context.Context, phone string) (bool, error) {
	msisdn, err := normalizePhone(phone)
	if err != nil {
		return false, err
	}
	endpoint := c.issuerOrigin() + userExistsPath
	// Which field user-exists reads: Vipps' spec in vipps-docs,
	// login-api/docs/swagger.yaml, has no user-exists operation (nor a
	// backchannel one), so it names none. The one description of it, the
	// rendered Login API OpenAPI in seeds/login-api-openapi-summary.txt
	// ("Endpoint for checking if user exists", UserExistsRequestPayload),
	// names loginHint, required. That rendering also names the backchannel
	// field loginHint, where the guide's requests send login_hint
	// (merchant-initiated-login-integration.md, "The login_hint parameter
	// (required)"), so it may not be the name on the wire either. Both are
	// sent, with the same value. That is safe: both go to the same endpoint
	// in the same authenticated request, so neither discloses anything the
	// other does not; Vipps' login-ciba service takes fields it does not use
	// (the guide's backchannel example sends state and nonce, which CIBA
	// does not define); and were the pair refused, UserExists would return
	// an error, never a wrong answer.
	hint := "urn:msisdn:" + msisdn
	form := url.Values{"loginHint": {hint}, "login_hint": {hint}}
	var answer struct {
		Exists *bool `json:"exists"`
	}
	if err := c.tokens.call(ctx, endpointUserExists, endpoint, clientSecretBasic, form, &answer); err != nil {
		if errors.Is(err, ErrUserNotFound) {
			return false, nil
		}
		return false, err
	}
	if answer.Exists == nil {
		return false, newErr(ErrBadResponse, "phone_login", "user-exists answered without exists")
	}
	return *answer.Exists, nil
}

// StartPhoneLogin starts a login from phone number: Vipps sends the user a
// push message, and the user confirms (or declines) in the app. Wait for the
// answer with [Client.WaitPhoneLogin], or, when r.RedirectURI is set, finish
// it with [Client.FinishPhoneLogin] on the page the app opens.
//
// It checks r first (ErrInvalidRequest, reason "phone_login"), then reads
// discovery and posts
// login_hint=urn:msisdn:..., scope, a fresh nonce and the optional
// binding_message, requested_expiry, requested_flow and redirect_uri to the
// backchannel authentication endpoint (discovery's
// backchannel_authentication_endpoint, or, since Vipps' discovery does not
// list it, /vipps-login-ciba/api/backchannel/authentication on the issuer's
// origin), with the client authentication of Config.TokenAuthMethod. A
// refusal is a [*ProviderError]: for an unknown number it matches
// ErrUserNotFound; for too many logins for the same user at once
// ErrTooManyLogins, with RetryAfter; for an app too old for login from
// phone number its ErrorCode is "old_app".
//
// A redirect login is kept in Config.Sessions' store until it expires, so
// that any instance of the site can finish it.
//
// Vipps allows login from phone number only where the user is not on a web
// page or in an app: at a point of sale, a vending machine or over the
// phone with a call centre.
func (c *Client) StartPhoneLogin(ctx context.Context, r PhoneLoginRequest) (*PhoneLogin, error) {
	msisdn, err := normalizePhone(r.PhoneNumber)
	if err != nil {
		return nil, err
	}
	scopes, err := c.phoneScopes(r.Scopes)
	if err != nil {
		return nil, err
	}
	if r.BindingMessage != "" && !bindingMessageRE.MatchString(r.BindingMessage) {
		return nil, newErr(ErrInvalidRequest, "phone_login", "binding message %q must be 5 to 8 of A-Z, 0-9 and '-'", safeText(r.BindingMessage))
	}
	if r.Expiry != 0 && (r.Expiry < minPhoneExpiry || r.Expiry > maxPhoneExpiry) {
		return nil, newErr(ErrInvalidRequest, "phone_login", "expiry %v is outside 1m to 15m", r.Expiry)
	}
	if r.RedirectURI != "" {
		if err := checkPhoneRedirectURI(r.RedirectURI); err != nil {
			return nil, err
		}
	}
	meta, err := c.provider.metadata(ctx)
	if err != nil {
		return nil, err
	}
	endpoint := meta.BackchannelAuthenticationEndpoint
	if endpoint == "" {
		// Vipps' discovery does not advertise it (login-api/api-guide/
		// browser-flow-integration.md, "OpenID configuration"); the guide
		// gives it as POST https://api.vipps.no/vipps-login-ciba/api/
		// backchannel/authentication (flows/merchant-initiated-login-
		// integration.md, "Call by call", step 1): on the issuer's origin.
		endpoint = c.issuerOrigin() + backchannelPath
	}
	if err := checkURL(endpoint); err != nil {
		return nil, newErr(ErrBadResponse, "phone_login", "backchannel authentication endpoint %q: %v", safeText(endpoint), err)
	}

	nonce := randomString()
	form := url.Values{
		"login_hint": {"urn:msisdn:" + msisdn},
		"scope":      {strings.Join(scopes, " ")},
		"nonce":      {nonce},
	}
	if r.BindingMessage != "" {
		form.Set("binding_message", r.BindingMessage)
	}
	if r.Expiry != 0 {
		form.Set("requested_expiry", strconv.Itoa(int(r.Expiry/time.Second)))
	}
	if r.RedirectURI != "" {
		form.Set("requested_flow", "login_to_webpage")
		form.Set("redirect_uri", r.RedirectURI)
	}
	started := c.s.Now()
	var answer struct {
		AuthReqID string          `json:"auth_req_id"`
		ExpiresIn json.RawMessage `json:"expires_in"`
		Interval  json.RawMessage `json:"interval"`
	}
	if err := c.tokens.call(ctx, endpointBackchannel, endpoint, c.s.TokenAuthMethod, form, &answer); err != nil {
		return nil, err
	}
	if !validAuthReqID(answer.AuthReqID) {
		return nil, newErr(ErrBadResponse, "phone_login", "backchannel authentication answered without a usable auth_req_id")
	}
	expiresIn, ok := seconds(answer.ExpiresIn)
	if !ok || expiresIn <= 0 || expiresIn > time.Hour {
		return nil, newErr(ErrBadResponse, "phone_login", "backchannel authentication answered an expires_in of %s", safeText(string(answer.ExpiresIn)))
	}
	interval := defaultPollEvery
	if len(answer.Interval) > 0 && string(answer.Interval) != "null" {
		d, ok := seconds(answer.Interval)
		switch {
		case !ok || d < 0 || d > maxPollEvery:
			return nil, newErr(ErrBadResponse, "phone_login", "backchannel authentication answered an interval of %s", safeText(string(answer.Interval)))
		case d > 0:
			interval = max(d, minPollEvery)
		}
	}
	pl := &PhoneLogin{
		PhoneNumber:    msisdn,
		BindingMessage: r.BindingMessage,
		ExpiresAt:      started.Add(expiresIn),
		Interval:       interval,
		RedirectURI:    r.RedirectURI,
		st: &phoneLoginState{
			authReqID: answer.AuthReqID,
			nonce:     nonce,
			expiresAt: started.Add(expiresIn),
			interval:  interval,
			redirect:  r.RedirectURI != "",
		},
	}
	if r.RedirectURI != "" {
		st := pl.st
		rec := phoneRecord{Nonce: nonce, Hash: authReqIDHash(st.authReqID), Expires: st.expiresAt.Unix()}
		if err := c.pending.put(ctx, spacePhone, st.authReqID, rec, st.expiresAt.Add(phoneExpiryGrace)); err != nil {
			return nil, err
		}
	}
	return pl, nil
}

// phoneScopes returns the scopes of a phone login: scopes or the
// configured ones, with openid first.
func (c *Client) phoneScopes(scopes []string) ([]string, error) {
	if len(scopes) == 0 {
		scopes = c.s.Scopes
	}
	out := []string{"openid"}
	for _, sc := range scopes {
		if sc == "nnin" {
			return nil, newErr(ErrInvalidRequest, "phone_login", "the legacy scope nnin is not supported; use nin")
		}
		if err := checkScope(sc, c.s.strictScopes(), true); err != nil {
			return nil, newErr(ErrInvalidRequest, "phone_login", "%v", err)
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return out, nil
}

// normalizePhone turns a phone number with its country code into MSISDN
// digits: "+47 912 34 567", "004791234567" and "4791234567" all give
// "4791234567".
func normalizePhone(s string) (string, error) {
	if len(s) > 64 {
		return "", newErr(ErrInvalidRequest, "phone_login", "phone number too long")
	}
	var b strings.Builder
	for i, r := range strings.TrimSpace(s) {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '+' && i == 0:
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')':
		default:
			return "", newErr(ErrInvalidRequest, "phone_login", "phone number %q has a character other than digits, +, spaces, dashes, dots and parentheses", safeText(s))
		}
	}
	digits := b.String()
	plus := strings.HasPrefix(strings.TrimSpace(s), "+")
	if !plus {
		if d, ok := strings.CutPrefix(digits, "00"); ok {
			digits = d
			plus = true
		}
	}
	switch {
	case digits == "":
		return "", newErr(ErrInvalidRequest, "phone_login", "phone number missing")
	case !plus && len(digits) <= 9:
		return "", newErr(ErrInvalidRequest, "phone_login", "phone number %q needs its country code, e.g. +47 for Norway", safeText(s))
	case digits[0] == '0':
		return "", newErr(ErrInvalidRequest, "phone_login", "phone number %q: a country code does not start with 0", safeText(s))
	case len(digits) < 10 || len(digits) > 15:
		return "", newErr(ErrInvalidRequest, "phone_login", "phone number %q must have 10 to 15 digits with its country code", safeText(s))
	}
	return digits, nil
}

// checkPhoneRedirectURI checks a redirect URI of a redirect login.
func checkPhoneRedirectURI(uri string) error {
	if err := checkURL(uri); err != nil {
		return newErr(ErrInvalidRequest, "phone_login", "redirect URI %q: %v", safeText(uri), err)
	}
	return nil
}

// validAuthReqID reports whether s looks like an auth_req_id: printable
// ASCII without spaces, of a sane length.
func validAuthReqID(s string) bool {
	if s == "" || len(s) > maxAuthReqIDLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// seconds reads a JSON number of seconds.
func seconds(raw json.RawMessage) (time.Duration, bool) {
	var f float64
	if len(raw) == 0 || json.Unmarshal(raw, &f) != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e6 {
		return 0, false
	}
	return time.Duration(f * float64(time.Second)), true
}

// issuerOrigin is the scheme and host of the issuer, where Vipps serves
// the endpoints of login from phone number.
func (c *Client) issuerOrigin() string {
	iss, _ := url.Parse(c.s.issuer) // checked by New
	return iss.Scheme + "://" + iss.Host
}

// phoneClaims verifies the ID token of a login from phone number and
// fetches userinfo. The token's auth_req_id (claim auth_req_id or authReqId)
// must hash to idHash; with idOptional a token without one passes. A nonce
// and msn are checked only when the token carries them (see [idTokenWant]).
// Besides the algorithms discovery names it accepts ES256 from an issuer
// with Vipps' path: Vipps signs these ID tokens with ES256 (its example),
// while its discovery has named RS256 only. Another issuer's own list
// stands.
func (c *Client) phoneClaims(ctx context.Context, meta *metadata, tok *tokens, nonce, idHash string, idOptional bool) (*Claims, error) {
	m := *meta
	if c.s.vippsPath {
		m.algs = maps.Clone(meta.algs)
		m.algs["ES256"] = true
	}
	idClaims, err := c.verifier.check(ctx, &m, tok.IDToken, idTokenWant{nonce: nonce, phone: true}, tok.AccessToken)
	if err != nil {
		return nil, err
	}
	got, err := authReqIDClaim(idClaims)
	if err != nil {
		return nil, err
	}
	if !(got == "" && idOptional) && !sameAuthReqID(got, idHash) {
		return nil, idTokenErr("auth_req_id", "")
	}
	c.s.logStep(ctx, slog.LevelDebug, recIDTokenVerified)
	claims, err := c.userClaims(ctx, meta, tok.AccessToken, idClaims)
	if err != nil {
		return nil, err
	}
	c.s.logStep(ctx, slog.LevelInfo, recPhoneLogin, slog.String("sub", claims.Subject))
	return claims, nil
}
