package vippslogin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// Errors a login can fail with. They reach Config.ErrorHandler wrapped, so
// test for them with errors.Is.
var (
	// ErrLoginCancelled is matched by a *ProviderError whose code is
	// access_denied: the user cancelled the login.
	ErrLoginCancelled = errors.New("vippslogin: login cancelled")

	// ErrLoginExpired means the pending login ran past Config.PendingLoginTTL.
	ErrLoginExpired = errors.New("vippslogin: login expired")
	// ErrLoginReplayed means the pending login was already used.
	ErrLoginReplayed = errors.New("vippslogin: login already completed")
	// ErrBrowserMismatch means the callback's state names no login this
	// browser started: the login was started in another browser (and is
	// not one that may come back in another, see [FlowAutomaticReturn]),
	// or never, or has been forgotten.
	ErrBrowserMismatch = errors.New("vippslogin: login not started in this browser")
	// ErrBadCallback means the callback is incomplete or tampered with: a
	// missing state or code, a repeated parameter, or an iss that does not
	// name the issuer.
	ErrBadCallback = errors.New("vippslogin: malformed callback")
	// ErrInvalidReturnTo means return_to is not a path on this site.
	ErrInvalidReturnTo = errors.New("vippslogin: return_to is not a path on this site")

	// ErrProviderUnavailable means discovery or the key set could not be
	// fetched. It clears by itself when the provider answers again.
	ErrProviderUnavailable = errors.New("vippslogin: provider unavailable")
	// ErrTimeout means a call to the provider ran past Config.HTTPTimeout.
	ErrTimeout = errors.New("vippslogin: provider call timed out")
	// ErrTokenExchange means the token endpoint refused the code or failed.
	// A *TokenError holds the details when the endpoint answered.
	ErrTokenExchange = errors.New("vippslogin: code exchange failed")
	// ErrInvalidIDToken means the ID token failed verification. One of the
	// Err*-reasons below is wrapped with it.
	ErrInvalidIDToken = errors.New("vippslogin: invalid ID token")
	// ErrUserinfo means the userinfo endpoint failed or answered badly.
	ErrUserinfo = errors.New("vippslogin: userinfo failed")
	// ErrSubjectMismatch means userinfo's sub differs from the ID token's.
	ErrSubjectMismatch = errors.New("vippslogin: userinfo sub does not match the ID token")
	// ErrLoginRefused wraps the error Config.AfterLogin returned.
	ErrLoginRefused = errors.New("vippslogin: login refused")

	// ErrNotLoggedIn is given to the error handler when RequireLogin stops a
	// request that cannot be sent to the login page.
	ErrNotLoggedIn = errors.New("vippslogin: not logged in")
	// ErrCrossOrigin means a logout came from another origin.
	ErrCrossOrigin = errors.New("vippslogin: cross-origin request refused")
	// ErrTooManyLogins means a login could not start: its source started
	// more than Config.LoginsPerMinute (429), or Config.MaxStartedLogins
	// logins are pending (503).
	ErrTooManyLogins = errors.New("vippslogin: too many logins")
	// ErrSessionStore means the session or pending-login store failed; the
	// default error page answers it with 503.
	ErrSessionStore = errors.New("vippslogin: session store failed")
)

// Reasons an ID token is refused, each wrapped together with
// ErrInvalidIDToken.
var (
	// ErrMalformedToken: the token or its claims do not parse.
	ErrMalformedToken = errors.New("vippslogin: malformed token")
	// ErrAlgorithm: alg is not an asymmetric algorithm discovery lists (also
	// after a refetch of discovery, when one is allowed), or does not fit
	// the key.
	ErrAlgorithm = errors.New("vippslogin: signing algorithm not allowed")
	// ErrUnknownKey: no key in the key set has the token's kid, even after a
	// refetch (when one is allowed).
	ErrUnknownKey = errors.New("vippslogin: token signed with an unknown key")
	// ErrSignature: the signature does not verify.
	ErrSignature = errors.New("vippslogin: bad signature")
	// ErrIssuer: iss is not the issuer.
	ErrIssuer = errors.New("vippslogin: wrong issuer")
	// ErrAudience: aud lacks the client id, or azp names another client.
	ErrAudience = errors.New("vippslogin: wrong audience")
	// ErrExpired: exp is missing or past.
	ErrExpired = errors.New("vippslogin: token expired")
	// ErrIssuedAt: iat is missing or in the future.
	ErrIssuedAt = errors.New("vippslogin: iat missing or in the future")
	// ErrNotYetValid: nbf is in the future.
	ErrNotYetValid = errors.New("vippslogin: token not yet valid")
	// ErrMissingSubject: sub is missing or empty.
	ErrMissingSubject = errors.New("vippslogin: sub missing")
	// ErrNonceMismatch: nonce is missing or not the one sent.
	ErrNonceMismatch = errors.New("vippslogin: nonce missing or wrong")
	// ErrAccessTokenHash: at_hash does not match the access token.
	ErrAccessTokenHash = errors.New("vippslogin: at_hash does not match the access token")
	// ErrAuthContext: the login asked for step-up ([StepUpACR]) and the
	// token's acr does not say it happened.
	ErrAuthContext = errors.New("vippslogin: acr is not the one asked for")
)

// ProviderError is the error the provider sent back to the callback, such as
// access_denied when the user cancelled. Vipps documents access_denied,
// server_error, login_required, invalid_app_callback_uri,
// app_callback_uri_not_registered, outdated_app_version, wrong_challenge and
// unknown_reject_reason, and warns that others occur.
type ProviderError struct {
	Code        string // the error parameter
	Description string // error_description: free text, not for matching
}

// Error names the provider's error code.
func (e *ProviderError) Error() string { return "vippslogin: provider error " + e.Code }

