package vippslogin_test

import (
	"errors"
	"maps"
	"testing"

	"github.com/vippslogin/vippslogin"
	"github.com/vippslogin/vippslogin/vippstest"
)

// The ID tokens of a login from phone number, held against what Vipps
// documents of them in login-api/api-guide/flows/merchant-initiated-login-integration.md.
// That the auth_req_id is compared in constant time is for code review, not
// for a timing test: see sameAuthReqID in phone_calls.go, which compares
// fixed-length hashes with crypto/subtle.

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
			if status < 400 {
				t.Fatalf("status %d, want a refusal", status)
			}
			for _, want := range tc.want {
				if !errors.Is(site.lastErr(), want) {
					t.Errorf("error %v, want %v", site.lastErr(), want)
				}
			}
		})
	}
}

// The polled variant: merchant-initiated-login-integration.md, "Complete
// login in the Vipps or MobilePay app", step 2, shows its ID token only as a
// placeholder ("eyaksjdhksajhdjkashdjksadjnn91283hedhn..."), so it documents
// no claims. It is held to the redirect variant's rules: nonce and msn are
// checked when present, not required.
func TestWaitPhoneLoginNonceAndMSN(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		partner bool
		edit    func(id, nonce string, c map[string]any)
		want    error
	}{
		{name: "no nonce", edit: func(_, _ string, c map[string]any) { delete(c, "nonce") }},
		{name: "the nonce sent", edit: func(string, string, map[string]any) {}},
		{name: "a wrong nonce", edit: func(_, _ string, c map[string]any) { c["nonce"] = "someone else's" }, want: &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "nonce"}},
		{name: "partner keys, no msn", partner: true, edit: func(_, _ string, c map[string]any) { delete(c, "msn") }},
		{name: "partner keys, another msn", partner: true, edit: func(_, _ string, c map[string]any) { c["msn"] = "999999" }, want: &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "audience"}},
		{name: "its own auth_req_id as authReqId", edit: func(id, _ string, c map[string]any) { c["authReqId"] = id }},
		{name: "another auth_req_id", edit: func(id, _ string, c map[string]any) { c["auth_req_id"] = id + "x" }, want: &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "auth_req_id"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := []options{phoneAnswer(vippstest.PhoneApproved, 0)}
			if tc.partner {
				opts = append(opts, partnerOptions(nil))
			}
			inBubble(t, func(t *testing.T, h *harness) {
				h.idp.SetHooks(vippstest.Hooks{IDToken: func(_, claims map[string]any) string {
					id, nonce := kariLogin(h)
					tc.edit(id, nonce, claims)
					return ""
				}})
				_, claims, err := waitPhone(t, h, startPhone(t, h, vippslogin.PhoneLoginRequest{}))
				if tc.want == nil {
					if err != nil || claims.Name != "Kari Nordmann" {
						t.Errorf("%v, %v; want the claims", claims, err)
					}
					return
				}
				if !errors.Is(err, tc.want) || !errors.Is(err, vippslogin.ErrInvalidIDToken) || claims != nil {
					t.Errorf("%v, %v; want %v", claims, err, tc.want)
				}
			}, opts...)
		})
	}
}
