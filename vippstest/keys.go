package vippstest

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"hash"
	"slices"
	"sync"

	"github.com/vippslogin/vippslogin/internal/jose"
)

// Signing algorithms other than Vipps' RS256, for tests of a client that
// must cope with any OpenID Connect provider.

// spareRSA holds the RSA keys of closed providers, for the providers and
// rotations that come after them in the process: making a 2048-bit RSA key
// takes a tenth of a second, several times that under the race detector,
// and a test suite starts a provider per test. A key is given out again
// under a new kid, and never while a provider that got it runs.
var spareRSA struct {
	sync.Mutex
	keys []*jose.SigningKey
}

// maxSpareRSA bounds spareRSA: as many providers as a test suite runs at
// once, or rotates keys in, find a key there.
const maxSpareRSA = 32

// newRSAKey returns an RSA key for RS256 under a new kid: a spare one if
// there is one, else a new one.
func newRSAKey() (*jose.SigningKey, error) {
	spareRSA.Lock()
	n := len(spareRSA.keys)
	if n == 0 {
		spareRSA.Unlock()
		return jose.NewRSAKey(newKid())
	}
	k := spareRSA.keys[n-1]
	spareRSA.keys[n-1] = nil
	spareRSA.keys = spareRSA.keys[:n-1]
	spareRSA.Unlock()
	return k.WithKid(newKid())
}

// spareKeys keeps the RSA keys among keys, which a closed provider no
// longer uses, for newRSAKey.
func spareKeys(keys []*jose.SigningKey) {
	spareRSA.Lock()
	defer spareRSA.Unlock()
	for _, k := range keys {
		if k.Alg == "RS256" && len(spareRSA.keys) < maxSpareRSA {
			spareRSA.keys = append(spareRSA.keys, k)
		}
	}
}

// RotateKeyAlg is [Provider.RotateKey] with a key for alg: "RS256", "ES256"
// (a P-256 key), "EdDSA" or "Ed25519" (both an Ed25519 key; Ed25519 is the
// fully-specified name of RFC 9864). ID tokens are signed with alg from now
// on. It returns "", keeping the current key, for any other alg or when no
// key can be made.
func (p *Provider) RotateKeyAlg(alg string) (kid string) {
	var k *jose.SigningKey
	var err error
	switch alg {
	case "RS256":
		k, err = newRSAKey()
	case "ES256":
		k, err = jose.NewECKey(newKid())
	case "EdDSA", jose.Ed25519:
		k, err = jose.NewEd25519Key(newKid(), alg)
	default:
		return ""
	}
	if err != nil {
		return ""
	}
	p.mu.Lock()
	p.oldKeys = append(p.oldKeys, p.key)
	p.key = k
	p.mu.Unlock()
	return k.Kid
}

// SetSigningAlgs makes discovery name algs in
// id_token_signing_alg_values_supported, whatever keys sign the tokens, to
// test a client against a provider whose list does not fit its tokens.
// Without algs, discovery goes back to naming the algorithms of the keys
// the JWKS publishes for browser logins: RS256 until a key of another
// algorithm comes ([Provider.RotateKeyAlg]), as at Vipps.
func (p *Provider) SetSigningAlgs(algs ...string) {
	p.mu.Lock()
	p.signingAlgs = slices.Clone(algs)
	p.mu.Unlock()
}

// signingAlgsLocked is the discovery's list of ID token signing
// algorithms. The caller holds p.mu.
func (p *Provider) signingAlgsLocked() []string {
	if len(p.signingAlgs) > 0 {
		return slices.Clone(p.signingAlgs)
	}
	algs := []string{p.key.Alg}
	for _, k := range slices.Backward(p.oldKeys) {
		if !slices.Contains(algs, k.Alg) {
			algs = append(algs, k.Alg)
		}
	}
	return algs
}

// accessTokenHash is the at_hash for token of an ID token signed with alg:
// the left half of its hash with the algorithm's hash function (SHA-512
// for EdDSA and Ed25519, as Ed25519 itself uses).
func accessTokenHash(alg, token string) string {
	var h hash.Hash
	switch alg {
	case "RS384", "PS384", "ES384":
		h = sha512.New384()
	case "RS512", "PS512", "ES512", "EdDSA", jose.Ed25519:
		h = sha512.New()
	default:
		h = sha256.New()
	}
	h.Write([]byte(token))
	sum := h.Sum(nil)
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}
