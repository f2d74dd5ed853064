package vippslogin_test

import (
	"net/http"
	"testing"
)

func TestLoginFlow(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	if got := b.profile(); got != nil {
		t.Fatalf("profile before login = %v, want 401", got)
	}
	b.login("/profile?tab=1")
	claims := b.profile()
	if claims == nil {
		t.Fatal("not logged in after login")
	}
	if claims["sub"] == "" || claims["name"] == nil || claims["email"] == nil {
		t.Errorf("claims = %v", claims)
	}
	resp, _ := b.get("/profile")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("browser profile status %d", resp.StatusCode)
	}
}
