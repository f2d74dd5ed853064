package vippslogin_test

import (
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vippslogin/vippslogin"
	"github.com/vippslogin/vippslogin/vippstest"
)

// editToken is an ID token hook that sees the harness. It returns "" to let
// the provider sign the changed claims, or the token to send instead.
type editToken func(h *harness, header, claims map[string]any) string

// setClaim returns a hook that sets claim k to v.
func setClaim(k string, v any) editToken {
	return func(_ *harness, _, claims map[string]any) string {
		claims[k] = v
		return ""
	}
}

// deleteClaim returns a hook that removes claim k.
func deleteClaim(k string) editToken {
	return func(_ *harness, _, claims map[string]any) string {
		delete(claims, k)
		return ""
	}
}

// shiftClaims returns a hook that sets each named time claim to the
// harness's now plus the given offset.
func shiftClaims(offsets map[string]time.Duration) editToken {
	return func(h *harness, _, claims map[string]any) string {
		now := h.clock.Now()
		for k, d := range offsets {
			claims[k] = now.Add(d).Unix()
		}
		return ""
	}
}

// corruptSignature changes one character in the middle of a compact JWS's
// signature, where every bit counts. It runs in the provider's handler, so
// it reports with Errorf.
func corruptSignature(t testing.TB, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 || len(parts[2]) < 20 {
		t.Errorf("not a signed compact JWS: %q", token)
		return token
	}
	sig := []byte(parts[2])
	i := len(sig) / 2
	if sig[i] == 'A' {
		sig[i] = 'B'
	} else {
		sig[i] = 'A'
	}
	parts[2] = string(sig)
	return strings.Join(parts, ".")
}

func TestIDTokenRejected(t *testing.T) {
	// A provider whose key is not in the site's key set.
	stranger, err := vippstest.New(vippstest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stranger.Close)

	tests := []struct {
		name string
		edit editToken
		want error
	}{
		{
			name: "bad signature",
			edit: func(h *harness, header, claims map[string]any) string {
				return corruptSignature(h.t, h.idp.Sign(header, claims))
			},
			want: &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "signature"},
		},
		{
			name: "alg none",
			edit: func(_ *harness, header, claims map[string]any) string {
				return vippstest.UnsignedToken(header, claims)
			},
			want: &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "algorithm"},
		},
		{
			name: "HS256 keyed with the public key",
			edit: func(h *harness, header, claims map[string]any) string {
				return vippstest.HMACToken(header, claims, h.idp.PublicKeyPEM())
			},
			want: &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "algorithm"},
		},
		{name: "wrong iss", edit: setClaim("iss", "https://evil.example/access-management-1.0/access/"), want: &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "issuer"}},
		{name: "iss without trailing slash", edit: func(h *harness, _, claims map[string]any) string {
			claims["iss"] = strings.TrimSuffix(h.idp.Issuer(), "/")
			return ""
		}, want: &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "issuer"}},
		{name: "wrong aud", edit: setClaim("aud", []any{"someone-else"}), want: &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "audience"}},
		{name: "wrong aud string", edit: setClaim("aud", "someone-else"), want: &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "audience"}},
		{name: "aud missing", edit: deleteClaim("aud"), want: &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "audience"}},
		{
			name: "second audience without azp",
			edit: func(h *harness, _, claims map[string]any) string {
				claims["aud"] = []any{h.idp.ClientID(), "someone-else"}
				return ""
			},
			want: &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "audience"},
		},
		{name: "wrong azp", edit: setClaim("azp", "someone-else"), want: &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "audience"}},
		{
			name: "expired",
			edit: shiftClaims(map[string]time.Duration{"iat": -time.Hour, "exp": -2 * time.Minute}),
			want: &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "expired"},
		},
		{name: "exp missing", edit: deleteClaim("exp"), want: &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "expired"}},
		{name: "iat missing", edit: deleteClaim("iat"), want: &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "issued_at"}},
		{
			name: "iat in the future beyond skew",
			edit: shiftClaims(map[string]time.Duration{"iat": 2 * time.Minute, "exp": time.Hour}),
			want: &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "issued_at"},
		},
		{
			name: "nbf in the future",
			edit: shiftClaims(map[string]time.Duration{"nbf": 2 * time.Minute}),
			want: &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "not_yet_valid"},
		},
		{name: "sub missing", edit: deleteClaim("sub"), want: &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "subject"}},
		{name: "sub empty", edit: setClaim("sub", ""), want: &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "subject"}},
		{name: "nonce mismatch", edit: setClaim("nonce", "not-the-nonce-that-was-sent"), want: &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "nonce"}},
		{name: "nonce missing", edit: deleteClaim("nonce"), want: &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "nonce"}},
		{name: "nonce empty as when none is sent", edit: setClaim("nonce", ""), want: &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "nonce"}},
		{name: "at_hash mismatch", edit: setClaim("at_hash", "AAAAAAAAAAAAAAAAAAAAAA"), want: &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "at_hash"}},
		{
			name: "unknown kid",
			edit: func(_ *harness, header, _ map[string]any) string {
				header["kid"] = "public:00000000-0000-4000-8000-000000000000"
				return ""
			},
			want: &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "unknown_key"},
		},
		{
			name: "key not in the key set with the current kid",
			edit: func(_ *harness, header, claims map[string]any) string {
				return stranger.Sign(header, claims) // header names the provider's kid
			},
			want: &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "signature"},
		},
		{
			name: "malformed",
			edit: func(*harness, map[string]any, map[string]any) string { return "abc" },
			want: &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "malformed"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.idp.SetHooks(vippstest.Hooks{IDToken: func(header, claims map[string]any) string {
				return tc.edit(h, header, claims)
			}})
			b := h.browser()
			resp, _ := b.get(b.startLogin("/profile"))
			b.wantRefused(resp, vippslogin.ErrInvalidIDToken, tc.want)
		})
	}
}

