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
		if curKid, curAlg := p.CurrentKey(); kid == "" || curKid != kid || curAlg != tc.alg {
			t.Fatalf("RotateKeyAlg(%q) = %q; current key %q %s", tc.alg, kid, curKid, curAlg)
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

	old, _ := p.CurrentKey()
	if kid := p.RotateKeyAlg("HS256"); kid != "" || currentKid(p) != old {
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

// Providers that run at the same time never sign with the same key, also
// after rotations; the RSA key of a closed provider may sign for a later
// one, but under a kid of its own.
func TestRunningProvidersKeys(t *testing.T) {
	inUse := map[string]string{} // public key (PEM) → kid
	kids := map[string]bool{}
	check := func(p *vippstest.Provider) {
		t.Helper()
		kid, alg := p.CurrentKey()
		pem := string(p.PublicKeyPEM())
		if alg != "RS256" || pem == "" {
			t.Fatalf("current key %s %s, PEM %q", kid, alg, pem)
		}
		if other, ok := inUse[pem]; ok {
			t.Fatalf("key %s signs with the same key as %s, of a running provider", kid, other)
		}
		if kids[kid] {
			t.Fatalf("kid %s given out twice", kid)
		}
		inUse[pem], kids[kid] = kid, true
	}
	first := newProvider(t, vippstest.Config{})
	check(first)
	for range 3 {
		p := newProvider(t, vippstest.Config{})
		check(p)
		p.RotateKey()
		check(p)
	}
	// Once first is closed, its key may come back, with a new kid.
	firstPEM := string(first.PublicKeyPEM())
	first.Close()
	delete(inUse, firstPEM)
	check(newProvider(t, vippstest.Config{}))
}
