package vippstest_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vippslogin/vippslogin/vippstest"
)

// Each test here holds the mock to one fact of Vipps' published
// documentation (the copy in vipps-docs), cited above it: the document, its
// section and a short quote.

const partnerMSN = "654321"

// newPartnerProvider starts a provider for a partner acting for sales unit
// partnerMSN, on clk.
func newPartnerProvider(t *testing.T, clk *clock) *vippstest.Provider {
	t.Helper()
	return newProvider(t, vippstest.Config{AutoApprove: true, MerchantSerialNumber: partnerMSN, Now: clk.Now})
}

// accessTokenRequest builds the request that access-token-api/README.md,
// "Get an access token", shows, which edit may change.
func accessTokenRequest(t *testing.T, p *vippstest.Provider, edit func(*http.Request)) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, p.AccessTokenURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header["client_id"] = []string{p.PartnerClientID()}
	req.Header["client_secret"] = []string{p.PartnerClientSecret()}
	req.Header.Set("Ocp-Apim-Subscription-Key", p.PartnerSubscriptionKey())
	req.Header.Set("Merchant-Serial-Number", partnerMSN)
	req.Header.Set("Vipps-System-Name", "acme")
	req.Header.Set("Vipps-System-Version", "3.1.2")
	if edit != nil {
		edit(req)
	}
	return req
}

// partnerToken gets an access token from POST /accesstoken/get.
func partnerToken(t *testing.T, p *vippstest.Provider) string {
	t.Helper()
	resp, body := do(t, accessTokenRequest(t, p, nil))
	var answer struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &answer) != nil || answer.AccessToken == "" {
		t.Fatalf("POST /accesstoken/get: %d %s", resp.StatusCode, body)
	}
	return answer.AccessToken
}

// access-token-api/README.md, "Get an access token": "The access token is
// obtained by calling POST:/accesstoken/get and providing these values in
// the HTTP header: client_id, client_secret, Ocp-Apim-Subscription-Key",
// and it "is a POST without a body"; "The response ... is like this":
// token_type "Bearer", expires_in "86398", ext_expires_in, expires_on,
// not_before, resource and access_token, all strings as in
// access-token-api/docs/swagger.yaml, AuthorizationTokenResponse ("type:
// string"). "The access token is valid for ... 24 hours in the production
// environment", the only one where partner keys work (partner-keys.md:
// "Partner API keys are only functional in the production environment").
func TestDocsAccessTokenGet(t *testing.T) {
	clk := newClock()
	p := newPartnerProvider(t, clk)
	resp, body := do(t, accessTokenRequest(t, p, nil))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json;charset=UTF-8" {
		t.Errorf("Content-Type %q, want swagger.yaml's application/json;charset=UTF-8", ct)
	}
	var answer map[string]any
	if err := json.Unmarshal([]byte(body), &answer); err != nil {
		t.Fatal(err)
	}
	fields := []string{"token_type", "expires_in", "ext_expires_in", "expires_on", "not_before", "resource", "access_token"}
	if len(answer) != len(fields) {
		t.Errorf("answer has %d fields, want the %d documented: %v", len(answer), len(fields), answer)
	}
	str := map[string]string{}
	for _, f := range fields {
		s, ok := answer[f].(string)
		if !ok || s == "" {
			t.Errorf("%s = %#v, want a non-empty string", f, answer[f])
		}
		str[f] = s
	}
	if str["token_type"] != "Bearer" {
		t.Errorf("token_type %q, want Bearer", str["token_type"])
	}
	num := func(f string) int64 {
		n, err := strconv.ParseInt(str[f], 10, 64)
		if err != nil {
			t.Errorf("%s %q is not a whole number", f, str[f])
		}
		return n
	}
	if got := num("expires_in"); got != int64(24*time.Hour/time.Second) {
		t.Errorf("expires_in %d, want 24 hours", got)
	}
	if nb := num("not_before"); nb != clk.Now().Unix() || num("expires_on")-nb != num("expires_in") {
		t.Errorf("not_before %s, expires_on %s: want now and now + expires_in", str["not_before"], str["expires_on"])
	}
}

