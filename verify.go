package vippslogin

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"hash"

	"github.com/vippslogin/vippslogin/internal/jose"
	"github.com/vippslogin/vippslogin/internal/untrusted"
)

// idTokenErr is an ErrInvalidIDToken with its reason.
func idTokenErr(reason string, format string, args ...any) error {
	return newErr(ErrInvalidIDToken, reason, format, args...)
}

// verifier checks ID tokens against the provider's cached discovery and
// key set.
type verifier struct {
	s        *settings
	provider *provider
	partner  bool // logging in with partner keys: msn may stand for aud
}

// check checks the ID token's signature against the provider's key
// set and its claims against the request, and returns the claims.
//
// The signature must be made with an asymmetric algorithm that discovery
// names, by a key in the key set. The provider may have changed either
// since they were cached: a token with an algorithm the cached discovery
// does not name refetches discovery, and one naming an unknown key id
// refetches discovery and the key set, before it is refused. These
// refetches are rate-limited (allowRefetch). The claims must have
// iss equal to the issuer, aud containing the client id (and azp naming it
// when present or when aud names others too), exp not past and iat not in
// the future (both with Config.ClockSkew), nbf if present not in the
// future, a non-empty sub, nonce equal to the one sent, and at_hash, when
// present, matching the access token. want.phone relaxes nonce and msn as
// [idTokenWant] says.
func (v *verifier) check(ctx context.Context, meta *metadata, raw string, want idTokenWant, accessToken string) (map[string]any, error) {
	token, err := jose.Parse([]byte(raw))
	if err != nil {
		return nil, idTokenErr("malformed", "")
	}
	hdr := token.Header
	refreshed := false
	if !meta.algs[hdr.Alg] {
		// The provider may have moved to another algorithm since discovery
		// was cached. "none" and HMAC never qualify, so they fetch nothing.
		if !asymmetric[hdr.Alg] || !v.provider.allowRefetch() {
			return nil, idTokenErr("algorithm", "alg %q", safeText(hdr.Alg))
		}
		fresh, err := v.provider.reload(ctx)
		if err != nil {
			return nil, err
		}
		if !fresh.algs[hdr.Alg] {
			return nil, idTokenErr("algorithm", "alg %q", safeText(hdr.Alg))
		}
		refreshed = true
	}
	payload, err := v.verifySignature(ctx, token, refreshed)
	if err != nil {
		return nil, err
	}

	claims, err := decodeObject(payload)
	if err != nil {
		return nil, idTokenErr("malformed", "claims are not a JSON object")
	}

	if iss, _ := claims["iss"].(string); iss != meta.Issuer {
		return nil, idTokenErr("issuer", "")
	}
	if err := v.checkAudience(claims, want.phone); err != nil {
		return nil, err
	}
	now := v.s.Now()
	skew := v.s.ClockSkew
	exp, ok := untrusted.NumericDate(claims["exp"])
	if !ok {
		return nil, idTokenErr("expired", "exp missing")
	}
	if !now.Before(exp.Add(skew)) {
		return nil, idTokenErr("expired", "")
	}
	iat, ok := untrusted.NumericDate(claims["iat"])
	if !ok || iat.After(now.Add(skew)) {
		return nil, idTokenErr("issued_at", "")
	}
	if v, present := claims["nbf"]; present {
		nbf, ok := untrusted.NumericDate(v)
		if !ok || nbf.After(now.Add(skew)) {
			return nil, idTokenErr("not_yet_valid", "")
		}
	}
	if sub, _ := claims["sub"].(string); !untrusted.ValidSubject(sub) {
		return nil, idTokenErr("subject", "")
	}
	if err := checkNonce(claims, want); err != nil {
		return nil, err
	}
	if v, present := claims["at_hash"]; present {
		atHash, _ := v.(string)
		if !accessTokenHashOK(hdr.Alg, accessToken, atHash) {
			return nil, idTokenErr("at_hash", "")
		}
	}
	if v, present := claims["auth_time"]; present {
		if _, ok := untrusted.NumericDate(v); !ok {
			return nil, idTokenErr("malformed", "auth_time is not a number")
		}
	}
	return claims, nil
}

