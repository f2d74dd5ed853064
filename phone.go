package vippslogin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net/http"
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

// Errors of the login from phone number ([Client.StartPhoneLogin],
// [Client.WaitPhoneLogin], [Client.FinishPhoneLogin], [Client.UserExists]).
// They come wrapped; test for them with errors.Is.
var (
	// ErrInvalidPhoneLogin means the request was refused before anything was
	// sent: a phone number without a country code, a binding message or
	// expiry outside what Vipps allows, an unsupported scope, a bad
	// redirect URI, or a PhoneLogin used the wrong way (waited for twice at
	// once or after it ended, or a redirect login waited for).
	ErrInvalidPhoneLogin = errors.New("vippslogin: invalid phone login request")

	// ErrPhoneLoginFailed is matched by every *PhoneLoginError, and wraps
	// failures to reach the backchannel authentication and user-exists
	// endpoints or to understand their answers. Test for the more specific
	// errors below first.
	ErrPhoneLoginFailed = errors.New("vippslogin: phone login failed")

	// ErrPhoneLoginDenied means the user declined the login in the app
	// (access_denied).
	ErrPhoneLoginDenied = errors.New("vippslogin: phone login declined by the user")

	// ErrPhoneLoginExpired means the user did not answer in time: the
	// provider answered expired_token, or PhoneLogin.ExpiresAt passed while
	// waiting.
	ErrPhoneLoginExpired = errors.New("vippslogin: phone login expired")

	// ErrUserNotFound means Vipps MobilePay has no user with the phone
	// number who may log in this way (error_code invalid_user: no account,
	// an inactive account, or a user under 15).
	ErrUserNotFound = errors.New("vippslogin: no user with that phone number")

	// ErrOutdatedApp means the user's app is too old for login from phone
	// number (error_code old_app). The user must update it.
	ErrOutdatedApp = errors.New("vippslogin: the user's app is too old for login from phone number")

	// ErrTooManyPhoneLogins means the provider answered 429: too many logins
	// were started for the same user at once. PhoneLoginError.RetryAfter
	// says when to try again. [Client.WaitPhoneLogin] waits and retries by
	// itself; only [Client.StartPhoneLogin] returns it.
	ErrTooManyPhoneLogins = errors.New("vippslogin: too many phone logins for this user")

	// ErrAuthReqIDMismatch is a reason an ID token is refused, wrapped
	// together with ErrInvalidIDToken: the ID token of a login from phone
	// number does not carry the auth_req_id of a login this Client started
	// (claim auth_req_id, or authReqId as in Vipps' example), or names a
	// login that is unknown, already finished or forgotten.
	ErrAuthReqIDMismatch = errors.New("vippslogin: auth_req_id does not match a started phone login")
)

// PhoneLoginError is the provider's refusal of a call of a login from phone
// number. errors.Is matches it with ErrPhoneLoginFailed and, by its code,
// with ErrPhoneLoginDenied (access_denied), ErrPhoneLoginExpired
// (expired_token), ErrUserNotFound (invalid_user, or unknown_user_id as the
// CIBA standard names it), ErrOutdatedApp (old_app) and
// ErrTooManyPhoneLogins (status 429).
type PhoneLoginError struct {
	StatusCode  int           // HTTP status
	Code        string        // the OAuth error code, e.g. invalid_request
	ErrorCode   string        // Vipps' error_code, e.g. invalid_user or old_app, if sent
	Description string        // error_description: free text, not for matching
	RetryAfter  time.Duration // from Retry-After on a 429, at most a minute; 0 if none
}

// Error gives the status and error codes.
func (e *PhoneLoginError) Error() string {
	s := fmt.Sprintf("vippslogin: phone login refused: %d", e.StatusCode)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.ErrorCode != "" {
		s += " (" + e.ErrorCode + ")"
	}
	return s
}

// Unwrap makes errors.Is(err, ErrPhoneLoginFailed) hold.
func (e *PhoneLoginError) Unwrap() error { return ErrPhoneLoginFailed }

// Is matches the error's code with this package's phone login errors.
func (e *PhoneLoginError) Is(target error) bool {
	has := func(codes ...string) bool {
		return slices.Contains(codes, e.Code) || slices.Contains(codes, e.ErrorCode)
	}
	switch target {
	case ErrPhoneLoginDenied:
		return has("access_denied")
	case ErrPhoneLoginExpired:
		return has("expired_token")
	case ErrUserNotFound:
		return has("invalid_user", "unknown_user_id")
	case ErrOutdatedApp:
		return has("old_app")
	case ErrTooManyPhoneLogins:
		return e.StatusCode == http.StatusTooManyRequests
	}
	return false
}

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
	// sleep waits for d or until ctx is done; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error
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
	grantCIBA          = "urn:openid:params:grant-type:ciba"
	grantCIBARedirect  = "urn:vipps:params:grant-type:ciba-redirect"
)

