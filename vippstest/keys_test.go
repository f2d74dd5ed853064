package vippstest_test

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"slices"
	"testing"

	"github.com/vippslogin/vippslogin/vippstest"
)

// discoveryAlgs returns the provider's id_token_signing_alg_values_supported.
func discoveryAlgs(t *testing.T, p *vippstest.Provider) []string {
	t.Helper()
	_, body := get(t, p.URL()+discoveryPath)
	var algs []string
	for _, a := range decodeJSON(t, body)["id_token_signing_alg_values_supported"].([]any) {
		algs = append(algs, a.(string))
	}
	return algs
}

func TestRotateKeyAlg(t *testing.T) {
	p := newProvider(t, vippstest.Config{AutoApprove: true})
	for _, tc := range []struct {
		alg      string
		wantAlgs []string // discovery's list after the rotation
		hash     func([]byte) []byte
	}{
		{"ES256", []string{"ES256", "RS256"}, func(b []byte) []byte { s := sha256.Sum256(b); return s[:] }},
		{"Ed25519", []string{"Ed25519", "ES256", "RS256"}, func(b []byte) []byte { s := sha512.Sum512(b); return s[:] }},
		{"EdDSA", []string{"EdDSA", "Ed25519", "ES256", "RS256"}, func(b []byte) []byte { s := sha512.Sum512(b); return s[:] }},
	} {
		kid := p.RotateKeyAlg(tc.alg)
		if kid == "" || p.SigningKey().Kid != kid || p.SigningKey().Alg != tc.alg {
			t.Fatalf("RotateKeyAlg(%q) = %q; current key %q %s", tc.alg, kid, p.SigningKey().Kid, p.SigningKey().Alg)
		}
		if got := discoveryAlgs(t, p); !slices.Equal(got, tc.wantAlgs) {
			t.Errorf("after %s: discovery algs = %v, want %v", tc.alg, got, tc.wantAlgs)
		}
		_, tok := exchange(t, p, "client_secret_basic", codeForm(login(t, p, "openid")))
		raw := tok["id_token"].(string)
		if h, _ := decodeJWT(t, raw); h["alg"] != tc.alg || h["kid"] != kid {
			t.Errorf("ID token header = %v, want alg %s kid %s", h, tc.alg, kid)
		}
		claims := verify(t, p, raw)
		sum := tc.hash([]byte(tok["access_token"].(string)))
		if want := base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2]); claims["at_hash"] != want {
			t.Errorf("%s at_hash = %v, want %s", tc.alg, claims["at_hash"], want)
		}
	}

	old := p.SigningKey().Kid
	if kid := p.RotateKeyAlg("HS256"); kid != "" || p.SigningKey().Kid != old {
		t.Errorf("RotateKeyAlg(HS256) = %q and changed the key", kid)
	}
	p.RetireOldKeys()
	if got := discoveryAlgs(t, p); !slices.Equal(got, []string{"EdDSA"}) {
		t.Errorf("after RetireOldKeys: discovery algs = %v, want [EdDSA]", got)
	}
}

func TestSetSigningAlgs(t *testing.T) {
	p := newProvider(t, vippstest.Config{})
	if got := discoveryAlgs(t, p); !slices.Equal(got, []string{"RS256"}) {
		t.Errorf("default discovery algs = %v, want [RS256] as at Vipps", got)
	}
	p.SetSigningAlgs("ES256", "Ed25519")
	if got := discoveryAlgs(t, p); !slices.Equal(got, []string{"ES256", "Ed25519"}) {
		t.Errorf("discovery algs = %v, want [ES256 Ed25519]", got)
	}
	p.SetSigningAlgs()
	if got := discoveryAlgs(t, p); !slices.Equal(got, []string{"RS256"}) {
		t.Errorf("after SetSigningAlgs(): discovery algs = %v, want [RS256]", got)
	}
}