func TestIDTokenAcceptedWithinSkew(t *testing.T) {
	tests := []struct {
		name string
		edit editToken
	}{
		{name: "exp just past", edit: shiftClaims(map[string]time.Duration{"iat": -time.Hour, "exp": -30 * time.Second})},
		{name: "iat just ahead", edit: shiftClaims(map[string]time.Duration{"iat": 30 * time.Second, "exp": time.Hour})},
		{name: "nbf just ahead", edit: shiftClaims(map[string]time.Duration{"nbf": 30 * time.Second})},
		{name: "aud as a string", edit: func(h *harness, _, claims map[string]any) string {
			claims["aud"] = h.idp.ClientID()
			return ""
		}},
		{name: "second audience with azp", edit: func(h *harness, _, claims map[string]any) string {
			claims["aud"] = []any{h.idp.ClientID(), "someone-else"}
			claims["azp"] = h.idp.ClientID()
			return ""
		}},
		{name: "no at_hash", edit: deleteClaim("at_hash")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.idp.SetHooks(vippstest.Hooks{IDToken: func(header, claims map[string]any) string {
				return tc.edit(h, header, claims)
			}})
			b := h.browser()
			b.login("/profile")
			if b.profile() == nil {
				t.Fatal("not logged in")
			}
		})
	}
}

func TestUserinfoRejected(t *testing.T) {
	tests := []struct {
		name  string
		setup func(h *harness)
		want  error
	}{
		{
			name: "sub mismatch",
			setup: func(h *harness) {
				h.idp.SetHooks(vippstest.Hooks{Userinfo: func(claims map[string]any) { claims["sub"] = "someone-else" }})
			},
			want: &vippslogin.Error{Err: vippslogin.ErrBadResponse, Reason: "subject"},
		},
		{
			name: "sub missing",
			setup: func(h *harness) {
				h.idp.SetHooks(vippstest.Hooks{Userinfo: func(claims map[string]any) { delete(claims, "sub") }})
			},
			want: vippslogin.ErrBadResponse,
		},
		{
			name:  "status 500",
			setup: func(h *harness) { h.idp.SetFault(vippstest.Userinfo, vippstest.Fault{Status: 500}) },
			want:  vippslogin.ErrBadResponse,
		},
		{
			name:  "down",
			setup: func(h *harness) { h.idp.SetFault(vippstest.Userinfo, vippstest.Fault{Down: true}) },
			want:  &vippslogin.Error{Err: vippslogin.ErrProviderUnavailable, Reason: "userinfo"},
		},
		{
			name:  "garbage with 200",
			setup: func(h *harness) { h.idp.SetFault(vippstest.Userinfo, vippstest.Fault{Status: 200, Body: "garbage"}) },
			want:  vippslogin.ErrBadResponse,
		},
		{
			name:  "JSON array with 200",
			setup: func(h *harness) { h.idp.SetFault(vippstest.Userinfo, vippstest.Fault{Status: 200, Body: `["sub"]`}) },
			want:  vippslogin.ErrBadResponse,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			tc.setup(h)
			b := h.browser()
			resp, _ := b.get(b.startLogin("/profile"))
			b.wantRefused(resp, tc.want)
		})
	}
}

func TestKeyRotation(t *testing.T) {
	h := newHarness(t)
	h.browser().login("/")
	before := h.idp.Hits(vippstest.JWKS)
	if kid := h.idp.RotateKey(); kid == "" {
		t.Fatal("RotateKey failed")
	}
	h.browser().login("/")
	if got, want := h.idp.Hits(vippstest.JWKS), before+1; got != want {
		t.Errorf("JWKS hits after rotation = %d, want %d", got, want)
	}
}

func TestRetiredKeys(t *testing.T) {
	h := newHarness(t)
	h.browser().login("/")
	h.idp.RotateKey()
	h.idp.RetireOldKeys()
	b := h.browser()
	b.login("/profile")
	if b.profile() == nil {
		t.Fatal("not logged in after the old keys were retired")
	}
}

func TestKeySetFetchedOnce(t *testing.T) {
	h := newHarness(t)
	for range 10 {
		h.browser().login("/")
	}
	for _, e := range []vippstest.Endpoint{vippstest.JWKS, vippstest.Discovery} {
		if got := h.idp.Hits(e); got != 1 {
			t.Errorf("%s hits after 10 logins = %d, want 1", e, got)
		}
	}
}

