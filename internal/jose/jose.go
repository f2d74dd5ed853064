// Package jose is the one place where the module uses a JOSE library
// (github.com/lestrrat-go/jwx/v2). Everything else speaks in plain Go types
// through this small seam, so that moving to another JOSE library, or to a
// later jwx major version, changes only this file.
package jose

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// Errors returned by [KeySet.Verify].
var (
	// ErrUnknownKey means that the key set has no key with the token's kid.
	ErrUnknownKey = errors.New("no key with that key id")
	// ErrKeyMismatch means that the key named by kid cannot be used with the
	// token's algorithm (wrong key type, wrong use or a different alg).
	ErrKeyMismatch = errors.New("key does not fit the token's algorithm")
	// ErrSignature means that the signature did not verify.
	ErrSignature = errors.New("signature does not verify")
	// ErrMalformed means that the token is not a compact JWS with one signature.
	ErrMalformed = errors.New("malformed token")
)

// Ed25519 is the fully-specified name of EdDSA over the Ed25519 curve (RFC
// 9864, section 2.2). jwx v2 predates it and knows only the polymorphic
// "EdDSA", so this package verifies and signs it itself, with Ed25519 keys
// only.
const Ed25519 = "Ed25519"

// Header is the part of a JWS protected header that callers look at.
type Header struct {
	Alg string // "alg"
	Kid string // "kid"
	Typ string // "typ"
}

// ParseHeader returns the protected header of a compact JWS without
// verifying anything.
func ParseHeader(token []byte) (Header, error) {
	t, err := Parse(token)
	if err != nil {
		return Header{}, err
	}
	return t.Header, nil
}

// Token is a compact JWS taken apart (RFC 7515, section 7.1), not verified.
type Token struct {
	Header       Header
	signingInput []byte // the encoded header and payload, with the dot between
	payload      []byte // decoded
	signature    []byte // decoded
}

// Parse takes a compact JWS apart: three parts in unpadded base64url, the
// header a JSON object whose alg, kid and typ, when present, are strings.
// A header with crit or b64 (RFC 7797) is refused: the token would ask for
// a processing that this package does not do.
func Parse(token []byte) (*Token, error) {
	head, rest, ok1 := bytes.Cut(token, []byte{'.'})
	body, sig, ok2 := bytes.Cut(rest, []byte{'.'})
	if !ok1 || !ok2 || bytes.IndexByte(sig, '.') >= 0 {
		return nil, fmt.Errorf("%w: not three parts", ErrMalformed)
	}
	enc := base64.RawURLEncoding.Strict()
	var c Token
	headerJSON, err := enc.DecodeString(string(head))
	if err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	// Member names are matched exactly (encoding/json would match "ALG"
	// and "Alg" too); a name given twice counts as its last value.
	var members map[string]json.RawMessage
	if err := json.Unmarshal(headerJSON, &members); err != nil || members == nil {
		return nil, fmt.Errorf("%w: header is not a JSON object", ErrMalformed)
	}
	if _, ok := members["crit"]; ok {
		return nil, fmt.Errorf("%w: header asks for crit processing", ErrMalformed)
	}
	if _, ok := members["b64"]; ok {
		return nil, fmt.Errorf("%w: header asks for b64 processing", ErrMalformed)
	}
	for _, m := range [...]struct {
		name string
		dst  *string
	}{{"alg", &c.Header.Alg}, {"kid", &c.Header.Kid}, {"typ", &c.Header.Typ}} {
		if v, ok := members[m.name]; ok && json.Unmarshal(v, m.dst) != nil {
			return nil, fmt.Errorf("%w: header's %s is not a string", ErrMalformed, m.name)
		}
	}
	if c.payload, err = enc.DecodeString(string(body)); err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrMalformed, err)
	}
	if c.signature, err = enc.DecodeString(string(sig)); err != nil {
		return nil, fmt.Errorf("%w: signature: %v", ErrMalformed, err)
	}
	c.signingInput = token[:len(head)+1+len(body)]
	return &c, nil
}

// KeySet is a remote JSON Web Key Set, fetched on first use, cached and
// refreshed in the background.
//
// It fetches through the function its owner gives it, so that every request
// for the set is built by the owner with the context of the call that needs
// it (and that call's trace and request ids): only the background refresh
// runs on a context of its own.
type KeySet struct {
	ctx        context.Context // bounds the background refresh
	fetch      FetchFunc
	minRefresh time.Duration

	set   atomic.Pointer[keys] // nil until a fetch has succeeded
	mu    sync.Mutex           // held while the set is fetched
	timer *time.Timer          // the next background refresh
}

// FetchFunc fetches the key set's JSON with ctx, and says how long it may be
// cached (its Cache-Control max-age; 0 when it does not say).
type FetchFunc func(ctx context.Context) (body []byte, maxAge time.Duration, err error)

