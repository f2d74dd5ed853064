package vippstest_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vippslogin/vippslogin/vippstest"
)

const (
	backchannelPath = "/vipps-login-ciba/api/backchannel/authentication"
	userExistsPath  = "/vipps-login-ciba/api/v1/user-exists"
	grantCIBA       = "urn:openid:params:grant-type:ciba"
	grantRedirect   = "urn:vipps:params:grant-type:ciba-redirect"
	kari            = "4791234567" // the first default user
)

// post sends form to path on p, authenticated with method
// ("client_secret_basic", "client_secret_post" or "" for none), and
// returns the status and the decoded JSON body.
func post(t *testing.T, p *vippstest.Provider, path, method string, form url.Values) (*http.Response, map[string]any) {
	t.Helper()
	form = cloneValues(form)
	if method == "client_secret_post" {
		form.Set("client_id", p.ClientID())
		form.Set("client_secret", p.ClientSecret())
	}
	req, err := http.NewRequest(http.MethodPost, p.URL()+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if method == "client_secret_basic" {
		req.SetBasicAuth(url.QueryEscape(p.ClientID()), url.QueryEscape(p.ClientSecret()))
	}
	resp, body := do(t, req)
	return resp, decodeJSON(t, body)
}

// startPhone starts a login from phone number and returns its auth_req_id.
func startPhone(t *testing.T, p *vippstest.Provider, form url.Values) string {
	t.Helper()
	resp, body := post(t, p, backchannelPath, "client_secret_basic", form)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("backchannel: %d %v", resp.StatusCode, body)
	}
	id, _ := body["auth_req_id"].(string)
	if id == "" {
		t.Fatalf("backchannel answer %v has no auth_req_id", body)
	}
	return id
}

func phoneForm(extra ...string) url.Values {
	f := url.Values{"login_hint": {"urn:msisdn:" + kari}, "scope": {"openid name"}, "nonce": {"n-123"}}
	for i := 0; i+1 < len(extra); i += 2 {
		f.Set(extra[i], extra[i+1])
	}
	return f
}

func pollPhone(t *testing.T, p *vippstest.Provider, id string) (*http.Response, map[string]any) {
	t.Helper()
	return post(t, p, tokenPath, "client_secret_basic", url.Values{"grant_type": {grantCIBA}, "auth_req_id": {id}})
}

// Vipps' discovery does not advertise the endpoints of login from phone
// number (login-api/api-guide/browser-flow-integration.md, "OpenID
// configuration"), and neither does the mock: they are at the issuer's
// origin, as the guide's requests show (flows/merchant-initiated-login-
// integration.md, "Call by call": POST .../vipps-login-ciba/api/backchannel/
// authentication).
func TestPhoneDiscovery(t *testing.T) {
	p := newProvider(t, vippstest.Config{})
	_, body := get(t, p.URL()+discoveryPath)
	d := decodeJSON(t, body)
	for _, k := range []string{"backchannel_authentication_endpoint", "backchannel_token_delivery_modes_supported"} {
		if v, ok := d[k]; ok {
			t.Errorf("%s = %v, want none, as at Vipps", k, v)
		}
	}
	if resp, _ := post(t, p, backchannelPath, "client_secret_basic", phoneForm()); resp.StatusCode != http.StatusOK {
		t.Errorf("backchannel authentication at the issuer's origin: %d", resp.StatusCode)
	}
}

