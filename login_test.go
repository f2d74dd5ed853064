package vippslogin_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/vippslogin/vippslogin"
	"github.com/vippslogin/vippslogin/vippstest"
)

func TestLoginOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		opts vippslogin.LoginOptions
		ok   bool
	}{
		{"zero", vippslogin.LoginOptions{}, true},
		{"automatic return", vippslogin.LoginOptions{Flow: vippslogin.FlowAutomaticReturn}, true},
		{"app to app v2", vippslogin.LoginOptions{Flow: vippslogin.FlowAppToAppV2, FinalRedirectIsApp: true}, true},
		{"app to app, custom scheme", vippslogin.LoginOptions{Flow: vippslogin.FlowAppToApp, AppCallbackURI: "myapp://login"}, true},
		{"app to app, https", vippslogin.LoginOptions{Flow: vippslogin.FlowAppToApp, AppCallbackURI: "https://shop.example/app"}, true},
		{"step-up", vippslogin.LoginOptions{StepUp: true, ReturnTo: "/pay?x=1"}, true},
		{"unknown flow", vippslogin.LoginOptions{Flow: "no_dialog"}, false},
		{"login_to_webpage is for phone logins", vippslogin.LoginOptions{Flow: "login_to_webpage"}, false},
		{"app to app without callback", vippslogin.LoginOptions{Flow: vippslogin.FlowAppToApp}, false},
		{"callback without app to app", vippslogin.LoginOptions{AppCallbackURI: "myapp://login"}, false},
		{"callback with v2", vippslogin.LoginOptions{Flow: vippslogin.FlowAppToAppV2, AppCallbackURI: "myapp://login"}, false},
		{"custom scheme without path", vippslogin.LoginOptions{Flow: vippslogin.FlowAppToApp, AppCallbackURI: "myapp://"}, false},
		{"custom scheme, slash only", vippslogin.LoginOptions{Flow: vippslogin.FlowAppToApp, AppCallbackURI: "myapp:///"}, false},
		{"fragment", vippslogin.LoginOptions{Flow: vippslogin.FlowAppToApp, AppCallbackURI: "myapp://login#x"}, false},
		{"relative", vippslogin.LoginOptions{Flow: vippslogin.FlowAppToApp, AppCallbackURI: "/login"}, false},
		{"http not localhost", vippslogin.LoginOptions{Flow: vippslogin.FlowAppToApp, AppCallbackURI: "http://shop.example/app"}, false},
		{"javascript", vippslogin.LoginOptions{Flow: vippslogin.FlowAppToApp, AppCallbackURI: "javascript://x/%0aalert(1)"}, false},
		{"space", vippslogin.LoginOptions{Flow: vippslogin.FlowAppToApp, AppCallbackURI: "myapp://log in"}, false},
		{"return to another site", vippslogin.LoginOptions{ReturnTo: "https://evil.example/"}, false},
		{"return to protocol-relative", vippslogin.LoginOptions{ReturnTo: "//evil.example/"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.opts.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, &vippslogin.Error{Err: vippslogin.ErrInvalidRequest, Reason: "login_options"}) {
				t.Errorf("error %v is not ErrInvalidRequest (login_options)", err)
			}
		})
	}
}

// withLoginRoute adds GET /start, which starts a login with opts.
func withLoginRoute(opts vippslogin.LoginOptions) options {
	return options{routes: func(mux *http.ServeMux, auth *vippslogin.Client) {
		mux.HandleFunc("GET /start", func(w http.ResponseWriter, r *http.Request) { auth.StartLogin(w, r, opts) })
		mux.Handle("GET /vault", auth.RequireStepUp(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, _ := vippslogin.ClaimsFromContext(r.Context())
			_, _ = w.Write([]byte("vault of " + c.Name))
		})))
	}}
}

