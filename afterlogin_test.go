package vippslogin_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/vippslogin/vippslogin"
)

// AfterLogin can send the user elsewhere than the login's return_to.
func TestSetReturnTo(t *testing.T) {
	var setErrs []error
	h := newHarness(t, options{site: func(c *vippslogin.Config) {
		c.AfterLogin = func(_ http.ResponseWriter, r *http.Request, _ *vippslogin.Claims) error {
			setErrs = append(setErrs,
				vippslogin.SetReturnTo(r, "https://evil.example/"),
				vippslogin.SetReturnTo(r, "//evil.example/"),
				vippslogin.SetReturnTo(r, "/link?from=vipps"))
			return nil
		}
	}})
	b := h.browser()
	resp, _ := b.get(b.startLogin("/profile"))
	if got := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || got != "/link?from=vipps" {
		t.Fatalf("callback: %d %q, want 303 /link?from=vipps", resp.StatusCode, got)
	}
	if !errors.Is(setErrs[0], &vippslogin.Error{Err: vippslogin.ErrInvalidRequest, Reason: "return_to"}) || !errors.Is(setErrs[1], &vippslogin.Error{Err: vippslogin.ErrInvalidRequest, Reason: "return_to"}) || setErrs[2] != nil {
		t.Errorf("SetReturnTo errors: %v", setErrs)
	}
	if b.profile() == nil {
		t.Error("not logged in")
	}
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	if err := vippslogin.SetReturnTo(req, "/x"); err == nil {
		t.Error("SetReturnTo outside AfterLogin did not fail")
	}
}

// A refused login leaves nobody logged in: not an earlier user of the
// browser, nor what AfterLogin put in the session before refusing.
// errNoAccount is the error AfterLogin refuses a login with.
var errNoAccount = errors.New("no such account")

func TestRefusedLoginLogsOut(t *testing.T) {
	refuse := false
	var h *harness
	h = newHarness(t, options{site: func(c *vippslogin.Config) {
		c.AfterLogin = func(_ http.ResponseWriter, r *http.Request, _ *vippslogin.Claims) error {
			h.sessions.Put(r.Context(), "account", "42")
			if refuse {
				return errNoAccount
			}
			return nil
		}
	}})
	b := h.browser()
	b.login("/")
	if b.profile() == nil {
		t.Fatal("the first login failed")
	}
	refuse = true
	resp, _ := b.get(b.startLogin("/profile"))
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("refused login: status %d, want 403", resp.StatusCode)
	}
	b.wantRefused(resp, errNoAccount)
}
