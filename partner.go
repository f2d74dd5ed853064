package vippslogin

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// PartnerKeys are a Vipps MobilePay partner's API keys, with which a
// partner logs users in to a merchant's sales unit (Config.MerchantSerialNumber)
// without that sales unit's own client secret.
//
// With partner keys the Client follows the Login API's partner-keys.md:
//   - it sends msn=<MerchantSerialNumber> in the authorization request
//     instead of client_id (Vipps puts in the sales unit's client_id itself);
//   - it gets an access token from Vipps' access token API, by default
//     POST /accesstoken/get (PartnerKeys.TokenAPI), and authenticates to the
//     token, backchannel authentication and user-exists endpoints with it as
//     a Bearer token, together with the Merchant-Serial-Number header;
//   - it keeps one access token at a time and reuses it until shortly before
//     it expires (a minute, or a tenth of its lifetime if that is less); a
//     token is fetched once however many logins need it at the same moment;
//   - when one of those endpoints answers 401 it drops the token and sends
//     the request once more with a freshly fetched one;
//   - it accepts an ID token whose msn claim is the merchant serial number,
//     in place of an aud claim naming the client id (aud is checked as well
//     when Config.ClientID is set).
//
// The keys and the access token are never logged or put in an error. The
// sales unit must use client_secret_basic. Vipps' test environment has no
// partner functionality: test with the merchant's own keys.
//
// Vipps' newer "Specialized authentication" page sends partners to
// POST /miami/v1/token instead; where it differs from the Login API's
// partner-keys.md and the access token API guide, this package follows the
// latter, and offers that endpoint as PartnerKeys.TokenAPI "client_credentials".
type PartnerKeys struct {
	// ClientID and ClientSecret are the partner's keys. Required.
	ClientID     string
	ClientSecret Secret

	// SubscriptionKey is the partner's Ocp-Apim-Subscription-Key, which
	// POST /accesstoken/get requires. It is sent to that endpoint only.
	// Required with TokenAPI "accesstoken"; not used with
	// "client_credentials".
	SubscriptionKey Secret

	// TokenAPI names the endpoint of Vipps' access token API that the
	// partner's access token comes from (access-token-api/README.md,
	// "Authorization endpoints"):
	//   - "accesstoken" is POST /accesstoken/get, which the Login API's
	//     partner-keys.md names for partner keys: a POST without a body,
	//     with the client_id, client_secret, Ocp-Apim-Subscription-Key and
	//     Merchant-Serial-Number headers;
	//   - "client_credentials" is POST /miami/v1/token, the OAuth 2.0
	//     client credentials grant with the keys in an HTTP Basic header
	//     and no subscription key, which the access token API guide names
	//     for some newer APIs and partner roles (management and accounting
	//     keys).
	//
	// Default: "accesstoken".
	TokenAPI string

	// TokenURL is the URL of that endpoint. Default: /accesstoken/get, or
	// /miami/v1/token for "client_credentials", on the issuer's host
	// (https://api.vipps.no/accesstoken/get in production).
	TokenURL string
}

// The endpoints of the access token API (PartnerKeys.TokenAPI).
const (
	partnerAccessToken       = "accesstoken"
	partnerClientCredentials = "client_credentials"
)

// validatePartner checks the partner keys and fills in their defaults.
func (s *settings) validatePartner(iss *url.URL) error {
	p := *s.Partner
	s.Partner = &p
	switch {
	case strings.TrimSpace(p.ClientID) == "":
		return configErr("Partner.ClientID", "is empty; it is the partner's client_id")
	case p.ClientSecret == "":
		return configErr("Partner.ClientSecret", "is empty; it is the partner's client_secret")
	case s.MerchantSerialNumber == "":
		return configErr("MerchantSerialNumber", "is required with partner keys: it names the merchant's sales unit")
	case s.TokenAuthMethod == clientSecretPost:
		return configErr("TokenAuthMethod", "must be client_secret_basic with partner keys")
	}
	// The keys travel in HTTP headers: they must be valid header values.
	// The error names the field, never the value.
	if !headerToken(p.ClientID) {
		return configErr("Partner.ClientID", "must be printable ASCII without spaces")
	}
	if !headerToken(string(p.ClientSecret)) {
		return configErr("Partner.ClientSecret", "must be printable ASCII without spaces")
	}
	path := "/accesstoken/get"
	switch p.TokenAPI {
	case "":
		p.TokenAPI = partnerAccessToken
		fallthrough
	case partnerAccessToken:
		if p.SubscriptionKey == "" {
			return configErr("Partner.SubscriptionKey", "is empty; POST /accesstoken/get needs the partner's Ocp-Apim-Subscription-Key")
		}
		if !headerToken(string(p.SubscriptionKey)) {
			return configErr("Partner.SubscriptionKey", "must be printable ASCII without spaces")
		}
	case partnerClientCredentials:
		path = "/miami/v1/token"
	default:
		return configErr("Partner.TokenAPI", "%q is neither \"accesstoken\" nor \"client_credentials\"", safeText(p.TokenAPI))
	}
	if p.TokenURL == "" {
		p.TokenURL = iss.Scheme + "://" + iss.Host + path
	}
	if err := checkURL(p.TokenURL); err != nil {
		return configErr("Partner.TokenURL", "%v", err)
	}
	return nil
}

