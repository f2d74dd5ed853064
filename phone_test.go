package vippslogin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/vippslogin/vippslogin"
	"github.com/vippslogin/vippslogin/vippstest"
)

// The default users of the mock provider.
const (
	kariPhone = "4791234567"
	olaPhone  = "4798765432"
)

// phoneAnswer makes the simulated user answer every polled login with d
// after the given time.
func phoneAnswer(d vippstest.PhoneDecision, after time.Duration) options {
	return options{idp: func(c *vippstest.Config) {
		c.PhoneApproval = func(vippstest.PhoneLogin) vippstest.PhoneAnswer {
			return vippstest.PhoneAnswer{Decision: d, After: after}
		}
	}}
}

func startPhone(t *testing.T, h *harness, r vippslogin.PhoneLoginRequest) *vippslogin.PhoneLogin {
	t.Helper()
	if r.PhoneNumber == "" {
		r.PhoneNumber = "+47 912 34 567"
	}
	pl, err := h.auth.StartPhoneLogin(t.Context(), r)
	if err != nil {
		t.Fatalf("StartPhoneLogin: %v", err)
	}
	return pl
}

// waitPhone waits for pl with a harness in a synctest bubble (inBubble),
// where the waits between polls are the package's own timers on the
// bubble's clock and take no real time. It returns the waits before the
// polls, by that clock (from the call to the first poll, then between
// polls), and what WaitPhoneLogin returned.
func waitPhone(t *testing.T, h *harness, pl *vippslogin.PhoneLogin) ([]time.Duration, *vippslogin.Claims, error) {
	t.Helper()
	if h.calls == nil {
		t.Fatal("waitPhone waits on the clock of a synctest bubble: make the harness with inBubble")
	}
	start := time.Now()
	before := len(h.calls.times("token"))
	claims, err := h.auth.WaitPhoneLogin(t.Context(), pl)
	return gaps(start, h.calls.times("token")[before:]), claims, err
}

// gaps returns the time from start to the first of times, and between
// each and the next.
func gaps(start time.Time, times []time.Time) []time.Duration {
	var d []time.Duration
	for _, at := range times {
		d = append(d, at.Sub(start))
		start = at
	}
	return d
}

// pollGaps returns, for the provider's last login from phone number, the
// time from its start to its first poll and between later polls.
func pollGaps(t *testing.T, h *harness) []time.Duration {
	t.Helper()
	logins := h.idp.PhoneLogins()
	if len(logins) == 0 {
		t.Fatal("the provider saw no login from phone number")
	}
	l := logins[len(logins)-1]
	return gaps(l.Started, l.Polls)
}

func seconds(s ...int) []time.Duration {
	out := make([]time.Duration, len(s))
	for i, n := range s {
		out[i] = time.Duration(n) * time.Second
	}
	return out
}

func TestUserExists(t *testing.T) {
	t.Parallel()
	for _, method := range []string{"client_secret_basic", "client_secret_post"} {
		t.Run(method, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, options{
				idp:  func(c *vippstest.Config) { c.TokenAuthMethod = method },
				site: func(c *vippslogin.Config) { c.TokenAuthMethod = method },
			})
			for _, tc := range []struct {
				phone string
				want  bool
			}{
				{"+47 912 34 567", true},
				{"004798765432", true},
				{"+47-412.34.567", true},
				{"4712345678", false},
			} {
				got, err := h.auth.UserExists(t.Context(), tc.phone)
				if err != nil || got != tc.want {
					t.Errorf("UserExists(%q) = %v, %v; want %v", tc.phone, got, err, tc.want)
				}
			}
			hdr := h.idp.LastHeader(vippstest.UserExists)
			if !strings.HasPrefix(hdr.Get("Authorization"), "Basic ") || hdr.Get("Vipps-System-Name") != "testshop" {
				t.Errorf("user-exists headers: %v", hdr)
			}
			if _, err := h.auth.UserExists(t.Context(), "91234567"); !errors.Is(err, &vippslogin.Error{Err: vippslogin.ErrInvalidRequest, Reason: "phone_login"}) {
				t.Errorf("8 digits without country code: %v, want ErrInvalidPhoneLogin", err)
			}
		})
	}
}

func TestUserExistsFailures(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.idp.SetFault(vippstest.UserExists, vippstest.Fault{Status: 200, Body: `{"exist":true}`})
	if _, err := h.auth.UserExists(t.Context(), kariPhone); !errors.Is(err, &vippslogin.Error{Err: vippslogin.ErrBadResponse, Reason: "phone_login"}) {
		t.Errorf("answer without exists: %v", err)
	}
	h.idp.SetFault(vippstest.UserExists, vippstest.Fault{Status: 503})
	var pe *vippslogin.ProviderError
	if _, err := h.auth.UserExists(t.Context(), kariPhone); !errors.As(err, &pe) || pe.StatusCode != 503 || !errors.Is(err, &vippslogin.ProviderError{}) {
		t.Errorf("503: %v", err)
	}
	h.idp.SetFault(vippstest.UserExists, vippstest.Fault{Status: 400, Body: `{"error":"invalid_request","error_code":"invalid_user"}`})
	if ok, err := h.auth.UserExists(t.Context(), kariPhone); ok || err != nil {
		t.Errorf("invalid_user: %v, %v; want false, nil", ok, err)
	}
}