func TestPhoneBackchannelValidation(t *testing.T) {
	p := newProvider(t, vippstest.Config{})
	for _, tc := range []struct {
		name   string
		form   url.Values
		method string
		status int
		code   string
	}{
		{"no client authentication", phoneForm(), "", 401, "invalid_client"},
		{"old login hint", phoneForm("login_hint", "urn:mobilenumber:91234567"), "client_secret_basic", 400, "invalid_request"},
		{"hint with plus", phoneForm("login_hint", "urn:msisdn:+4791234567"), "client_secret_basic", 400, "invalid_request"},
		{"no scope", phoneForm("scope", ""), "client_secret_basic", 400, "invalid_request"},
		{"nnin", phoneForm("scope", "openid nnin"), "client_secret_basic", 400, "invalid_scope"},
		{"lower-case binding message", phoneForm("binding_message", "abc-12"), "client_secret_basic", 400, "invalid_binding_message"},
		{"long binding message", phoneForm("binding_message", "ABCDEFGHI"), "client_secret_basic", 400, "invalid_binding_message"},
		{"expiry too short", phoneForm("requested_expiry", "59"), "client_secret_basic", 400, "invalid_request"},
		{"expiry too long", phoneForm("requested_expiry", "901"), "client_secret_basic", 400, "invalid_request"},
		{"unknown flow", phoneForm("requested_flow", "app_to_app"), "client_secret_basic", 400, "invalid_request"},
		{"redirect without uri", phoneForm("requested_flow", "login_to_webpage"), "client_secret_basic", 400, "invalid_request"},
		{"redirect to unregistered uri", phoneForm("requested_flow", "login_to_webpage", "redirect_uri", "https://evil.example/cb"), "client_secret_basic", 400, "invalid_request"},
		{"redirect without openid", phoneForm("requested_flow", "login_to_webpage", "redirect_uri", callback, "scope", "name"), "client_secret_basic", 400, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := post(t, p, backchannelPath, tc.method, tc.form)
			wantError(t, resp.StatusCode, body, tc.status, tc.code)
		})
	}
	if n := len(p.PhoneLogins()); n != 0 {
		t.Errorf("%d logins started by refused requests", n)
	}

	resp, body := post(t, p, backchannelPath, "client_secret_basic", phoneForm("login_hint", "urn:msisdn:4712345678"))
	wantError(t, resp.StatusCode, body, 400, "unknown_user_id")
	if body["error_code"] != "invalid_user" {
		t.Errorf("error_code = %v, want invalid_user", body["error_code"])
	}
}

func TestPhoneUserExists(t *testing.T) {
	p := newProvider(t, vippstest.Config{TokenAuthMethod: "client_secret_post"})
	for _, tc := range []struct {
		hint, method string
		status       int
		exists       any
	}{
		{"urn:msisdn:" + kari, "client_secret_basic", 200, true},
		{"urn:msisdn:4712345678", "client_secret_basic", 200, false},
		{"urn:msisdn:" + kari, "client_secret_post", 200, true}, // the configured method
		{"urn:msisdn:" + kari, "", 401, nil},
		{"91234567", "client_secret_basic", 400, nil},
	} {
		resp, body := post(t, p, userExistsPath, tc.method, url.Values{"loginHint": {tc.hint}})
		if resp.StatusCode != tc.status || body["exists"] != tc.exists {
			t.Errorf("%s with %q: %d %v, want %d exists %v", tc.hint, tc.method, resp.StatusCode, body, tc.status, tc.exists)
		}
	}
	if p.Hits(vippstest.UserExists) != 5 {
		t.Errorf("user-exists hits = %d, want 5", p.Hits(vippstest.UserExists))
	}
}

func TestPhonePolling(t *testing.T) {
	clk := newClock()
	p := newProvider(t, vippstest.Config{Now: clk.Now, PhoneLoginInterval: 1500 * time.Millisecond})
	resp, body := post(t, p, backchannelPath, "client_secret_basic", phoneForm("binding_message", "4MZ-CQ3", "requested_expiry", "120"))
	if resp.StatusCode != 200 || body["expires_in"].(interface{ String() string }).String() != "120" || body["interval"].(interface{ String() string }).String() != "2" {
		t.Fatalf("backchannel: %d %v, want expires_in 120, interval 2 (rounded up)", resp.StatusCode, body)
	}
	id := body["auth_req_id"].(string)

	resp, body = pollPhone(t, p, id)
	wantError(t, resp.StatusCode, body, 400, "authorization_pending")
	clk.Add(time.Second)
	resp, body = pollPhone(t, p, id)
	wantError(t, resp.StatusCode, body, 400, "slow_down") // 1 s after the last poll
	clk.Add(6 * time.Second)
	resp, body = pollPhone(t, p, id) // the interval is now 7 s
	wantError(t, resp.StatusCode, body, 400, "slow_down")
	clk.Add(12 * time.Second)
	resp, body = pollPhone(t, p, id)
	wantError(t, resp.StatusCode, body, 400, "authorization_pending")

	if _, err := p.ApprovePhoneLogin("4798765432"); err == nil {
		t.Error("approved a login for a number with none")
	}
	if u, err := p.ApprovePhoneLogin(kari); err != nil || u != "" {
		t.Fatalf("ApprovePhoneLogin = %q, %v", u, err)
	}
	clk.Add(12 * time.Second)
	resp, body = pollPhone(t, p, id)
	if resp.StatusCode != 200 || body["token_type"] != "Bearer" || body["scope"] != "openid name" {
		t.Fatalf("poll after approval: %d %v", resp.StatusCode, body)
	}
	header, claims := decodeJWT(t, body["id_token"].(string))
	if header["alg"] != "RS256" || claims["nonce"] != "n-123" || claims["sub"] != vippstest.DefaultUsers()[0].Sub || claims["at_hash"] == nil {
		t.Errorf("ID token %v %v", header, claims)
	}
	verify(t, p, body["id_token"].(string))
	status, info := userinfo(t, p, body["access_token"].(string))
	if status != 200 || info["name"] != "Kari Nordmann" || info["email"] != nil {
		t.Errorf("userinfo: %d %v", status, info)
	}

	resp, body = pollPhone(t, p, id)
	wantError(t, resp.StatusCode, body, 400, "invalid_grant") // used up

	logins := p.PhoneLogins()
	if len(logins) != 1 {
		t.Fatalf("PhoneLogins = %v", logins)
	}
	l := logins[0]
	if l.AuthReqID != id || l.PhoneNumber != kari || l.BindingMessage != "4MZ-CQ3" || l.Decision != vippstest.PhoneApproved || len(l.Polls) != 6 {
		t.Errorf("PhoneLogin = %+v", l)
	}
	if got := l.Polls[1].Sub(l.Polls[0]); got != time.Second {
		t.Errorf("second poll %v after the first, want 1s", got)
	}
}

