package vippslogin_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/vippslogin/vippslogin"
	"github.com/vippslogin/vippslogin/vippstest"
)

// hits returns the provider's discovery and JWKS hits.
func (h *harness) hits() (discovery, jwks int) {
	return h.idp.Hits(vippstest.Discovery), h.idp.Hits(vippstest.JWKS)
}

// wantHits checks the provider's discovery and JWKS hits.
func (h *harness) wantHits(when string, discovery, jwks int) {
	h.t.Helper()
	if d, j := h.hits(); d != discovery || j != jwks {
		h.t.Errorf("%s: discovery and JWKS hits = %d, %d; want %d, %d", when, d, j, discovery, jwks)
	}
}

// TestAlgorithmSwitchFollowed: a provider moves its ID tokens from RS256 to
// ES256 with a new key, and its discovery now lists ES256 in
// id_token_signing_alg_values_supported (OpenID Connect Discovery 1.0,
// section 3). The first such token, whose alg the cached document does not
// list (OpenID Connect Core 1.0, section 3.1.3.7, steps 6 and 7), refetches
// discovery once and, for its unknown kid, the key set, and logs in, long
// before the cached document's max-age of an hour runs out.
func TestAlgorithmSwitchFollowed(t *testing.T) {
	h := newHarness(t)
	h.browser().login("/")
	disc, jwks := h.hits()

	if h.idp.RotateKeyAlg("ES256") == "" {
		t.Fatal("RotateKeyAlg failed")
	}
	h.idp.RetireOldKeys() // discovery now lists ES256 alone
	b := h.browser()
	b.login("/profile")
	if b.profile() == nil {
		t.Fatal("not logged in with the provider's new algorithm")
	}
	h.wantHits("first ES256 login", disc+1, jwks+1)

	h.browser().login("/")
	h.wantHits("second ES256 login", disc+1, jwks+1)
}

// TestNewKeyRefetchesDiscovery: a token signed with a key the cached key
// set lacks refetches discovery as well as the key set, since a provider
// that rotates its keys may change its discovery document with them
// (OpenID Connect Discovery 1.0, section 3: jwks_uri,
// id_token_signing_alg_values_supported).
func TestNewKeyRefetchesDiscovery(t *testing.T) {
	h := newHarness(t)
	h.browser().login("/")
	disc, jwks := h.hits()
	h.idp.RotateKey()
	h.browser().login("/")
	h.wantHits("login with a new key", disc+1, jwks+1)
}

// TestRefetchFloodBounded: tokens with an algorithm the provider does not
// list (OpenID Connect Core 1.0, section 3.1.3.7, steps 6 and 7) or with
// forged key ids refetch discovery and the key set a few times in a row and
// then once per 10 seconds, sharing one budget; "none" and HMAC tokens,
// which nothing could make acceptable, fetch nothing.
func TestRefetchFloodBounded(t *testing.T) {
	h := newHarness(t)
	h.browser().login("/")
	b := h.browser()
	refused := func(want error) {
		t.Helper()
		resp, _ := b.get(b.startLogin("/"))
		if resp.StatusCode < 400 {
			t.Fatalf("status %d, want an error", resp.StatusCode)
		}
		h.wantErr(want)
	}

	// ES256 tokens from a provider whose discovery lists RS256 alone.
	h.idp.RotateKeyAlg("ES256")
	h.idp.SetSigningAlgs("RS256")
	disc, jwks := h.hits()
	for range 20 {
		refused(&vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "algorithm"})
	}
	d, j := h.hits()
	if d-disc > 3 || d-disc < 1 {
		t.Errorf("20 tokens with an unlisted alg made %d discovery fetches, want 1 to 3", d-disc)
	}
	if j != jwks {
		t.Errorf("tokens with an unlisted alg fetched the key set %d times", j-jwks)
	}
	h.clock.Advance(11 * time.Second)
	refused(&vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "algorithm"})
	h.wantHits("11 s later", d+1, j)
	refused(&vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "algorithm"})
	h.wantHits("right after", d+1, j)

	// "none" and HS256 fetch nothing, however full the budget.
	h.clock.Advance(time.Minute)
	var n atomic.Int32
	h.idp.SetHooks(vippstest.Hooks{IDToken: func(header, claims map[string]any) string {
		if n.Add(1)%2 == 0 {
			return vippstest.UnsignedToken(header, claims)
		}
		return vippstest.HMACToken(header, claims, h.idp.PublicKeyPEM())
	}})
	for range 6 {
		refused(&vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "algorithm"})
	}
	h.wantHits("none and HS256 tokens", d+1, j)

	// Forged key ids draw on the same budget, fetching discovery too.
	h.idp.SetSigningAlgs()
	h.idp.SetHooks(vippstest.Hooks{IDToken: func(header, _ map[string]any) string {
		header["kid"] = "public:" + randomToken()
		return ""
	}})
	d, j = h.hits()
	for range 20 {
		refused(&vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "unknown_key"})
	}
	d2, j2 := h.hits()
	if d2-d > 3 || j2-j > 3 || j2-j < 1 {
		t.Errorf("20 forged kids made %d discovery and %d key set fetches, want at most 3 each, and a key set fetch", d2-d, j2-j)
	}
	refused(&vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "unknown_key"})
	h.wantHits("forged kid once the budget is spent", d2, j2)
}
