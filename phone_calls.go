package vippslogin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"log/slog"
	"maps"
)

// The checks of the ID token of a login from phone number that both
// variants share: its auth_req_id, and ES256.

// phoneClaims verifies the ID token of a login from phone number and
// fetches userinfo. The token's auth_req_id (claim auth_req_id or authReqId)
// must hash to idHash; with idOptional a token without one passes. A nonce
// and msn are checked only when the token carries them (see [idTokenWant]).
// Besides the algorithms discovery names it accepts ES256 from an issuer
// with Vipps' path: Vipps signs these ID tokens with ES256 (its example),
// while its discovery has named RS256 only. Another issuer's own list
// stands.
func (c *Client) phoneClaims(ctx context.Context, meta *metadata, tok *tokens, nonce, idHash string, idOptional bool) (*Claims, error) {
	m := *meta
	if c.s.vippsPath {
		m.algs = maps.Clone(meta.algs)
		m.algs["ES256"] = true
	}
	idClaims, err := c.verifyIDToken(ctx, &m, tok.IDToken, idTokenWant{nonce: nonce, phone: true}, tok.AccessToken)
	if err != nil {
		return nil, err
	}
	got, err := authReqIDClaim(idClaims)
	if err != nil {
		return nil, err
	}
	if !(got == "" && idOptional) && !sameAuthReqID(got, idHash) {
		return nil, idTokenErr("auth_req_id", "")
	}
	c.s.logStep(ctx, slog.LevelDebug, recIDTokenVerified)
	claims, err := c.userClaims(ctx, meta, tok.AccessToken, idClaims)
	if err != nil {
		return nil, err
	}
	c.s.logStep(ctx, slog.LevelInfo, recPhoneLogin, slog.String("sub", claims.Subject))
	return claims, nil
}

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
