package main

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vippslogin/vippslogin"
	"github.com/vippslogin/vippslogin/vippstest"
)

// runWith runs the program with args and the environment env, and returns
// its output and error.
func runWith(ctx context.Context, env map[string]string, args ...string) (string, error) {
	var out bytes.Buffer
	err := run(ctx, args, func(k string) string { return env[k] }, &out)
	return out.String(), err
}

func wantOutput(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

// noTokens checks that out shows no token: no JWT and no access token.
func noTokens(t *testing.T, out string) {
	t.Helper()
	if strings.Contains(out, "eyJ") || regexp.MustCompile(`[A-Za-z0-9_-]{40,}`).MatchString(out) {
		t.Errorf("output shows something token-like:\n%s", out)
	}
}

func TestDevModeApprove(t *testing.T) {
	t.Parallel()
	out, err := runWith(t.Context(), nil, "-mock-delay", "0s", "-binding-message", "ABC-123")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	wantOutput(t, out,
		"Dev mode",
		"Checking that +4791234567 has Vipps MobilePay... yes.",
		`[simulated phone +4791234567] The app shows "ABC-123"; the user will confirm`,
		"check that it shows ABC-123",
		"name:  Kari Nordmann",
		"phone: +4791234567",
		"email: kari.nordmann@example.com (verified)",
		"sub:   c3a9f3e2-5d1b-4f0e-9a6c-2b7d8e4f1a05",
	)
	noTokens(t, out)
}

func TestDevModeOtherUserAndScopes(t *testing.T) {
	t.Parallel()
	out, err := runWith(t.Context(), nil, "-mock-delay", "0s", "-phone", "0047 987 65 432", "-scopes", "openid name", "-expiry", "2m")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	wantOutput(t, out, "name:  Ola Bjørnstad Hansen")
	if strings.Contains(out, "email:") || strings.Contains(out, "phone:") {
		t.Errorf("claims beyond the scopes:\n%s", out)
	}
	if !regexp.MustCompile(`check that it shows [A-Z]{3}-[0-9]{3}\.`).MatchString(out) {
		t.Errorf("no random binding message:\n%s", out)
	}
}

func TestDevModeDecline(t *testing.T) {
	t.Parallel()
	out, err := runWith(t.Context(), nil, "-mock-answer", "decline", "-mock-delay", "0s")
	if !errors.Is(err, vippslogin.ErrLoginCancelled) {
		t.Fatalf("%v, want ErrLoginCancelled\n%s", err, out)
	}
	wantOutput(t, out, "the user will decline", "The user declined the login.")
	if strings.Contains(out, "Logged in") {
		t.Errorf("logged in after a decline:\n%s", out)
	}
}

func TestDevModeUnknownNumber(t *testing.T) {
	t.Parallel()
	out, err := runWith(t.Context(), nil, "-phone", "+47 123 45 678")
	if !errors.Is(err, vippslogin.ErrUserNotFound) {
		t.Fatalf("%v, want ErrUserNotFound\n%s", err, out)
	}
	wantOutput(t, out, "Checking that +47 123 45 678 has Vipps MobilePay... no.")
	if strings.Contains(out, "simulated phone") {
		t.Errorf("a login started for an unknown number:\n%s", out)
	}
}

// cancelWriter cancels once the output says that the program waits, as
// someone pressing Ctrl-C then would.
type cancelWriter struct {
	bytes.Buffer
	cancel    context.CancelFunc
	cancelled bool
}

func (w *cancelWriter) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("Waiting until")) {
		w.cancelled = true
		w.cancel()
	}
	return w.Buffer.Write(p)
}

// A cancel stops the wait. The simulated user answers after an hour, so a
// wait that went on past the cancel would outlast the test's timeout rather
// than end in context.Canceled.
func TestDevModeCancel(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	out := &cancelWriter{cancel: cancel}
	err := run(ctx, []string{"-mock-delay", "1h"}, func(string) string { return "" }, out)
	if !errors.Is(err, context.Canceled) || !out.cancelled {
		t.Fatalf("%v (cancelled: %v); want context.Canceled after the cancel\n%s", err, out.cancelled, out.String())
	}
	wantOutput(t, out.String(), "Stopped waiting.")
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want error
	}{
		{"only the client id", map[string]string{"VIPPS_CLIENT_ID": "x"}, nil, nil},
		{"only the secret", map[string]string{"VIPPS_CLIENT_SECRET": "x"}, nil, nil},
		{"credentials without a phone", map[string]string{"VIPPS_CLIENT_ID": "x", "VIPPS_CLIENT_SECRET": "y"}, nil, nil},
		{"unknown flag", nil, []string{"-nope"}, nil},
		{"argument", nil, []string{"4791234567"}, nil},
		{"mock answer", nil, []string{"-mock-answer", "maybe"}, nil},
		{"binding message", nil, []string{"-binding-message", "hello"}, &vippslogin.Error{Err: vippslogin.ErrInvalidRequest, Reason: "phone_login"}},
		{"phone without country code", nil, []string{"-phone", "91234567"}, &vippslogin.Error{Err: vippslogin.ErrInvalidRequest, Reason: "phone_login"}},
		{"expiry", nil, []string{"-expiry", "30s"}, &vippslogin.Error{Err: vippslogin.ErrInvalidRequest, Reason: "phone_login"}},
		{"token auth", map[string]string{"VIPPS_TOKEN_AUTH": "private_key_jwt"}, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runWith(t.Context(), tc.env, tc.args...)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Errorf("%v, want an error (%v)\n%s", err, tc.want, out)
			}
			if strings.Contains(out, "Logged in") {
				t.Errorf("logged in:\n%s", out)
			}
		})
	}
}

// With credentials the program logs in at VIPPS_ISSUER: here a mock
// provider standing in for Vipps' test environment.
func TestWithCredentials(t *testing.T) {
	t.Parallel()
	p, err := vippstest.New(vippstest.Config{
		TokenAuthMethod:    "client_secret_post",
		PhoneLoginInterval: time.Second,
		PhoneApproval: func(vippstest.PhoneLogin) vippstest.PhoneAnswer {
			return vippstest.PhoneAnswer{Decision: vippstest.PhoneApproved}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	env := map[string]string{
		"VIPPS_CLIENT_ID":     p.ClientID(),
		"VIPPS_CLIENT_SECRET": p.ClientSecret(),
		"VIPPS_ISSUER":        p.Issuer(),
		"VIPPS_TOKEN_AUTH":    "client_secret_post",
	}
	out, err := runWith(t.Context(), env, "-phone", "+47 412 34 567", "-binding-message", "POS-1")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	wantOutput(t, out, "name:  Åse Øvrebø", "(not verified)")
	if strings.Contains(out, "Dev mode") || strings.Contains(out, p.ClientSecret()) {
		t.Errorf("output:\n%s", out)
	}
	if got := p.LastHeader(vippstest.Backchannel).Get("Vipps-System-Name"); got != "vippslogin-example-phone" {
		t.Errorf("Vipps-System-Name = %q", got)
	}
	noTokens(t, out)
}

func TestRandomBindingMessage(t *testing.T) {
	t.Parallel()
	re := regexp.MustCompile(`^[A-Z0-9\-]{5,8}$`)
	seen := map[string]bool{}
	for range 100 {
		m := randomBindingMessage()
		if !re.MatchString(m) {
			t.Fatalf("binding message %q does not match %s", m, re)
		}
		seen[m] = true
	}
	if len(seen) < 90 {
		t.Errorf("only %d different binding messages in 100", len(seen))
	}
}