func TestPhoneDeclineAndExpire(t *testing.T) {
	clk := newClock()
	p := newProvider(t, vippstest.Config{Now: clk.Now})
	id := startPhone(t, p, phoneForm())
	if err := p.DeclinePhoneLogin(kari); err != nil {
		t.Fatal(err)
	}
	resp, body := pollPhone(t, p, id)
	wantError(t, resp.StatusCode, body, 400, "access_denied")
	if got := p.PhoneLogins()[0].Decision; got != vippstest.PhoneDeclined || got.String() != "declined" {
		t.Errorf("decision %v", got)
	}

	id = startPhone(t, p, phoneForm())
	if err := p.ExpirePhoneLogin(kari); err != nil {
		t.Fatal(err)
	}
	resp, body = pollPhone(t, p, id)
	wantError(t, resp.StatusCode, body, 400, "expired_token")
	if err := p.ExpirePhoneLogin(kari); err == nil {
		t.Error("expired a login that has ended")
	}

	id = startPhone(t, p, phoneForm("requested_expiry", "60"))
	clk.Add(time.Minute)
	resp, body = pollPhone(t, p, id)
	wantError(t, resp.StatusCode, body, 400, "expired_token")
	if err := p.DeclinePhoneLogin(kari); err == nil {
		t.Error("declined an expired login")
	}
}

func TestPhoneApproval(t *testing.T) {
	clk := newClock()
	var seen []vippstest.PhoneLogin
	p := newProvider(t, vippstest.Config{Now: clk.Now, PhoneApproval: func(l vippstest.PhoneLogin) vippstest.PhoneAnswer {
		seen = append(seen, l)
		if l.BindingMessage == "NO-NO" {
			return vippstest.PhoneAnswer{Decision: vippstest.PhoneDeclined}
		}
		return vippstest.PhoneAnswer{Decision: vippstest.PhoneApproved, After: 8 * time.Second}
	}})
	id := startPhone(t, p, phoneForm())
	clk.Add(5 * time.Second)
	resp, body := pollPhone(t, p, id)
	wantError(t, resp.StatusCode, body, 400, "authorization_pending")
	clk.Add(5 * time.Second)
	if resp, body = pollPhone(t, p, id); resp.StatusCode != 200 {
		t.Errorf("poll 10 s in: %d %v, want the tokens", resp.StatusCode, body)
	}
	id = startPhone(t, p, phoneForm("binding_message", "NO-NO"))
	resp, body = pollPhone(t, p, id)
	wantError(t, resp.StatusCode, body, 400, "access_denied")
	if len(seen) != 2 || seen[0].PhoneNumber != kari || seen[0].Nonce != "n-123" {
		t.Errorf("PhoneApproval saw %+v", seen)
	}
}

