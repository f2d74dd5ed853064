package vippslogin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// The errors of this package. They reach Config.ErrorHandler, and the
// callers of the phone-login methods, wrapped: test for them with
// errors.Is. Each names what a caller may do differently; [*Error] says
// which check failed within one, and [*ProviderError] what the provider
// said.
var (
	// ErrInvalidConfig is wrapped by every error New returns, and by a
	// login started with LoginOptions the site got wrong (a 500).
	ErrInvalidConfig = errors.New("vippslogin: invalid config")

	// ErrInvalidRequest means a request was refused before anything was
	// sent to the provider. Reasons: "return_to" (not a path on this
	// site), "login_options" (a login route's parameters Vipps would
	// refuse), "cross_origin" (a logout or confirmation from another
	// origin), "phone_login" (a PhoneLoginRequest Vipps would refuse, or a
	// PhoneLogin used the wrong way).
	ErrInvalidRequest = errors.New("vippslogin: invalid request")

	// ErrBadCallback means a callback cannot finish a login in this
	// browser. Reasons: "malformed" (a missing or repeated parameter, or
	// an iss that does not name the issuer), "other_browser" (the state
	// names no login this browser may finish: started in another browser,
	// never, or forgotten), "replayed" (the login was used already),
	// "nameless" (a login that came back in another browser names nobody
	// to confirm).
	ErrBadCallback = errors.New("vippslogin: bad callback")

	// ErrLoginCancelled means the user cancelled: the provider answered
	// access_denied (a [*ProviderError] matches it), or the user declined
	// to continue a login that came back in another browser (reason
	// "declined").
	ErrLoginCancelled = errors.New("vippslogin: login cancelled")

	// ErrLoginExpired means the login ran past Config.PendingLoginTTL, or
	// a login from phone number was not answered in time (reason
	// "phone_login"; the provider's expired_token matches it too).
	ErrLoginExpired = errors.New("vippslogin: login expired")

	// ErrInvalidIDToken means the ID token failed verification. Reasons:
	// "malformed", "algorithm" (not an asymmetric algorithm discovery
	// lists, or not the key's), "unknown_key" (no key has its kid, even
	// after a refetch), "signature", "issuer", "audience" (aud lacks the
	// client id, azp names another, or msn is not the merchant's),
	// "expired" (exp missing or past), "issued_at" (iat missing or in the
	// future), "not_yet_valid" (nbf in the future), "subject" (sub
	// missing), "nonce", "at_hash", "acr" (a step-up login whose acr does
	// not say it happened), "auth_req_id" (a login from phone number whose
	// token names no login this Client started).
	ErrInvalidIDToken = errors.New("vippslogin: invalid ID token")

	// ErrBadResponse means an answer of the provider, other than the ID
	// token, failed a check. Reasons: "token" (the token endpoint's
	// answer), "userinfo" (userinfo's answer or status), "subject"
	// (userinfo's sub is not the ID token's), "phone_login" (the answer of
	// the backchannel authentication or user-exists endpoint).
	ErrBadResponse = errors.New("vippslogin: bad response from the provider")

	// ErrProviderUnavailable means the provider could not be reached, or
	// did not answer in time (reason "timeout"). Otherwise the reason
	// names what failed: "discovery", "jwks", "token", "userinfo",
	// "backchannel", "user_exists", or with partner keys "access_token",
	// the access token API, which also covers keys it refuses. It clears
	// by itself when the provider answers again.
	ErrProviderUnavailable = errors.New("vippslogin: provider unavailable")

	// ErrNotLoggedIn is given to the error handler when RequireLogin stops
	// a request that cannot be sent to the login page.
	ErrNotLoggedIn = errors.New("vippslogin: not logged in")

	// ErrSessionStore means the session or pending-login store failed;
	// the default error page answers 503, try again. Config.AfterLogin
	// may return an error wrapping it when a store of the site's fails.
	ErrSessionStore = errors.New("vippslogin: session store failed")

	// ErrTooManyLogins means a login could not start: its source started
	// more than Config.LoginsPerMinute (reason "source", 429), or
	// Config.MaxStartedLogins logins are pending (reason "pending", 503).
	// A [*ProviderError] with status 429 from any of the provider's
	// endpoints matches it too; to a login from phone number it means too
	// many logins for the same user at once (RetryAfter says when to try
	// again).
	ErrTooManyLogins = errors.New("vippslogin: too many logins")

	// ErrUserNotFound means the provider has no user with the phone
	// number who may log in this way (a [*ProviderError] with error_code
	// invalid_user, or unknown_user_id as the CIBA standard names it).
	ErrUserNotFound = errors.New("vippslogin: no user with that phone number")
)

