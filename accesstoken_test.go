package vippslogin_test

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vippslogin/vippslogin"
	"github.com/vippslogin/vippslogin/vippstest"
)

// One access token serves many logins, in a row and at the same time.
func TestPartnerTokenShared(t *testing.T) {
	h := partnerHarness(t, nil)
	var wg sync.WaitGroup
	const n = 12
	callbacks := make([]string, n)
	browsers := make([]*browser, n)
	for i := range n {
		browsers[i] = h.browser()
		callbacks[i] = browsers[i].startLogin("/profile")
	}
	// Every callback needs the token at once, and none is cached yet.
	for i := range n {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodGet, callbacks[i], nil)
			resp, err := browsers[i].Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusSeeOther {
				t.Errorf("login %d: status %d", i, resp.StatusCode)
			}
		})
	}
	wg.Wait()
	if got := h.idp.Hits(vippstest.AccessToken); got != 1 {
		t.Errorf("%d concurrent logins fetched %d access tokens, want 1", n, got)
	}
	for range 3 {
		h.browser().login("/profile")
	}
	if got := h.idp.Hits(vippstest.AccessToken); got != 1 {
		t.Errorf("after 3 more logins: %d access tokens fetched, want 1", got)
	}
	if got := h.idp.Hits(vippstest.Token); got != n+3 {
		t.Errorf("token endpoint called %d times, want %d: no retries", got, n+3)
	}
}

// The token is renewed a minute before it expires (at /accesstoken/get it
// lasts 24 hours), by the Client's clock.
func TestPartnerTokenRenewed(t *testing.T) {
	h := partnerHarness(t, nil)
	h.browser().login("/")
	h.clock.Advance(24*time.Hour - time.Minute - time.Second)
	h.browser().login("/")
	if got := h.idp.Hits(vippstest.AccessToken); got != 1 {
		t.Errorf("a second before the renewal: %d access tokens fetched, want 1", got)
	}
	h.clock.Advance(2 * time.Second)
	h.browser().login("/")
	if got := h.idp.Hits(vippstest.AccessToken); got != 2 {
		t.Errorf("a second after the renewal time: %d access tokens fetched, want 2", got)
	}
	if got := h.idp.Hits(vippstest.Token); got != 3 {
		t.Errorf("token endpoint called %d times, want 3: the renewal came before any refusal", got)
	}
}

// A token the token endpoint refuses (401) is replaced, and the exchange
// sent once more with the new one.
func TestPartnerTokenRefused(t *testing.T) {
	h := partnerHarness(t, nil)
	h.browser().login("/")
	h.clock.Advance(2 * time.Minute) // a token is not discarded in its first minute
	h.idp.ExpirePartnerTokens()
	h.browser().login("/profile")
	if got := h.idp.Hits(vippstest.Token); got != 3 {
		t.Errorf("token endpoint called %d times, want 3: one login, then a refusal and one retry", got)
	}
	if got := h.idp.Hits(vippstest.AccessToken); got != 2 {
		t.Errorf("%d access tokens fetched, want 2", got)
	}
	wantPartnerCall(t, h, vippstest.Token)
	wantNoPartnerSecrets(t, h, "")
}

// When the fresh token is refused as well, that refusal is the answer:
// one retry, not a loop.
func TestPartnerTokenRefusedAgain(t *testing.T) {
	h := partnerHarness(t, nil)
	h.browser().login("/")
	h.clock.Advance(2 * time.Minute) // a token is not discarded in its first minute
	h.idp.SetFault(vippstest.Token, vippstest.Fault{Status: http.StatusUnauthorized, Body: `{"error":"invalid_client","error_code":401}`})
	b := h.browser()
	resp, body := b.get(b.startLogin("/profile"))
	err := h.lastErr()
	b.wantRefused(resp, &vippslogin.ProviderError{})
	var te *vippslogin.ProviderError
	if !errors.As(err, &te) || te.StatusCode != http.StatusUnauthorized {
		t.Errorf("error %v, want a *ProviderError with 401", err)
	}
	if errors.Is(err, &vippslogin.Error{Err: vippslogin.ErrProviderUnavailable, Reason: "access_token"}) {
		t.Error("the access token was had: an access_token reason is wrong here")
	}
	if got := h.idp.Hits(vippstest.Token); got != 3 {
		t.Errorf("token endpoint called %d times, want 3: one login, then a refusal and one retry", got)
	}
	if got := h.idp.Hits(vippstest.AccessToken); got != 2 {
		t.Errorf("%d access tokens fetched, want 2", got)
	}
	wantNoPartnerSecrets(t, h, body)
}