func TestStartPhoneLoginValidation(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	for _, tc := range []struct {
		name string
		r    vippslogin.PhoneLoginRequest
	}{
		{"no phone number", vippslogin.PhoneLoginRequest{PhoneNumber: " "}},
		{"no country code", vippslogin.PhoneLoginRequest{PhoneNumber: "912 34 567"}},
		{"letters", vippslogin.PhoneLoginRequest{PhoneNumber: "+47 912 CALL ME"}},
		{"plus inside", vippslogin.PhoneLoginRequest{PhoneNumber: "47+91234567"}},
		{"trunk zero", vippslogin.PhoneLoginRequest{PhoneNumber: "+0 91234567890"}},
		{"too short", vippslogin.PhoneLoginRequest{PhoneNumber: "+47 9123"}},
		{"too long", vippslogin.PhoneLoginRequest{PhoneNumber: "+47 9123456789012345"}},
		{"binding message lower case", vippslogin.PhoneLoginRequest{BindingMessage: "abc-12"}},
		{"binding message too short", vippslogin.PhoneLoginRequest{BindingMessage: "AB12"}},
		{"binding message too long", vippslogin.PhoneLoginRequest{BindingMessage: "ABCD-1234"}},
		{"binding message underscore", vippslogin.PhoneLoginRequest{BindingMessage: "AB_12"}},
		{"expiry too short", vippslogin.PhoneLoginRequest{Expiry: 59 * time.Second}},
		{"expiry too long", vippslogin.PhoneLoginRequest{Expiry: 16 * time.Minute}},
		{"nnin", vippslogin.PhoneLoginRequest{Scopes: []string{"openid", "nnin"}}},
		{"bad scope", vippslogin.PhoneLoginRequest{Scopes: []string{"openid name"}}},
		{"redirect not absolute", vippslogin.PhoneLoginRequest{RedirectURI: "/phone/done"}},
		{"redirect over http", vippslogin.PhoneLoginRequest{RedirectURI: "http://shop.example/phone/done"}},
		{"redirect with fragment", vippslogin.PhoneLoginRequest{RedirectURI: "https://shop.example/phone/done#x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.r.PhoneNumber == "" {
				tc.r.PhoneNumber = kariPhone
			}
			pl, err := h.auth.StartPhoneLogin(t.Context(), tc.r)
			if !errors.Is(err, &vippslogin.Error{Err: vippslogin.ErrInvalidRequest, Reason: "phone_login"}) || pl != nil {
				t.Errorf("got %v, %v; want ErrInvalidPhoneLogin", pl, err)
			}
		})
	}
	if n := h.idp.Hits(vippstest.Backchannel); n != 0 {
		t.Errorf("%d requests reached the provider", n)
	}
}

func TestStartPhoneLoginRequest(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	pl := startPhone(t, h, vippslogin.PhoneLoginRequest{
		PhoneNumber:    "0047 912 34 567",
		BindingMessage: "4MZ-CQ3",
		Expiry:         90 * time.Second,
		Scopes:         []string{"name", "delegatedConsents", "name"},
	})
	if pl.PhoneNumber != kariPhone || pl.BindingMessage != "4MZ-CQ3" || pl.Interval != 5*time.Second ||
		!pl.ExpiresAt.Equal(h.clock.Now().Add(90*time.Second)) || pl.RedirectURI != "" {
		t.Errorf("PhoneLogin = %+v", pl)
	}
	l := h.idp.PhoneLogins()[0]
	if l.PhoneNumber != kariPhone || l.BindingMessage != "4MZ-CQ3" || l.Scope != "openid name delegatedConsents" ||
		len(l.Nonce) < 32 || !l.Expires.Equal(pl.ExpiresAt) {
		t.Errorf("the provider saw %+v", l)
	}
	if s := fmt.Sprintf("%v %+v", pl, pl); strings.Contains(s, l.AuthReqID) {
		t.Errorf("PhoneLogin prints its auth_req_id: %s", s)
	}
	hdr := h.idp.LastHeader(vippstest.Backchannel)
	if hdr.Get("Vipps-System-Name") != "testshop" || hdr.Get("Vipps-System-Plugin-Name") != "vippslogin" || !strings.HasPrefix(hdr.Get("Authorization"), "Basic ") {
		t.Errorf("backchannel headers: %v", hdr)
	}

	// Without Scopes, the configured ones, with openid.
	startPhone(t, h, vippslogin.PhoneLoginRequest{PhoneNumber: olaPhone})
	if got := h.idp.PhoneLogins()[1].Scope; got != "openid name email phoneNumber address birthDate" {
		t.Errorf("scope = %q", got)
	}
}

func TestStartPhoneLoginRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var pe *vippslogin.ProviderError
	_, err := h.auth.StartPhoneLogin(t.Context(), vippslogin.PhoneLoginRequest{PhoneNumber: "+47 123 45 678"})
	if !errors.Is(err, vippslogin.ErrUserNotFound) || !errors.As(err, &pe) || pe.ErrorCode != "invalid_user" || pe.StatusCode != 400 {
		t.Errorf("unknown number: %v", err)
	}

	// Vipps answers 429 when too many logins wait for one user.
	for range 5 {
		startPhone(t, h, vippslogin.PhoneLoginRequest{})
	}
	_, err = h.auth.StartPhoneLogin(t.Context(), vippslogin.PhoneLoginRequest{PhoneNumber: kariPhone})
	if !errors.Is(err, vippslogin.ErrTooManyLogins) || !errors.As(err, &pe) || pe.RetryAfter != 30*time.Second {
		t.Errorf("sixth login: %v (%+v)", err, pe)
	}

	for _, tc := range []struct {
		name  string
		fault vippstest.Fault
		want  error
	}{
		{"server error", vippstest.Fault{Status: 500}, &vippslogin.ProviderError{}},
		{"down", vippstest.Fault{Down: true}, &vippslogin.Error{Err: vippslogin.ErrProviderUnavailable, Reason: "backchannel"}},
		{"garbage", vippstest.Fault{Status: 200, Body: "garbage"}, &vippslogin.Error{Err: vippslogin.ErrBadResponse, Reason: "phone_login"}},
		{"no auth_req_id", vippstest.Fault{Status: 200, Body: `{"expires_in":600,"interval":5}`}, &vippslogin.Error{Err: vippslogin.ErrBadResponse, Reason: "phone_login"}},
		{"auth_req_id with a space", vippstest.Fault{Status: 200, Body: `{"auth_req_id":"a b","expires_in":600}`}, &vippslogin.Error{Err: vippslogin.ErrBadResponse, Reason: "phone_login"}},
		{"no expires_in", vippstest.Fault{Status: 200, Body: `{"auth_req_id":"abc"}`}, &vippslogin.Error{Err: vippslogin.ErrBadResponse, Reason: "phone_login"}},
		{"negative interval", vippstest.Fault{Status: 200, Body: `{"auth_req_id":"abc","expires_in":600,"interval":-1}`}, &vippslogin.Error{Err: vippslogin.ErrBadResponse, Reason: "phone_login"}},
		{"old app", vippstest.Fault{Status: 400, Body: `{"error":"invalid_request","error_code":"old_app"}`}, &vippslogin.ProviderError{ErrorCode: "old_app"}},
		{"throttled", vippstest.Fault{Status: 429}, vippslogin.ErrTooManyLogins},
		{"invalid client", vippstest.Fault{Status: 401, Body: `{"error":"invalid_client"}`}, &vippslogin.ProviderError{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.idp.SetFault(vippstest.Backchannel, tc.fault)
			defer h.idp.SetFault(vippstest.Backchannel, vippstest.Fault{})
			pl, err := h.auth.StartPhoneLogin(t.Context(), vippslogin.PhoneLoginRequest{PhoneNumber: olaPhone})
			if !errors.Is(err, tc.want) || pl != nil {
				t.Errorf("got %v, %v; want %v", pl, err, tc.want)
			}
		})
	}

	// A missing interval means 5 seconds, a tiny one 1 second.
	for body, want := range map[string]time.Duration{
		`{"auth_req_id":"abc","expires_in":600}`:                 5 * time.Second,
		`{"auth_req_id":"abc","expires_in":600,"interval":null}`: 5 * time.Second,
		`{"auth_req_id":"abc","expires_in":600,"interval":0.2}`:  time.Second,
	} {
		h.idp.SetFault(vippstest.Backchannel, vippstest.Fault{Status: 200, Body: body})
		pl, err := h.auth.StartPhoneLogin(t.Context(), vippslogin.PhoneLoginRequest{PhoneNumber: olaPhone})
		if err != nil || pl.Interval != want {
			t.Errorf("%s: %+v, %v; want interval %v", body, pl, err, want)
		}
	}
}

func TestWaitPhoneLogin(t *testing.T) {
	t.Parallel()
	inBubble(t, func(t *testing.T, h *harness) {
		pl := startPhone(t, h, vippslogin.PhoneLoginRequest{BindingMessage: "4MZ-CQ3"})
		waits, claims, err := waitPhone(t, h, pl)
		if err != nil {
			t.Fatal(err)
		}
		want := vippstest.DefaultUsers()[0]
		if claims.Subject != want.Sub || claims.Name != want.Name || claims.PhoneNumber != kariPhone || claims.Email != want.Email ||
			claims.AuthTime.IsZero() || claims.SessionID == "" || claims.DelegatedConsents != nil {
			t.Errorf("claims = %+v", claims)
		}
		if !slices.Equal(waits, seconds(5, 5, 5)) || !slices.Equal(pollGaps(t, h), seconds(5, 5, 5)) {
			t.Errorf("waits %v, poll gaps %v; want 5s each", waits, pollGaps(t, h))
		}
		hdr := h.idp.LastHeader(vippstest.Token)
		if hdr.Get("Vipps-System-Name") != "testshop" || !strings.HasPrefix(hdr.Get("Authorization"), "Basic ") {
			t.Errorf("token headers: %v", hdr)
		}
		if _, err := h.auth.WaitPhoneLogin(t.Context(), pl); !errors.Is(err, &vippslogin.Error{Err: vippslogin.ErrInvalidRequest, Reason: "phone_login"}) {
			t.Errorf("second wait: %v, want ErrInvalidPhoneLogin", err)
		}
		if _, err := h.auth.WaitPhoneLogin(t.Context(), nil); !errors.Is(err, &vippslogin.Error{Err: vippslogin.ErrInvalidRequest, Reason: "phone_login"}) {
			t.Errorf("nil login: %v", err)
		}
		if _, err := h.auth.WaitPhoneLogin(t.Context(), &vippslogin.PhoneLogin{}); !errors.Is(err, &vippslogin.Error{Err: vippslogin.ErrInvalidRequest, Reason: "phone_login"}) {
			t.Errorf("zero login: %v", err)
		}
	}, phoneAnswer(vippstest.PhoneApproved, 12*time.Second))
}

