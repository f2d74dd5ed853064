package vippslogin

import (
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
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The calls of a login from phone number to the backchannel authentication,
// user-exists and token endpoints, and the checks of the ID token that both
// variants share.

// phoneTokens is a successful answer of the token endpoint to a CIBA grant.
type phoneTokens struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	IDToken     string `json:"id_token"`
}

// phoneClaims verifies the ID token of a login from phone number and
// fetches userinfo. The token's auth_req_id (claim auth_req_id or authReqId)
// must hash to idHash; with idOptional a token without one passes. A nonce
// and msn are checked only when the token carries them (see [idTokenWant]).
// Besides the algorithms discovery names it accepts ES256 from an issuer
// with Vipps' path: Vipps signs these ID tokens with ES256 (its example),
// while its discovery has named RS256 only. Another issuer's own list
// stands.
func (c *Client) phoneClaims(ctx context.Context, meta *metadata, tok *phoneTokens, nonce, idHash string, idOptional bool) (*Claims, error) {
	m := *meta
	if c.s.vippsShaped {
		m.algs = maps.Clone(meta.algs)
		m.algs["ES256"] = true
	}
	idClaims, err := c.verifyIDToken(ctx, &m, tok.IDToken, idTokenWant{nonce: nonce, phone: true}, tok.AccessToken)
	if err != nil {
		return nil, err
	}
	got, err := authReqIDClaim(idClaims)
	if err != nil {
		return nil, err
	}
	if !(got == "" && idOptional) && !sameAuthReqID(got, idHash) {
		return nil, idTokenErr(ErrAuthReqIDMismatch, "")
	}
	c.s.logStep(ctx, slog.LevelDebug, recIDTokenVerified)
	claims, err := c.userClaims(ctx, meta, tok.AccessToken, idClaims)
	if err != nil {
		return nil, err
	}
	c.s.logStep(ctx, slog.LevelInfo, recPhoneLogin, slog.String("sub", claims.Subject))
	return claims, nil
}

// authReqIDClaim returns the auth_req_id that ID token claims carry, or "".
// Vipps' guide names the claim auth_req_id in its prose and decoded example,
// and its encoded example ID token carries authReqId
// (merchant-initiated-login-integration.md, "Redirect to browser", step 3),
// so either is read; both with different values are refused.
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

// authReqIDHash is what the Client keeps to recognise an auth_req_id.
func authReqIDHash(authReqID string) string {
	sum := sha256.Sum256([]byte("vippslogin auth_req_id\x00" + authReqID))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// sameAuthReqID reports whether id hashes to hash. The hashes have a fixed
// length and are compared in constant time, so the time taken tells
// nothing of how much of id is right, nor of its length.
func sameAuthReqID(id, hash string) bool {
	return id != "" && subtle.ConstantTimeCompare([]byte(authReqIDHash(id)), []byte(hash)) == 1
}

// tokenRequest posts form to the token endpoint with client
// authentication. A refusal is a *TokenError, or a *PhoneLoginError for the
// answers peculiar to a login from phone number; retry reports whether a
// failure is worth another try later (network errors, time-outs, 5xx).
func (c *Client) tokenRequest(ctx context.Context, meta *metadata, form url.Values) (tok *phoneTokens, retry bool, err error) {
	defer func(start time.Time) {
		var te *TokenError
		if errors.As(err, &te) && (te.Code == "authorization_pending" || te.Code == "slow_down") {
			c.s.providerCall(ctx, endpointToken, start, nil) // an answer while the user has not answered
			return
		}
		c.s.providerCall(ctx, endpointToken, start, err)
	}(time.Now())
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
// endpoint (called name in Metrics.ProviderCall, what in errors) and decodes
// its JSON answer into v.
func (c *Client) phoneCall(ctx context.Context, name, what, endpoint string, method TokenAuthMethod, form url.Values, v any) (err error) {
	defer func(ctx context.Context, start time.Time) { c.s.providerCall(ctx, name, start, err) }(ctx, time.Now())
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
