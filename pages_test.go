package vippslogin_test

import (
	"html"
	"net/http"
	"strings"
	"testing"

	"github.com/vippslogin/vippslogin"
	"github.com/vippslogin/vippslogin/vippstest"
)

// TestProviderName: a site that logs in with another OpenID Connect
// provider than Vipps (Config.Issuer) names it in Config.ProviderName, and
// the error pages, their JSON messages and the confirmation page, in
// English and Norwegian, say that name and never "Vipps MobilePay". The
// name reaches WriteError, the default error handler, through the request
// the Client hands to the error handler.
func TestProviderName(t *testing.T) {
	const name = "Acme & Co ID"
	withName := options{site: func(c *vippslogin.Config) { c.ProviderName = name }}
	wantNamed := func(t *testing.T, what, body, want string) {
		t.Helper()
		text := html.UnescapeString(body)
		if !strings.Contains(text, want) {
			t.Errorf("%s lacks %q:\n%s", what, want, body)
		}
		if strings.Contains(text, "Vipps MobilePay") {
			t.Errorf("%s names Vipps MobilePay:\n%s", what, body)
		}
	}

	t.Run("provider down", func(t *testing.T) {
		h := newHarness(t, withName)
		h.idp.SetFault(vippstest.Discovery, vippstest.Fault{Status: http.StatusServiceUnavailable})
		b := h.browser()
		_, body := b.get("/auth/login")
		wantNamed(t, "English page", body, name+" can't be reached")
		_, body = b.get("/auth/login", "Accept-Language", "nb")
		wantNamed(t, "Norwegian page", body, "Vi får ikke kontakt med "+name)
		resp, body := b.get("/auth/login", "Accept", "application/json")
		_, message, _ := jsonMessage(t, resp, body)
		wantNamed(t, "JSON message", message, "Logging in with "+name+" is not possible right now.")
	})

	t.Run("provider error", func(t *testing.T) {
		h := newHarness(t, withName)
		h.idp.SetHooks(vippstest.Hooks{AuthorizeError: "server_error"})
		b := h.browser()
		_, body := b.get(b.startLogin("/"), "Accept-Language", "nb")
		wantNamed(t, "Norwegian page", body, "Noe gikk galt hos "+name+".")
	})

	t.Run("confirmation page", func(t *testing.T) {
		h := crossBrowserHarness(t, withName)
		a, other := h.browser(), h.browser()
		cb := startAutomatic(t, a)
		resp, body := other.get(cb)
		wantConfirmPage(t, resp, body, "Kari Nordmann")
		wantNamed(t, "confirmation page", body, "You logged in with "+name+" as Kari Nordmann")
	})

	t.Run("default", func(t *testing.T) {
		h := newHarness(t)
		h.idp.SetFault(vippstest.Discovery, vippstest.Fault{Status: http.StatusServiceUnavailable})
		_, body := h.browser().get("/auth/login")
		if !strings.Contains(html.UnescapeString(body), "Vipps MobilePay can't be reached") {
			t.Errorf("the page of a site without ProviderName does not name Vipps MobilePay:\n%s", body)
		}
	})
}