func TestWaitPhoneLoginDelegatedConsents(t *testing.T) {
	t.Parallel()
	inBubble(t, func(t *testing.T, h *harness) {
		pl := startPhone(t, h, vippslogin.PhoneLoginRequest{Scopes: []string{"name", "delegatedConsents"}})
		_, claims, err := waitPhone(t, h, pl)
		if err != nil {
			t.Fatal(err)
		}
		dc := claims.DelegatedConsents
		if dc == nil || len(dc.Consents) != 4 || dc.Consents[0].ID != "email" || !dc.Consents[0].Accepted || dc.TermsLinkURL == "" || dc.TimeOfConsent == "" {
			t.Errorf("DelegatedConsents = %+v", dc)
		}
		if claims.Email != "" {
			t.Errorf("email %q without the email scope", claims.Email)
		}
	}, phoneAnswer(vippstest.PhoneApproved, 0))
}

func TestWaitPhoneLoginClientAuth(t *testing.T) {
	t.Parallel()
	for _, method := range []string{"client_secret_basic", "client_secret_post"} {
		t.Run(method, func(t *testing.T) {
			t.Parallel()
			inBubble(t, func(t *testing.T, h *harness) {
				_, claims, err := waitPhone(t, h, startPhone(t, h, vippslogin.PhoneLoginRequest{}))
				if err != nil || claims.Name != "Kari Nordmann" {
					t.Fatalf("%v, %v", claims, err)
				}
				for _, e := range []vippstest.Endpoint{vippstest.Backchannel, vippstest.Token} {
					_, basic := h.idp.LastHeader(e)["Authorization"]
					if basic != (method == "client_secret_basic") {
						t.Errorf("%s: Authorization header sent = %v", e, basic)
					}
				}
			}, phoneAnswer(vippstest.PhoneApproved, 0), options{
				idp:  func(c *vippstest.Config) { c.TokenAuthMethod = method },
				site: func(c *vippslogin.Config) { c.TokenAuthMethod = method },
			})
		})
	}
}

func TestWaitPhoneLoginOutcomes(t *testing.T) {
	t.Parallel()
	t.Run("declined in the app", func(t *testing.T) {
		t.Parallel()
		inBubble(t, func(t *testing.T, h *harness) {
			waits, _, err := waitPhone(t, h, startPhone(t, h, vippslogin.PhoneLoginRequest{}))
			var pe *vippslogin.ProviderError
			if !errors.Is(err, vippslogin.ErrLoginCancelled) || !errors.As(err, &pe) || pe.Code != "access_denied" || !slices.Equal(waits, seconds(5, 5)) {
				t.Errorf("%v after %v", err, waits)
			}
		}, phoneAnswer(vippstest.PhoneDeclined, 7*time.Second))
	})
	t.Run("declined with DeclinePhoneLogin", func(t *testing.T) {
		t.Parallel()
		inBubble(t, func(t *testing.T, h *harness) {
			pl := startPhone(t, h, vippslogin.PhoneLoginRequest{})
			if err := h.idp.DeclinePhoneLogin(kariPhone); err != nil {
				t.Fatal(err)
			}
			if _, _, err := waitPhone(t, h, pl); !errors.Is(err, vippslogin.ErrLoginCancelled) {
				t.Errorf("%v, want ErrPhoneLoginDenied", err)
			}
			if _, err := h.auth.WaitPhoneLogin(t.Context(), pl); !errors.Is(err, &vippslogin.Error{Err: vippslogin.ErrInvalidRequest, Reason: "phone_login"}) {
				t.Errorf("wait after the end: %v", err)
			}
		})
	})
	t.Run("expired at the provider", func(t *testing.T) {
		t.Parallel()
		inBubble(t, func(t *testing.T, h *harness) {
			waits, _, err := waitPhone(t, h, startPhone(t, h, vippslogin.PhoneLoginRequest{Expiry: time.Minute}))
			var pe *vippslogin.ProviderError
			if !errors.Is(err, vippslogin.ErrLoginExpired) || !errors.As(err, &pe) || len(waits) != 12 {
				t.Errorf("%v after %d waits, want expired_token after 12", err, len(waits))
			}
		})
	})
	t.Run("expired with ExpirePhoneLogin", func(t *testing.T) {
		t.Parallel()
		inBubble(t, func(t *testing.T, h *harness) {
			pl := startPhone(t, h, vippslogin.PhoneLoginRequest{})
			if err := h.idp.ExpirePhoneLogin(kariPhone); err != nil {
				t.Fatal(err)
			}
			if _, _, err := waitPhone(t, h, pl); !errors.Is(err, vippslogin.ErrLoginExpired) {
				t.Errorf("%v, want ErrPhoneLoginExpired", err)
			}
		})
	})
	t.Run("pending past ExpiresAt", func(t *testing.T) {
		t.Parallel()
		inBubble(t, func(t *testing.T, h *harness) {
			pl := startPhone(t, h, vippslogin.PhoneLoginRequest{Expiry: time.Minute})
			h.idp.SetFault(vippstest.Token, vippstest.Fault{Status: 400, Body: `{"error":"authorization_pending"}`})
			waits, _, err := waitPhone(t, h, pl)
			var pe *vippslogin.ProviderError
			if !errors.Is(err, vippslogin.ErrLoginExpired) || errors.As(err, &pe) {
				t.Errorf("%v, want our own ErrPhoneLoginExpired", err)
			}
			if n := h.idp.Hits(vippstest.Token); n != 13 || !time.Now().Equal(pl.ExpiresAt.Add(5*time.Second)) || len(waits) != 13 {
				t.Errorf("%d polls, %d waits, stopped %v after ExpiresAt; want 13, 13, 5s", n, len(waits), time.Since(pl.ExpiresAt))
			}
		})
	})
}

