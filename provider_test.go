package vippslogin_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vippslogin/vippslogin"
	"github.com/vippslogin/vippslogin/vippstest"
)

func TestTokenEndpointRejected(t *testing.T) {
	tests := []struct {
		name       string
		setup      func(h *harness)
		want       error
		wantStatus int    // the *TokenError's StatusCode; 0 for no TokenError
		wantCode   string // the *TokenError's Code
	}{
		{
			name: "invalid_grant",
			setup: func(h *harness) {
				h.idp.SetFault(vippstest.Token, vippstest.Fault{Status: 400, Body: `{"error":"invalid_grant","error_description":"x"}`})
			},
			want:       vippslogin.ErrTokenExchange,
			wantStatus: 400,
			wantCode:   "invalid_grant",
		},
		{
			name:       "status 500",
			setup:      func(h *harness) { h.idp.SetFault(vippstest.Token, vippstest.Fault{Status: 500}) },
			want:       vippslogin.ErrTokenExchange,
			wantStatus: 500,
			wantCode:   "server_error",
		},
		{
			name:  "down",
			setup: func(h *harness) { h.idp.SetFault(vippstest.Token, vippstest.Fault{Down: true}) },
			want:  vippslogin.ErrTokenExchange,
		},
		{
			name:       "wrong client authentication method",
			setup:      func(h *harness) { h.idp.SetTokenAuthMethod("client_secret_post") },
			want:       vippslogin.ErrTokenExchange,
			wantStatus: 401,
			wantCode:   "invalid_client",
		},
		{
			name: "token_type not bearer",
			setup: func(h *harness) {
				h.idp.SetFault(vippstest.Token, vippstest.Fault{Status: 200, Body: `{"access_token":"a","token_type":"mac","id_token":"x.y.z"}`})
			},
			want: vippslogin.ErrTokenExchange,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			tc.setup(h)
			b := h.browser()
			resp, _ := b.get(b.startLogin("/profile"))
			err := h.lastErr()
			b.wantRefused(resp, tc.want)
			var te *vippslogin.TokenError
			if got := errors.As(err, &te); got != (tc.wantStatus != 0) {
				t.Fatalf("errors.As(%v, *TokenError) = %v, want %v", err, got, tc.wantStatus != 0)
			}
			if te == nil {
				return
			}
			if te.StatusCode != tc.wantStatus || te.Code != tc.wantCode {
				t.Errorf("TokenError = %d %q, want %d %q", te.StatusCode, te.Code, tc.wantStatus, tc.wantCode)
			}
		})
	}
}

func TestTokenEndpointTimeout(t *testing.T) {
	h := newHarness(t, options{site: func(c *vippslogin.Config) { c.HTTPTimeout = 300 * time.Millisecond }})
	h.idp.SetFault(vippstest.Token, vippstest.Fault{Delay: 5 * time.Second})
	b := h.browser()
	cb := b.startLogin("/profile")
	start := time.Now()
	resp, _ := b.get(cb)
	if took := time.Since(start); took >= 3*time.Second {
		t.Errorf("callback took %v with a 300ms time-out", took)
	}
	if got, want := resp.StatusCode, http.StatusGatewayTimeout; got != want {
		t.Errorf("status %d, want %d", got, want)
	}
	b.wantRefused(resp, vippslogin.ErrTimeout, vippslogin.ErrTokenExchange)
}

func TestTokenAuthMethods(t *testing.T) {
	tests := []struct {
		name      string
		opts      options
		wantBasic bool // the Authorization header carries the credentials
	}{
		{name: "client_secret_basic by default", wantBasic: true},
		{
			name: "client_secret_post",
			opts: options{
				idp:  func(c *vippstest.Config) { c.TokenAuthMethod = "client_secret_post" },
				site: func(c *vippslogin.Config) { c.TokenAuthMethod = vippslogin.ClientSecretPost },
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.opts)
			b := h.browser()
			b.login("/profile")
			if b.profile() == nil {
				t.Fatal("not logged in")
			}
			auth := h.idp.LastHeader(vippstest.Token).Get("Authorization")
			if got := strings.HasPrefix(auth, "Basic "); got != tc.wantBasic {
				t.Errorf("token request Authorization %q: Basic = %v, want %v", auth, got, tc.wantBasic)
			}
		})
	}
}

func TestSystemHeaders(t *testing.T) {
	tests := []struct {
		name, msn string
	}{
		{name: "without merchant serial number"},
		{name: "with merchant serial number", msn: "123456"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, options{site: func(c *vippslogin.Config) { c.MerchantSerialNumber = tc.msn }})
			h.browser().login("/")
			want := map[string]string{
				"Vipps-System-Name":           "testshop",
				"Vipps-System-Version":        "1.2.3",
				"Vipps-System-Plugin-Name":    "vippslogin",
				"Vipps-System-Plugin-Version": vippslogin.Version,
				"Merchant-Serial-Number":      tc.msn,
			}
			for _, e := range []vippstest.Endpoint{vippstest.Discovery, vippstest.JWKS, vippstest.Token, vippstest.Userinfo} {
				hdr := h.idp.LastHeader(e)
				if hdr == nil {
					t.Errorf("%s: no request", e)
					continue
				}
				for name, value := range want {
					if got := hdr.Get(name); got != value {
						t.Errorf("%s: %s = %q, want %q", e, name, got, value)
					}
				}
			}
		})
	}
}

func TestDiscoveryOutage(t *testing.T) {
	h := newHarness(t)
	h.idp.SetFault(vippstest.Discovery, vippstest.Fault{Down: true})
	b := h.browser()
	resp, body := b.get("/auth/login?return_to=%2Fshop")
	if got, want := resp.StatusCode, http.StatusServiceUnavailable; got != want {
		t.Fatalf("status %d, want %d", got, want)
	}
	h.wantErr(vippslogin.ErrProviderUnavailable)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") || !strings.Contains(body, "<html") {
		t.Errorf("Content-Type %q, body %q: want an HTML page", ct, body)
	}
	if got := resp.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", got)
	}

	// Within the back-off the provider is not asked again.
	hits := h.idp.Hits(vippstest.Discovery)
	if resp, _ := b.get("/auth/login"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("second try: status %d, want 503", resp.StatusCode)
	}
	if got := h.idp.Hits(vippstest.Discovery); got != hits {
		t.Errorf("discovery hits %d right after a failure, want %d", got, hits)
	}

	h.idp.SetFault(vippstest.Discovery, vippstest.Fault{})
	h.clock.Advance(3 * time.Second)
	b.login("/shop")
	if b.profile() == nil {
		t.Error("not logged in after the provider came back")
	}
}

func TestKeySetOutage(t *testing.T) {
	tests := []struct {
		name  string
		fault vippstest.Fault
	}{
		{name: "status 500", fault: vippstest.Fault{Status: 500}},
		{name: "garbage", fault: vippstest.Fault{Status: 200, Body: "garbage"}},
		{name: "down", fault: vippstest.Fault{Down: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.idp.SetFault(vippstest.JWKS, tc.fault)
			b := h.browser()
			resp, _ := b.get(b.startLogin("/profile"))
			b.wantRefused(resp, vippslogin.ErrProviderUnavailable)

			h.idp.SetFault(vippstest.JWKS, vippstest.Fault{})
			h.clock.Advance(3 * time.Second)
			resp, _ = b.get(b.startLogin("/profile"))
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("login after the key set came back: status %d, want 303 (error %v)", resp.StatusCode, h.lastErr())
			}
			if b.profile() == nil {
				t.Error("not logged in after the key set came back")
			}
		})
	}
}
