package vippstest

import (
	"crypto/subtle"
	"net/http"
	"strings"
	"sync"
	"time"
)

// accessTokenPath is the access token API of partner keys.
const accessTokenPath = "/miami/v1/token"

// partnerTokenTTL is how long a partner's access token lasts, as at Vipps.
const partnerTokenTTL = 15 * time.Minute

// partnerKeys is the sales unit's merchant serial number and the keys of
// the partner that may log in on its behalf.
type partnerKeys struct {
	msn, id, secret string

	mu     sync.Mutex
	tokens map[string]time.Time // access token -> expiry
}

func newPartnerKeys(cfg Config) *partnerKeys {
	k := &partnerKeys{msn: cfg.MerchantSerialNumber, id: cfg.PartnerClientID, secret: cfg.PartnerClientSecret,
		tokens: make(map[string]time.Time)}
	if k.msn == "" {
		k.msn = "123456"
	}
	if k.id == "" {
		k.id = "vippstest-partner"
	}
	if k.secret == "" {
		k.secret = "vippstest-partner-secret"
	}
	return k
}

// MerchantSerialNumber returns the sales unit's merchant serial number.
func (p *Provider) MerchantSerialNumber() string { return p.partner.msn }

// PartnerClientID returns the partner's client id for the access token API.
func (p *Provider) PartnerClientID() string { return p.partner.id }

// PartnerClientSecret returns the partner's client secret.
func (p *Provider) PartnerClientSecret() string { return p.partner.secret }

// AccessTokenURL returns the URL of the access token API.
func (p *Provider) AccessTokenURL() string { return p.srv.URL + accessTokenPath }

// ExpirePartnerTokens makes every partner access token issued so far
// invalid, as if they had expired.
func (p *Provider) ExpirePartnerTokens() {
	p.partner.mu.Lock()
	defer p.partner.mu.Unlock()
	clear(p.partner.tokens)
}

// serveAccessToken is the access token API: the client credentials grant
// with the partner's keys in HTTP Basic authentication.
func (p *Provider) serveAccessToken(w http.ResponseWriter, r *http.Request) {
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
	token := randomToken()
	p.partner.mu.Lock()
	now := p.now()
	for t, exp := range p.partner.tokens {
		if !now.Before(exp) {
			delete(p.partner.tokens, t)
		}
	}
	p.partner.tokens[token] = now.Add(partnerTokenTTL)
	p.partner.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": token,
		"token_type":   "Bearer",
		"expires_in":   int(partnerTokenTTL / time.Second),
	})
}

// partnerAuthenticated reports whether r authenticates to the token
// endpoint as the partner: a valid Bearer access token from the access
// token API and the sales unit's Merchant-Serial-Number. ok is false when
// r does not try to.
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
