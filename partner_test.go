package vippslogin_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/alexedwards/scs/v2"
	"github.com/vippslogin/vippslogin"
	"github.com/vippslogin/vippslogin/vippstest"
)

const (
	partnerID     = "partner-id"
	partnerSecret = "partner-secret-0123456789"
	partnerMSN    = "654321"
)

// partnerHarness is a site that logs in with partner keys on behalf of the
// mock provider's sales unit, without the sales unit's own client id and
// secret.
func partnerHarness(t *testing.T, edit func(*vippslogin.Config), more ...options) *harness {
	return newHarness(t, append(more, options{
		idp: func(c *vippstest.Config) {
			c.PartnerClientID, c.PartnerClientSecret, c.MerchantSerialNumber = partnerID, partnerSecret, partnerMSN
		},
		site: func(c *vippslogin.Config) {
			c.ClientID, c.ClientSecret = "", ""
			c.MerchantSerialNumber = partnerMSN
			c.Partner = &vippslogin.PartnerKeys{ClientID: partnerID, ClientSecret: partnerSecret}
			if edit != nil {
				edit(c)
			}
		},
	})...)
}

// Logins from phone number work with partner keys too: the partner's
// Bearer token and the merchant serial number on every call.
func TestPartnerPhoneLogin(t *testing.T) {
	h := partnerHarness(t, nil, phoneAnswer(vippstest.PhoneApproved, 0))
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
		hdr := h.idp.LastHeader(e)
		if !strings.HasPrefix(hdr.Get("Authorization"), "Bearer ") || hdr.Get("Merchant-Serial-Number") != partnerMSN {
			t.Errorf("%s: Authorization %q, Merchant-Serial-Number %q", e, hdr.Get("Authorization"), hdr.Get("Merchant-Serial-Number"))
		}
	}
}

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
	hdr := h.idp.LastHeader(vippstest.Token)
	if auth := hdr.Get("Authorization"); !strings.HasPrefix(auth, "Bearer ") {
		t.Errorf("token endpoint: Authorization %q, want a Bearer token", auth)
	}
	if got := hdr.Get("Merchant-Serial-Number"); got != h.idp.MerchantSerialNumber() {
		t.Errorf("token endpoint: Merchant-Serial-Number %q", got)
	}
	if n := h.idp.Hits(vippstest.ClientCredentials); n != 1 {
		t.Errorf("the access token API was called %d times for 3 logins, want 1: the token is cached", n)
	}
	if hdr := h.idp.LastHeader(vippstest.ClientCredentials); hdr.Get("Vipps-System-Name") == "" {
		t.Error("the access token request lacks the Vipps-System headers")
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
			want:  []error{vippslogin.ErrInvalidIDToken, vippslogin.ErrAudience},
		},
		{
			name:  "msn claim missing",
			setup: func(h *harness) { setIDClaim(h, "msn", nil) },
			want:  []error{vippslogin.ErrInvalidIDToken, vippslogin.ErrAudience},
		},
		{
			name:  "msn claim not a string",
			setup: func(h *harness) { setIDClaim(h, "msn", []any{"123456"}) },
			want:  []error{vippslogin.ErrInvalidIDToken, vippslogin.ErrAudience},
		},
		{
			name:  "aud checked too when the client id is known",
			edit:  func(c *vippslogin.Config) { c.ClientID = "vippstest-client" },
			setup: func(h *harness) { setIDClaim(h, "aud", []any{"someone-else"}) },
			want:  []error{vippslogin.ErrInvalidIDToken, vippslogin.ErrAudience},
		},
		{
			name: "wrong partner secret",
			edit: func(c *vippslogin.Config) { c.Partner.ClientSecret = "wrong-partner-secret-4f2a" },
			want: []error{vippslogin.ErrTokenExchange, vippslogin.ErrPartnerToken},
		},
		{
			name:  "access token API down",
			setup: func(h *harness) { h.idp.SetFault(vippstest.ClientCredentials, vippstest.Fault{Down: true}) },
			want:  []error{vippslogin.ErrProviderUnavailable, vippslogin.ErrPartnerToken},
		},
		{
			name:  "token endpoint refuses the partner",
			setup: func(h *harness) { h.idp.ExpirePartnerTokens() },
			want:  []error{vippslogin.ErrTokenExchange},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := partnerHarness(t, tc.edit)
			if tc.name == "token endpoint refuses the partner" {
				h.browser().login("/") // the Client caches a token, which the provider then forgets
			}
			if tc.setup != nil {
				tc.setup(h)
			}
			b := h.browser()
			cb := b.startLogin("/profile")
			resp, body := b.get(cb)
			if resp.StatusCode < 400 {
				t.Fatalf("status %d, want an error", resp.StatusCode)
			}
			b.wantRefused(resp, tc.want...)
			for _, secret := range []string{partnerSecret, "wrong-partner-secret-4f2a"} {
				if strings.Contains(body, secret) || strings.Contains(h.logs.String(), secret) {
					t.Errorf("the partner secret shows in the page or logs")
				}
			}
		})
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
			Partner:              &vippslogin.PartnerKeys{ClientID: "partner", ClientSecret: "secret"},
		}
	}
	if _, err := vippslogin.New(base()); err != nil {
		t.Fatalf("partner keys without the sales unit's keys: %v", err)
	}
	tests := []struct {
		name string
		edit func(*vippslogin.Config)
	}{
		{"no merchant serial number", func(c *vippslogin.Config) { c.MerchantSerialNumber = "" }},
		{"no partner client id", func(c *vippslogin.Config) { c.Partner.ClientID = "" }},
		{"no partner secret", func(c *vippslogin.Config) { c.Partner.ClientSecret = "" }},
		{"client_secret_post", func(c *vippslogin.Config) { c.TokenAuthMethod = vippslogin.ClientSecretPost }},
		{"http token URL", func(c *vippslogin.Config) { c.Partner.TokenURL = "http://api.example/miami/v1/token" }},
		{"relative token URL", func(c *vippslogin.Config) { c.Partner.TokenURL = "/miami/v1/token" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base()
			p := *cfg.Partner
			cfg.Partner = &p
			tc.edit(&cfg)
			if _, err := vippslogin.New(cfg); !errors.Is(err, vippslogin.ErrInvalidConfig) {
				t.Errorf("New = %v, want ErrInvalidConfig", err)
			}
		})
	}
}