var bindingMessageRE = regexp.MustCompile(`^[A-Z0-9\-]{5,8}$`)

// UserExists reports whether the provider has a user with the phone number
// who can log in from phone number, so that a terminal can offer the login
// only to those. phone is read as in PhoneLoginRequest.PhoneNumber. It calls
// Vipps' user-exists endpoint, {issuer's origin}/vipps-login-ciba/api/v1/user-exists,
// with client_secret_basic authentication, as Vipps documents it, whatever
// Config.TokenAuthMethod says.
func (c *Client) UserExists(ctx context.Context, phone string) (bool, error) {
	msisdn, err := normalizePhone(phone)
	if err != nil {
		return false, err
	}
	iss, err := url.Parse(c.s.issuer)
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrPhoneLoginFailed, err)
	}
	endpoint := iss.Scheme + "://" + iss.Host + userExistsPath
	form := url.Values{"login_hint": {"urn:msisdn:" + msisdn}}
	var answer struct {
		Exists *bool `json:"exists"`
	}
	if err := c.phoneCall(ctx, "user-exists", endpoint, ClientSecretBasic, form, &answer); err != nil {
		if errors.Is(err, ErrUserNotFound) {
			return false, nil
		}
		return false, err
	}
	if answer.Exists == nil {
		return false, fmt.Errorf("%w: user-exists answered without exists", ErrPhoneLoginFailed)
	}
	return *answer.Exists, nil
}

