package vippslogin_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/vippslogin/vippslogin"
)

func TestLogout(t *testing.T) {
	tests := []struct {
		name         string
		method       string
		form         url.Values
		header       []string
		wantStatus   int
		wantLocation string
		wantLoggedIn bool
	}{
		{name: "same origin", method: "POST", wantStatus: 303, wantLocation: "/"},
		{name: "return_to", method: "POST", form: url.Values{"return_to": {"/bye"}}, wantStatus: 303, wantLocation: "/bye"},
		{name: "return_to another site", method: "POST", form: url.Values{"return_to": {"//evil.example"}}, wantStatus: 303, wantLocation: "/"},
		{name: "return_to absolute", method: "POST", form: url.Values{"return_to": {"https://evil.example/"}}, wantStatus: 303, wantLocation: "/"},
		{name: "cross-site", method: "POST", header: []string{"Sec-Fetch-Site", "cross-site"}, wantStatus: 403, wantLoggedIn: true},
		{name: "cross-origin Origin", method: "POST", header: []string{"Origin", "https://evil.example"}, wantStatus: 403, wantLoggedIn: true},
		{name: "GET", method: "GET", wantStatus: 405, wantLoggedIn: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			b := h.browser()
			b.login("/profile")
			var resp *http.Response
			if tc.method == "POST" {
				if len(tc.header) > 0 {
					resp, _ = b.do("POST", "/auth/logout", strings.NewReader(tc.form.Encode()), tc.header...)
				} else {
					resp, _ = b.logout(tc.form)
				}
			} else {
				resp, _ = b.do(tc.method, "/auth/logout", nil)
			}
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d (error %v)", resp.StatusCode, tc.wantStatus, h.lastErr())
			}
			if got := resp.Header.Get("Location"); got != tc.wantLocation {
				t.Errorf("Location %q, want %q", got, tc.wantLocation)
			}
			if tc.wantStatus == http.StatusForbidden {
				h.wantErr(vippslogin.ErrCrossOrigin)
			}
			if got := b.profile() != nil; got != tc.wantLoggedIn {
				t.Errorf("logged in after logout = %v, want %v", got, tc.wantLoggedIn)
			}
		})
	}
}
