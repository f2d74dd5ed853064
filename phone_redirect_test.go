package vippslogin_test

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vippslogin/vippslogin"
	"github.com/vippslogin/vippslogin/vippstest"
)

func TestFinishPhoneLogin(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	site := newPhoneSite(t, h)
	var algs []any
	var mu sync.Mutex
	h.idp.SetHooks(vippstest.Hooks{IDToken: func(header, _ map[string]any) string {
		mu.Lock()
		algs = append(algs, header["alg"])
		mu.Unlock()
		return ""
	}})
	pl := startPhone(t, h, vippslogin.PhoneLoginRequest{RedirectURI: site.URL + "/phone/done", Scopes: []string{"name", "delegatedConsents"}})
	if pl.RedirectURI != site.URL+"/phone/done" {
		t.Errorf("RedirectURI = %q", pl.RedirectURI)
	}
	if _, err := h.auth.WaitPhoneLogin(t.Context(), pl); !errors.Is(err, &vippslogin.Error{Err: vippslogin.ErrInvalidRequest, Reason: "phone_login"}) {
		t.Errorf("waiting for a redirect login: %v", err)
	}
	link, err := h.idp.ApprovePhoneLogin(kariPhone)
	if err != nil {
		t.Fatal(err)
	}
	if status, body := site.open(t, link); status != 200 || body != "Welcome, Kari Nordmann" {
		t.Fatalf("%d %q (error %v)", status, body, site.lastErr())
	}
	mu.Lock()
	if !slices.Equal(algs, []any{"ES256"}) {
		t.Errorf("ID token algorithms %v, want ES256", algs)
	}
	mu.Unlock()
	if got := h.idp.LastHeader(vippstest.Token).Get("Vipps-System-Name"); got != "testshop" {
		t.Errorf("Vipps-System-Name on the code exchange = %q", got)
	}

	// The code works once.
	if status, _ := site.open(t, link); status < 400 {
		t.Errorf("replayed code: %d", status)
	}
	var te *vippslogin.ProviderError
	if !errors.As(site.lastErr(), &te) || te.Code != "invalid_grant" {
		t.Errorf("replayed code: %v", site.lastErr())
	}
	for _, code := range []string{"", strings.Repeat("x", 5000), "a\x00b"} {
		if _, err := h.auth.FinishPhoneLogin(t.Context(), code); !errors.Is(err, vippslogin.ErrBadCallback) {
			t.Errorf("code %.10q: %v, want ErrBadCallback", code, err)
		}
	}
}

func TestFinishPhoneLoginClientAuth(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{
		idp:  func(c *vippstest.Config) { c.TokenAuthMethod = "client_secret_post" },
		site: func(c *vippslogin.Config) { c.TokenAuthMethod = "client_secret_post" },
	})
	site := newPhoneSite(t, h)
	startPhone(t, h, vippslogin.PhoneLoginRequest{RedirectURI: site.URL + "/phone/done"})
	link, err := h.idp.ApprovePhoneLogin(kariPhone)
	if err != nil {
		t.Fatal(err)
	}
	if status, body := site.open(t, link); status != 200 {
		t.Fatalf("%d %q (error %v)", status, body, site.lastErr())
	}
	if _, basic := h.idp.LastHeader(vippstest.Token)["Authorization"]; basic {
		t.Error("Authorization header sent with client_secret_post")
	}
}

func TestFinishPhoneLoginRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		idToken func(h *harness, header, claims map[string]any) string
		advance time.Duration
		want    []error
	}{
		// merchant-initiated-login-integration.md, "Redirect to browser",
		// step 3: the prose and the decoded example name the claim
		// auth_req_id, the encoded example (the mock's shape) authReqId.
		{name: "auth_req_id, as in Vipps' prose", idToken: func(_ *harness, _, c map[string]any) string {
			c["auth_req_id"] = c["authReqId"]
			delete(c, "authReqId")
			return ""
		}},
		{name: "no auth_req_id", idToken: func(_ *harness, _, c map[string]any) string { delete(c, "authReqId"); return "" },
			want: []error{vippslogin.ErrInvalidIDToken, &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "auth_req_id"}}},
		{name: "unknown auth_req_id", idToken: func(_ *harness, _, c map[string]any) string {
			c["authReqId"] = "VYGaaAMRkI6SyAm_uIywhxsN2K0"
			return ""
		},
			want: []error{vippslogin.ErrInvalidIDToken, &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "auth_req_id"}}},
		// A token that carries a nonce is held to it: here Kari's login's
		// nonce, in a token naming Ola's login.
		{name: "another started login's auth_req_id, with this login's nonce", idToken: func(h *harness, _, c map[string]any) string {
			for _, l := range h.idp.PhoneLogins() {
				switch l.PhoneNumber {
				case olaPhone:
					c["authReqId"] = l.AuthReqID
				case kariPhone:
					c["nonce"] = l.Nonce
				}
			}
			return ""
		}, want: []error{vippslogin.ErrInvalidIDToken, &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "nonce"}}},
		{name: "wrong audience", idToken: func(_ *harness, _, c map[string]any) string { c["aud"] = "another-client"; return "" },
			want: []error{vippslogin.ErrInvalidIDToken, &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "audience"}}},
		{name: "signed RS256 with the provider's key", idToken: func(h *harness, _, c map[string]any) string {
			return h.idp.Sign(nil, c)
		}},
		{name: "signed HS256 with the public key", idToken: func(h *harness, _, c map[string]any) string {
			kid, _ := h.idp.CurrentKey()
			return vippstest.HMACToken(map[string]any{"kid": kid}, c, h.idp.PublicKeyPEM())
		}, want: []error{vippslogin.ErrInvalidIDToken, &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "algorithm"}}},
		{name: "after the login expired", advance: 66 * time.Second, want: []error{vippslogin.ErrLoginExpired}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			site := newPhoneSite(t, h)
			redirect := site.URL + "/phone/done"
			startPhone(t, h, vippslogin.PhoneLoginRequest{PhoneNumber: olaPhone, RedirectURI: redirect})
			startPhone(t, h, vippslogin.PhoneLoginRequest{RedirectURI: redirect, Expiry: time.Minute})
			if tc.idToken != nil {
				h.idp.SetHooks(vippstest.Hooks{IDToken: func(header, claims map[string]any) string {
					return tc.idToken(h, header, claims)
				}})
			}
			link, err := h.idp.ApprovePhoneLogin(kariPhone)
			if err != nil {
				t.Fatal(err)
			}
			h.clock.Advance(tc.advance)
			status, body := site.open(t, link)
			if tc.want == nil {
				if status != 200 {
					t.Errorf("%d %q (error %v)", status, body, site.lastErr())
				}
				return
			}
			site.wantRefused(t, status, tc.want)
		})
	}
}

