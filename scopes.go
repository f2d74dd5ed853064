package vippslogin

import (
	"fmt"
	"strings"
)

// vippsScopes are the scopes Vipps MobilePay Login documents
// (login-api/api-guide/core-concepts.md, "Scopes"; delegatedConsents only
// for login from phone number), and those its discovery document lists
// (login-api/api-guide/browser-flow-integration.md, "OpenID configuration":
// offline, api_version_2).
var vippsScopes = []string{"openid", "address", "birthDate", "email", "name", "phoneNumber", "nin",
	"delegatedConsents", "offline", "api_version_2"}

// scopeAliases are the names other providers use for what a Vipps scope
// gives, suggested when a Vipps site asks for them.
var scopeAliases = map[string]string{
	"phone": "phoneNumber", "phone_number": "phoneNumber", "profile": "name", "birthdate": "birthDate",
	"birth_date": "birthDate", "nnin": "nin", "ssn": "nin", "addresses": "address",
}

// checkScope reports what is wrong with the scope name sc: not a valid
// scope token (RFC 6749, section 3.3), or, when vipps is set, not a scope
// Vipps documents, with the one that was most likely meant, or
// delegatedConsents outside a login from phone number (phone).
func checkScope(sc string, vipps, phone bool) error {
	if sc == "" || strings.ContainsFunc(sc, func(r rune) bool { return r <= ' ' || r >= 0x7f || r == '"' || r == '\\' }) {
		return fmt.Errorf("%q is not a valid scope name", safeText(sc))
	}
	if !vipps {
		return nil
	}
	if sc == "delegatedConsents" && !phone {
		return fmt.Errorf("%q is only for login from phone number (PhoneLoginRequest.Scopes)", sc)
	}
	for _, v := range vippsScopes {
		if sc == v {
			return nil
		}
	}
	if s := suggestScope(sc); s != "" {
		return fmt.Errorf("%q is not a Vipps MobilePay scope; did you mean %q? (Vipps' scopes are camelCase: %s)",
			sc, s, strings.Join(vippsScopes[:7], " "))
	}
	return fmt.Errorf("%q is not a Vipps MobilePay scope (they are: %s); to send a scope this version does not know, set Issuer to the environment's issuer",
		sc, strings.Join(vippsScopes, " "))
}

// suggestScope returns the Vipps scope sc most likely meant, or "".
func suggestScope(sc string) string {
	norm := strings.ToLower(sc)
	if s, ok := scopeAliases[norm]; ok {
		return s
	}
	norm = strings.NewReplacer("_", "", "-", "", " ", "").Replace(norm)
	best, bestDist := "", 3 // more than two edits away suggests nothing
	for _, v := range vippsScopes {
		lv := strings.ToLower(v)
		switch {
		case lv == norm:
			return v
		case len(norm) >= 3 && strings.HasPrefix(lv, norm):
			return v
		}
		if d := editDistance(norm, lv); d < bestDist {
			best, bestDist = v, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b, ASCII.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