func TestWaitPhoneLoginSlowDown(t *testing.T) {
	t.Parallel()
	inBubble(t, func(t *testing.T, h *harness) {
		pl := startPhone(t, h, vippslogin.PhoneLoginRequest{})
		h.idp.SetPollFault(vippstest.PollFault{SlowDown: 2})
		if waits, _, err := waitPhone(t, h, pl); err != nil || !slices.Equal(waits, seconds(5, 10, 15)) {
			t.Errorf("%v after waits %v, want 5s 10s 15s", err, waits)
		}
		// The provider saw the polls spaced as it asked, so it did not slow
		// the client down any more.
		if got := pollGaps(t, h); !slices.Equal(got, seconds(5, 10, 15)) {
			t.Errorf("poll gaps %v", got)
		}
	}, phoneAnswer(vippstest.PhoneApproved, 12*time.Second))
}

func TestWaitPhoneLoginTooManyRequests(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		retryAfter func(now time.Time) string
		want       []time.Duration
	}{
		{"seconds", func(time.Time) string { return "7" }, seconds(5, 7)},
		{"less than the interval", func(time.Time) string { return "2" }, seconds(5, 5)},
		{"HTTP date", func(now time.Time) string { return now.Add(25 * time.Second).UTC().Format(http.TimeFormat) }, seconds(5, 20)},
		{"bounded", func(time.Time) string { return "3600" }, seconds(5, 60)},
		{"none", func(time.Time) string { return "" }, seconds(5, 5)},
		{"garbage", func(time.Time) string { return "soon" }, seconds(5, 5)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			inBubble(t, func(t *testing.T, h *harness) {
				pl := startPhone(t, h, vippslogin.PhoneLoginRequest{})
				h.idp.SetPollFault(vippstest.PollFault{TooManyRequests: 1, RetryAfter: tc.retryAfter(time.Now())})
				waits, _, err := waitPhone(t, h, pl)
				if err != nil || !slices.Equal(waits, tc.want) {
					t.Errorf("%v after waits %v, want %v", err, waits, tc.want)
				}
			}, phoneAnswer(vippstest.PhoneApproved, 0))
		})
	}
}

// A cancelled wait returns at once, in the middle of its wait, and the
// login goes on at the provider.
func TestWaitPhoneLoginCancel(t *testing.T) {
	t.Parallel()
	inBubble(t, func(t *testing.T, h *harness) {
		pl := startPhone(t, h, vippslogin.PhoneLoginRequest{})
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(2*time.Second, cancel) // within the first wait of 5s
		began := time.Now()
		_, err := h.auth.WaitPhoneLogin(ctx, pl)
		if !errors.Is(err, context.Canceled) || time.Since(began) != 2*time.Second {
			t.Errorf("%v after %v, want context.Canceled at the cancel, after 2s", err, time.Since(began))
		}
		if n := h.idp.Hits(vippstest.Token); n != 0 {
			t.Errorf("%d polls before the cancel", n)
		}

		// The login goes on at the provider; a later wait picks it up.
		if _, err := h.idp.ApprovePhoneLogin(kariPhone); err != nil {
			t.Fatal(err)
		}
		if _, claims, err := waitPhone(t, h, pl); err != nil || claims.Name != "Kari Nordmann" {
			t.Errorf("wait after the cancel: %v, %v", claims, err)
		}
	})
}

func TestWaitPhoneLoginOnce(t *testing.T) {
	t.Parallel()
	inBubble(t, func(t *testing.T, h *harness) {
		pl := startPhone(t, h, vippslogin.PhoneLoginRequest{})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			_, err := h.auth.WaitPhoneLogin(ctx, pl)
			done <- err
		}()
		synctest.Wait() // the first wait waits for its first poll
		if _, err := h.auth.WaitPhoneLogin(t.Context(), pl); !errors.Is(err, &vippslogin.Error{Err: vippslogin.ErrInvalidRequest, Reason: "phone_login"}) {
			t.Errorf("second concurrent wait: %v, want ErrInvalidPhoneLogin", err)
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("first wait: %v", err)
		}
	})
}

func TestWaitPhoneLoginTokenFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		fault vippstest.Fault
		polls int
		check func(error) bool
	}{
		{"server error, retried", vippstest.Fault{Status: 500}, 4, func(err error) bool {
			var te *vippslogin.ProviderError
			return errors.As(err, &te) && te.StatusCode == 500 && te.Code == "server_error"
		}},
		{"garbage", vippstest.Fault{Status: 200, Body: "garbage"}, 1, func(err error) bool {
			return errors.Is(err, &vippslogin.Error{Err: vippslogin.ErrBadResponse, Reason: "token"})
		}},
		{"HTML error page", vippstest.Fault{Status: 502, Body: "<html>bad gateway</html>"}, 4, func(err error) bool {
			var te *vippslogin.ProviderError
			return errors.As(err, &te) && te.StatusCode == 502 && te.Code == ""
		}},
		{"invalid client", vippstest.Fault{Status: 401, Body: `{"error":"invalid_client"}`}, 1, func(err error) bool {
			var te *vippslogin.ProviderError
			return errors.As(err, &te) && te.Code == "invalid_client"
		}},
		{"not bearer", vippstest.Fault{Status: 200, Body: `{"access_token":"a","token_type":"mac","id_token":"x.y.z"}`}, 1, func(err error) bool {
			return errors.Is(err, &vippslogin.Error{Err: vippslogin.ErrBadResponse, Reason: "token"})
		}},
		{"no ID token", vippstest.Fault{Status: 200, Body: `{"access_token":"a","token_type":"Bearer"}`}, 1, func(err error) bool {
			return errors.Is(err, &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "malformed"})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			inBubble(t, func(t *testing.T, h *harness) {
				pl := startPhone(t, h, vippslogin.PhoneLoginRequest{})
				h.idp.SetFault(vippstest.Token, tc.fault)
				waits, _, err := waitPhone(t, h, pl)
				if !tc.check(err) || h.idp.Hits(vippstest.Token) != tc.polls {
					t.Errorf("%v after %d polls, want %d", err, h.idp.Hits(vippstest.Token), tc.polls)
				}
				// A failure is retried at the next interval.
				for _, w := range waits {
					if w != 5*time.Second {
						t.Errorf("waits %v, want 5s each", waits)
						break
					}
				}
			}, phoneAnswer(vippstest.PhoneApproved, 0))
		})
	}

	// A failure or two in a row does no harm.
	t.Run("two 503s", func(t *testing.T) {
		t.Parallel()
		inBubble(t, func(t *testing.T, h *harness) {
			pl := startPhone(t, h, vippslogin.PhoneLoginRequest{})
			h.idp.SetFault(vippstest.Token, vippstest.Fault{Status: 503})
			done := make(chan error, 1)
			go func() {
				_, err := h.auth.WaitPhoneLogin(t.Context(), pl)
				done <- err
			}()
			time.Sleep(11 * time.Second) // polls at 5s and 10s fail
			if n := h.idp.Hits(vippstest.Token); n != 2 {
				t.Fatalf("%d polls in 11s, want 2", n)
			}
			h.idp.SetFault(vippstest.Token, vippstest.Fault{})
			if err := <-done; err != nil || h.idp.Hits(vippstest.Token) != 3 {
				t.Errorf("after two 503s: %v after %d polls, want the claims at the third", err, h.idp.Hits(vippstest.Token))
			}
		}, phoneAnswer(vippstest.PhoneApproved, 0))
	})
}

func TestWaitPhoneLoginBadTokens(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		idToken  func(h *harness, header, claims map[string]any)
		userinfo func(claims map[string]any)
		want     error
	}{
		{name: "wrong nonce", idToken: func(_ *harness, _, c map[string]any) { c["nonce"] = "someone else's" }, want: &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "nonce"}},
		// merchant-initiated-login-integration.md, "Complete login in the
		// Vipps or MobilePay app", step 2, shows no claims of the polled ID
		// token (its id_token is a placeholder), so a nonce is checked only
		// when the token carries one.
		{name: "empty nonce", idToken: func(_ *harness, _, c map[string]any) { c["nonce"] = "" }},
		{name: "no nonce", idToken: func(_ *harness, _, c map[string]any) { delete(c, "nonce") }},
		{name: "nonce not a string", idToken: func(_ *harness, _, c map[string]any) { c["nonce"] = 42 }, want: &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "nonce"}},
		{name: "wrong audience", idToken: func(_ *harness, _, c map[string]any) { c["aud"] = []any{"another-client"} }, want: &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "audience"}},
		{name: "expired", idToken: func(h *harness, _, c map[string]any) { c["exp"] = h.clock.Now().Add(-time.Hour).Unix() }, want: &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "expired"}},
		{name: "another auth_req_id", idToken: func(_ *harness, _, c map[string]any) { c["auth_req_id"] = "another" }, want: &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "auth_req_id"}},
		{name: "two auth_req_ids", idToken: func(h *harness, _, c map[string]any) {
			c["auth_req_id"] = h.idp.PhoneLogins()[0].AuthReqID
			c["authReqId"] = "another"
		}, want: &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "auth_req_id"}},
		{name: "its own auth_req_id", idToken: func(h *harness, _, c map[string]any) { c["authReqId"] = h.idp.PhoneLogins()[0].AuthReqID }},
		{name: "userinfo of another user", userinfo: func(c map[string]any) { c["sub"] = "someone-else" }, want: &vippslogin.Error{Err: vippslogin.ErrBadResponse, Reason: "subject"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			inBubble(t, func(t *testing.T, h *harness) {
				hooks := vippstest.Hooks{Userinfo: tc.userinfo}
				if tc.idToken != nil {
					hooks.IDToken = func(header, claims map[string]any) string {
						tc.idToken(h, header, claims)
						return ""
					}
				}
				h.idp.SetHooks(hooks)
				_, claims, err := waitPhone(t, h, startPhone(t, h, vippslogin.PhoneLoginRequest{}))
				if tc.want == nil {
					if err != nil || claims.Name != "Kari Nordmann" {
						t.Errorf("%v, %v; want the claims", claims, err)
					}
					return
				}
				if !errors.Is(err, tc.want) || claims != nil {
					t.Errorf("%v, %v; want %v", claims, err, tc.want)
				}
			}, phoneAnswer(vippstest.PhoneApproved, 0))
		})
	}
}