// Is reports whether target is ErrLoginCancelled and the code access_denied.
func (e *ProviderError) Is(target error) bool {
	return target == ErrLoginCancelled && e.Code == "access_denied"
}

// TokenError is the token endpoint's answer to a refused code exchange.
type TokenError struct {
	StatusCode  int    // HTTP status
	Code        string // the OAuth error code, e.g. invalid_grant
	Description string // error_description, if any
}

// Error gives the status and error code of the token endpoint's answer.
func (e *TokenError) Error() string {
	return fmt.Sprintf("vippslogin: token endpoint answered %d %s", e.StatusCode, e.Code)
}

// Unwrap makes errors.Is(err, ErrTokenExchange) hold.
func (e *TokenError) Unwrap() error { return ErrTokenExchange }

// LoginError is how a failed login reaches the error handler: it says where
// the user was going, so that the page can offer to try again.
type LoginError struct {
	// ReturnTo is the checked return_to path of the failed login, or "" when
	// it is not known.
	ReturnTo string
	// LoginURL starts a new login that returns to ReturnTo.
	LoginURL string
	// Home is the site's default page (Config.DefaultReturnTo).
	Home string
	// Err is the cause.
	Err error
}

// Error returns the cause's message.
func (e *LoginError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *LoginError) Unwrap() error { return e.Err }

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
	var te *TokenError
	switch {
	case errors.Is(err, context.Canceled):
		// The visitor went away (first: whatever call it cut short).
		return problem{499, "cancelled", msgRequestCancelled, true, 0}
	case errors.As(err, &pe):
		return providerProblem(pe.Code)
	case errors.Is(err, errDeclined):
		return problem{http.StatusBadRequest, "access_denied", msgDeclined, true, 0}
	case errors.Is(err, ErrPhoneLoginDenied):
		return providerProblem("access_denied")
	case errors.Is(err, ErrPhoneLoginExpired):
		return problem{http.StatusBadRequest, "login_expired", msgLoginExpired, true, 0}
	case errors.Is(err, ErrLoginCancelled): // cancelled on this site's side
		return providerProblem("access_denied")
	case errors.Is(err, ErrInvalidLoginOptions) && !errors.Is(err, ErrInvalidConfig):
		return problem{http.StatusBadRequest, "invalid_login_options", msgBadLoginLink, false, 1}
	case errors.Is(err, ErrInvalidReturnTo):
		return problem{http.StatusBadRequest, "invalid_return_to", msgBadReturnTo, false, 1}
	case errors.Is(err, ErrLoginExpired):
		return problem{http.StatusBadRequest, "login_expired", msgLoginExpired, true, 0}
	case errors.Is(err, ErrLoginReplayed):
		return problem{http.StatusBadRequest, "login_replayed", msgLoginReplayed, true, 1}
	case errors.Is(err, errNameless):
		return problem{http.StatusBadRequest, "nameless_login", msgNameless, true, 1}
	case errors.Is(err, ErrBrowserMismatch):
		return problem{http.StatusBadRequest, "other_browser", msgOtherBrowser, true, 1}
	case errors.Is(err, ErrBadCallback):
		return problem{http.StatusBadRequest, "invalid_callback", msgBadCallback, true, 1}
	case errors.Is(err, ErrTimeout):
		return problem{http.StatusGatewayTimeout, "provider_timeout", msgTimeout, true, 2}
	case errors.Is(err, errSourceLimited):
		return problem{http.StatusTooManyRequests, "slow_down", msgSlowDown, true, 1}
	case errors.Is(err, ErrTooManyLogins):
		// Many sources together may cause it: a warning to graph and alert
		// on, not an error a visitor can write.
		return problem{http.StatusServiceUnavailable, "busy", msgBusy, true, 1}
	case errors.Is(err, ErrSessionStore) && !errors.Is(err, errNoSession):
		return problem{http.StatusServiceUnavailable, "session_unavailable", msgSessionStore, true, 2}
	case errors.Is(err, ErrProviderUnavailable):
		return problem{http.StatusServiceUnavailable, "provider_unavailable", msgProviderDown, true, 2}
	case errors.As(err, &te) && te.Code == "invalid_grant":
		return problem{http.StatusBadRequest, "login_failed", msgGrantRefused, true, 1}
	case errors.As(err, &te) && (te.Code == "invalid_client" || te.Code == "unauthorized_client"):
		return problem{http.StatusBadGateway, "login_failed", msgSiteSetup, true, 2}
	case errors.As(err, &te) && (te.StatusCode >= 500 || te.Code == "server_error" || te.Code == "temporarily_unavailable"):
		return problem{http.StatusBadGateway, "login_failed", msgProviderFailed, true, 2}
	case errors.Is(err, ErrAuthContext):
		return problem{http.StatusBadGateway, "step_up_required", msgStepUp, true, 1}
	case errors.Is(err, ErrTokenExchange), errors.Is(err, ErrInvalidIDToken), errors.Is(err, ErrUserinfo), errors.Is(err, ErrSubjectMismatch):
		return problem{http.StatusBadGateway, "login_failed", msgUpstream, true, 2}
	case errors.Is(err, ErrLoginRefused):
		return problem{http.StatusForbidden, "login_refused", msgAccountRefused, false, 1}
	case errors.Is(err, ErrNotLoggedIn):
		return problem{http.StatusUnauthorized, "login_required", msgNotLoggedIn, true, 0}
	case errors.Is(err, ErrCrossOrigin):
		return problem{http.StatusForbidden, "cross_origin", msgCrossOrigin, false, 1}
	}
	return problem{http.StatusInternalServerError, "internal_error", msgInternal, true, 2}
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
