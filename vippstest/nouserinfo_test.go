package vippstest_test

import (
	"testing"

	"github.com/vippslogin/vippslogin/vippstest"
)

func TestNoUserinfoEndpoint(t *testing.T) {
	p := newProvider(t, vippstest.Config{AutoApprove: true, NoUserinfoEndpoint: true})
	_, body := get(t, p.URL()+discoveryPath)
	if v, ok := decodeJSON(t, body)["userinfo_endpoint"]; ok {
		t.Errorf("discovery has userinfo_endpoint %v", v)
	}
	_, tok := exchange(t, p, "client_secret_basic", codeForm(login(t, p, "openid name email")))
	claims := verify(t, p, tok["id_token"].(string))
	u := vippstest.DefaultUsers()[0]
	for k, want := range map[string]any{"sub": u.Sub, "name": u.Name, "family_name": u.FamilyName, "email": u.Email, "email_verified": u.EmailVerified} {
		if claims[k] != want {
			t.Errorf("ID token claim %s = %v, want %v", k, claims[k], want)
		}
	}
	for _, k := range []string{"phone_number", "birthdate", "address"} {
		if v, ok := claims[k]; ok {
			t.Errorf("ID token has %s = %v for a scope not granted", k, v)
		}
	}
}