// phoneSite serves the redirect URI of redirect logins: it finishes them
// with FinishPhoneLogin and answers with the user's name.
type phoneSite struct {
	*httptest.Server
	mu   sync.Mutex
	errs []error
}

func newPhoneSite(t *testing.T, h *harness) *phoneSite {
	t.Helper()
	s := &phoneSite{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, err := h.auth.FinishPhoneLogin(r.Context(), r.URL.Query().Get("code"))
		if err != nil {
			s.mu.Lock()
			s.errs = append(s.errs, err)
			s.mu.Unlock()
			vippslogin.WriteError(w, r, err)
			return
		}
		_, _ = io.WriteString(w, "Welcome, "+claims.Name)
	}))
	t.Cleanup(s.Close)
	h.idp.AddRedirectURI(s.URL + "/phone/done")
	return s
}

func (s *phoneSite) lastErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.errs) == 0 {
		return nil
	}
	return s.errs[len(s.errs)-1]
}

// open opens the link as the phone's browser would, and returns the status
// and body.
func (s *phoneSite) open(t *testing.T, link string) (int, string) {
	t.Helper()
	resp, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestFinishPhoneLogin(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	site := newPhoneSite(t, h)
	var algs []any
	var mu sync.Mutex
	h.idp.SetHooks(vippstest.Hooks{IDToken: func(header, _ map[string]any) string {
		mu.Lock()
		algs = append(algs, header["alg"])
		mu.Unlock()
		return ""
	}})
	pl := startPhone(t, h, vippslogin.PhoneLoginRequest{RedirectURI: site.URL + "/phone/done", Scopes: []string{"name", "delegatedConsents"}})
	if pl.RedirectURI != site.URL+"/phone/done" {
		t.Errorf("RedirectURI = %q", pl.RedirectURI)
	}
	if _, err := h.auth.WaitPhoneLogin(t.Context(), pl); !errors.Is(err, &vippslogin.Error{Err: vippslogin.ErrInvalidRequest, Reason: "phone_login"}) {
		t.Errorf("waiting for a redirect login: %v", err)
	}
	link, err := h.idp.ApprovePhoneLogin(kariPhone)
	if err != nil {
		t.Fatal(err)
	}
	if status, body := site.open(t, link); status != 200 || body != "Welcome, Kari Nordmann" {
		t.Fatalf("%d %q (error %v)", status, body, site.lastErr())
	}
	mu.Lock()
	if !slices.Equal(algs, []any{"ES256"}) {
		t.Errorf("ID token algorithms %v, want ES256", algs)
	}
	mu.Unlock()
	if got := h.idp.LastHeader(vippstest.Token).Get("Vipps-System-Name"); got != "testshop" {
		t.Errorf("Vipps-System-Name on the code exchange = %q", got)
	}

	// The code works once.
	if status, _ := site.open(t, link); status < 400 {
		t.Errorf("replayed code: %d", status)
	}
	var te *vippslogin.ProviderError
	if !errors.As(site.lastErr(), &te) || te.Code != "invalid_grant" {
		t.Errorf("replayed code: %v", site.lastErr())
	}
	for _, code := range []string{"", strings.Repeat("x", 5000), "a\x00b"} {
		if _, err := h.auth.FinishPhoneLogin(t.Context(), code); !errors.Is(err, vippslogin.ErrBadCallback) {
			t.Errorf("code %.10q: %v, want ErrBadCallback", code, err)
		}
	}
}

func TestFinishPhoneLoginClientAuth(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{
		idp:  func(c *vippstest.Config) { c.TokenAuthMethod = "client_secret_post" },
		site: func(c *vippslogin.Config) { c.TokenAuthMethod = "client_secret_post" },
	})
	site := newPhoneSite(t, h)
	startPhone(t, h, vippslogin.PhoneLoginRequest{RedirectURI: site.URL + "/phone/done"})
	link, err := h.idp.ApprovePhoneLogin(kariPhone)
	if err != nil {
		t.Fatal(err)
	}
	if status, body := site.open(t, link); status != 200 {
		t.Fatalf("%d %q (error %v)", status, body, site.lastErr())
	}
	if _, basic := h.idp.LastHeader(vippstest.Token)["Authorization"]; basic {
		t.Error("Authorization header sent with client_secret_post")
	}
}

func TestFinishPhoneLoginRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		idToken func(h *harness, header, claims map[string]any) string
		advance time.Duration
		want    []error
	}{
		// merchant-initiated-login-integration.md, "Redirect to browser",
		// step 3: the prose and the decoded example name the claim
		// auth_req_id, the encoded example (the mock's shape) authReqId.
		{name: "auth_req_id, as in Vipps' prose", idToken: func(_ *harness, _, c map[string]any) string {
			c["auth_req_id"] = c["authReqId"]
			delete(c, "authReqId")
			return ""
		}},
		{name: "no auth_req_id", idToken: func(_ *harness, _, c map[string]any) string { delete(c, "authReqId"); return "" },
			want: []error{vippslogin.ErrInvalidIDToken, &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "auth_req_id"}}},
		{name: "unknown auth_req_id", idToken: func(_ *harness, _, c map[string]any) string {
			c["authReqId"] = "VYGaaAMRkI6SyAm_uIywhxsN2K0"
			return ""
		},
			want: []error{vippslogin.ErrInvalidIDToken, &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "auth_req_id"}}},
		// A token that carries a nonce is held to it: here Kari's login's
		// nonce, in a token naming Ola's login.
		{name: "another started login's auth_req_id, with this login's nonce", idToken: func(h *harness, _, c map[string]any) string {
			for _, l := range h.idp.PhoneLogins() {
				switch l.PhoneNumber {
				case olaPhone:
					c["authReqId"] = l.AuthReqID
				case kariPhone:
					c["nonce"] = l.Nonce
				}
			}
			return ""
		}, want: []error{vippslogin.ErrInvalidIDToken, &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "nonce"}}},
		{name: "wrong audience", idToken: func(_ *harness, _, c map[string]any) string { c["aud"] = "another-client"; return "" },
			want: []error{vippslogin.ErrInvalidIDToken, &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "audience"}}},
		{name: "signed RS256 with the provider's key", idToken: func(h *harness, _, c map[string]any) string {
			return h.idp.Sign(nil, c)
		}},
		{name: "signed HS256 with the public key", idToken: func(h *harness, _, c map[string]any) string {
			kid, _ := h.idp.CurrentKey()
			return vippstest.HMACToken(map[string]any{"kid": kid}, c, h.idp.PublicKeyPEM())
		}, want: []error{vippslogin.ErrInvalidIDToken, &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "algorithm"}}},
		{name: "after the login expired", advance: 66 * time.Second, want: []error{vippslogin.ErrLoginExpired}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			site := newPhoneSite(t, h)
			redirect := site.URL + "/phone/done"
			startPhone(t, h, vippslogin.PhoneLoginRequest{PhoneNumber: olaPhone, RedirectURI: redirect})
			startPhone(t, h, vippslogin.PhoneLoginRequest{RedirectURI: redirect, Expiry: time.Minute})
			if tc.idToken != nil {
				h.idp.SetHooks(vippstest.Hooks{IDToken: func(header, claims map[string]any) string {
					return tc.idToken(h, header, claims)
				}})
			}
			link, err := h.idp.ApprovePhoneLogin(kariPhone)
			if err != nil {
				t.Fatal(err)
			}
			h.clock.Advance(tc.advance)
			status, body := site.open(t, link)
			if tc.want == nil {
				if status != 200 {
					t.Errorf("%d %q (error %v)", status, body, site.lastErr())
				}
				return
			}
			if status < 400 {
				t.Fatalf("status %d, want a refusal", status)
			}
			for _, want := range tc.want {
				if !errors.Is(site.lastErr(), want) {
					t.Errorf("error %v, want %v", site.lastErr(), want)
				}
			}
		})
	}
}

// A point-of-sale terminal logs a customer in from their phone number: the
// customer confirms in the Vipps MobilePay app, after comparing the code it
// shows with the one on the terminal.
func ExampleClient_StartPhoneLogin() {
	// The mock provider stands in for Vipps; its simulated user confirms at
	// once.
	idp, err := vippstest.New(vippstest.Config{
		PhoneLoginInterval: time.Second,
		PhoneApproval: func(vippstest.PhoneLogin) vippstest.PhoneAnswer {
			return vippstest.PhoneAnswer{Decision: vippstest.PhoneApproved}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer idp.Close()

	auth, err := vippslogin.New(vippslogin.Config{
		ClientID:     idp.ClientID(),
		ClientSecret: vippslogin.Secret(idp.ClientSecret()),
		Issuer:       idp.Issuer(), // or Environment: vippslogin.Test
		BaseURL:      "http://localhost",
		Sessions:     scs.New(),
		Scopes:       []string{"openid", "name", "phoneNumber"},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer auth.Close()

	ctx := context.Background()
	if ok, err := auth.UserExists(ctx, "+47 912 34 567"); err != nil || !ok {
		log.Fatal("no such user: ", err)
	}
	login, err := auth.StartPhoneLogin(ctx, vippslogin.PhoneLoginRequest{
		PhoneNumber:    "+47 912 34 567",
		BindingMessage: "4MZ-CQ3",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("Confirm in the app that it shows", login.BindingMessage)
	claims, err := auth.WaitPhoneLogin(ctx, login)
	switch {
	case errors.Is(err, vippslogin.ErrLoginCancelled):
		fmt.Println("The customer declined.")
	case err != nil:
		log.Fatal(err)
	default:
		fmt.Println("Hello,", claims.Name, claims.PhoneNumber)
	}
	// Output:
	// Confirm in the app that it shows 4MZ-CQ3
	// Hello, Kari Nordmann 4791234567
}

// A site that hands phone-login errors to WriteError gets pages a person
// understands.
func TestPhoneLoginErrorPages(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{vippslogin.ErrLoginCancelled, http.StatusBadRequest, "access_denied"},
		{vippslogin.ErrLoginExpired, http.StatusBadRequest, "login_expired"},
		{fmt.Errorf("%w: %w", vippslogin.ErrInvalidIDToken, &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "auth_req_id"}), http.StatusBadGateway, "login_failed"},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/phone/done?code=x", nil)
		req.Header.Set("Accept", "application/json")
		vippslogin.WriteError(rec, req, tc.err)
		var body struct{ Error string }
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		if rec.Code != tc.status || body.Error != tc.code {
			t.Errorf("%v: %d %q, want %d %q", tc.err, rec.Code, body.Error, tc.status, tc.code)
		}
	}
}