// PartnerClientCredentials gets the token from POST /miami/v1/token with
// the client credentials grant, under the same cache and 401 rules.
func TestPartnerClientCredentials(t *testing.T) {
	// A secret in Vipps' own style, with characters that form-encoding
	// would change: the guide sends "<client_id>:<client_secret>" as is.
	const secret = "Y8Kteew6GE2ZmeycEt6egg=="
	h := partnerHarness(t, func(c *vippslogin.Config) {
		c.Partner.ClientSecret = secret
		c.Partner.SubscriptionKey = ""
		c.Partner.TokenAPI = "client_credentials"
	}, options{idp: func(c *vippstest.Config) { c.PartnerClientSecret = secret }})
	for range 3 {
		h.browser().login("/profile")
	}
	if got := h.idp.Hits(vippstest.ClientCredentials); got != 1 {
		t.Errorf("/miami/v1/token called %d times for 3 logins, want 1", got)
	}
	if got := h.idp.Hits(vippstest.AccessToken); got != 0 {
		t.Errorf("/accesstoken/get called %d times, want 0", got)
	}
	hdr := h.idp.LastHeader(vippstest.ClientCredentials)
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte(partnerID+":"+secret))
	if got := hdr.Get("Authorization"); got != want {
		t.Errorf("Authorization %q, want %q", got, want)
	}
	if _, ok := hdr["Ocp-Apim-Subscription-Key"]; ok {
		t.Error("sends Ocp-Apim-Subscription-Key to /miami/v1/token")
	}
	if got := hdr.Get("Merchant-Serial-Number"); got != partnerMSN {
		t.Errorf("Merchant-Serial-Number %q", got)
	}
	wantPartnerCall(t, h, vippstest.Token)

	// It lasts 15 minutes: renewed a minute before.
	h.clock.Advance(14*time.Minute + time.Second)
	h.browser().login("/")
	if got := h.idp.Hits(vippstest.ClientCredentials); got != 2 {
		t.Errorf("after 14 minutes: /miami/v1/token called %d times, want 2", got)
	}

	h.clock.Advance(2 * time.Minute) // a token is not discarded in its first minute
	h.idp.ExpirePartnerTokens()
	before := h.idp.Hits(vippstest.Token)
	h.browser().login("/")
	if got := h.idp.Hits(vippstest.Token) - before; got != 2 {
		t.Errorf("token endpoint called %d times after the tokens expired, want 2", got)
	}
	if got := h.idp.Hits(vippstest.ClientCredentials); got != 3 {
		t.Errorf("/miami/v1/token called %d times, want 3", got)
	}
	wantNoPartnerSecrets(t, h, "", secret)
}

// The partner's keys go only where they were meant for: a redirect of the
// access token API to another origin is not followed (net/http would carry
// the client_id, client_secret and Ocp-Apim-Subscription-Key headers along).
// partnerTransport's refusal to put the token on a redirected request is
// TestPartnerTransportRefusesRedirects.
func TestPartnerSecretsNotRedirected(t *testing.T) {
	var thiefSaw atomic.Int32
	thief := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		thiefSaw.Add(1)
		w.WriteHeader(http.StatusTeapot)
	}))
	t.Cleanup(thief.Close)
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, thief.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirector.Close)

	t.Run("access token API", func(t *testing.T) {
		h := partnerHarness(t, func(c *vippslogin.Config) { c.Partner.TokenURL = redirector.URL + "/accesstoken/get" })
		b := h.browser()
		resp, _ := b.get(b.startLogin("/profile"))
		b.wantRefused(resp, &vippslogin.Error{Err: vippslogin.ErrProviderUnavailable, Reason: "access_token"})
	})
	if n := thiefSaw.Load(); n != 0 {
		t.Errorf("the other origin got %d requests", n)
	}
}

// A 401 that names an error about the request (invalid_grant, say: Vipps'
// token endpoint documents only 401 and 500) keeps the partner's token: a
// visitor's junk code does not make every login fetch a new one.
func TestPartner401AboutRequestKeepsToken(t *testing.T) {
	h := partnerHarness(t, nil)
	h.browser().login("/")
	h.clock.Advance(2 * time.Minute)
	h.idp.SetFault(vippstest.Token, vippstest.Fault{Status: http.StatusUnauthorized, Body: `{"error":"invalid_grant","error_code":401}`})
	for range 5 {
		b := h.browser()
		resp, _ := b.get(b.startLogin("/profile"))
		b.wantRefused(resp, &vippslogin.ProviderError{})
	}
	if got := h.idp.Hits(vippstest.AccessToken); got != 1 {
		t.Errorf("%d access tokens fetched, want 1: the token was not at fault", got)
	}
	if got := h.idp.Hits(vippstest.Token); got != 6 {
		t.Errorf("token endpoint called %d times, want 6: no retries", got)
	}
}
