package vippslogin_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/vippslogin/vippslogin"
	"github.com/vippslogin/vippslogin/vippstest"
)

// What the user proved, and when (acr, amr, auth_time, sid), comes from the
// signed ID token alone: userinfo can neither supply it nor override it.
// Otherwise a userinfo acr would pass RequireStepUp without a step-up.
func TestUserinfoCannotSupplyAuthEvent(t *testing.T) {
	tests := []struct {
		name    string
		idToken map[string]any // set in the ID token; nil values are deleted
		want    map[string]any // in the session's claims; nil for absent
	}{
		{
			name:    "the ID token has none",
			idToken: map[string]any{"acr": nil, "amr": nil, "sid": nil},
			want:    map[string]any{"acr": nil, "amr": nil, "sid": nil},
		},
		{
			name:    "the ID token has its own",
			idToken: map[string]any{"acr": "urn:vipps:acr:basic", "amr": []any{"pwd"}, "sid": "id-token-sid"},
			want:    map[string]any{"acr": "urn:vipps:acr:basic", "amr": []any{"pwd"}, "sid": "id-token-sid"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, withLoginRoute(vippslogin.LoginOptions{}))
			var authTime any
			h.idp.SetHooks(vippstest.Hooks{
				IDToken: func(_, claims map[string]any) string {
					for k, v := range tc.idToken {
						if v == nil {
							delete(claims, k)
						} else {
							claims[k] = v
						}
					}
					authTime = claims["auth_time"]
					return ""
				},
				Userinfo: func(claims map[string]any) {
					claims["acr"] = vippslogin.StepUpACR
					claims["amr"] = []any{"app"}
					claims["auth_time"] = 1
					claims["sid"] = "userinfo-sid"
					claims["nonce"] = "userinfo-nonce"
				},
			})
			b := h.browser()
			b.login("/profile")
			c := b.profile()
			if c == nil {
				t.Fatal("not logged in")
			}
			for k, want := range tc.want {
				got, ok := c[k]
				if want == nil && ok {
					t.Errorf("claims[%q] = %v, from userinfo; want none", k, got)
				}
				if want != nil && !equalJSON(got, want) {
					t.Errorf("claims[%q] = %v, want %v from the ID token", k, got, want)
				}
			}
			if at, ok := c["auth_time"].(float64); !ok || int64(at) != toInt64(authTime) {
				t.Errorf("auth_time = %v, want the ID token's %v", c["auth_time"], authTime)
			}
			if _, ok := c["nonce"]; ok {
				t.Error("the claims keep a nonce")
			}
			// RequireStepUp is not fooled: the browser is sent to a step-up login.
			resp, _ := b.get("/vault")
			if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "step_up=1") {
				t.Errorf("GET /vault = %d %q, want a redirect to a step-up login", resp.StatusCode, resp.Header.Get("Location"))
			}
		})
	}
}

func equalJSON(a, b any) bool {
	as, aok := a.([]any)
	bs, bok := b.([]any)
	if aok || bok {
		if !aok || !bok || len(as) != len(bs) {
			return false
		}
		for i := range as {
			if as[i] != bs[i] {
				return false
			}
		}
		return true
	}
	return a == b
}

func toInt64(v any) int64 {
	switch v := v.(type) {
	case int64:
		return v
	case float64:
		return int64(v)
	case int:
		return int64(v)
	}
	return -1
}

// TestNoUserinfoEndpoint: userinfo_endpoint is only RECOMMENDED in a
// provider's discovery (OpenID Connect Discovery 1.0, section 3). A provider
// without one is accepted, userinfo is never called, and the claims come
// from the verified ID token alone (OpenID Connect Core 1.0, section
// 3.1.3.7): its sub, the profile claims it carries and those about the
// login, but not those about the token itself.
func TestNoUserinfoEndpoint(t *testing.T) {
	h := newHarness(t, options{idp: func(c *vippstest.Config) { c.NoUserinfoEndpoint = true }})
	if err := h.auth.Ready(t.Context()); err != nil {
		t.Fatalf("Ready against a provider without userinfo: %v", err)
	}
	b := h.browser()
	b.login("/profile")
	c := b.profile()
	if c == nil {
		t.Fatal("not logged in")
	}
	u := vippstest.DefaultUsers()[0]
	for k, want := range map[string]any{"sub": u.Sub, "name": u.Name, "email": u.Email, "birthdate": u.BirthDate} {
		if c[k] != want {
			t.Errorf("claim %s = %v, want %v", k, c[k], want)
		}
	}
	for _, k := range []string{"sid", "auth_time"} {
		if c[k] == nil {
			t.Errorf("claim %s missing", k)
		}
	}
	for _, k := range []string{"nonce", "aud", "iss", "exp", "iat", "at_hash", "jti"} {
		if v, ok := c[k]; ok {
			t.Errorf("token claim %s = %v kept in the claims", k, v)
		}
	}
	if n := h.idp.Hits(vippstest.Userinfo); n != 0 {
		t.Errorf("userinfo called %d times", n)
	}
}
