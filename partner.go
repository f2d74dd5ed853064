package vippslogin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// PartnerKeys are a Vipps MobilePay partner's API keys, with which a
// partner logs users in to a merchant's sales unit (Config.MerchantSerialNumber)
// without that sales unit's own client secret.
//
// With partner keys the Client:
//   - sends msn=<MerchantSerialNumber> in the authorization request instead
//     of client_id (Vipps puts in the sales unit's client_id itself);
//   - gets an access token from the access token API with the OAuth 2.0
//     client credentials grant (client_secret_basic), caches it until it
//     expires, and authenticates to the token endpoint with it as a Bearer
//     token, together with the Merchant-Serial-Number header;
//   - accepts an ID token whose msn claim is the merchant serial number, in
//     place of an aud claim naming the client id (aud is checked as well
//     when Config.ClientID is set).
//
// The sales unit must use client_secret_basic. Vipps' test environment has
// no partner functionality: test with the merchant's own keys.
type PartnerKeys struct {
	// ClientID and ClientSecret are the partner's keys. Required.
	ClientID     string
	ClientSecret Secret

	// TokenURL is the access token API. Default: /miami/v1/token on the
	// issuer's host (https://api.vipps.no/miami/v1/token in production).
	TokenURL string

	// Scopes, when set, are asked for in the access token request.
	Scopes []string
}

// validatePartner checks the partner keys and fills in their defaults.
func (s *settings) validatePartner(iss *url.URL) error {
	p := *s.Partner
	s.Partner = &p
	if strings.TrimSpace(p.ClientID) == "" || p.ClientSecret == "" {
		return configErr("Partner", "needs the partner's ClientID and ClientSecret")
	}
	if s.MerchantSerialNumber == "" {
		return configErr("MerchantSerialNumber", "is required with partner keys: it names the merchant's sales unit")
	}
	if s.TokenAuthMethod == ClientSecretPost {
		return configErr("TokenAuthMethod", "must be client_secret_basic with partner keys")
	}
	if p.TokenURL == "" {
		p.TokenURL = iss.Scheme + "://" + iss.Host + "/miami/v1/token"
	}
	u, err := url.Parse(p.TokenURL)
	if err != nil || u.Host == "" || u.Fragment != "" || !(u.Scheme == "https" || u.Scheme == "http" && isLoopback(u.Hostname())) {
		return configErr("Partner", "TokenURL %q is not an https URL", p.TokenURL)
	}
	return nil
}

// partnerAuth authenticates requests to the token endpoint with the
// partner's cached access token.
type partnerAuth struct {
	src oauth2.TokenSource
}

func newPartnerAuth(ctx context.Context, s *settings) *partnerAuth {
	cc := clientcredentials.Config{
		ClientID:     s.Partner.ClientID,
		ClientSecret: string(s.Partner.ClientSecret),
		TokenURL:     s.Partner.TokenURL,
		Scopes:       s.Partner.Scopes,
		AuthStyle:    oauth2.AuthStyleInHeader,
	}
	// The token source keeps ctx for its later fetches: the Client's own
	// context, with the Client's HTTP client (time-out, Vipps headers).
	ctx = context.WithValue(ctx, oauth2.HTTPClient, s.HTTPClient)
	return &partnerAuth{src: oauth2.ReuseTokenSource(nil, cc.TokenSource(ctx))}
}

// ErrPartnerToken means the partner's access token could not be had from
// the access token API.
var ErrPartnerToken = errors.New("vippslogin: no partner access token")

// token returns the partner's access token, fetching it when the cached
// one has expired.
func (a *partnerAuth) token() (string, error) {
	tok, err := a.src.Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil {
			return "", fmt.Errorf("%w: %w: the access token API answered %d %s", ErrTokenExchange, ErrPartnerToken,
				re.Response.StatusCode, safeText(re.ErrorCode))
		}
		return "", fmt.Errorf("%w: %w: %v", ErrProviderUnavailable, ErrPartnerToken, err)
	}
	if !strings.EqualFold(tok.Type(), "bearer") {
		return "", fmt.Errorf("%w: %w: token type %q", ErrTokenExchange, ErrPartnerToken, safeText(tok.Type()))
	}
	return tok.AccessToken, nil
}

// partnerTransport puts the partner's access token on every request.
type partnerTransport struct {
	auth *partnerAuth
	base http.RoundTripper
}

func (t *partnerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	tok, err := t.auth.token()
	if err != nil {
		if r.Body != nil {
			_ = r.Body.Close()
		}
		return nil, err
	}
	r2 := r.Clone(r.Context())
	r2.Header.Set("Authorization", "Bearer "+tok)
	return t.base.RoundTrip(r2)
}

// tokenClient returns the HTTP client for the token endpoint: the Client's
// own, or with partner keys one that adds the partner's access token.
func (c *Client) tokenClient() *http.Client {
	if c.partnerHTTP != nil {
		return c.partnerHTTP
	}
	return c.s.HTTPClient
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
