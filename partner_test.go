package vippslogin_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/vippslogin/vippslogin"
	"github.com/vippslogin/vippslogin/vippstest"
)

const (
	partnerID     = "partner-id"
	partnerSecret = "partner-secret-0123456789"
	partnerSubKey = "partner-subscription-key-9f8e7d"
	partnerMSN    = "654321"
)

// partnerHarness is a site that logs in with partner keys on behalf of the
// mock provider's sales unit, without the sales unit's own client id and
// secret. edit and more apply after the partner's settings.
func partnerHarness(t *testing.T, edit func(*vippslogin.Config), more ...options) *harness {
	return newHarness(t, append([]options{partnerOptions(edit)}, more...)...)
}

// partnerOptions are partnerHarness's options.
func partnerOptions(edit func(*vippslogin.Config)) options {
	return options{
		idp: func(c *vippstest.Config) {
			c.PartnerClientID, c.PartnerClientSecret, c.MerchantSerialNumber = partnerID, partnerSecret, partnerMSN
			c.PartnerSubscriptionKey = partnerSubKey
		},
		site: func(c *vippslogin.Config) {
			c.ClientID, c.ClientSecret = "", ""
			c.MerchantSerialNumber = partnerMSN
			c.Partner = &vippslogin.PartnerKeys{ClientID: partnerID, ClientSecret: partnerSecret, SubscriptionKey: partnerSubKey}
			if edit != nil {
				edit(c)
			}
		},
	}
}

// Logins from phone number work with partner keys too: the partner's
// Bearer token and the merchant serial number on every call.
func TestPartnerPhoneLogin(t *testing.T) {
	inBubble(t, func(t *testing.T, h *harness) {
		if ok, err := h.auth.UserExists(t.Context(), kariPhone); err != nil || !ok {
			t.Fatalf("UserExists = %v, %v", ok, err)
		}
		pl := startPhone(t, h, vippslogin.PhoneLoginRequest{})
		_, claims, err := waitPhone(t, h, pl)
		if err != nil {
			t.Fatal(err)
		}
		if claims.Name != "Kari Nordmann" {
			t.Errorf("claims %+v", claims)
		}
		for _, e := range []vippstest.Endpoint{vippstest.UserExists, vippstest.Backchannel, vippstest.Token} {
			wantPartnerCall(t, h, e)
		}
		if n := h.idp.Hits(vippstest.AccessToken); n != 1 {
			t.Errorf("the access token API was called %d times, want 1", n)
		}

		// A token the provider no longer accepts is replaced after the 401,
		// and each call is sent once more: a second time, not a third.
		h.clock.Advance(2 * time.Minute) // a token is not discarded in its first minute
		h.idp.ExpirePartnerTokens()
		before := h.idp.Hits(vippstest.UserExists)
		if ok, err := h.auth.UserExists(t.Context(), kariPhone); err != nil || !ok {
			t.Fatalf("UserExists with a revoked token = %v, %v", ok, err)
		}
		if n := h.idp.Hits(vippstest.UserExists) - before; n != 2 {
			t.Errorf("user-exists was called %d times, want 2: the refused call and one retry", n)
		}
		h.clock.Advance(2 * time.Minute) // a token is not discarded in its first minute
		h.idp.ExpirePartnerTokens()
		before = h.idp.Hits(vippstest.Backchannel)
		pl = startPhone(t, h, vippslogin.PhoneLoginRequest{})
		if n := h.idp.Hits(vippstest.Backchannel) - before; n != 2 {
			t.Errorf("backchannel authentication was called %d times, want 2", n)
		}
		if _, _, err := waitPhone(t, h, pl); err != nil {
			t.Fatal(err)
		}
		if n := h.idp.Hits(vippstest.AccessToken); n != 3 {
			t.Errorf("the access token API was called %d times, want 3", n)
		}
	}, partnerOptions(nil), phoneAnswer(vippstest.PhoneApproved, 0))
}

// wantPartnerCall checks the headers of the last call to e, as
// partner-keys.md's "Token endpoint" and "Partner in Vipps Login from phone
// number flow" give them: a Bearer access token and the merchant serial
// number, and none of the partner's keys.
func wantPartnerCall(t *testing.T, h *harness, e vippstest.Endpoint) {
	t.Helper()
	hdr := h.idp.LastHeader(e)
	if tok, ok := strings.CutPrefix(hdr.Get("Authorization"), "Bearer "); !ok || tok == "" {
		t.Errorf("%s: Authorization %q, want a Bearer token", e, hdr.Get("Authorization"))
	}
	if got := hdr.Get("Merchant-Serial-Number"); got != partnerMSN {
		t.Errorf("%s: Merchant-Serial-Number %q, want %q", e, got, partnerMSN)
	}
	for _, name := range []string{"client_id", "client_secret", "Ocp-Apim-Subscription-Key"} {
		if v, ok := hdr[http.CanonicalHeaderKey(name)]; ok {
			t.Errorf("%s: sends %s (%d values)", e, name, len(v))
		}
	}
}

