package vippstest

import (
	"crypto/subtle"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The two endpoints of the access token API, as at Vipps
// (access-token-api/README.md, "Authorization endpoints").
const (
	accessTokenPath       = "/accesstoken/get"
	clientCredentialsPath = "/miami/v1/token"
)

// Lifetimes of the access tokens, as access-token-api/docs/swagger.yaml
// gives them: 24 hours at /accesstoken/get in production (partner keys work
// only there) and 15 minutes at /miami/v1/token.
const (
	accessTokenTTL       = 24 * time.Hour
	clientCredentialsTTL = 15 * time.Minute
)

// accessTokenResource is the resource of /accesstoken/get's answer, as in
// the access token API guide's example.
const accessTokenResource = "00000002-0000-0000-c000-000000000000"

// partnerKeys is the sales unit's merchant serial number and the keys of
// the partner that may log in on its behalf.
type partnerKeys struct {
	msn, id, secret, subKey string

	mu     sync.Mutex
	tokens map[string]time.Time // access token -> expiry, from both endpoints
}

func newPartnerKeys(cfg Config) *partnerKeys {
	k := &partnerKeys{msn: cfg.MerchantSerialNumber, id: cfg.PartnerClientID, secret: cfg.PartnerClientSecret,
		subKey: cfg.PartnerSubscriptionKey, tokens: make(map[string]time.Time)}
	if k.msn == "" {
		k.msn = "123456"
	}
	if k.id == "" {
		k.id = "vippstest-partner"
	}
	if k.secret == "" {
		k.secret = "vippstest-partner-secret"
	}
	if k.subKey == "" {
		k.subKey = "vippstest-partner-subscription-key"
	}
	return k
}

// issue makes an access token that lasts ttl from now.
func (k *partnerKeys) issue(now time.Time, ttl time.Duration) string {
	token := randomToken()
	k.mu.Lock()
	defer k.mu.Unlock()
	for t, exp := range k.tokens {
		if !now.Before(exp) {
			delete(k.tokens, t)
		}
	}
	k.tokens[token] = now.Add(ttl)
	return token
}

// MerchantSerialNumber returns the sales unit's merchant serial number.
func (p *Provider) MerchantSerialNumber() string { return p.partner.msn }

// PartnerClientID returns the partner's client id for the access token API.
func (p *Provider) PartnerClientID() string { return p.partner.id }

// PartnerClientSecret returns the partner's client secret.
func (p *Provider) PartnerClientSecret() string { return p.partner.secret }

// PartnerSubscriptionKey returns the partner's Ocp-Apim-Subscription-Key
// for POST /accesstoken/get.
func (p *Provider) PartnerSubscriptionKey() string { return p.partner.subKey }

// AccessTokenURL returns the URL of POST /accesstoken/get, the endpoint of
// the access token API that partner keys use. The client credentials
// endpoint is [Provider.URL] + "/miami/v1/token".
func (p *Provider) AccessTokenURL() string { return p.srv.URL + accessTokenPath }

// ExpirePartnerTokens makes every partner access token issued so far, by
// either endpoint of the access token API, invalid, as if they had expired.
func (p *Provider) ExpirePartnerTokens() {
	p.partner.mu.Lock()
	defer p.partner.mu.Unlock()
	clear(p.partner.tokens)
}

// accessTokenAnswer is the answer of POST /accesstoken/get, every field a
// string (access-token-api/docs/swagger.yaml, AuthorizationTokenResponse).
type accessTokenAnswer struct {
	TokenType    string `json:"token_type"`
	ExpiresIn    string `json:"expires_in"`
	ExtExpiresIn string `json:"ext_expires_in"`
	ExpiresOn    string `json:"expires_on"`
	NotBefore    string `json:"not_before"`
	Resource     string `json:"resource"`
	AccessToken  string `json:"access_token"`
}

// serveAccessToken is POST /accesstoken/get: a POST without a body, the
// partner's keys in the client_id, client_secret and
// Ocp-Apim-Subscription-Key headers, and the sales unit in
// Merchant-Serial-Number. The API documents no error body; refusals carry
// the mock's usual JSON error, which clients should not rely on.
func (p *Provider) serveAccessToken(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	var b [1]byte
	if n, _ := io.ReadFull(io.LimitReader(r.Body, 1), b[:]); n > 0 {
		writeError(w, http.StatusBadRequest, "invalid_request", "POST /accesstoken/get takes no body")
		return
	}
	okID := subtle.ConstantTimeCompare([]byte(r.Header.Get("client_id")), []byte(p.partner.id))
	okSecret := subtle.ConstantTimeCompare([]byte(r.Header.Get("client_secret")), []byte(p.partner.secret))
	okKey := subtle.ConstantTimeCompare([]byte(r.Header.Get("Ocp-Apim-Subscription-Key")), []byte(p.partner.subKey))
	if okID&okSecret&okKey != 1 {
		writeError(w, http.StatusUnauthorized, "unauthorized", "missing or unknown client_id, client_secret or Ocp-Apim-Subscription-Key")
		return
	}
	switch msn := r.Header.Get("Merchant-Serial-Number"); {
	case msn == "":
		writeError(w, http.StatusBadRequest, "invalid_request", "partners must send Merchant-Serial-Number")
		return
	case msn != p.partner.msn:
		writeError(w, http.StatusUnauthorized, "unauthorized", "the partner keys are not for this sales unit")
		return
	}
	now := p.now()
	body, err := json.Marshal(accessTokenAnswer{
		TokenType:    "Bearer",
		ExpiresIn:    strconv.FormatInt(int64(accessTokenTTL/time.Second), 10),
		ExtExpiresIn: "0",
		ExpiresOn:    strconv.FormatInt(now.Add(accessTokenTTL).Unix(), 10),
		NotBefore:    strconv.FormatInt(now.Unix(), 10),
		Resource:     accessTokenResource,
		AccessToken:  p.partner.issue(now, accessTokenTTL),
	})
	if err != nil {
		writeError(w, http.StatusInternalServerError, "server_error", "cannot encode the answer")
		return
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	_, _ = w.Write(body)
}

// serveClientCredentials is POST /miami/v1/token: the OAuth 2.0 client
// credentials grant with the partner's keys in HTTP Basic authentication,
// "<client_id>:<client_secret> encoded to Base64", and no
// Ocp-Apim-Subscription-Key.
func (p *Provider) serveClientCredentials(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", "the body is not a form")
		return
	}
	id, secret, ok := r.BasicAuth()
	okID := subtle.ConstantTimeCompare([]byte(id), []byte(p.partner.id))
	okSecret := subtle.ConstantTimeCompare([]byte(secret), []byte(p.partner.secret))
	if !ok || okID&okSecret != 1 {
		writeError(w, http.StatusUnauthorized, "invalid_client", "unknown partner keys")
		return
	}
	if r.PostForm.Get("grant_type") != "client_credentials" {
		writeError(w, http.StatusBadRequest, "invalid_client", "grant_type must be client_credentials")
		return
	}
	if r.Header.Get("Ocp-Apim-Subscription-Key") != "" {
		writeError(w, http.StatusBadRequest, "invalid_request", "no Ocp-Apim-Subscription-Key on this API")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": p.partner.issue(p.now(), clientCredentialsTTL),
		"token_type":   "Bearer",
		"expires_in":   int(clientCredentialsTTL / time.Second),
	})
}

// partnerAuthenticated reports whether r authenticates to the token,
// backchannel authentication or user-exists endpoint as the partner: a
// valid Bearer access token from the access token API and the sales unit's
// Merchant-Serial-Number (partner-keys.md, "Token endpoint"). ok is false
// when r does not try to.
func (p *Provider) partnerAuthenticated(r *http.Request) (valid, ok bool) {
	auth := r.Header.Get("Authorization")
	token, isBearer := strings.CutPrefix(auth, "Bearer ")
	if !isBearer {
		return false, false
	}
	p.partner.mu.Lock()
	exp, known := p.partner.tokens[token]
	p.partner.mu.Unlock()
	msn := r.Header.Get("Merchant-Serial-Number")
	_, postSecret := r.PostForm["client_secret"]
	return known && p.now().Before(exp) && msn == p.partner.msn && !postSecret, true
}

// authorizeClientID returns the client_id an authorization request names:
// its client_id, or for partners the sales unit's client id when msn names
// the sales unit and client_id is left out.
func (p *Provider) authorizeClientID(clientID, msn string) string {
	if clientID == "" && msn != "" && msn == p.partner.msn {
		return p.clientID
	}
	return clientID
}