// Error is one of this package's errors with the reason it happened: Err
// is the Err* variable it matches with errors.Is, and Reason the check
// that failed, one of those Err's documentation lists. Read it with
// errors.As, for a log or a metric, or test for one reason with errors.Is
// and an *Error that names it.
type Error struct {
	Err    error  // one of the Err* variables
	Reason string // the reason, e.g. "nonce" for ErrInvalidIDToken

	detail string // more for the log: never a token, code or secret
	cause  error  // what went wrong underneath, if anything
}

// Error returns Err's message, the reason and the details.
func (e *Error) Error() string {
	s := e.Err.Error() + ": " + e.Reason
	if e.detail != "" {
		s += ": " + e.detail
	}
	if e.cause != nil {
		s += ": " + e.cause.Error()
	}
	return s
}

// Unwrap returns Err and the cause, if any.
func (e *Error) Unwrap() []error {
	if e.cause == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.cause}
}

// Is reports whether target is an *Error with the same Err and Reason, so
// that errors.Is(err, &Error{Err: ErrInvalidIDToken, Reason: "nonce"})
// tests for one reason.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Err == e.Err && t.Reason == e.Reason
}

// newErr returns an *Error; format and args, when given, are its details.
func newErr(err error, reason string, format string, args ...any) *Error {
	if len(args) > 0 {
		format = fmt.Sprintf(format, args...)
	}
	return &Error{Err: err, Reason: reason, detail: format}
}

// reasonOf returns the reason of the *Error in err's chain that wraps
// sentinel, or "".
func reasonOf(err, sentinel error) string {
	var e *Error
	for errors.As(err, &e) {
		if e.Err == sentinel {
			return e.Reason
		}
		if e.cause == nil {
			return ""
		}
		err = e.cause
	}
	return ""
}

// ProviderError is what the provider answered when it refused: an error
// sent back to the callback (such as access_denied when the user
// cancelled), or an error answer of its token, backchannel authentication
// or user-exists endpoint. errors.Is matches it with ErrLoginCancelled
// (access_denied), ErrLoginExpired (expired_token), ErrUserNotFound
// (invalid_user or unknown_user_id) and ErrTooManyLogins (status 429).
//
// Vipps documents these codes at the callback: access_denied,
// server_error, login_required, invalid_app_callback_uri,
// app_callback_uri_not_registered, outdated_app_version, wrong_challenge
// and unknown_reject_reason, and warns that others occur. Its login from
// phone number adds error_code values such as invalid_user and old_app.
type ProviderError struct {
	// StatusCode is the HTTP status of the endpoint's answer; 0 for an
	// error sent to the callback.
	StatusCode int
	// Code is the OAuth error code, e.g. access_denied or invalid_grant.
	Code string
	// ErrorCode is Vipps' error_code, e.g. invalid_user or old_app, if
	// sent.
	ErrorCode string
	// Description is error_description (or Vipps' error_debug): free text
	// for the log, not for matching, and never for a page.
	Description string
	// RetryAfter is from Retry-After on a 429, at most a minute; 0 if
	// none.
	RetryAfter time.Duration
}

// Error names the status and codes.
func (e *ProviderError) Error() string {
	s := "vippslogin: provider error"
	if e.StatusCode != 0 {
		s = fmt.Sprintf("vippslogin: provider answered %d", e.StatusCode)
	}
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.ErrorCode != "" {
		s += " (" + e.ErrorCode + ")"
	}
	return s
}

// Is matches the error's code with this package's errors, as
// [ProviderError] says. It also matches a *ProviderError target whose
// non-zero StatusCode, Code and ErrorCode equal the error's, so that
// errors.Is(err, &ProviderError{ErrorCode: "old_app"}) tests for one
// answer.
func (e *ProviderError) Is(target error) bool {
	has := func(codes ...string) bool {
		return slices.Contains(codes, e.Code) || slices.Contains(codes, e.ErrorCode)
	}
	if t, ok := target.(*ProviderError); ok {
		return (t.StatusCode == 0 || t.StatusCode == e.StatusCode) &&
			(t.Code == "" || t.Code == e.Code) && (t.ErrorCode == "" || t.ErrorCode == e.ErrorCode)
	}
	switch target {
	case ErrLoginCancelled:
		return has("access_denied")
	case ErrLoginExpired:
		return has("expired_token")
	case ErrUserNotFound:
		return has("invalid_user", "unknown_user_id")
	case ErrTooManyLogins:
		return e.StatusCode == http.StatusTooManyRequests
	}
	return false
}

// loginError is how a failed login reaches the error handler: it carries
// where the user was going, from which PageFor makes the page's ways
// forward.
type loginError struct {
	returnTo string // the checked return_to path, or "" when not known
	loginURL string // starts a new login that returns to returnTo
	home     string // Config.DefaultReturnTo
	err      error
}