// access-token-api/README.md, "Get an access token": POST:/accesstoken/get
// "is a POST without a body". The mock refuses one, so that clients that
// send one are caught.
func TestDocsAccessTokenWithoutBody(t *testing.T) {
	p := newPartnerProvider(t, newClock())
	req := accessTokenRequest(t, p, func(r *http.Request) {
		r.Body, r.ContentLength = http.NoBody, 0
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	})
	if resp, body := do(t, req); resp.StatusCode != http.StatusOK {
		t.Errorf("an empty body: %d %s", resp.StatusCode, body)
	}
	req, err := http.NewRequest(http.MethodPost, p.AccessTokenURL(), strings.NewReader("grant_type=client_credentials"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = accessTokenRequest(t, p, nil).Header
	if resp, body := do(t, req); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a body: %d %s, want 400", resp.StatusCode, body)
	}
}

// access-token-api/docs/swagger.yaml, /accesstoken/get: client_id,
// client_secret and Ocp-Apim-Subscription-Key are "in: header" with
// "required: true", and the answers include "401: description:
// Unauthorized" (no error body is documented).
func TestDocsAccessTokenRefusesBadKeys(t *testing.T) {
	p := newPartnerProvider(t, newClock())
	for name, edit := range map[string]func(*http.Request){
		"no subscription key":    func(r *http.Request) { r.Header.Del("Ocp-Apim-Subscription-Key") },
		"wrong subscription key": func(r *http.Request) { r.Header.Set("Ocp-Apim-Subscription-Key", "0f14ebcab0ec4b29ae0cb90d91b4a84a") },
		"wrong secret":           func(r *http.Request) { r.Header["client_secret"] = []string{"Y8Kteew6GE2ZmeycEt6egg=="} },
		"no secret":              func(r *http.Request) { delete(r.Header, "client_secret") },
		"no client_id":           func(r *http.Request) { delete(r.Header, "client_id") },
		"keys as HTTP Basic": func(r *http.Request) {
			delete(r.Header, "client_id")
			delete(r.Header, "client_secret")
			r.SetBasicAuth(p.PartnerClientID(), p.PartnerClientSecret())
		},
	} {
		resp, body := do(t, accessTokenRequest(t, p, edit))
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", name, resp.StatusCode)
		}
		if !json.Valid([]byte(body)) || strings.Contains(body, "access_token") {
			t.Errorf("%s: body %q, want a JSON error without a token", name, body)
		}
	}
}

// access-token-api/docs/swagger.yaml: /accesstoken/get has "post:" and no
// other method; the guide calls it "POST:/accesstoken/get".
func TestDocsAccessTokenOnlyPost(t *testing.T) {
	p := newPartnerProvider(t, newClock())
	for _, method := range []string{http.MethodGet, http.MethodPut} {
		req := accessTokenRequest(t, p, func(r *http.Request) { r.Method = method })
		if resp, _ := do(t, req); resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s: status %d, want 405", method, resp.StatusCode)
		}
	}
	if n := p.Hits(vippstest.AccessToken); n != 0 {
		t.Errorf("%d token requests served", n)
	}
}

// developers/http-headers.md: "Partners must always send the
// Merchant-Serial-Number header"; partner-keys.md: "send the Merchant
// Serial Number (MSN) to identify which of your merchants you are acting on
// behalf of".
func TestDocsAccessTokenNamesTheMerchant(t *testing.T) {
	p := newPartnerProvider(t, newClock())
	resp, _ := do(t, accessTokenRequest(t, p, func(r *http.Request) { r.Header.Del("Merchant-Serial-Number") }))
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("no Merchant-Serial-Number: status %d, want 400", resp.StatusCode)
	}
	resp, _ = do(t, accessTokenRequest(t, p, func(r *http.Request) { r.Header.Set("Merchant-Serial-Number", "123456") }))
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("another merchant's number: status %d, want 401", resp.StatusCode)
	}
}

// partnerCode runs a partner's authorization request and returns the code.
// partner-keys.md, "Authorization endpoint": "a /auth URL containing the
// merchant serial number as a msn query parameter instead of client_id".
func partnerCode(t *testing.T, p *vippstest.Provider) string {
	t.Helper()
	q := authParams(p, "openid name")
	q.Del("client_id")
	q.Set("msn", partnerMSN)
	code := authorize(t, p, q).Get("code")
	if code == "" {
		t.Fatal("no code for the partner's authorization request")
	}
	return code
}

// tokenRequest posts a code exchange to the token endpoint with the headers
// edit sets.
func tokenRequest(t *testing.T, p *vippstest.Provider, form url.Values, edit func(*http.Request)) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, p.URL()+tokenPath, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	edit(req)
	resp, body := do(t, req)
	return resp.StatusCode, decodeJSON(t, body)
}