// idTokenWant is what the ID token of one login must carry besides what
// every ID token must.
type idTokenWant struct {
	nonce string // the nonce sent; never ""

	// phone marks a login from phone number. Vipps documents the ID token
	// of its redirect variant with neither nonce nor msn
	// (login-api/api-guide/flows/merchant-initiated-login-integration.md,
	// "Redirect to browser", step 3) and shows none of the polled one; both
	// are bound to the login by its auth_req_id instead. So a nonce is
	// checked only when the token carries one, and msn only when present.
	phone bool
}

// checkNonce requires the nonce claim to be the one sent. With want.phone a
// token without one, or with an empty one (as in Vipps' example ID token in
// core-concepts.md, "ID Token"), passes.
func checkNonce(claims map[string]any, want idTokenWant) error {
	v, present := claims["nonce"]
	got, isString := v.(string)
	if want.phone && (!present || isString && got == "") {
		return nil
	}
	if !isString || got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want.nonce)) != 1 {
		return idTokenErr("nonce", "")
	}
	return nil
}

// verifySignature checks the token's signature with the key its kid names.
// A kid the key set lacks may be a new key: then discovery (unless
// refreshed says the caller has just fetched it) and the key set are
// fetched anew, if allowRefetch allows, and the token tried again.
func (v *verifier) verifySignature(ctx context.Context, token *jose.Token, refreshed bool) ([]byte, error) {
	hdr := token.Header
	payload, err := v.tryKeys(ctx, token, false)
	if errors.Is(err, jose.ErrUnknownKey) && v.provider.allowRefetch() {
		// The provider may have rotated its keys since the last fetch, and
		// changed its discovery document with them (a new jwks_uri, other
		// algorithms). When discovery fails, the cached copy will do.
		if !refreshed {
			if _, derr := v.provider.reload(ctx); derr != nil {
				v.s.Logger.LogAttrs(ctx, levelWarn, "vippslogin: discovery refetch for a new key failed; using the cached document", attrErr(derr))
			}
		}
		payload, err = v.tryKeys(ctx, token, true)
	}
	switch {
	case err == nil:
		return payload, nil
	case errors.Is(err, jose.ErrUnknownKey):
		return nil, idTokenErr("unknown_key", "kid %q", safeText(hdr.Kid))
	case errors.Is(err, jose.ErrKeyMismatch):
		return nil, idTokenErr("algorithm", "key %q does not fit alg %q", safeText(hdr.Kid), safeText(hdr.Alg))
	case errors.Is(err, jose.ErrSignature):
		return nil, idTokenErr("signature", "")
	case errors.Is(err, jose.ErrMalformed):
		return nil, idTokenErr("malformed", "")
	}
	return nil, err
}

// tryKeys verifies the token's signature with the current key set, fetched
// anew first when refetch is set; a fetch (fetchKeys) ends after
// Config.HTTPTimeout. A failure to fetch the key set is returned as
// ErrProviderUnavailable.
func (v *verifier) tryKeys(ctx context.Context, token *jose.Token, refetch bool) ([]byte, error) {
	keys := v.provider.keySet()
	if refetch {
		if err := keys.Refresh(ctx); err != nil {
			return nil, upstreamErr(ctx, endpointJWKS, err)
		}
	}
	payload, err := keys.VerifyToken(ctx, token)
	for _, known := range []error{jose.ErrUnknownKey, jose.ErrKeyMismatch, jose.ErrSignature, jose.ErrMalformed} {
		if errors.Is(err, known) {
			return nil, err
		}
	}
	if err != nil {
		return nil, upstreamErr(ctx, endpointJWKS, err)
	}
	return payload, nil
}