// NewKeySet returns a key set that fetch fetches. Nothing is fetched until the
// first [KeySet.Verify], [KeySet.Ready] or [KeySet.Refresh]; from then on the
// set is fetched again in the background after its max-age, or minRefresh if
// that is longer, with ctx. Cancel ctx to stop refreshing.
func NewKeySet(ctx context.Context, fetch FetchFunc, minRefresh time.Duration) *KeySet {
	s := &KeySet{ctx: ctx, fetch: fetch, minRefresh: minRefresh}
	context.AfterFunc(ctx, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.timer != nil {
			s.timer.Stop()
		}
	})
	return s
}

// Refresh fetches the key set anew, with ctx. When that fails, the set
// fetched before stays in use.
func (s *KeySet) Refresh(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.load(ctx)
	return err
}

// load fetches and parses the set, and schedules the next background
// refresh, after a failure too. The caller holds mu.
func (s *KeySet) load(ctx context.Context) (*keys, error) {
	body, maxAge, err := s.fetch(ctx)
	var set jwk.Set
	if err == nil {
		if set, err = jwk.Parse(body); err != nil {
			err = fmt.Errorf("does not parse: %w", err)
		}
	}
	if s.ctx.Err() == nil {
		if s.timer != nil {
			s.timer.Stop()
		}
		s.timer = time.AfterFunc(max(maxAge, s.minRefresh), s.background)
	}
	if err != nil {
		return nil, err
	}
	k := newKeys(set)
	s.set.Store(k)
	return k, nil
}

// background refreshes the set on the key set's own context.
func (s *KeySet) background() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() == nil {
		_, _ = s.load(s.ctx) // a failure keeps the set fetched before
	}
}

// get returns the cached set, fetching it with ctx until a fetch has
// succeeded.
func (s *KeySet) get(ctx context.Context) (*keys, error) {
	if set := s.set.Load(); set != nil {
		return set, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if set := s.set.Load(); set != nil {
		return set, nil
	}
	return s.load(ctx)
}

// Ready fetches the key set if no fetch has succeeded yet.
func (s *KeySet) Ready(ctx context.Context) error {
	_, err := s.get(ctx)
	return err
}

// Verify checks the signature of the compact JWS token with the key named kid
// and the algorithm alg, and returns the payload. The caller has already
// checked that alg is one it accepts; Verify refuses "none" and symmetric keys
// whatever it is given. kid may be empty only when the set holds exactly one
// signing key.
//
// The token is taken apart once, here, and its signing input verified with
// jwx's verifier for alg and the key's public key as the set was parsed:
// what jws.Verify does, without parsing the token and converting the key
// again for each token.
func (s *KeySet) Verify(ctx context.Context, token []byte, alg, kid string) ([]byte, error) {
	t, err := Parse(token)
	if err != nil {
		return nil, err
	}
	t.Header.Alg, t.Header.Kid = alg, kid
	return s.VerifyToken(ctx, t)
}

// VerifyToken is Verify for a token taken apart already, with the key its
// header's kid names and the algorithm its header's alg names.
func (s *KeySet) VerifyToken(ctx context.Context, t *Token) ([]byte, error) {
	alg, kid := t.Header.Alg, t.Header.Kid
	set, err := s.get(ctx)
	if err != nil {
		return nil, err
	}
	key, err := pick(set.keys, kid)
	if err != nil {
		return nil, err
	}
	if key.KeyType() == "oct" || alg == "none" || alg == "" {
		return nil, ErrKeyMismatch
	}
	if use := key.KeyUsage(); use != "" && use != "sig" {
		return nil, ErrKeyMismatch
	}
	if ka := key.Algorithm().String(); ka != "" && ka != alg {
		return nil, ErrKeyMismatch
	}
	sigAlg := jwa.SignatureAlgorithm(alg)
	if alg == Ed25519 {
		// The signature is EdDSA's over the Ed25519 curve, which jwx
		// verifies under the name EdDSA. Only an Ed25519 key may verify
		// it; the caller has checked that the token's header says
		// Ed25519.
		if !isEd25519(key) {
			return nil, ErrKeyMismatch
		}
		sigAlg = jwa.EdDSA
	}
	pub := set.public(key)
	if _, bad := pub.(unusable); bad {
		return nil, ErrKeyMismatch
	}
	verifier, err := jws.NewVerifier(sigAlg)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKeyMismatch, err)
	}
	if err := verifier.Verify(t.signingInput, t.signature, pub); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSignature, err)
	}
	return t.payload, nil
}

// keys is a parsed key set and the public keys of its members as Go
// values (*rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey).
type keys struct {
	keys jwk.Set
	raw  map[jwk.Key]any
}

// unusable stands for a key of the set that does not convert to a sound
// public key: an Ed25519 key of the wrong length, say, which would make
// the verifier panic.
type unusable struct{}

func newKeys(set jwk.Set) *keys {
	k := &keys{keys: set, raw: make(map[jwk.Key]any, set.Len())}
	for i := 0; i < set.Len(); i++ {
		key, _ := set.Key(i)
		pub, err := jwk.PublicRawKeyOf(key)
		if ed, ok := pub.(ed25519.PublicKey); err != nil || ok && len(ed) != ed25519.PublicKeySize {
			pub = unusable{}
		}
		k.raw[key] = pub
	}
	return k
}

