package vippstest_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/vippslogin/vippslogin/vippstest"
)

// Facts of Vipps' login API that the mock holds, each against the line of
// ../shared/vipps-docs it follows (paths below are relative to it).

// login-api/api-guide/browser-flow-integration.md, "OAuth 2.0 Authorize":
// "code_challenge | Optional. Used for PKCE": a login without PKCE gets a
// code, exchanged without a code_verifier.
func TestDocsPKCEOptional(t *testing.T) {
	p := newProvider(t, vippstest.Config{AutoApprove: true})
	q := authParams(p, "openid")
	q.Del("code_challenge")
	q.Del("code_challenge_method")
	code := authorize(t, p, q).Get("code")
	form := codeForm(code)
	form.Del("code_verifier")
	if status, body := exchange(t, p, "client_secret_basic", form); status != http.StatusOK {
		t.Fatalf("exchange without PKCE: %d %v", status, body)
	}
}

// login-api/api-guide/browser-flow-integration.md, "OAuth 2.0 Authorize":
// "code_challenge_method | Optional. ... either S256 or plain. Default
// value is plain": a challenge without a method is the verifier itself.
func TestDocsPKCEPlainByDefault(t *testing.T) {
	p := newProvider(t, vippstest.Config{AutoApprove: true})
	for _, tc := range []struct {
		name      string
		challenge string
		want      int
	}{
		{"the verifier as it is", verifier, http.StatusOK},
		{"the verifier's S256 hash", s256(verifier), http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := authParams(p, "openid")
			q.Set("code_challenge", tc.challenge)
			q.Del("code_challenge_method")
			status, body := exchange(t, p, "client_secret_basic", codeForm(authorize(t, p, q).Get("code")))
			if status != tc.want {
				t.Fatalf("exchange: %d %v, want %d", status, body, tc.want)
			}
		})
	}
}

// login-api/docs/swagger.yaml, components.schemas.ErrorResponse: "error"
// (required), "error_code" (the status code) and "error_debug"; the token
// endpoint answers 401 with it (paths ./access-management-1.0/access/
// oauth2/token, responses "401").
func TestDocsTokenErrorShape(t *testing.T) {
	p := newProvider(t, vippstest.Config{AutoApprove: true})
	status, body := exchange(t, p, "none", codeForm(login(t, p, "openid")))
	if status != http.StatusUnauthorized || body["error"] != "invalid_client" || fmt.Sprint(body["error_code"]) != "401" {
		t.Fatalf("token endpoint without client authentication: %d %v", status, body)
	}
	if _, ok := body["error_debug"].(string); !ok {
		t.Errorf("no error_debug: %v", body)
	}
	if _, ok := body["error_description"]; ok {
		t.Errorf("error_description is not in Vipps' ErrorResponse: %v", body)
	}
}

// userinfo-api/docs/swagger.yaml, paths /vipps-userinfo-api/userinfo,
// responses "401": a UserinfoError, a problem object with type, title,
// status (a string), detail and instance.
func TestDocsUserinfoErrorShape(t *testing.T) {
	p := newProvider(t, vippstest.Config{})
	status, body := userinfo(t, p, "made-up")
	wantProblem(t, status, body, http.StatusUnauthorized)
	for _, k := range []string{"type", "instance"} {
		if _, ok := body[k].(string); !ok {
			t.Errorf("no %s: %v", k, body)
		}
	}
}