func TestPhonePollFaults(t *testing.T) {
	clk := newClock()
	p := newProvider(t, vippstest.Config{Now: clk.Now})
	id := startPhone(t, p, phoneForm())
	p.SetPollFault(vippstest.PollFault{SlowDown: 1, TooManyRequests: 1, RetryAfter: "7"})
	resp, body := pollPhone(t, p, id)
	wantError(t, resp.StatusCode, body, 400, "slow_down")
	clk.Add(10 * time.Second)
	resp, body = pollPhone(t, p, id)
	wantError(t, resp.StatusCode, body, 429, "too_many_requests")
	if got := resp.Header.Get("Retry-After"); got != "7" {
		t.Errorf("Retry-After = %q, want 7", got)
	}
	clk.Add(10 * time.Second)
	resp, body = pollPhone(t, p, id)
	wantError(t, resp.StatusCode, body, 400, "authorization_pending")

	// Too many logins waiting for one user.
	for range 4 {
		startPhone(t, p, phoneForm())
	}
	resp, body = post(t, p, backchannelPath, "client_secret_basic", phoneForm())
	wantError(t, resp.StatusCode, body, 429, "too_many_requests")
	if resp.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
}

func TestPhoneRedirect(t *testing.T) {
	clk := newClock()
	p := newProvider(t, vippstest.Config{Now: clk.Now})
	id := startPhone(t, p, phoneForm("requested_flow", "login_to_webpage", "redirect_uri", callback, "scope", "openid name delegatedConsents"))
	resp, body := pollPhone(t, p, id)
	wantError(t, resp.StatusCode, body, 400, "invalid_grant")

	link, err := p.ApprovePhoneLogin(kari)
	if err != nil || !strings.HasPrefix(link, callback+"?code=") {
		t.Fatalf("ApprovePhoneLogin = %q, %v", link, err)
	}
	u, _ := url.Parse(link)
	code := u.Query().Get("code")
	if u.Query().Has("state") || code == "" {
		t.Errorf("redirect %q", link)
	}
	exchangeCode := func() (*http.Response, map[string]any) {
		return post(t, p, tokenPath, "client_secret_basic", url.Values{"grant_type": {grantRedirect}, "code": {code}})
	}
	resp, body = exchangeCode()
	if resp.StatusCode != 200 {
		t.Fatalf("exchange: %d %v", resp.StatusCode, body)
	}
	header, claims := decodeJWT(t, body["id_token"].(string))
	if header["alg"] != "ES256" || claims["aud"] != p.ClientID() || claims["authReqId"] != id || claims["nonce"] != nil {
		t.Errorf("ID token %v %v", header, claims)
	}
	verify(t, p, body["id_token"].(string)) // the JWKS publishes the EC key
	status, info := userinfo(t, p, body["access_token"].(string))
	dc, _ := info["delegatedConsents"].(map[string]any)
	if status != 200 || dc == nil || len(dc["consents"].([]any)) != 4 {
		t.Errorf("userinfo: %d %v", status, info)
	}

	resp, body = exchangeCode()
	wantError(t, resp.StatusCode, body, 400, "invalid_grant")
	resp, body = post(t, p, tokenPath, "", url.Values{"grant_type": {grantRedirect}, "code": {code}})
	wantError(t, resp.StatusCode, body, 401, "invalid_client")

	// A code expires like an authorization code.
	startPhone(t, p, phoneForm("requested_flow", "login_to_webpage", "redirect_uri", callback))
	link, _ = p.ApprovePhoneLogin(kari)
	u, _ = url.Parse(link)
	code = u.Query().Get("code")
	clk.Add(3 * time.Minute)
	resp, body = exchangeCode()
	wantError(t, resp.StatusCode, body, 400, "invalid_grant")
}

func TestPhoneNewRejectsBadConfig(t *testing.T) {
	for _, cfg := range []vippstest.Config{
		{PhoneLoginInterval: -time.Second},
		{PhoneLoginInterval: time.Hour},
		{PhoneLoginExpiry: 30 * time.Second},
		{PhoneLoginExpiry: time.Hour},
	} {
		if p, err := vippstest.New(cfg); err == nil {
			p.Close()
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

func TestPhoneLoginsCopy(t *testing.T) {
	p := newProvider(t, vippstest.Config{})
	id := startPhone(t, p, phoneForm())
	pollPhone(t, p, id)
	got := p.PhoneLogins()
	got[0].Polls[0] = time.Time{}
	if again := p.PhoneLogins(); again[0].Polls[0].IsZero() || !slices.Equal(again[0].Polls, p.PhoneLogins()[0].Polls) {
		t.Error("PhoneLogins shares its polls with the caller")
	}
}