// checkAudience requires aud (a string or an array, Vipps sends an array) to
// contain the client id, and azp, when present, to be the client id. A token
// for several audiences must carry azp.
//
// Partners check the sales unit in msn instead, and aud only when they know
// the sales unit's client id. For a login from phone number (phone) msn may
// be missing, since Vipps documents these tokens without it. Whenever msn
// is present and Config.MerchantSerialNumber is set, they must match
// (login-api/api-guide/partner-keys.md, "ID token validation", advises
// partners to check it; a merchant that names its sales unit gets the same
// check). A partner's
// phone token without msn is then bound to the sales unit only by its
// auth_req_id, which Vipps gave in answer to a request carrying the
// Merchant-Serial-Number header.
func (v *verifier) checkAudience(claims map[string]any, phone bool) error {
	msn, hasMSN := claims["msn"]
	required := v.partner && !phone
	if v.s.MerchantSerialNumber != "" && (hasMSN || required) && !msnMatches(msn, v.s.MerchantSerialNumber) {
		return idTokenErr("audience", "msn is not the merchant serial number")
	}
	if v.partner && v.s.ClientID == "" {
		return nil
	}
	var aud []string
	switch v := claims["aud"].(type) {
	case string:
		aud = []string{v}
	case []any:
		for _, a := range v {
			s, ok := a.(string)
			if !ok {
				return idTokenErr("audience", "aud holds a non-string")
			}
			aud = append(aud, s)
		}
	default:
		return idTokenErr("audience", "aud missing")
	}
	found := false
	for _, a := range aud {
		if a == v.s.ClientID {
			found = true
		}
	}
	if !found {
		return idTokenErr("audience", "")
	}
	azp, present := claims["azp"]
	if present {
		if s, _ := azp.(string); s != v.s.ClientID {
			return idTokenErr("audience", "azp is not the client id")
		}
	} else if len(aud) > 1 {
		return idTokenErr("audience", "azp missing for several audiences")
	}
	return nil
}

// msnMatches reports whether the msn claim v, a string or a number, is msn.
func msnMatches(v any, msn string) bool {
	var got string
	switch v := v.(type) {
	case string:
		got = v
	case json.Number:
		got = v.String()
	default:
		return false
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(msn)) == 1
}

// accessTokenHashOK checks at_hash: the left half of the hash of the access
// token, with the hash of the token's signing algorithm, base64url-encoded.
// EdDSA and Ed25519 (EdDSA over Ed25519) hash with SHA-512, as Ed25519 does.
func accessTokenHashOK(alg, accessToken, atHash string) bool {
	var h hash.Hash
	switch alg {
	case "RS256", "PS256", "ES256":
		h = sha256.New()
	case "RS384", "PS384", "ES384":
		h = sha512.New384()
	case "RS512", "PS512", "ES512", "EdDSA", jose.Ed25519:
		h = sha512.New()
	default:
		return false
	}
	h.Write([]byte(accessToken))
	sum := h.Sum(nil)
	want := base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
	return atHash != "" && subtle.ConstantTimeCompare([]byte(want), []byte(atHash)) == 1
}

// The checks of the ID token of a login from phone number, which both of
// its variants share: its auth_req_id, and ES256.

// authReqIDClaim returns the auth_req_id that ID token claims carry, or "".
// Vipps' guide names the claim auth_req_id in its prose and decoded example,
// and its encoded example ID token carries authReqId
// (merchant-initiated-login-integration.md, "Redirect to browser", step 3),
// so either is read; both with different values are refused.
func authReqIDClaim(claims map[string]any) (string, error) {
	var got string
	for _, k := range []string{"auth_req_id", "authReqId"} {
		v, present := claims[k]
		if !present {
			continue
		}
		s, ok := v.(string)
		if !ok || s == "" || (got != "" && s != got) {
			return "", idTokenErr("auth_req_id", "malformed %s", k)
		}
		got = s
	}
	return got, nil
}

// authReqIDHash is what the Client keeps to recognise an auth_req_id.
func authReqIDHash(authReqID string) string {
	sum := sha256.Sum256([]byte("vippslogin auth_req_id\x00" + authReqID))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// sameAuthReqID reports whether id hashes to hash. The hashes have a fixed
// length and are compared in constant time, so the time taken tells
// nothing of how much of id is right, nor of its length.
func sameAuthReqID(id, hash string) bool {
	return id != "" && subtle.ConstantTimeCompare([]byte(authReqIDHash(id)), []byte(hash)) == 1
}
