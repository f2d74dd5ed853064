package vippslogin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The provider's token endpoint, and the two endpoints of a login from
// phone number that authenticate the client the same way (backchannel
// authentication and user-exists): one client speaks to all three. It
// authenticates as the client (HTTP Basic, or the form, as
// Config.TokenAuthMethod says) or as a partner (a Bearer access token, see
// partner.go), posts the form, and reads the answer: JSON on success, a
// *ProviderError on a refusal.
//
// golang.org/x/oauth2 makes the authorization URL and the PKCE verifier.
// It does not send these requests: its Exchange knows only the
// authorization code grant, and its RetrieveError keeps neither Vipps'
// error_code nor Retry-After, which a login from phone number needs.

// Token endpoint authentication methods (Config.TokenAuthMethod).
const (
	clientSecretBasic = "client_secret_basic"
	clientSecretPost  = "client_secret_post"
)

// tokenEndpoint speaks to the token, backchannel authentication and
// user-exists endpoints.
type tokenEndpoint struct {
	s *settings
	// hc is settings' HTTPClient, or with partner keys one that puts the
	// partner's access token on each request (see partnerTransport).
	hc      *http.Client
	partner bool
}

func newTokenEndpoint(s *settings, partner *partnerAuth) *tokenEndpoint {
	t := &tokenEndpoint{s: s, hc: s.HTTPClient}
	if partner != nil {
		t.hc, t.partner = newPartnerHTTP(s, partner), true
	}
	return t
}

// tokens is a successful answer of the token endpoint. Error is set in an
// error answer sent with status 200, which some servers send and x/oauth2
// reads as a refusal too.
type tokens struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	IDToken     string `json:"id_token"`
	Error       string `json:"error"`
}

// redeem posts a grant to the token endpoint and returns the tokens: a
// Bearer access token and an ID token (not yet verified).
func (t *tokenEndpoint) redeem(ctx context.Context, meta *metadata, form url.Values) (*tokens, error) {
	var tok tokens
	if err := t.call(ctx, endpointToken, meta.TokenEndpoint, t.s.TokenAuthMethod, form, &tok); err != nil {
		return nil, err
	}
	switch {
	case tok.Error != "":
		pe := &ProviderError{StatusCode: http.StatusOK}
		if validErrorCode(tok.Error) {
			pe.Code = tok.Error
		}
		return nil, pe
	case tok.AccessToken == "":
		return nil, newErr(ErrBadResponse, "token", "no access_token")
	case !strings.EqualFold(tok.TokenType, "bearer"):
		return nil, newErr(ErrBadResponse, "token", "token_type %q is not bearer", safeText(tok.TokenType))
	case tok.IDToken == "":
		return nil, idTokenErr("malformed", "no id_token in the token response")
	}
	return &tok, nil
}

// call posts form to endpoint (named name in Metrics.ProviderCall and in
// errors), authenticated as the client with method, and decodes a 200
// answer's JSON into v. Other answers are a *ProviderError; an endpoint
// that cannot be reached or does not answer in time is
// ErrProviderUnavailable, and an answer that does not decode
// ErrBadResponse.
func (t *tokenEndpoint) call(ctx context.Context, name, endpoint, method string, form url.Values, v any) (err error) {
	defer func(start time.Time) {
		var pe *ProviderError
		if errors.As(err, &pe) && (pe.Code == "authorization_pending" || pe.Code == "slow_down") {
			t.s.providerCall(ctx, name, start, nil) // an answer while the user has not answered
			return
		}
		t.s.providerCall(ctx, name, start, err)
	}(time.Now())
	reqCtx, cancel := context.WithTimeout(ctx, t.s.HTTPTimeout)
	defer cancel()
	resp, err := t.postForm(reqCtx, endpoint, method, form)
	if perr, ok := partnerFailure(err); ok {
		return perr
	}
	if err != nil {
		return upstreamErr(reqCtx, name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return t.refusal(resp)
	}
	if err := decodeJSON(resp, v); err != nil {
		return newErr(ErrBadResponse, answerReason(name), "%s: %v", name, err)
	}
	return nil
}

// answerReason is the ErrBadResponse reason of a bad answer of the
// endpoint called name.
func answerReason(name string) string {
	if name == endpointToken {
		return "token"
	}
	return "phone_login"
}

// retryable reports whether a failed call is worth another try later: the
// endpoint could not be reached or did not answer in time, or failed on
// its side (5xx).
func retryable(err error) bool {
	var pe *ProviderError
	if errors.As(err, &pe) {
		return pe.StatusCode >= 500
	}
	if e, ok := partnerFailure(err); ok {
		// Worth it only when the access token API could not be reached:
		// trying again does not change keys it refused or a bad answer.
		return errors.Is(e.cause, ErrProviderUnavailable)
	}
	return errors.Is(err, ErrProviderUnavailable)
}

// postForm posts form to endpoint, authenticated as the client.
func (t *tokenEndpoint) postForm(ctx context.Context, endpoint, method string, form url.Values) (*http.Response, error) {
	form = maps.Clone(form)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, nil)
	if err != nil {
		return nil, err
	}
	switch {
	case t.partner:
		// Nothing here: partnerTransport adds the Bearer token.
	case method == clientSecretPost:
		form.Set("client_id", t.s.ClientID)
		form.Set("client_secret", string(t.s.ClientSecret))
	default:
		// RFC 6749, section 2.3.1: the id and secret are form-encoded
		// before they are joined.
		req.SetBasicAuth(url.QueryEscape(t.s.ClientID), url.QueryEscape(string(t.s.ClientSecret)))
	}
	body := form.Encode()
	req.Body = io.NopCloser(strings.NewReader(body))
	req.ContentLength = int64(len(body))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	return t.hc.Do(req)
}

// refusal reads an error answer: OAuth's {"error", "error_description"}
// (RFC 6749, section 5.2), with Vipps' error_code, a string or a number,
// and its error_debug in place of a missing error_description
// (login-api/docs/swagger.yaml, components.schemas.ErrorResponse).
func (t *tokenEndpoint) refusal(resp *http.Response) *ProviderError {
	pe := &ProviderError{StatusCode: resp.StatusCode}
	var body struct {
		Error       string          `json:"error"`
		Description string          `json:"error_description"`
		Debug       string          `json:"error_debug"`
		ErrorCode   json.RawMessage `json:"error_code"`
	}
	if decodeJSON(resp, &body) == nil {
		if validErrorCode(body.Error) {
			pe.Code = body.Error
		}
		pe.Description = safeText(body.Description)
		if pe.Description == "" {
			pe.Description = safeText(body.Debug)
		}
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
		pe.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), t.s.Now())
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