// A partner logs in through POST /accesstoken/get: the documented headers
// there, the Bearer token and merchant serial number at the token endpoint.
func TestPartnerLogin(t *testing.T) {
	h := partnerHarness(t, nil)
	for i := range 3 {
		b := h.browser()
		resp, _ := b.get("/auth/login?return_to=/profile")
		authz := resp.Header.Get("Location")
		if got := queryParam(t, authz, "msn"); got != h.idp.MerchantSerialNumber() {
			t.Errorf("msn = %q, want the merchant serial number", got)
		}
		if strings.Contains(authz, "client_id=") {
			t.Errorf("a partner's authorization request names a client_id: %s", authz)
		}
		resp, _ = b.get(authz)
		resp, _ = b.get(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("login %d: callback status %d (error %v)", i, resp.StatusCode, h.lastErr())
		}
		if c := b.profile(); c == nil || c["name"] != "Kari Nordmann" {
			t.Fatalf("login %d: profile %v", i, c)
		}
	}
	wantPartnerCall(t, h, vippstest.Token)

	// access-token-api/README.md, "Get an access token": client_id,
	// client_secret and Ocp-Apim-Subscription-Key in the header, with
	// Merchant-Serial-Number and the Vipps-System-* headers in its sample.
	// The mock refuses a body, so the answer shows that none was sent.
	hdr := h.idp.LastHeader(vippstest.AccessToken)
	for name, want := range map[string]string{
		"client_id":                 partnerID,
		"client_secret":             partnerSecret,
		"Ocp-Apim-Subscription-Key": partnerSubKey,
		"Merchant-Serial-Number":    partnerMSN,
		"Vipps-System-Name":         "testshop",
		"Vipps-System-Version":      "1.2.3",
		"Vipps-System-Plugin-Name":  "vippslogin",
	} {
		if got := hdr.Get(name); got != want {
			t.Errorf("access token request: %s = %q, want %q", name, got, want)
		}
	}
	if got := hdr.Get("Authorization"); got != "" {
		t.Errorf("access token request: Authorization %q, want none", got)
	}
	if n := h.idp.Hits(vippstest.ClientCredentials); n != 0 {
		t.Errorf("/miami/v1/token was called %d times by default, want 0", n)
	}
}

func TestPartnerLoginRejected(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*vippslogin.Config)
		setup func(*harness)
		want  []error
	}{
		{
			name:  "msn claim of another sales unit",
			setup: func(h *harness) { setIDClaim(h, "msn", "999999") },
			want:  []error{vippslogin.ErrInvalidIDToken, &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "audience"}},
		},
		{
			name:  "msn claim missing",
			setup: func(h *harness) { setIDClaim(h, "msn", nil) },
			want:  []error{vippslogin.ErrInvalidIDToken, &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "audience"}},
		},
		{
			name:  "msn claim not a string",
			setup: func(h *harness) { setIDClaim(h, "msn", []any{"123456"}) },
			want:  []error{vippslogin.ErrInvalidIDToken, &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "audience"}},
		},
		{
			name:  "aud checked too when the client id is known",
			edit:  func(c *vippslogin.Config) { c.ClientID = "vippstest-client" },
			setup: func(h *harness) { setIDClaim(h, "aud", []any{"someone-else"}) },
			want:  []error{vippslogin.ErrInvalidIDToken, &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "audience"}},
		},
		{
			name: "wrong partner secret",
			edit: func(c *vippslogin.Config) { c.Partner.ClientSecret = "wrong-partner-secret-4f2a" },
			want: []error{vippslogin.ErrProviderUnavailable, &vippslogin.Error{Err: vippslogin.ErrProviderUnavailable, Reason: "access_token"}},
		},
		{
			name: "wrong subscription key",
			edit: func(c *vippslogin.Config) { c.Partner.SubscriptionKey = "wrong-subscription-key-77c1" },
			want: []error{vippslogin.ErrProviderUnavailable, &vippslogin.Error{Err: vippslogin.ErrProviderUnavailable, Reason: "access_token"}},
		},
		{
			name:  "access token API down",
			setup: func(h *harness) { h.idp.SetFault(vippstest.AccessToken, vippstest.Fault{Down: true}) },
			want:  []error{vippslogin.ErrProviderUnavailable, &vippslogin.Error{Err: vippslogin.ErrProviderUnavailable, Reason: "access_token"}},
		},
		{
			name: "access token API answers garbage",
			setup: func(h *harness) {
				h.idp.SetFault(vippstest.AccessToken, vippstest.Fault{Status: http.StatusOK, Body: `{"token_type":"Bearer"}`})
			},
			want: []error{vippslogin.ErrProviderUnavailable, &vippslogin.Error{Err: vippslogin.ErrProviderUnavailable, Reason: "access_token"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := partnerHarness(t, tc.edit)
			if tc.setup != nil {
				tc.setup(h)
			}
			b := h.browser()
			cb := b.startLogin("/profile")
			resp, body := b.get(cb)
			b.wantRefused(resp, tc.want...)
			wantNoPartnerSecrets(t, h, body, "wrong-partner-secret-4f2a", "wrong-subscription-key-77c1")
		})
	}
}