// The options of a login reach the provider as its authorization
// parameters, and the login completes.
func TestStartLoginSendsOptions(t *testing.T) {
	tests := []struct {
		name string
		opts vippslogin.LoginOptions
		want map[string]string // authorization parameters; "" for absent
	}{
		{"default", vippslogin.LoginOptions{},
			map[string]string{"requested_flow": "", "app_callback_uri": "", "final_redirect_is_app": "", "acr_values": ""}},
		{"automatic return", vippslogin.LoginOptions{Flow: vippslogin.FlowAutomaticReturn},
			map[string]string{"requested_flow": "automatic_return_from_vipps_app", "app_callback_uri": ""}},
		{"app to app", vippslogin.LoginOptions{Flow: vippslogin.FlowAppToApp, AppCallbackURI: "myapp://vipps/done"},
			map[string]string{"requested_flow": "app_to_app", "app_callback_uri": "myapp://vipps/done"}},
		{"app to app v2", vippslogin.LoginOptions{Flow: vippslogin.FlowAppToAppV2, FinalRedirectIsApp: true},
			map[string]string{"requested_flow": "app_to_app_v2", "final_redirect_is_app": "true", "code_challenge_method": "S256"}},
		{"step-up", vippslogin.LoginOptions{StepUp: true, ReturnTo: "/vault"},
			map[string]string{"acr_values": vippslogin.StepUpACR}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, withLoginRoute(tc.opts))
			b := h.browser()
			resp, _ := b.get("/start?return_to=/profile")
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("start: status %d (error %v)", resp.StatusCode, h.lastErr())
			}
			authz := resp.Header.Get("Location")
			for k, v := range tc.want {
				if got := queryParam(t, authz, k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			resp, _ = b.get(authz)
			cb := resp.Header.Get("Location")
			if resp.StatusCode != http.StatusFound || queryParam(t, cb, "code") == "" {
				t.Fatalf("the provider refused the request: %d %s", resp.StatusCode, cb)
			}
			resp, _ = b.get(cb)
			want := "/profile"
			if tc.opts.ReturnTo != "" {
				want = tc.opts.ReturnTo
			}
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
				t.Fatalf("callback: %d %q, want 303 %q (error %v)", resp.StatusCode, resp.Header.Get("Location"), want, h.lastErr())
			}
			c := b.profile()
			if c == nil {
				t.Fatal("not logged in")
			}
			if got, want := c["acr"] == vippslogin.StepUpACR, tc.opts.StepUp; got != want {
				t.Errorf("acr %v, want step-up %v", c["acr"], want)
			}
		})
	}
}

// Invalid options are the site's mistake: a 500, and no login starts.
func TestStartLoginInvalidOptions(t *testing.T) {
	h := newHarness(t, withLoginRoute(vippslogin.LoginOptions{Flow: vippslogin.FlowAppToApp}))
	resp, _ := h.browser().get("/start")
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("status %d, want 500", resp.StatusCode)
	}
	h.wantErr(&vippslogin.Error{Err: vippslogin.ErrInvalidRequest, Reason: "login_options"})
	if n := h.idp.Hits(vippstest.Authorize); n != 0 {
		t.Errorf("the provider saw %d authorization requests", n)
	}
}

func TestStepUp(t *testing.T) {
	h := newHarness(t, withLoginRoute(vippslogin.LoginOptions{}))
	b := h.browser()
	b.login("/")
	if c := b.profile(); c["acr"] != nil {
		t.Fatalf("an ordinary login has acr %v", c["acr"])
	}

	// Logged in, but not with step-up: the vault sends the browser through
	// a step-up login and back.
	resp, _ := b.get("/vault")
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || loc != "/auth/login?return_to=%2Fvault&step_up=1" {
		t.Fatalf("vault without step-up: %d %q", resp.StatusCode, loc)
	}
	// An API client gets 401 with a login URL that asks for step-up.
	resp, body := b.get("/vault", "Accept", "application/json")
	if code, loginURL := jsonError(t, resp, body); resp.StatusCode != http.StatusUnauthorized || code != "login_required" || !strings.Contains(loginURL, "step_up=1") {
		t.Errorf("vault as an API client: %d %q %q", resp.StatusCode, code, loginURL)
	}

	resp, _ = b.get(loc)
	authz := resp.Header.Get("Location")
	if got := queryParam(t, authz, "acr_values"); got != vippslogin.StepUpACR {
		t.Fatalf("acr_values = %q", got)
	}
	resp, _ = b.get(authz)
	resp, _ = b.get(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/vault" {
		t.Fatalf("step-up callback: %d %q (error %v)", resp.StatusCode, resp.Header.Get("Location"), h.lastErr())
	}
	resp, body = b.get("/vault")
	if resp.StatusCode != http.StatusOK || body != "vault of Kari Nordmann" {
		t.Errorf("vault after step-up: %d %q", resp.StatusCode, body)
	}
}