// headerToken reports whether s is non-empty printable ASCII without
// spaces.
func headerToken(s string) bool {
	return s != "" && printableASCII(s) && !strings.Contains(s, " ")
}

// partnerTransport puts the partner's access token on every request to the
// token, backchannel authentication and user-exists endpoints, and on a 401
// sends the request once more with a fresh token.
//
// The headers are those of partner-keys.md, "Token endpoint" and "Partner in
// Vipps Login from phone number flow": Authorization: Bearer <access-token>
// (set here) and Merchant-Serial-Number (set by headerTransport on every
// call). The Ocp-Apim-Subscription-Key that the access token API guide
// lists for later calls is not among them, so it is not sent.
type partnerTransport struct {
	auth *partnerAuth
	base http.RoundTripper
}

func (t *partnerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Response != nil {
		// A redirect: the token goes to the endpoints it was asked for, and
		// nowhere they send it on to.
		if r.Body != nil {
			_ = r.Body.Close()
		}
		return nil, errors.New("vippslogin: a partner's request is not sent on after a redirect")
	}
	tok, err := t.auth.token(r.Context())
	if err != nil {
		if r.Body != nil {
			_ = r.Body.Close()
		}
		return nil, err
	}
	resp, err := t.send(r, r.Body, tok)
	if err != nil || resp.StatusCode != http.StatusUnauthorized || r.Body != nil && r.GetBody == nil {
		return resp, err
	}
	// A 401 may mean the token was refused (revoked, or expired early), or
	// be Vipps' answer about the request itself (an OAuth error such as
	// invalid_grant: login-api/docs/swagger.yaml documents only 401 and 500
	// at the token endpoint). Only the first is worth a fresh token.
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(answer))
	if aboutRequest(answer) || !t.auth.forget(tok) {
		return resp, nil
	}
	if tok, err = t.auth.token(r.Context()); err != nil {
		return nil, err
	}
	var body io.ReadCloser
	if r.GetBody != nil {
		if body, err = r.GetBody(); err != nil {
			return nil, err
		}
	}
	return t.send(r, body, tok)
}

// send sends a copy of r with body and the access token.
func (t *partnerTransport) send(r *http.Request, body io.ReadCloser, tok string) (*http.Response, error) {
	r2 := r.Clone(r.Context())
	r2.Body = body
	r2.Header.Set("Authorization", "Bearer "+tok)
	return t.base.RoundTrip(r2)
}

// partnerFailure returns the partner's token failure inside err (see
// partnerErr), the error of a call whose access token could not be had,
// without the url.Error that net/http puts around it.
func partnerFailure(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) && e.Err == ErrProviderUnavailable && e.Reason == endpointAccessToken {
		return e, true
	}
	return nil, false
}

// newPartnerHTTP returns the Client's HTTP client with the partner's access
// token on every request.
func newPartnerHTTP(s *settings, auth *partnerAuth) *http.Client {
	hc := *s.HTTPClient
	hc.Transport = &partnerTransport{auth: auth, base: s.HTTPClient.Transport}
	return &hc
}

// partnerAuthURL turns an authorization URL for the partner: msn in place
// of client_id.
func (c *Client) partnerAuthURL(authURL string) string {
	if c.partner == nil {
		return authURL
	}
	u, err := url.Parse(authURL)
	if err != nil {
		return authURL
	}
	q := u.Query()
	q.Del("client_id")
	q.Set("msn", c.s.MerchantSerialNumber)
	u.RawQuery = q.Encode()
	return u.String()
}

// aboutRequest reports whether the body of a 401 names an OAuth error about
// the request rather than the access token that came with it.
func aboutRequest(body []byte) bool {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil {
		return false
	}
	switch e.Error {
	case "invalid_grant", "invalid_request", "invalid_scope", "unsupported_grant_type", "unauthorized_client":
		return true
	}
	return false
}