// wantNoPartnerSecrets checks that neither the partner's keys, nor more,
// nor the access tokens the site sent show in body or the site's logs.
func wantNoPartnerSecrets(t *testing.T, h *harness, body string, more ...string) {
	t.Helper()
	secrets := append([]string{partnerSecret, partnerSubKey}, more...)
	for _, e := range []vippstest.Endpoint{vippstest.Token, vippstest.Backchannel, vippstest.UserExists} {
		if tok, ok := strings.CutPrefix(h.idp.LastHeader(e).Get("Authorization"), "Bearer "); ok && tok != "" {
			secrets = append(secrets, tok)
		}
	}
	logs := h.logs.String()
	for i, s := range secrets {
		if strings.Contains(body, s) || strings.Contains(logs, s) {
			t.Errorf("secret %d shows in the page or the logs", i)
		}
	}
}

// setIDClaim sets (or, for nil, deletes) a claim of the ID tokens the
// provider issues.
func setIDClaim(h *harness, name string, v any) {
	h.idp.SetHooks(vippstest.Hooks{IDToken: func(_, claims map[string]any) string {
		if v == nil {
			delete(claims, name)
		} else {
			claims[name] = v
		}
		return ""
	}})
}

func TestPartnerConfig(t *testing.T) {
	base := func() vippslogin.Config {
		return vippslogin.Config{
			Environment:          vippslogin.Production,
			BaseURL:              "https://shop.example",
			MerchantSerialNumber: "123456",
			Sessions:             scs.New(),
			Partner:              &vippslogin.PartnerKeys{ClientID: "partner", ClientSecret: "s3cr3t-value", SubscriptionKey: "sub-k3y-value"},
		}
	}
	if _, err := vippslogin.New(base()); err != nil {
		t.Fatalf("partner keys without the sales unit's keys: %v", err)
	}
	cc := base()
	cc.Partner = &vippslogin.PartnerKeys{ClientID: "partner", ClientSecret: "secret", TokenAPI: "client_credentials"}
	if _, err := vippslogin.New(cc); err != nil {
		t.Fatalf("client credentials without a subscription key: %v", err)
	}
	tests := []struct {
		name  string
		edit  func(*vippslogin.Config)
		field string // the field the error must name
	}{
		{"no merchant serial number", func(c *vippslogin.Config) { c.MerchantSerialNumber = "" }, "MerchantSerialNumber"},
		{"no partner client id", func(c *vippslogin.Config) { c.Partner.ClientID = "" }, "Partner.ClientID"},
		{"no partner secret", func(c *vippslogin.Config) { c.Partner.ClientSecret = "" }, "Partner.ClientSecret"},
		{"no subscription key", func(c *vippslogin.Config) { c.Partner.SubscriptionKey = "" }, "Partner.SubscriptionKey"},
		{"no subscription key, explicitly", func(c *vippslogin.Config) {
			c.Partner.SubscriptionKey, c.Partner.TokenAPI = "", "accesstoken"
		}, "Partner.SubscriptionKey"},
		{"subscription key with a line break", func(c *vippslogin.Config) { c.Partner.SubscriptionKey = "sub-k3y\r\nX: y" }, "Partner.SubscriptionKey"},
		{"secret with a space", func(c *vippslogin.Config) { c.Partner.ClientSecret = "a s3cr3t" }, "Partner.ClientSecret"},
		{"unknown token API", func(c *vippslogin.Config) { c.Partner.TokenAPI = "miami" }, "Partner.TokenAPI"},
		{"client_secret_post", func(c *vippslogin.Config) { c.TokenAuthMethod = "client_secret_post" }, "TokenAuthMethod"},
		{"http token URL", func(c *vippslogin.Config) { c.Partner.TokenURL = "http://api.example/accesstoken/get" }, "Partner.TokenURL"},
		{"relative token URL", func(c *vippslogin.Config) { c.Partner.TokenURL = "/accesstoken/get" }, "Partner.TokenURL"},
		{"token URL with user info", func(c *vippslogin.Config) { c.Partner.TokenURL = "https://u:p@api.example/accesstoken/get" }, "Partner.TokenURL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base()
			p := *cfg.Partner
			cfg.Partner = &p
			tc.edit(&cfg)
			_, err := vippslogin.New(cfg)
			if !errors.Is(err, vippslogin.ErrInvalidConfig) {
				t.Fatalf("New = %v, want ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), ": "+tc.field+": ") {
				t.Errorf("New = %q, want it to name %s", err, tc.field)
			}
			for _, secret := range []string{"s3cr3t-value", "sub-k3y-value", "a s3cr3t", "X: y"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("New = %q shows a secret", err)
				}
			}
		})
	}
}