// public returns key's public key as a Go value, or unusable.
func (k *keys) public(key jwk.Key) any {
	if raw, ok := k.raw[key]; ok {
		return raw
	}
	return unusable{}
}

// isEd25519 reports whether key is an OKP key on the Ed25519 curve.
func isEd25519(key jwk.Key) bool {
	okp, ok := key.(jwk.OKPPublicKey)
	return ok && key.KeyType() == jwa.OKP && okp.Crv() == jwa.Ed25519
}

func pick(set jwk.Set, kid string) (jwk.Key, error) {
	if kid != "" {
		key, ok := set.LookupKeyID(kid)
		if !ok {
			return nil, ErrUnknownKey
		}
		return key, nil
	}
	var found jwk.Key
	for i := 0; i < set.Len(); i++ {
		k, _ := set.Key(i)
		if k.KeyUsage() == "enc" {
			continue
		}
		if found != nil {
			return nil, ErrUnknownKey // ambiguous without a kid
		}
		found = k
	}
	if found == nil {
		return nil, ErrUnknownKey
	}
	return found, nil
}

// SigningKey is a private key with its key id and algorithm, used by the mock
// provider to sign tokens.
type SigningKey struct {
	Kid string
	Alg string // RS256, ES256, EdDSA or Ed25519
	key crypto.Signer
	jwk jwk.Key
}

// NewRSAKey makes a 2048-bit RSA key for RS256.
func NewRSAKey(kid string) (*SigningKey, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	return newSigningKey(kid, "RS256", k)
}

// NewECKey makes a P-256 key for ES256.
func NewECKey(kid string) (*SigningKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return newSigningKey(kid, "ES256", k)
}

// NewEd25519Key makes an Ed25519 key for alg, which is EdDSA or its
// fully-specified name Ed25519.
func NewEd25519Key(kid, alg string) (*SigningKey, error) {
	if alg != "EdDSA" && alg != Ed25519 {
		return nil, fmt.Errorf("alg %q is not EdDSA or Ed25519", alg)
	}
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return newSigningKey(kid, alg, k)
}

func newSigningKey(kid, alg string, k crypto.Signer) (*SigningKey, error) {
	j, err := jwk.FromRaw(k)
	if err != nil {
		return nil, err
	}
	if err := j.Set(jwk.KeyIDKey, kid); err != nil {
		return nil, err
	}
	return &SigningKey{Kid: kid, Alg: alg, key: k, jwk: j}, nil
}

// Public returns the public half of the key.
func (k *SigningKey) Public() crypto.PublicKey { return k.key.Public() }

// WithKid returns the same key under another key id.
func (k *SigningKey) WithKid(kid string) (*SigningKey, error) {
	return newSigningKey(kid, k.Alg, k.key)
}

// Sign signs payload as a compact JWS. The header carries alg, kid and
// typ "JWT", plus extra (which may override any of them except alg).
func (k *SigningKey) Sign(payload []byte, extra map[string]any) ([]byte, error) {
	h := jws.NewHeaders()
	_ = h.Set(jws.TypeKey, "JWT")
	_ = h.Set(jws.KeyIDKey, k.Kid)
	for name, v := range extra {
		if name == jws.AlgorithmKey {
			continue
		}
		if err := h.Set(name, v); err != nil {
			return nil, err
		}
	}
	if k.Alg == Ed25519 {
		return k.signEd25519(payload, h)
	}
	return jws.Sign(payload, jws.WithKey(jwa.SignatureAlgorithm(k.Alg), k.key, jws.WithProtectedHeaders(h)))
}

// signEd25519 makes a compact JWS with alg Ed25519, which jws.Sign cannot:
// it would write EdDSA into the header.
func (k *SigningKey) signEd25519(payload []byte, h jws.Headers) ([]byte, error) {
	m, err := h.AsMap(context.Background())
	if err != nil {
		return nil, err
	}
	m[jws.AlgorithmKey] = Ed25519
	header, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	enc := base64.RawURLEncoding.Strict()
	input := enc.EncodeToString(header) + "." + enc.EncodeToString(payload)
	sig, err := k.key.Sign(rand.Reader, []byte(input), crypto.Hash(0))
	if err != nil {
		return nil, err
	}
	return []byte(input + "." + enc.EncodeToString(sig)), nil
}

// PublicJWKS returns the JSON Web Key Set of the public halves of keys, each
// with kid, alg and use "sig".
func PublicJWKS(keys ...*SigningKey) ([]byte, error) {
	set := jwk.NewSet()
	for _, k := range keys {
		pub, err := jwk.PublicKeyOf(k.jwk)
		if err != nil {
			return nil, err
		}
		_ = pub.Set(jwk.AlgorithmKey, jwa.SignatureAlgorithm(k.Alg))
		_ = pub.Set(jwk.KeyUsageKey, "sig")
		if err := set.AddKey(pub); err != nil {
			return nil, err
		}
	}
	return json.Marshal(set)
}