// StartPhoneLogin starts a login from phone number: Vipps sends the user a
// push message, and the user confirms (or declines) in the app. Wait for the
// answer with [Client.WaitPhoneLogin], or, when r.RedirectURI is set, finish
// it with [Client.FinishPhoneLogin] on the page the app opens.
//
// It checks r first (ErrInvalidPhoneLogin), then reads discovery and posts
// login_hint=urn:msisdn:..., scope, a fresh nonce and the optional
// binding_message, requested_expiry, requested_flow and redirect_uri to the
// backchannel_authentication_endpoint, with the client authentication of
// Config.TokenAuthMethod. A refusal is a *PhoneLoginError: for an unknown
// number it matches ErrUserNotFound; for too many logins for the same user
// at once ErrTooManyPhoneLogins, with RetryAfter.
//
// A redirect login is kept in Config.Sessions' store until it expires, so that any instance of the site can finish it.
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
		return nil, fmt.Errorf("%w: binding message %q must be 5 to 8 of A-Z, 0-9 and '-'", ErrInvalidPhoneLogin, safeText(r.BindingMessage))
	}
	if r.Expiry != 0 && (r.Expiry < minPhoneExpiry || r.Expiry > maxPhoneExpiry) {
		return nil, fmt.Errorf("%w: expiry %v is outside 1m to 15m", ErrInvalidPhoneLogin, r.Expiry)
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
	if err := checkEndpointURL(endpoint); err != nil {
		return nil, fmt.Errorf("%w: discovery's backchannel_authentication_endpoint %q: %v", ErrPhoneLoginFailed, safeText(endpoint), err)
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
	if err := c.phoneCall(ctx, "backchannel authentication", endpoint, c.s.TokenAuthMethod, form, &answer); err != nil {
		return nil, err
	}
	if !validAuthReqID(answer.AuthReqID) {
		return nil, fmt.Errorf("%w: backchannel authentication answered without a usable auth_req_id", ErrPhoneLoginFailed)
	}
	expiresIn, ok := seconds(answer.ExpiresIn)
	if !ok || expiresIn <= 0 || expiresIn > time.Hour {
		return nil, fmt.Errorf("%w: backchannel authentication answered an expires_in of %s", ErrPhoneLoginFailed, safeText(string(answer.ExpiresIn)))
	}
	interval := defaultPollEvery
	if len(answer.Interval) > 0 && string(answer.Interval) != "null" {
		d, ok := seconds(answer.Interval)
		switch {
		case !ok || d < 0 || d > maxPollEvery:
			return nil, fmt.Errorf("%w: backchannel authentication answered an interval of %s", ErrPhoneLoginFailed, safeText(string(answer.Interval)))
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

// WaitPhoneLogin polls the token endpoint until the user has confirmed the
// login in the app, and returns the verified claims: the ID token is
// verified as in a browser login (with the nonce sent at the start, and, if
// it names an auth_req_id, that it is this login's), then userinfo is
// fetched, as [Client.CallbackHandler] does. With the delegatedConsents
// scope, Claims.DelegatedConsents holds what the user chose.
//
// It polls no faster than the provider's interval (5 seconds by default),
// adds 5 seconds to it on each slow_down, and after a 429 waits as long as
// Retry-After says (at most a minute) before it polls again. A network
// failure or a 5xx answer is retried at the next interval, up to three times
// in a row. It returns, wrapped:
//
//   - ErrPhoneLoginDenied when the user declined;
//   - ErrPhoneLoginExpired when the provider answered expired_token, or
//     PhoneLogin.ExpiresAt (plus a few seconds) passed;
//   - ctx.Err() as soon as ctx is done, also in the middle of a wait; the
//     login goes on at the provider, so a later WaitPhoneLogin may pick it
//     up again;
//   - a *TokenError for any other refusal of the token endpoint, and the ID
//     token and userinfo errors of a browser login.
//
// A login may be waited for by one goroutine at a time, and not again once
// WaitPhoneLogin has returned anything but ctx's error. Redirect logins
// cannot be waited for.
func (c *Client) WaitPhoneLogin(ctx context.Context, pl *PhoneLogin) (*Claims, error) {
	if pl == nil || pl.st == nil {
		return nil, fmt.Errorf("%w: not a started phone login", ErrInvalidPhoneLogin)
	}
	st := pl.st
	switch {
	case st.redirect:
		return nil, fmt.Errorf("%w: a redirect login is finished with FinishPhoneLogin", ErrInvalidPhoneLogin)
	case !st.busy.CompareAndSwap(false, true):
		return nil, fmt.Errorf("%w: the login is already being waited for", ErrInvalidPhoneLogin)
	}
	defer st.busy.Store(false)
	if st.done.Load() {
		return nil, fmt.Errorf("%w: the login has ended", ErrInvalidPhoneLogin)
	}
	claims, err := c.poll(ctx, st)
	if err == nil || !(errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		st.done.Store(true)
	}
	return claims, err
}

func (c *Client) poll(ctx context.Context, pl *phoneLoginState) (*Claims, error) {
	sleep := pl.sleep
	if sleep == nil {
		sleep = sleepCtx
	}
	deadline := pl.expiresAt.Add(phoneExpiryGrace)
	wait := pl.interval
	failures := 0
	for {
		left := deadline.Sub(c.s.Now())
		if left <= 0 {
			return nil, fmt.Errorf("%w: no answer before the login expired", ErrPhoneLoginExpired)
		}
		if err := sleep(ctx, min(wait, left)); err != nil {
			return nil, err
		}
		meta, err := c.provider.metadata(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, err
		}
		tok, retry, err := c.tokenRequest(ctx, meta, url.Values{"grant_type": {grantCIBA}, "auth_req_id": {pl.authReqID}})
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		wait = pl.interval
		if err == nil {
			return c.phoneClaims(ctx, meta, tok, pl.nonce, func(got string) bool {
				// Vipps' polled ID tokens are not documented to carry it;
				// when one does, it must be this login's.
				return got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(pl.authReqID)) == 1
			})
		}
		var pe *PhoneLoginError
		var te *TokenError
		switch {
		case errors.As(err, &pe) && pe.StatusCode == http.StatusTooManyRequests:
			failures = 0
			wait = max(pe.RetryAfter, pl.interval)
		case errors.As(err, &te) && te.Code == "authorization_pending":
			failures = 0
		case errors.As(err, &te) && te.Code == "slow_down":
			failures = 0
			pl.interval = min(pl.interval+slowDownStep, maxPollEvery)
			wait = pl.interval
		case retry:
			failures++
			if failures > maxPollFailures {
				return nil, err
			}
		default:
			return nil, err
		}
	}
}

// FinishPhoneLogin finishes a redirect login ([PhoneLoginRequest].RedirectURI)
// with the code that the app sent to the redirect URI (?code=..., without
// state), and returns the verified claims. Call it from the handler of the
// redirect URI; the request comes from the user's phone, to any instance of
// the site.
//
// It exchanges the code (grant urn:vipps:params:grant-type:ciba-redirect,
// with the client authentication of Config.TokenAuthMethod) and looks up the
// started login that the ID token's auth_req_id names. The login must be one
// this Client's session store holds, not expired, and not finished before:
// each is used once. Then the ID token is verified as in a browser login,
// with that login's nonce and auth_req_id, except that ES256 is accepted
// even where discovery names only RS256, since Vipps signs these ID tokens
// with ES256; then userinfo is fetched.
//
// A code for an unknown, finished or forgotten login, or whose ID token has
// no auth_req_id, is refused with ErrAuthReqIDMismatch (and
// ErrInvalidIDToken); one for an expired login with ErrPhoneLoginExpired.
// Token endpoint refusals are *TokenError.
func (c *Client) FinishPhoneLogin(ctx context.Context, code string) (*Claims, error) {
	if code == "" || len(code) > 4096 || !printableASCII(code) {
		return nil, fmt.Errorf("%w: code missing or malformed", ErrBadCallback)
	}
	meta, err := c.provider.metadata(ctx)
	if err != nil {
		return nil, err
	}
	tok, _, err := c.tokenRequest(ctx, meta, url.Values{"grant_type": {grantCIBARedirect}, "code": {code}})
	if err != nil {
		return nil, err
	}
	// The redirect carries no state: the ID token's auth_req_id says which
	// login this is. It is read unverified only to find the login; the
	// token is verified with that login's nonce before anything is
	// believed.
	id := unverifiedAuthReqID(tok.IDToken)
	if id == "" {
		return nil, idTokenErr(ErrAuthReqIDMismatch, "no auth_req_id")
	}
	var rec phoneRecord
	found, err := c.pending.get(ctx, spacePhone, id, &rec, true)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, idTokenErr(ErrAuthReqIDMismatch, "")
	}
	if rec.Nonce == "" || rec.Hash == "" {
		return nil, wrapStore(errCorruptRecord)
	}
	if c.s.Now().After(time.Unix(rec.Expires, 0).Add(phoneExpiryGrace)) {
		return nil, fmt.Errorf("%w: the code came after the login expired", ErrPhoneLoginExpired)
	}
	return c.phoneClaims(ctx, meta, tok, rec.Nonce, func(got string) bool {
		return got != "" && subtle.ConstantTimeCompare([]byte(authReqIDHash(got)), []byte(rec.Hash)) == 1
	})
}

// phoneRecord is what the session store keeps of a started redirect login.
type phoneRecord struct {
	Nonce   string `json:"n"` // nonce sent in the request
	Hash    string `json:"h"` // authReqIDHash of the auth_req_id
	Expires int64  `json:"e"` // unix seconds
}

func authReqIDHash(authReqID string) string {
	sum := sha256.Sum256([]byte("vippslogin auth_req_id\x00" + authReqID))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// phoneTokens is a successful answer of the token endpoint to a CIBA grant.
type phoneTokens struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	IDToken     string `json:"id_token"`
}

// phoneClaims verifies the ID token of a login from phone number, requires
// idOK to accept the auth_req_id it carries ("" when none), and fetches
// userinfo. Besides the algorithms discovery names it accepts ES256: Vipps
// signs these ID tokens with ES256 (its example), while its discovery has
// named RS256 only.
func (c *Client) phoneClaims(ctx context.Context, meta *metadata, tok *phoneTokens, nonce string, idOK func(string) bool) (*Claims, error) {
	m := *meta
	m.algs = maps.Clone(meta.algs)
	m.algs["ES256"] = true
	idClaims, err := c.verifyIDToken(ctx, &m, tok.IDToken, nonce, tok.AccessToken)
	if err != nil {
		return nil, err
	}
	got, err := authReqIDClaim(idClaims)
	if err != nil {
		return nil, err
	}
	if !idOK(got) {
		return nil, idTokenErr(ErrAuthReqIDMismatch, "")
	}
	claims, err := c.userClaims(ctx, meta, tok.AccessToken, idClaims)
	if err != nil {
		return nil, err
	}
	c.s.Logger.LogAttrs(ctx, slog.LevelInfo, "vippslogin: phone login", slog.String("sub", claims.Subject))
	return claims, nil
}

// authReqIDClaim returns the auth_req_id that verified ID token claims
// carry, as auth_req_id or authReqId, or "". Two different values are
// refused.
func authReqIDClaim(claims map[string]any) (string, error) {
	var got string
	for _, k := range []string{"auth_req_id", "authReqId"} {
		v, present := claims[k]
		if !present {
			continue
		}
		s, ok := v.(string)
		if !ok || s == "" || (got != "" && s != got) {
			return "", idTokenErr(ErrAuthReqIDMismatch, "malformed %s", k)
		}
		got = s
	}
	return got, nil
}

// unverifiedAuthReqID reads the auth_req_id of an ID token without
// verifying it, or returns "".
func unverifiedAuthReqID(raw string) string {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 || len(parts[1]) > 64<<10 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	d := json.NewDecoder(bytes.NewReader(payload))
	d.UseNumber()
	var claims map[string]any
	if d.Decode(&claims) != nil {
		return ""
	}
	id, err := authReqIDClaim(claims)
	if err != nil || !validAuthReqID(id) {
		return ""
	}
	return id
}

// tokenRequest posts form to the token endpoint with client
// authentication. A refusal is a *TokenError, or a *PhoneLoginError for the
// answers peculiar to a login from phone number; retry reports whether a
// failure is worth another try later (network errors, time-outs, 5xx).
func (c *Client) tokenRequest(ctx context.Context, meta *metadata, form url.Values) (tok *phoneTokens, retry bool, err error) {
	reqCtx, cancel := context.WithTimeout(ctx, c.s.HTTPTimeout)
	defer cancel()
	resp, err := c.postForm(reqCtx, meta.TokenEndpoint, c.s.TokenAuthMethod, form)
	if perr, ok := partnerFailure(err); ok {
		return nil, errors.Is(perr, ErrProviderUnavailable), perr
	}
	if err != nil {
		return nil, true, upstreamErr(reqCtx, ErrTokenExchange, "token endpoint", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		pe := c.refusal(resp)
		switch {
		case resp.StatusCode == http.StatusTooManyRequests,
			pe.Is(ErrPhoneLoginDenied), pe.Is(ErrPhoneLoginExpired), pe.Is(ErrUserNotFound), pe.Is(ErrOutdatedApp):
			return nil, false, pe
		}
		te := &TokenError{StatusCode: pe.StatusCode, Code: pe.Code, Description: pe.Description}
		return nil, resp.StatusCode >= 500, te
	}
	var t phoneTokens
	if err := decodeJSON(resp, &t); err != nil {
		return nil, false, fmt.Errorf("%w: token endpoint: %v", ErrTokenExchange, err)
	}
	switch {
	case t.AccessToken == "":
		return nil, false, fmt.Errorf("%w: no access_token in the token response", ErrTokenExchange)
	case !strings.EqualFold(t.TokenType, "bearer"):
		return nil, false, fmt.Errorf("%w: token_type %q is not bearer", ErrTokenExchange, safeText(t.TokenType))
	case t.IDToken == "":
		return nil, false, idTokenErr(ErrMalformedToken, "no id_token in the token response")
	}
	return &t, false, nil
}

// phoneCall posts form to the backchannel authentication or user-exists
// endpoint and decodes its JSON answer into v.
func (c *Client) phoneCall(ctx context.Context, what, endpoint string, method TokenAuthMethod, form url.Values, v any) error {
	ctx, cancel := context.WithTimeout(ctx, c.s.HTTPTimeout)
	defer cancel()
	resp, err := c.postForm(ctx, endpoint, method, form)
	if perr, ok := partnerFailure(err); ok {
		return fmt.Errorf("%w: %s: %w", ErrPhoneLoginFailed, what, perr)
	}
	if err != nil {
		return upstreamErr(ctx, ErrPhoneLoginFailed, what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return c.refusal(resp)
	}
	if err := decodeJSON(resp, v); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrPhoneLoginFailed, what, err)
	}
	return nil
}

// postForm posts form to endpoint, authenticated as the client.
func (c *Client) postForm(ctx context.Context, endpoint string, method TokenAuthMethod, form url.Values) (*http.Response, error) {
	form = maps.Clone(form)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, nil)
	if err != nil {
		return nil, err
	}
	c.authenticateTokenRequest(req, form, method)
	body := form.Encode()
	req.Body = io.NopCloser(strings.NewReader(body))
	req.ContentLength = int64(len(body))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	return c.tokenClient().Do(req)
}

// authenticateTokenRequest adds the client's credentials to a request to
// the token, backchannel authentication or user-exists endpoint, as method
// says: an HTTP Basic header with the id and secret form-encoded first
// (RFC 6749 section 2.3.1), or client_id and client_secret in the form,
// which is encoded into the body after this call.
// With partner keys it is the partner's access token instead, which
// tokenClient adds (see partnerTransport).
func (c *Client) authenticateTokenRequest(req *http.Request, form url.Values, method TokenAuthMethod) {
	switch {
	case c.partner != nil:
		// Nothing here: partnerTransport adds the Bearer token.
	case method == ClientSecretPost:
		form.Set("client_id", c.s.ClientID)
		form.Set("client_secret", string(c.s.ClientSecret))
	default:
		req.SetBasicAuth(url.QueryEscape(c.s.ClientID), url.QueryEscape(string(c.s.ClientSecret)))
	}
}

// refusal reads an error answer.
func (c *Client) refusal(resp *http.Response) *PhoneLoginError {
	pe := &PhoneLoginError{StatusCode: resp.StatusCode}
	var body struct {
		Error       string          `json:"error"`
		Description string          `json:"error_description"`
		ErrorCode   json.RawMessage `json:"error_code"`
	}
	if decodeJSON(resp, &body) == nil {
		if validErrorCode(body.Error) {
			pe.Code = body.Error
		}
		pe.Description = safeText(body.Description)
		var s string
		if json.Unmarshal(body.ErrorCode, &s) != nil {
			s = string(body.ErrorCode) // a number
		}
		if validErrorCode(s) {
			pe.ErrorCode = s
		}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode == http.StatusTooManyRequests {
		pe.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), c.s.Now())
	}
	return pe
}