func (e *loginError) Error() string { return e.err.Error() }
func (e *loginError) Unwrap() error { return e.err }

// Errors that many places return.
var (
	// errRefused wraps the error Config.AfterLogin returned.
	errRefused = errors.New("vippslogin: login refused")
)

// Errors many places return. Each call makes a new one, since a site's
// error handler gets them and may change what errors.As gives it.
func errOtherBrowser() error { return newErr(ErrBadCallback, "other_browser", "") }
func errReplayed() error     { return newErr(ErrBadCallback, "replayed", "") }
func errReturnTo() error     { return newErr(ErrInvalidRequest, "return_to", "") }
func errDeclined() error {
	return newErr(ErrLoginCancelled, "declined", "in the browser it came back to")
}
func errNameless() error {
	return newErr(ErrBadCallback, "nameless", "the login names nobody to confirm")
}

// joinRefused wraps the error with which Config.AfterLogin refused a
// login.
func joinRefused(err error) error { return fmt.Errorf("%w: %w", errRefused, err) }

// problem is what the default handler tells the user about an error.
type problem struct {
	status int
	code   string // machine-readable, for JSON and the log record's kind
	text   msgID  // the page's title and message, in msgs
	retry  bool   // offer to log in again
	level  int    // 0 info, 1 warn, 2 error: only for what the operator must fix
}

// describe maps an error to what the default error handler answers. It
// never lets text from the error into the answer: the page says only what
// msgs holds for the problem, and JSON adds only the code.
func describe(err error) problem {
	var pe *ProviderError
	switch {
	case errors.Is(err, context.Canceled):
		// The visitor went away (first: whatever call it cut short).
		return problem{499, "cancelled", msgRequestCancelled, true, 0}
	case errors.As(err, &pe) && pe.StatusCode == 0:
		return providerProblem(pe.Code)
	case errors.As(err, &pe):
		return endpointProblem(pe)
	case errors.Is(err, ErrInvalidRequest) && !errors.Is(err, ErrInvalidConfig):
		switch reasonOf(err, ErrInvalidRequest) {
		case "return_to":
			return problem{http.StatusBadRequest, "invalid_return_to", msgBadReturnTo, false, 1}
		case "cross_origin":
			return problem{http.StatusForbidden, "cross_origin", msgCrossOrigin, false, 1}
		case "login_options":
			return problem{http.StatusBadRequest, "invalid_login_options", msgBadLoginLink, false, 1}
		}
		return problem{http.StatusBadRequest, "invalid_request", msgBadLoginLink, false, 1}
	case errors.Is(err, ErrLoginCancelled):
		if reasonOf(err, ErrLoginCancelled) == "declined" {
			return problem{http.StatusBadRequest, "access_denied", msgDeclined, true, 0}
		}
		return providerProblem("access_denied")
	case errors.Is(err, ErrLoginExpired):
		return problem{http.StatusBadRequest, "login_expired", msgLoginExpired, true, 0}
	case errors.Is(err, ErrBadCallback):
		switch reasonOf(err, ErrBadCallback) {
		case "replayed":
			return problem{http.StatusBadRequest, "login_replayed", msgLoginReplayed, true, 1}
		case "nameless":
			return problem{http.StatusBadRequest, "nameless_login", msgNameless, true, 1}
		case "other_browser":
			return problem{http.StatusBadRequest, "other_browser", msgOtherBrowser, true, 1}
		}
		return problem{http.StatusBadRequest, "invalid_callback", msgBadCallback, true, 1}
	case errors.Is(err, ErrTooManyLogins):
		if reasonOf(err, ErrTooManyLogins) == "source" {
			return problem{http.StatusTooManyRequests, "slow_down", msgSlowDown, true, 1}
		}
		// Many sources together may cause it: a warning to graph and alert
		// on, not an error a visitor can write.
		return problem{http.StatusServiceUnavailable, "busy", msgBusy, true, 1}
	case errors.Is(err, ErrSessionStore) && !errors.Is(err, errNoSession):
		return problem{http.StatusServiceUnavailable, "session_unavailable", msgSessionStore, true, 2}
	case errors.Is(err, ErrProviderUnavailable):
		if errors.Is(err, &Error{Err: ErrProviderUnavailable, Reason: "timeout"}) {
			return problem{http.StatusGatewayTimeout, "provider_timeout", msgTimeout, true, 2}
		}
		switch reasonOf(err, ErrProviderUnavailable) {
		case endpointToken, endpointUserinfo:
			// Reached before, for the login's start: the exchange failed.
			return problem{http.StatusBadGateway, "login_failed", msgUpstream, true, 2}
		}
		return problem{http.StatusServiceUnavailable, "provider_unavailable", msgProviderDown, true, 2}
	case errors.Is(err, ErrInvalidIDToken) && reasonOf(err, ErrInvalidIDToken) == "acr":
		return problem{http.StatusBadGateway, "step_up_required", msgStepUp, true, 1}
	case errors.Is(err, ErrInvalidIDToken), errors.Is(err, ErrBadResponse):
		return problem{http.StatusBadGateway, "login_failed", msgUpstream, true, 2}
	case errors.Is(err, errRefused):
		return problem{http.StatusForbidden, "login_refused", msgAccountRefused, false, 1}
	case errors.Is(err, ErrNotLoggedIn):
		return problem{http.StatusUnauthorized, "login_required", msgNotLoggedIn, true, 0}
	}
	return problem{http.StatusInternalServerError, "internal_error", msgInternal, true, 2}
}