// A step-up login whose ID token does not say the user confirmed in the
// app fails, and leaves the browser as it was.
func TestStepUpNotConfirmed(t *testing.T) {
	for _, acr := range []any{nil, "", "urn:vipps:acr:other", []any{vippslogin.StepUpACR}} {
		name, _ := json.Marshal(acr)
		t.Run(string(name), func(t *testing.T) {
			h := newHarness(t)
			h.idp.SetHooks(vippstest.Hooks{IDToken: func(_, claims map[string]any) string {
				if acr == nil {
					delete(claims, "acr")
				} else {
					claims["acr"] = acr
				}
				return ""
			}})
			b := h.browser()
			resp, _ := b.get("/auth/login?return_to=/profile&step_up=1")
			resp, _ = b.get(resp.Header.Get("Location"))
			resp, _ = b.get(resp.Header.Get("Location"))
			if resp.StatusCode != http.StatusBadGateway {
				t.Errorf("status %d, want 502", resp.StatusCode)
			}
			b.wantRefused(resp, vippslogin.ErrInvalidIDToken, &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "acr"})
		})
	}
}

func TestStepUpParameter(t *testing.T) {
	h := newHarness(t)
	for _, q := range []string{"step_up=yes", "step_up=1&step_up=1", "step_up="} {
		resp, _ := h.browser().get("/auth/login?" + q)
		if resp.StatusCode < 400 {
			t.Errorf("%s: status %d, want an error", q, resp.StatusCode)
		}
		h.wantErr(&vippslogin.Error{Err: vippslogin.ErrInvalidRequest, Reason: "login_options"})
	}
}

func TestHeadLoginStartsNothing(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	resp, _ := b.do(http.MethodHead, "/auth/login?return_to=/profile", nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Location") != "" {
		t.Fatalf("HEAD /auth/login = %d %q, want 200 and no redirect", resp.StatusCode, resp.Header.Get("Location"))
	}
	if b.cookie("vippslogin") != "" || h.idp.Hits(vippstest.Discovery) != 0 {
		t.Error("HEAD /auth/login started a login")
	}
}

// Vipps makes PKCE optional and plain its default method
// (login-api/api-guide/browser-flow-integration.md, "OAuth 2.0 Authorize");
// the package always sends an S256 challenge, and the code's exchange
// passes only with the verifier that matches it.
func TestLoginAlwaysUsesS256(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	resp, _ := b.get("/auth/login")
	authz := resp.Header.Get("Location")
	if m := queryParam(t, authz, "code_challenge_method"); m != "S256" {
		t.Errorf("code_challenge_method = %q, want S256", m)
	}
	if c := queryParam(t, authz, "code_challenge"); len(c) != 43 || strings.ContainsAny(c, "+/=") {
		t.Errorf("code_challenge = %q, want an unpadded base64url SHA-256", c)
	}
	resp, _ = b.get(authz)
	if resp, _ := b.get(resp.Header.Get("Location")); resp.StatusCode != http.StatusSeeOther || b.profile() == nil {
		t.Fatalf("callback: %d (error %v)", resp.StatusCode, h.lastErr())
	}
}