// retryAfter reads a Retry-After header: seconds or an HTTP date, bounded
// to 0 to maxRetryAfter.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		d = time.Duration(min(max(n, 0), int64(maxRetryAfter/time.Second))) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

// phoneScopes returns the scopes of a phone login: scopes or the
// configured ones, with openid first.
func (c *Client) phoneScopes(scopes []string) ([]string, error) {
	if len(scopes) == 0 {
		scopes = c.s.Scopes
	}
	out := []string{"openid"}
	for _, sc := range scopes {
		switch {
		case sc == "nnin":
			return nil, fmt.Errorf("%w: the legacy scope nnin is not supported; use nin", ErrInvalidPhoneLogin)
		case checkScope(sc, c.s.vipps) != nil:
			return nil, fmt.Errorf("%w: %w", ErrInvalidPhoneLogin, checkScope(sc, c.s.vipps))
		case !slices.Contains(out, sc):
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
		return "", fmt.Errorf("%w: phone number too long", ErrInvalidPhoneLogin)
	}
	var b strings.Builder
	for i, r := range strings.TrimSpace(s) {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '+' && i == 0:
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')':
		default:
			return "", fmt.Errorf("%w: phone number %q has a character other than digits, +, spaces, dashes, dots and parentheses", ErrInvalidPhoneLogin, safeText(s))
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
		return "", fmt.Errorf("%w: phone number missing", ErrInvalidPhoneLogin)
	case !plus && len(digits) <= 9:
		return "", fmt.Errorf("%w: phone number %q needs its country code, e.g. +47 for Norway", ErrInvalidPhoneLogin, safeText(s))
	case digits[0] == '0':
		return "", fmt.Errorf("%w: phone number %q: a country code does not start with 0", ErrInvalidPhoneLogin, safeText(s))
	case len(digits) < 10 || len(digits) > 15:
		return "", fmt.Errorf("%w: phone number %q must have 10 to 15 digits with its country code", ErrInvalidPhoneLogin, safeText(s))
	}
	return digits, nil
}

// checkPhoneRedirectURI checks a redirect URI of a redirect login.
func checkPhoneRedirectURI(uri string) error {
	u, err := url.Parse(uri)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "" || u.User != nil:
		return fmt.Errorf("%w: redirect URI %q is not an absolute URL", ErrInvalidPhoneLogin, safeText(uri))
	case strings.Contains(uri, "#"):
		return fmt.Errorf("%w: redirect URI must not have a fragment", ErrInvalidPhoneLogin)
	case u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname())):
		return fmt.Errorf("%w: redirect URI %q must be https (http only for localhost)", ErrInvalidPhoneLogin, safeText(uri))
	}
	return nil
}

// checkEndpointURL checks an endpoint named by discovery.
func checkEndpointURL(s string) error {
	if s == "" {
		return errors.New("missing")
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" {
		return errors.New("not an absolute URL")
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname())) {
		return errors.New("not https")
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

// sleepCtx waits for d, or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
