package vippslogin_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/vippslogin/vippslogin"
)

// Vipps' token endpoint explains a refusal in error_debug, not
// error_description (login-api/docs/swagger.yaml, ErrorResponse): the
// operator's log record carries it.
func TestTokenErrorDebugLogged(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	cb := editQuery(t, b.startLogin("/profile"), func(q url.Values) { q.Set("code", randomToken()) })
	resp, _ := b.get(cb)
	err := h.lastErr()
	b.wantRefused(resp, &vippslogin.ProviderError{})
	var te *vippslogin.ProviderError
	if !errors.As(err, &te) || te.Code != "invalid_grant" || te.Description != "unknown authorization code" {
		t.Fatalf("error %v, want invalid_grant explained", err)
	}
	if !strings.Contains(h.logs.String(), `"provider_error_description":"unknown authorization code"`) {
		t.Errorf("the log lacks the explanation:\n%s", h.logs)
	}
}