func TestUnknownKidFloodRateLimited(t *testing.T) {
	h := newHarness(t)
	h.browser().login("/") // the key set is cached
	h.idp.SetHooks(vippstest.Hooks{IDToken: func(header, _ map[string]any) string {
		header["kid"] = "public:" + randomToken()
		return ""
	}})
	before := h.idp.Hits(vippstest.JWKS)
	b := h.browser()
	refused := func() {
		t.Helper()
		resp, _ := b.get(b.startLogin("/"))
		if resp.StatusCode < 400 {
			t.Fatalf("status %d, want an error", resp.StatusCode)
		}
		h.wantErr(&vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "unknown_key"})
	}
	for range 20 {
		refused()
	}
	flood := h.idp.Hits(vippstest.JWKS) - before
	if flood > 3 {
		t.Errorf("20 unknown kids made %d key set fetches, want at most 3 (plus the first)", flood)
	}
	if flood < 1 {
		t.Errorf("20 unknown kids made no key set fetch; key rotation would not be followed")
	}

	h.clock.Advance(11 * time.Second)
	n := h.idp.Hits(vippstest.JWKS)
	refused()
	if got, want := h.idp.Hits(vippstest.JWKS), n+1; got != want {
		t.Errorf("JWKS hits 11s later = %d, want %d (one more refetch allowed)", got, want)
	}
	refused()
	if got, want := h.idp.Hits(vippstest.JWKS), n+1; got != want {
		t.Errorf("JWKS hits right after = %d, want %d (no refetch)", got, want)
	}
	if err := h.lastErr(); !errors.Is(err, vippslogin.ErrInvalidIDToken) {
		t.Errorf("error = %v, want ErrInvalidIDToken", err)
	}
}

// TestEd25519IDTokens logs in with ID tokens signed with Ed25519, the
// fully-specified name of EdDSA over Ed25519 (RFC 9864, section 2.2), and
// with EdDSA. The alg must be one that discovery lists in
// id_token_signing_alg_values_supported (OpenID Connect Discovery 1.0,
// section 3; Core, section 3.1.3.7, steps 6 and 7): EdDSA being listed does
// not admit Ed25519.
func TestEd25519IDTokens(t *testing.T) {
	tests := []struct {
		name      string
		alg       string   // of the provider's signing key
		advertise []string // discovery's list; nil for the keys' algorithms
		edit      editToken
		want      error // nil when the login succeeds
	}{
		{name: "Ed25519 listed", alg: "Ed25519"},
		{name: "EdDSA listed", alg: "EdDSA"},
		{name: "Ed25519 listed beside EdDSA", alg: "Ed25519", advertise: []string{"EdDSA", "Ed25519"}},
		{name: "Ed25519 not listed, EdDSA listed", alg: "Ed25519", advertise: []string{"EdDSA"}, want: &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "algorithm"}},
		{name: "EdDSA not listed, Ed25519 listed", alg: "EdDSA", advertise: []string{"Ed25519"}, want: &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "algorithm"}},
		{
			name: "Ed25519 with a bad signature",
			alg:  "Ed25519",
			edit: func(h *harness, header, claims map[string]any) string {
				return corruptSignature(h.t, h.idp.Sign(header, claims))
			},
			want: &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "signature"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			if h.idp.RotateKeyAlg(tc.alg) == "" {
				t.Fatalf("RotateKeyAlg(%q) failed", tc.alg)
			}
			h.idp.RetireOldKeys()
			h.idp.SetSigningAlgs(tc.advertise...)
			if tc.edit != nil {
				h.idp.SetHooks(vippstest.Hooks{IDToken: func(header, claims map[string]any) string {
					return tc.edit(h, header, claims)
				}})
			}
			b := h.browser()
			if tc.want != nil {
				resp, _ := b.get(b.startLogin("/profile"))
				b.wantRefused(resp, vippslogin.ErrInvalidIDToken, tc.want)
				return
			}
			b.login("/profile")
			if got := b.profile(); got == nil || got["sub"] != vippstest.DefaultUsers()[0].Sub {
				t.Fatalf("profile = %v, want the user logged in", got)
			}
		})
	}
}

// An ID token's msn names the sales unit (login-api/api-guide/core-concepts.md,
// "ID Token", example body; partner-keys.md, "ID token validation"): a site
// that sets MerchantSerialNumber refuses a token for another sales unit.
func TestIDTokenMSN(t *testing.T) {
	for _, tc := range []struct {
		msn string
		ok  bool
	}{{"", true}, {"123456", true}, {"654321", false}} {
		t.Run("MerchantSerialNumber "+tc.msn, func(t *testing.T) {
			h := newHarness(t, options{site: func(c *vippslogin.Config) { c.MerchantSerialNumber = tc.msn }})
			b := h.browser()
			resp, _ := b.get(b.startLogin("/profile"))
			if tc.ok {
				if resp.StatusCode != http.StatusSeeOther {
					t.Fatalf("callback: %d (error %v)", resp.StatusCode, h.lastErr())
				}
				return
			}
			b.wantRefused(resp, &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "audience"})
		})
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
