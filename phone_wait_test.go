package vippslogin_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vippslogin/vippslogin"
	"github.com/vippslogin/vippslogin/vippstest"
)

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
			t.Errorf("second wait: %v, want ErrInvalidRequest (phone_login)", err)
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
				t.Errorf("%v, want ErrLoginCancelled", err)
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
				t.Errorf("%v, want ErrLoginExpired", err)
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
				t.Errorf("%v, want our own ErrLoginExpired", err)
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
			t.Errorf("second concurrent wait: %v, want ErrInvalidRequest (phone_login)", err)
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

// The polled variant: merchant-initiated-login-integration.md, "Complete
// login in the Vipps or MobilePay app", step 2, shows its ID token only as a
// placeholder ("eyaksjdhksajhdjkashdjksadjnn91283hedhn..."), so it documents
// no claims. It is held to the redirect variant's rules: nonce and msn are
// checked when present, not required.
func TestWaitPhoneLoginNonceAndMSN(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		partner bool
		edit    func(id, nonce string, c map[string]any)
		want    error
	}{
		{name: "no nonce", edit: func(_, _ string, c map[string]any) { delete(c, "nonce") }},
		{name: "the nonce sent", edit: func(string, string, map[string]any) {}},
		{name: "a wrong nonce", edit: func(_, _ string, c map[string]any) { c["nonce"] = "someone else's" }, want: &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "nonce"}},
		{name: "partner keys, no msn", partner: true, edit: func(_, _ string, c map[string]any) { delete(c, "msn") }},
		{name: "partner keys, another msn", partner: true, edit: func(_, _ string, c map[string]any) { c["msn"] = "999999" }, want: &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "audience"}},
		{name: "its own auth_req_id as authReqId", edit: func(id, _ string, c map[string]any) { c["authReqId"] = id }},
		{name: "another auth_req_id", edit: func(id, _ string, c map[string]any) { c["auth_req_id"] = id + "x" }, want: &vippslogin.Error{Err: vippslogin.ErrInvalidIDToken, Reason: "auth_req_id"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := []options{phoneAnswer(vippstest.PhoneApproved, 0)}
			if tc.partner {
				opts = append(opts, partnerOptions(nil))
			}
			inBubble(t, func(t *testing.T, h *harness) {
				h.idp.SetHooks(vippstest.Hooks{IDToken: func(_, claims map[string]any) string {
					id, nonce := kariLogin(h)
					tc.edit(id, nonce, claims)
					return ""
				}})
				_, claims, err := waitPhone(t, h, startPhone(t, h, vippslogin.PhoneLoginRequest{}))
				if tc.want == nil {
					if err != nil || claims.Name != "Kari Nordmann" {
						t.Errorf("%v, %v; want the claims", claims, err)
					}
					return
				}
				if !errors.Is(err, tc.want) || !errors.Is(err, vippslogin.ErrInvalidIDToken) || claims != nil {
					t.Errorf("%v, %v; want %v", claims, err, tc.want)
				}
			}, opts...)
		})
	}
}

// WaitPhoneLogin retries only a network failure or a 5xx answer. Partner
// keys that the access token API refuses mid-wait are neither: the wait
// ends at the first refusal, with one call to the access token API, as it
// did before the token endpoint client was shared.
func TestWaitPhoneLoginRefusedPartnerKeysNotRetried(t *testing.T) {
	inBubble(t, func(t *testing.T, h *harness) {
		pl := startPhone(t, h, vippslogin.PhoneLoginRequest{})
		h.clock.Advance(2 * time.Minute) // a token is not discarded in its first minute
		h.idp.ExpirePartnerTokens()
		h.idp.SetFault(vippstest.AccessToken, vippstest.Fault{Status: http.StatusUnauthorized, Body: "{}"})
		before := h.idp.Hits(vippstest.AccessToken)
		_, _, err := waitPhone(t, h, pl)
		if !errors.Is(err, &vippslogin.Error{Err: vippslogin.ErrProviderUnavailable, Reason: "access_token"}) {
			t.Fatalf("WaitPhoneLogin = %v, want the access token API's refusal", err)
		}
		if n := h.idp.Hits(vippstest.AccessToken) - before; n != 1 {
			t.Errorf("the access token API refused the keys and was asked %d times, want 1", n)
		}
	}, partnerOptions(nil), phoneAnswer(vippstest.PhoneApproved, 0))
}
