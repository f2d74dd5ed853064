package vippslogin

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The partner's access token: fetched from Vipps' access token API, cached,
// and shared by every call that needs it (partner.go puts it on requests).

// partnerErr is the error of a call whose partner access token could not
// be had from the access token API: unreachable, refusing the keys, or
// answering badly.
func partnerErr(cause error, format string, args ...any) *Error {
	e := newErr(ErrProviderUnavailable, endpointAccessToken, format, args...)
	e.cause = cause
	return e
}

const (
	// maxAccessTokenAnswer bounds the access token API's answer.
	maxAccessTokenAnswer = 64 << 10
	// maxTokenLifetime bounds expires_in, so that no answer overflows a
	// time.Duration: ten years.
	maxTokenLifetime = 10 * 365 * 24 * time.Hour
)

// partnerAuth holds the partner's access token. It keeps one token at a
// time, reuses it until shortly before it expires, and fetches a new one
// once however many callers ask for it meanwhile.
type partnerAuth struct {
	fetch   func(ctx context.Context, now time.Time) (tok string, expires time.Time, err error)
	now     func() time.Time
	timeout time.Duration

	mu        sync.Mutex
	tok       string
	fetchedAt time.Time
	renewAt   time.Time
	flight    *sharedFetch[string] // the fetch under way, if any
	failed    failure              // the last fetch, if it failed
}

// fetchBackoff is how long a failed fetch is the answer to every caller,
// so that an outage or revoked keys cost one fetch, not one per request;
// youngToken is how old a token must be before a 401 may discard it.
const fetchBackoff, youngToken = 5 * time.Second, time.Minute

func newPartnerAuth(s *settings) *partnerAuth {
	a := &partnerAuth{now: s.Now, timeout: s.HTTPTimeout}
	p, hc := *s.Partner, s.HTTPClient
	a.fetch = func(ctx context.Context, now time.Time) (string, time.Time, error) {
		start := time.Now()
		tok, expires, err := fetchAccessToken(ctx, hc, p, now)
		s.providerCall(ctx, endpointAccessToken, start, err)
		return tok, expires, err
	}
	return a
}

// token returns the cached access token, or fetches one when there is
// none or it is about to expire.
func (a *partnerAuth) token(ctx context.Context) (string, error) {
	a.mu.Lock()
	now := a.now()
	if a.tok != "" && now.Before(a.renewAt) {
		tok := a.tok
		a.mu.Unlock()
		return tok, nil
	}
	if err := a.failed.recent(now, fetchBackoff); err != nil {
		a.mu.Unlock()
		return "", err
	}
	if a.flight == nil {
		// The fetch serves every waiter, so it does not end when the
		// caller that started it gives up: it keeps ctx's values (but
		// not the login it names), not its cancellation, and has a
		// time-out of its own.
		var start, expires time.Time
		a.flight = startFetch(detached(ctx), func(ctx context.Context) (string, error) {
			ctx, cancel := context.WithTimeout(ctx, a.timeout)
			defer cancel()
			start = a.now()
			tok, exp, err := a.fetch(ctx, start)
			expires = exp
			return tok, err
		}, func(tok string, err error) {
			a.mu.Lock()
			defer a.mu.Unlock()
			a.flight = nil
			if err != nil {
				a.failed = failure{a.now(), err}
				return
			}
			a.tok, a.fetchedAt, a.failed = tok, start, failure{}
			a.renewAt = expires.Add(-min(time.Minute, expires.Sub(start)/10))
		})
	}
	f := a.flight
	a.mu.Unlock()
	tok, err := f.wait(ctx)
	if err != nil && ctx.Err() != nil {
		return "", partnerErr(upstreamErr(ctx, endpointAccessToken, ctx.Err()), "waiting for the access token API")
	}
	return tok, err
}

// forget drops tok, refused with a 401, from the cache, so that the next
// caller fetches a new one, and reports whether a retry with another token
// is worth it. A token fetched meanwhile stays (and is worth a retry); so
// does a token younger than youngToken (and is not): a 401 so soon is about
// the request, not the token, and must not let a visitor make every login
// fetch a new token.
func (a *partnerAuth) forget(tok string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.tok != tok:
		return true
	case a.now().Sub(a.fetchedAt) < youngToken:
		return false
	}
	a.tok, a.renewAt = "", time.Time{}
	return true
}