// partner-keys.md, "Token endpoint": "Use the access token in the
// Authorization header, Bearer access-token. Add the Merchant-Serial-Number
// header with the target merchant serial number." The ID token carries the
// msn claim ("ID token validation": "use the msn claim in the ID token").
func TestDocsTokenEndpointTakesPartnerBearer(t *testing.T) {
	p := newPartnerProvider(t, newClock())
	tok := partnerToken(t, p)
	status, body := tokenRequest(t, p, codeForm(partnerCode(t, p)), func(r *http.Request) {
		r.Header.Set("Authorization", "Bearer "+tok)
		r.Header.Set("Merchant-Serial-Number", partnerMSN)
	})
	if status != http.StatusOK {
		t.Fatalf("status %d: %v", status, body)
	}
	idToken, _ := body["id_token"].(string)
	if _, claims := decodeJWT(t, idToken); claims["msn"] != partnerMSN {
		t.Errorf("msn claim %v, want %s", claims["msn"], partnerMSN)
	}
}

// partner-keys.md, "Token endpoint": "Regular client_secret_basic or
// client_secret_post does not work for partner key integration"; and the
// Bearer token goes with "the Merchant-Serial-Number header with the target
// merchant serial number".
func TestDocsTokenEndpointRefusesPartnerSecrets(t *testing.T) {
	p := newPartnerProvider(t, newClock())
	tok := partnerToken(t, p)
	for name, edit := range map[string]func(*http.Request){
		"client_secret_basic": func(r *http.Request) {
			r.SetBasicAuth(p.PartnerClientID(), p.PartnerClientSecret())
			r.Header.Set("Merchant-Serial-Number", partnerMSN)
		},
		"Bearer without Merchant-Serial-Number": func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+tok)
		},
		"Bearer for another merchant": func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+tok)
			r.Header.Set("Merchant-Serial-Number", "123456")
		},
	} {
		status, body := tokenRequest(t, p, codeForm(partnerCode(t, p)), edit)
		if status != http.StatusUnauthorized || body["error"] != "invalid_client" {
			t.Errorf("%s: %d %v, want 401 invalid_client", name, status, body)
		}
	}
	form := codeForm(partnerCode(t, p))
	form.Set("client_id", p.PartnerClientID())
	form.Set("client_secret", p.PartnerClientSecret())
	status, body := tokenRequest(t, p, form, func(r *http.Request) { r.Header.Set("Merchant-Serial-Number", partnerMSN) })
	wantError(t, status, body, http.StatusUnauthorized, "invalid_client")
}

// access-token-api/README.md, "Token endpoint": POST:/miami/v1/token takes
// "Authorization: Basic <base64_encoded_credentials>" where that is "the
// string <client_id>:<client_secret> encoded to Base64", and
// "grant_type=client_credentials"; "The Ocp-Apim-Subscription-Key HTTP
// header should *not* be sent"; the example response has "expires_in": 900.
func TestDocsClientCredentialsEndpoint(t *testing.T) {
	p := newPartnerProvider(t, newClock())
	send := func(edit func(*http.Request)) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodPost, p.URL()+"/miami/v1/token", strings.NewReader("grant_type=client_credentials"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		cred := base64.StdEncoding.EncodeToString([]byte(p.PartnerClientID() + ":" + p.PartnerClientSecret()))
		req.Header.Set("Authorization", "Basic "+cred)
		req.Header.Set("Merchant-Serial-Number", partnerMSN)
		if edit != nil {
			edit(req)
		}
		return do(t, req)
	}
	resp, body := send(nil)
	answer := decodeJSON(t, body)
	if resp.StatusCode != http.StatusOK || answer["token_type"] != "Bearer" || answer["expires_in"] != json.Number("900") {
		t.Errorf("%d %v, want a Bearer token for 900 seconds", resp.StatusCode, answer)
	}
	if resp, _ := send(func(r *http.Request) { r.Header.Set("Ocp-Apim-Subscription-Key", p.PartnerSubscriptionKey()) }); resp.StatusCode == http.StatusOK {
		t.Error("accepted an Ocp-Apim-Subscription-Key")
	}
	if resp, _ := send(func(r *http.Request) { r.SetBasicAuth(p.PartnerClientID(), "wrong") }); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a wrong secret: status %d, want 401", resp.StatusCode)
	}
}
