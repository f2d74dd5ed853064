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
	"strings"
	"sync"
	"testing"
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
				t.Errorf("8 digits without country code: %v, want ErrInvalidRequest (phone_login)", err)
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
				t.Errorf("got %v, %v; want ErrInvalidRequest (phone_login)", pl, err)
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

// wantRefused fails t unless the site refused the request (status) with an
// error that is each of want.
func (s *phoneSite) wantRefused(t *testing.T, status int, want []error) {
	t.Helper()
	if status < 400 {
		t.Fatalf("status %d, want a refusal", status)
	}
	for _, w := range want {
		if !errors.Is(s.lastErr(), w) {
			t.Errorf("error %v, want %v", s.lastErr(), w)
		}
	}
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