// fetchAccessToken gets an access token from the endpoint p.TokenAPI names
// and returns it with its expiry, reckoned from now.
func fetchAccessToken(ctx context.Context, hc *http.Client, p PartnerKeys, now time.Time) (string, time.Time, error) {
	var req *http.Request
	var err error
	switch p.TokenAPI {
	case partnerClientCredentials:
		// access-token-api/README.md, "Token endpoint": the client
		// credentials grant, "Authorization: Basic <base64_encoded_credentials>"
		// where the credentials are "the string <client_id>:<client_secret>
		// encoded to Base64" (not form-encoded first), and "The
		// Ocp-Apim-Subscription-Key HTTP header should not be sent".
		body := "grant_type=client_credentials"
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, p.TokenURL, strings.NewReader(body))
		if err != nil {
			return "", time.Time{}, partnerErr(nil, "cannot make the request")
		}
		cred := base64.StdEncoding.EncodeToString([]byte(p.ClientID + ":" + string(p.ClientSecret)))
		req.Header.Set("Authorization", "Basic "+cred)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	default:
		// access-token-api/README.md, "Get an access token": "POST:/accesstoken/get"
		// "providing these values in the HTTP header: client_id,
		// client_secret, Ocp-Apim-Subscription-Key", and "a POST without a
		// body". Go sends Content-Length: 0 with it. Merchant-Serial-Number,
		// which the guide's sample request carries and partner-keys.md
		// requires of partners, and the Vipps-System-* headers
		// (developers/http-headers.md) come from headerTransport.
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, p.TokenURL, nil)
		if err != nil {
			return "", time.Time{}, partnerErr(nil, "cannot make the request")
		}
		// Names are case-insensitive; these are spelt as the guide does.
		req.Header["client_id"] = []string{p.ClientID}
		req.Header["client_secret"] = []string{string(p.ClientSecret)}
		req.Header["Ocp-Apim-Subscription-Key"] = []string{string(p.SubscriptionKey)}
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return "", time.Time{}, partnerErr(upstreamErr(ctx, endpointAccessToken, err), "")
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// The API documents no error body (access-token-api/docs/swagger.yaml
		// gives 400, 401 and 500 a description only): the status says it.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return "", time.Time{}, partnerErr(&ProviderError{StatusCode: resp.StatusCode}, "the access token API answered %d", resp.StatusCode)
	}
	tok, expires, err := readAccessToken(resp, now)
	if err != nil {
		return "", time.Time{}, partnerErr(nil, "the access token API's answer: %v", err)
	}
	return tok, expires, nil
}

// accessTokenAnswer is what both endpoints of the access token API answer
// (access-token-api/docs/swagger.yaml, AuthorizationTokenResponse and
// TokenResponse). The times are JSON strings at /accesstoken/get ("86398")
// and numbers in /miami/v1/token's example (900): either is accepted.
type accessTokenAnswer struct {
	TokenType   string       `json:"token_type"`
	AccessToken string       `json:"access_token"`
	ExpiresIn   *jsonSeconds `json:"expires_in"`
	ExpiresOn   *jsonSeconds `json:"expires_on"`
}

// readAccessToken reads and checks an access token API answer. The
// errors it returns never hold the token.
func readAccessToken(resp *http.Response, now time.Time) (string, time.Time, error) {
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return "", time.Time{}, errors.New("not JSON")
		}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAccessTokenAnswer+1))
	switch {
	case err != nil:
		return "", time.Time{}, errors.New("cannot read it")
	case len(body) > maxAccessTokenAnswer:
		return "", time.Time{}, errors.New("too large")
	}
	var a accessTokenAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return "", time.Time{}, errors.New("not a JSON object with the documented fields")
	}
	if !strings.EqualFold(a.TokenType, "Bearer") {
		return "", time.Time{}, fmt.Errorf("token_type %q is not Bearer", safeText(a.TokenType))
	}
	if !b64token(a.AccessToken) {
		return "", time.Time{}, errors.New("access_token is missing or not a Bearer token's characters")
	}
	// access-token-api/README.md, "Get an access token": "To be sure that
	// you are using correct time please use expires_in or expires_on".
	// expires_in is counted on our clock; expires_on is on Vipps' clock,
	// so it is used only when expires_in is missing.
	var expires time.Time
	switch {
	case a.ExpiresIn != nil:
		if *a.ExpiresIn > jsonSeconds(maxTokenLifetime/time.Second) {
			return "", time.Time{}, errors.New("expires_in is more than ten years")
		}
		expires = now.Add(time.Duration(*a.ExpiresIn) * time.Second)
	case a.ExpiresOn != nil:
		expires = time.Unix(int64(*a.ExpiresOn), 0)
		if expires.Sub(now) > maxTokenLifetime {
			return "", time.Time{}, errors.New("expires_on is more than ten years away")
		}
	default:
		return "", time.Time{}, errors.New("neither expires_in nor expires_on")
	}
	if !expires.After(now) {
		return "", time.Time{}, errors.New("the token has expired already")
	}
	return a.AccessToken, expires, nil
}

// jsonSeconds is a whole number of seconds, or seconds since the epoch, of
// at most 12 digits, sent as a JSON number or as a string of digits.
type jsonSeconds int64

func (n *jsonSeconds) UnmarshalJSON(b []byte) error {
	s := string(b)
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	if s == "" || len(s) > 12 || strings.Trim(s, "0123456789") != "" {
		return errors.New("not a whole number of seconds")
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return errors.New("not a whole number of seconds")
	}
	*n = jsonSeconds(v)
	return nil
}

// b64token reports whether s is an RFC 6750 b64token, which a Bearer
// Authorization header carries, of at most 16 KiB.
func b64token(s string) bool {
	t := strings.TrimRight(s, "=")
	if t == "" || len(s) > 16<<10 {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/') {
			return false
		}
	}
	return true
}