func TestFinishPhoneLoginDocumentedIDToken(t *testing.T) {
	t.Parallel()
	const msn = "123456"
	withMSN := func(c *vippslogin.Config) { c.MerchantSerialNumber = msn }
	for _, tc := range []struct {
		name    string
		partner bool
		site    func(*vippslogin.Config)
		// extra are the claims besides the example's aud, sub, iss, exp
		// and iat, given the login's auth_req_id and nonce.
		extra func(id, nonce string) map[string]any
		want  []error
	}{
		// "Redirect to browser", step 3: the encoded example ID token's
		// payload carries "authReqId":"7BzAY-SbVQJ38V-U0C7Z6k23_CY", and
		// neither nonce nor msn.
		{name: "authReqId, no nonce, no msn, as in the encoded example",
			extra: func(id, _ string) map[string]any { return map[string]any{"authReqId": id} }},
		// Step 3: "The merchant must validate that it contains the
		// auth_req_id", and the decoded payload shows "auth_req_id".
		{name: "auth_req_id, as in the prose and the decoded example",
			extra: func(id, _ string) map[string]any { return map[string]any{"auth_req_id": id} }},
		{name: "both spellings with the same value",
			extra: func(id, _ string) map[string]any { return map[string]any{"auth_req_id": id, "authReqId": id} }},
		{name: "both spellings, differing",
			extra: func(id, _ string) map[string]any { return map[string]any{"auth_req_id": id, "authReqId": id + "x"} },
			want:  []error{vippslogin.ErrInvalidIDToken, &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "auth_req_id"}}},
		{name: "both spellings, differing the other way",
			extra: func(id, _ string) map[string]any { return map[string]any{"auth_req_id": "x" + id, "authReqId": id} },
			want:  []error{vippslogin.ErrInvalidIDToken, &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "auth_req_id"}}},
		{name: "a wrong auth_req_id",
			extra: func(string, string) map[string]any { return map[string]any{"authReqId": "VYGaaAMRkI6SyAm_uIywhxsN2K0"} },
			want:  []error{vippslogin.ErrInvalidIDToken, &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "auth_req_id"}}},
		{name: "the auth_req_id with its last character changed",
			extra: func(id, _ string) map[string]any { return map[string]any{"auth_req_id": id[:len(id)-1] + "#"} },
			want:  []error{vippslogin.ErrInvalidIDToken, &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "auth_req_id"}}},
		{name: "no auth_req_id",
			extra: func(string, string) map[string]any { return nil },
			want:  []error{vippslogin.ErrInvalidIDToken, &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "auth_req_id"}}},
		{name: "auth_req_id not a string",
			extra: func(string, string) map[string]any { return map[string]any{"authReqId": 42} },
			want:  []error{vippslogin.ErrInvalidIDToken, &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "auth_req_id"}}},
		// A nonce is not in the example; when a token carries one, it must
		// be the one sent.
		{name: "the nonce sent",
			extra: func(id, nonce string) map[string]any { return map[string]any{"authReqId": id, "nonce": nonce} }},
		{name: "a wrong nonce",
			extra: func(id, _ string) map[string]any { return map[string]any{"authReqId": id, "nonce": "someone else's"} },
			want:  []error{vippslogin.ErrInvalidIDToken, &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "nonce"}}},
		// msn is not in the example either; when present, it must be the
		// configured merchant serial number.
		{name: "no msn with a merchant serial number configured", site: withMSN,
			extra: func(id, _ string) map[string]any { return map[string]any{"authReqId": id} }},
		{name: "the configured msn", site: withMSN,
			extra: func(id, _ string) map[string]any { return map[string]any{"authReqId": id, "msn": msn} }},
		{name: "another msn", site: withMSN,
			extra: func(id, _ string) map[string]any { return map[string]any{"authReqId": id, "msn": "999999"} },
			want:  []error{vippslogin.ErrInvalidIDToken, &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "audience"}}},
		// partner-keys.md, "ID token validation", has partners check msn;
		// the phone tokens have none, so the auth_req_id binds them.
		{name: "partner keys, no msn", partner: true,
			extra: func(id, _ string) map[string]any { return map[string]any{"authReqId": id} }},
		{name: "partner keys, another msn", partner: true,
			extra: func(id, _ string) map[string]any { return map[string]any{"authReqId": id, "msn": "999999"} },
			want:  []error{vippslogin.ErrInvalidIDToken, &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "audience"}}},
		// The checks every ID token passes stay.
		{name: "another audience",
			extra: func(id, _ string) map[string]any { return map[string]any{"authReqId": id, "aud": "another-client"} },
			want:  []error{vippslogin.ErrInvalidIDToken, &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "audience"}}},
		{name: "iat not a number",
			extra: func(id, _ string) map[string]any { return map[string]any{"authReqId": id, "iat": "yesterday"} },
			want:  []error{vippslogin.ErrInvalidIDToken, &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "issued_at"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var h *harness
			if tc.partner {
				h = partnerHarness(t, nil)
			} else {
				h = newHarness(t, options{site: tc.site})
			}
			site := newPhoneSite(t, h)
			startPhone(t, h, vippslogin.PhoneLoginRequest{RedirectURI: site.URL + "/phone/done"})
			id, nonce := kariLogin(h)
			h.idp.SetHooks(vippstest.Hooks{IDToken: func(_, claims map[string]any) string {
				documentedRedirectClaims(h, claims, tc.extra(id, nonce))
				return ""
			}})
			link, err := h.idp.ApprovePhoneLogin(kariPhone)
			if err != nil {
				t.Fatal(err)
			}
			status, body := site.open(t, link)
			if tc.want == nil {
				if status != 200 || body != "Welcome, Kari Nordmann" {
					t.Errorf("%d %q (error %v)", status, body, site.lastErr())
				}
				return
			}
			site.wantRefused(t, status, tc.want)
		})
	}
}

// kariLogin returns the auth_req_id and nonce of the provider's latest login
// from phone number for Kari.
func kariLogin(h *harness) (id, nonce string) {
	for _, l := range h.idp.PhoneLogins() {
		if l.PhoneNumber == kariPhone {
			id, nonce = l.AuthReqID, l.Nonce
		}
	}
	return id, nonce
}

// documentedRedirectClaims makes c the claims of the redirect variant's
// example ID token, then adds extra. The guide, "Redirect to browser",
// step 3, decodes its example payload as exactly aud (a string), sub,
// auth_req_id (authReqId in the encoded token), iss, exp and iat: no nonce,
// no msn, no at_hash.
func documentedRedirectClaims(h *harness, c, extra map[string]any) {
	kept := map[string]any{"aud": h.idp.ClientID(), "sub": c["sub"], "iss": c["iss"], "exp": c["exp"], "iat": c["iat"]}
	clear(c)
	maps.Copy(c, kept)
	maps.Copy(c, extra)
}