// endpointProblem maps an error answer of one of the provider's endpoints
// (token, backchannel authentication, user-exists) to what the user is
// told.
func endpointProblem(pe *ProviderError) problem {
	switch {
	case pe.Is(ErrLoginCancelled):
		return providerProblem("access_denied")
	case pe.Is(ErrLoginExpired):
		return problem{http.StatusBadRequest, "login_expired", msgLoginExpired, true, 0}
	case pe.Code == "invalid_grant":
		return problem{http.StatusBadRequest, "login_failed", msgGrantRefused, true, 1}
	case pe.Code == "invalid_client" || pe.Code == "unauthorized_client":
		return problem{http.StatusBadGateway, "login_failed", msgSiteSetup, true, 2}
	case pe.StatusCode >= 500 || pe.Code == "server_error" || pe.Code == "temporarily_unavailable":
		return problem{http.StatusBadGateway, "login_failed", msgProviderFailed, true, 2}
	}
	return problem{http.StatusBadGateway, "login_failed", msgUpstream, true, 2}
}

// providerProblem maps the error code the provider sent to the callback to
// guidance a person can act on. Vipps documents access_denied (the user
// cancelled), outdated_app_version, wrong_challenge (the user picked another
// code in the app than the browser showed), login_required, server_error,
// invalid_app_callback_uri, app_callback_uri_not_registered and
// unknown_reject_reason, and warns that others occur
// (login-api/api-guide/browser-flow-integration.md, "Error handling").
// Codes this site's setup causes (invalid_*, unauthorized_client, ...) ask
// the user to tell the site; others get a general page.
//
// Neither the code nor error_description ever reaches the page, and the
// code is the answer's kind only when it is a known one, else "unknown":
// both come from the URL, so anyone can write them. For the same reason
// none of them is more than a warning in the log.
func providerProblem(code string) problem {
	p := problem{http.StatusBadRequest, code, msgProviderOther, true, 1}
	switch {
	case code == "access_denied":
		p.text, p.level = msgCancelled, 0
	case code == "outdated_app_version":
		p.text = msgOutdatedApp
	case code == "wrong_challenge":
		p.text = msgWrongChallenge
	case code == "login_required", code == "interaction_required":
		p.text = msgProviderLogin
	case code == "server_error":
		p.status, p.text = http.StatusBadGateway, msgProviderFailed
	case code == "temporarily_unavailable":
		p.status, p.text = http.StatusServiceUnavailable, msgProviderFailed
	case setupErrorCode(code):
		p.text = msgSiteSetup
	}
	if !knownProviderCodes[code] {
		p.code = "unknown"
	}
	return p
}

// knownProviderCodes are the error codes of OAuth 2.0 (RFC 6749, section
// 4.1.2.1), OpenID Connect Core (section 3.1.2.6) and Vipps.
var knownProviderCodes = map[string]bool{
	"access_denied": true, "invalid_request": true, "unauthorized_client": true,
	"unsupported_response_type": true, "invalid_scope": true, "invalid_client": true, "server_error": true,
	"temporarily_unavailable": true, "interaction_required": true, "login_required": true,
	"account_selection_required": true, "consent_required": true, "invalid_request_uri": true,
	"invalid_request_object": true, "request_not_supported": true, "request_uri_not_supported": true,
	"registration_not_supported": true, "invalid_app_callback_uri": true,
	"app_callback_uri_not_registered": true, "outdated_app_version": true, "wrong_challenge": true,
	"unknown_reject_reason": true,
}

// validErrorCode reports whether code looks like an OAuth error code, so it
// can be echoed in JSON without carrying anything else.
func validErrorCode(code string) bool {
	if code == "" || len(code) > 64 {
		return false
	}
	for i := 0; i < len(code); i++ {
		c := code[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
