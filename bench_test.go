package vippslogin_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

// sessionCookie logs a browser in through the harness and returns its
// session cookie.
func sessionCookie(b *testing.B, h *harness) *http.Cookie {
	b.Helper()
	br := h.browser()
	br.login("/profile")
	v := br.cookie(h.sessions.Cookie.Name)
	if v == "" {
		b.Fatal("no session cookie after login")
	}
	return &http.Cookie{Name: h.sessions.Cookie.Name, Value: v}
}

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })

func benchHandler(b *testing.B, h http.Handler, cookie *http.Cookie) {
	req := httptest.NewRequest(http.MethodGet, "/profile", nil)
	req.AddCookie(cookie)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusNoContent {
			b.Fatalf("status %d", w.Code)
		}
	}
}

// BenchmarkRequireLogin measures a logged-in request through the Client's
// LoadAndSave and RequireLogin, which loads and decodes the claims.
func BenchmarkRequireLogin(b *testing.B) {
	h := newHarness(b)
	benchHandler(b, h.auth.LoadAndSave(h.auth.RequireLogin(okHandler)), sessionCookie(b, h))
}

// BenchmarkLoadAndSave is the floor for BenchmarkRequireLogin: the same
// logged-in request through scs's LoadAndSave alone.
func BenchmarkLoadAndSave(b *testing.B) {
	h := newHarness(b)
	benchHandler(b, h.sessions.LoadAndSave(okHandler), sessionCookie(b, h))
}

// BenchmarkLogin measures a complete login against the mock provider over
// loopback HTTP: the login route, the provider's authorize, and the callback
// with its code exchange, ID token verification and userinfo fetch.
func BenchmarkLogin(b *testing.B) {
	h := newHarness(b)
	br := h.browser()
	br.login("/") // warm the discovery and key caches
	b.ReportAllocs()
	for b.Loop() {
		resp, _ := br.get(br.startLogin("/"))
		if resp.StatusCode != http.StatusSeeOther {
			b.Fatal(fmt.Sprint("callback status ", resp.StatusCode))
		}
	}
}
