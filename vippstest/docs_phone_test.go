package vippstest_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vippslogin/vippslogin/vippstest"
)

// Each test here holds one documented fact of the login from phone number
// against the mock. The guide is Vipps' merchant-initiated login guide,
// vipps-docs/login-api/api-guide/flows/merchant-initiated-login-integration.md;
// its sections are named as it names them. Vipps' OpenAPI spec,
// vipps-docs/login-api/docs/swagger.yaml, describes neither the
// backchannel nor the user-exists endpoint; user-exists is described only by
// the rendered Login API OpenAPI in seeds/login-api-openapi-summary.txt.

// pollForm is the guide's polling request: "Complete login in the Vipps or
// MobilePay app", "Call by call", step 2:
// "grant_type=urn%3Aopenid%3Aparams%3Agrant-type%3Aciba&auth_req_id=...".
func pollForm(id string) url.Values {
	return url.Values{"grant_type": {"urn:openid:params:grant-type:ciba"}, "auth_req_id": {id}}
}

// "Complete login in the Vipps or MobilePay app", "Call by call", step 1,
// example response: "200 application/json" with "auth_req_id":
// "VYGaaAMRkI6SyAm_uIywhxsN2K0", "expires_in": 600, "interval": 5. "Redirect
// to browser", step 1, shows the same answer.
func TestDocsBackchannelAnswer(t *testing.T) {
	p := newProvider(t, vippstest.Config{})
	for name, form := range map[string]url.Values{
		"polled":   phoneForm(),
		"redirect": phoneForm("requested_flow", "login_to_webpage", "redirect_uri", callback),
	} {
		resp, body := post(t, p, backchannelPath, "client_secret_basic", form)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("%s: %d %q %v", name, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		if keys, want := slices.Sorted(maps.Keys(body)), []string{"auth_req_id", "expires_in", "interval"}; !slices.Equal(keys, want) {
			t.Errorf("%s: answer has %v, want %v", name, keys, want)
		}
		id, _ := body["auth_req_id"].(string)
		expires, _ := body["expires_in"].(json.Number)
		interval, _ := body["interval"].(json.Number)
		if id == "" || expires.String() != "600" || interval.String() != "5" {
			t.Errorf("%s: answer %v, want an auth_req_id, expires_in 600 and interval 5 (the defaults, as in the example)", name, body)
		}
	}
}

// "The login_hint parameter (required)": "Example:
// ...&login_hint=urn:msisdn:4712345678&...". The backchannel reads
// login_hint; loginHint, the rendered OpenAPI's name for it, is not it.
func TestDocsBackchannelLoginHint(t *testing.T) {
	p := newProvider(t, vippstest.Config{})
	form := phoneForm()
	form.Set("loginHint", form.Get("login_hint"))
	form.Del("login_hint")
	resp, body := post(t, p, backchannelPath, "client_secret_basic", form)
	wantError(t, resp.StatusCode, body, http.StatusBadRequest, "invalid_request")
}

// "Error responses": "`error_code=invalid_user`: No account exists, the
// user's account is not active, or ...".
func TestDocsBackchannelInvalidUser(t *testing.T) {
	p := newProvider(t, vippstest.Config{})
	resp, body := post(t, p, backchannelPath, "client_secret_basic", phoneForm("login_hint", "urn:msisdn:4712345678"))
	if resp.StatusCode != http.StatusBadRequest || body["error_code"] != "invalid_user" {
		t.Errorf("unknown number: %d %v, want 400 with error_code invalid_user", resp.StatusCode, body)
	}
}

// "Error responses": "`429` status responses: Too many login requests
// started towards the same user at the same time. Please respect the
// `Retry-After` header returned."
func TestDocsBackchannelTooMany(t *testing.T) {
	p := newProvider(t, vippstest.Config{})
	var resp *http.Response
	for range 10 {
		if resp, _ = post(t, p, backchannelPath, "client_secret_basic", phoneForm()); resp.StatusCode != http.StatusOK {
			break
		}
	}
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("many logins for one user: %d, Retry-After %q; want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

// "Complete login in the Vipps or MobilePay app", "Call by call", step 2,
// example pending response: "HTTP/1.1 400 Bad Request", "Content-Type:
// application/json;charset=UTF-8", "error": "authorization_pending",
// "error_description": "The authorization request is still pending".
func TestDocsPollPending(t *testing.T) {
	p := newProvider(t, vippstest.Config{})
	id := startPhone(t, p, phoneForm())
	resp, body := post(t, p, tokenPath, "client_secret_basic", pollForm(id))
	wantError(t, resp.StatusCode, body, http.StatusBadRequest, "authorization_pending")
	if got := resp.Header.Get("Content-Type"); got != "application/json;charset=UTF-8" {
		t.Errorf("Content-Type %q", got)
	}
	if body["error_description"] != "The authorization request is still pending" {
		t.Errorf("error_description %v", body["error_description"])
	}
}

// Step 2 again: "Other possible error responses can be found in the CIBA
// standard" (linked to its section 11, Token Error Response): slow_down,
// expired_token and access_denied, each with HTTP 400 Bad Request.
func TestDocsPollStandardErrors(t *testing.T) {
	for _, tc := range []struct {
		code string
		make func(t *testing.T, p *vippstest.Provider, clk *clock, id string)
	}{
		{"slow_down", func(t *testing.T, p *vippstest.Provider, clk *clock, id string) {
			post(t, p, tokenPath, "client_secret_basic", pollForm(id)) // and at once again
		}},
		{"expired_token", func(t *testing.T, p *vippstest.Provider, clk *clock, id string) { clk.Add(11 * time.Minute) }},
		{"access_denied", func(t *testing.T, p *vippstest.Provider, clk *clock, id string) {
			if err := p.DeclinePhoneLogin(kari); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.code, func(t *testing.T) {
			clk := newClock()
			p := newProvider(t, vippstest.Config{Now: clk.Now})
			id := startPhone(t, p, phoneForm())
			tc.make(t, p, clk, id)
			resp, body := post(t, p, tokenPath, "client_secret_basic", pollForm(id))
			wantError(t, resp.StatusCode, body, http.StatusBadRequest, tc.code)
		})
	}
}

// "Redirect to browser", "Call by call", step 3: the example ID token's
// header is "kid" and "alg": "ES256", and its encoded payload holds exactly
// aud (a string, "edddb32f-..."), sub, authReqId, iss, exp and iat (the
// decoded copy beside it spells the id "auth_req_id"): no nonce, no msn.
func TestDocsRedirectIDTokenClaims(t *testing.T) {
	p := newProvider(t, vippstest.Config{})
	id := startPhone(t, p, phoneForm("requested_flow", "login_to_webpage", "redirect_uri", callback))
	link, err := p.ApprovePhoneLogin(kari)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(link)
	resp, body := post(t, p, tokenPath, "client_secret_basic", url.Values{
		"grant_type": {"urn:vipps:params:grant-type:ciba-redirect"},
		"code":       {u.Query().Get("code")},
	})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("code exchange: %d %v", resp.StatusCode, body)
	}
	header, claims := decodeJWT(t, body["id_token"].(string))
	if names, want := slices.Sorted(maps.Keys(claims)), []string{"aud", "authReqId", "exp", "iat", "iss", "sub"}; !slices.Equal(names, want) {
		t.Errorf("claims %v, want %v", names, want)
	}
	if claims["authReqId"] != id || claims["aud"] != p.ClientID() {
		t.Errorf("authReqId %v, aud %v; want %q and the client id as a string", claims["authReqId"], claims["aud"], id)
	}
	if header["alg"] != "ES256" || header["kid"] == nil {
		t.Errorf("header %v, want alg ES256 and a kid", header)
	}
}

// seeds/login-api-openapi-summary.txt, "Endpoint for checking if user
// exists": "object (UserExistsRequestPayload) loginHint required string",
// response sample "exists": true. login_hint is not that field: alone it is
// a request without loginHint, and beside loginHint it is not read.
func TestDocsUserExistsField(t *testing.T) {
	p := newProvider(t, vippstest.Config{})
	for _, tc := range []struct {
		name   string
		form   url.Values
		status int
		exists any
	}{
		{"loginHint", url.Values{"loginHint": {"urn:msisdn:" + kari}}, http.StatusOK, true},
		{"loginHint of nobody", url.Values{"loginHint": {"urn:msisdn:4712345678"}}, http.StatusOK, false},
		{"login_hint alone", url.Values{"login_hint": {"urn:msisdn:" + kari}}, http.StatusBadRequest, nil},
		{"login_hint beside loginHint", url.Values{"loginHint": {"urn:msisdn:" + kari}, "login_hint": {"urn:msisdn:4712345678"}}, http.StatusOK, true},
	} {
		resp, body := post(t, p, userExistsPath, "client_secret_basic", tc.form)
		if resp.StatusCode != tc.status || body["exists"] != tc.exists {
			t.Errorf("%s: %d %v, want %d exists %v", tc.name, resp.StatusCode, body, tc.status, tc.exists)
		}
	}
}
