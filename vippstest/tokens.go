package vippstest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"maps"
)

// UnsignedToken returns an unsecured JWT, "header.payload." with an empty
// signature, for testing that a client refuses alg "none". The alg in header
// is set to "none"; header may be nil. UnsignedToken returns "" if header or
// claims cannot be encoded as JSON.
func UnsignedToken(header, claims map[string]any) string {
	h := withAlg(header, "none")
	signingInput, ok := encodeParts(h, claims)
	if !ok {
		return ""
	}
	return signingInput + "."
}

// HMACToken returns a JWT signed with HS256 and secret, for testing the
// algorithm confusion attack: pass [Provider.PublicKeyPEM] as secret and a
// client that verifies HS256 with the provider's public key would accept the
// token. The alg in header is set to "HS256"; header may be nil. HMACToken
// returns "" if header or claims cannot be encoded as JSON.
func HMACToken(header, claims map[string]any, secret []byte) string {
	h := withAlg(header, "HS256")
	signingInput, ok := encodeParts(h, claims)
	if !ok {
		return ""
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(signingInput))
	return signingInput + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// withAlg returns a copy of header with alg set.
func withAlg(header map[string]any, alg string) map[string]any {
	h := maps.Clone(header)
	if h == nil {
		h = make(map[string]any)
	}
	h["alg"] = alg
	return h
}

// encodeParts returns the JWS signing input "header.payload".
func encodeParts(header, claims map[string]any) (string, bool) {
	h, err := json.Marshal(header)
	if err != nil {
		return "", false
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", false
	}
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c), true
}
