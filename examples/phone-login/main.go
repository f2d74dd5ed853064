// Command phone-login logs a user in from their phone number ("login from
// phone number", OpenID Connect CIBA), as a point-of-sale terminal or a
// call-centre system does: it checks that the number belongs to a Vipps
// MobilePay user, starts the login, shows the binding message that the
// user sees in the app too, waits while the user confirms in the app, and
// prints what Vipps shared about the user. It never prints tokens.
//
// Without credentials it runs in dev mode: it starts a mock of the Vipps
// MobilePay login provider inside the process (package vippstest), whose
// simulated phone confirms the login after a moment, so it works on a laptop
// without network or a Vipps account:
//
//	go run ./examples/phone-login
//	go run ./examples/phone-login -phone "+47 987 65 432" -binding-message ABC-123
//	go run ./examples/phone-login -mock-answer decline
//
// With the client id and secret of a sales unit in the Vipps MobilePay test
// environment that has login from phone number switched on, it logs in with
// Vipps, and the test user's app gets the push message:
//
//	VIPPS_CLIENT_ID=... VIPPS_CLIENT_SECRET=... go run ./examples/phone-login -phone "+47 ..."
//
// Ctrl-C stops waiting. Vipps allows login from phone number only where the
// user is not on a web page or in an app (points of sale, vending machines,
// call centres), and may withdraw it from those who use it elsewhere.
//
// # Flags
//
//	-phone            the user's mobile number with its country code;
//	                  required with credentials, and in dev mode the first
//	                  test user's (+47 912 34 567) by default
//	-binding-message  5 to 8 of A-Z, 0-9 and '-' shown in the app and here;
//	                  default: a random one
//	-scopes           default "openid name phoneNumber email"
//	-expiry           how long the user has to answer, 1m to 15m; default
//	                  the provider's (10m)
//	-mock-answer      dev mode: approve (default) or decline, as the
//	                  simulated user
//	-mock-delay       dev mode: how long the simulated user takes; default 2s
//
// # Environment
//
//	VIPPS_CLIENT_ID      client id of the sales unit; leave it and
//	VIPPS_CLIENT_SECRET  the client secret both empty for dev mode
//	VIPPS_ISSUER         issuer URL; default the Vipps test environment.
//	                     Ignored in dev mode.
//	VIPPS_TOKEN_AUTH     client_secret_basic (default) or client_secret_post
package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"

	"github.com/vippslogin/vippslogin"
	"github.com/vippslogin/vippslogin/vippstest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		switch {
		case errors.Is(err, flag.ErrHelp):
		case errors.Is(err, context.Canceled), errors.Is(err, vippslogin.ErrLoginCancelled),
			errors.Is(err, vippslogin.ErrLoginExpired):
			// run has said what happened.
		default:
			fmt.Fprintln(os.Stderr, "phone-login:", err)
		}
		os.Exit(1)
	}
}

// options are the command line flags.
type options struct {
	phone, bindingMessage, scopes string
	expiry                        time.Duration
	mockAnswer                    string
	mockDelay                     time.Duration
}

func parseFlags(args []string, out io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("phone-login", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.phone, "phone", "", "the user's mobile number with its country code, e.g. \"+47 912 34 567\"")
	fs.StringVar(&o.bindingMessage, "binding-message", "", "code shown in the app and here: 5 to 8 of A-Z, 0-9 and '-' (default: a random one)")
	fs.StringVar(&o.scopes, "scopes", "openid name phoneNumber email", "space-separated scopes")
	fs.DurationVar(&o.expiry, "expiry", 0, "how long the user has to answer, 1m to 15m (default: the provider's)")
	fs.StringVar(&o.mockAnswer, "mock-answer", "approve", "dev mode: what the simulated user does: approve or decline")
	fs.DurationVar(&o.mockDelay, "mock-delay", 2*time.Second, "dev mode: how long the simulated user takes to answer")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.mockAnswer != "approve" && o.mockAnswer != "decline" {
		return o, fmt.Errorf("-mock-answer=%q is not approve or decline", o.mockAnswer)
	}
	if o.mockDelay < 0 {
		return o, errors.New("-mock-delay must not be negative")
	}
	if o.bindingMessage == "" {
		o.bindingMessage = randomBindingMessage()
	}
	return o, nil
}

// run logs a user in from their phone number and prints the claims to out.
// getenv is os.Getenv outside tests. It returns an error wrapping
// vippslogin.ErrUserNotFound, ErrLoginCancelled or ErrLoginExpired
// when the login did not happen, and ctx's error when ctx ends first.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	out := &syncWriter{w: stdout} // the simulated phone prints from the mock's goroutines
	o, err := parseFlags(args, out)
	if err != nil {
		return err
	}
	clientID, secret := getenv("VIPPS_CLIENT_ID"), getenv("VIPPS_CLIENT_SECRET")
	if (clientID == "") != (secret == "") {
		return errors.New("set both VIPPS_CLIENT_ID and VIPPS_CLIENT_SECRET to log in with Vipps MobilePay, or neither to use the embedded mock provider")
	}
	method := cmp.Or(getenv("VIPPS_TOKEN_AUTH"), "client_secret_basic")
	if method != "client_secret_basic" && method != "client_secret_post" {
		return fmt.Errorf("VIPPS_TOKEN_AUTH=%q is not client_secret_basic or client_secret_post", method)
	}
	// A Client wants a site's BaseURL and session manager even when it is
	// used only for login from phone number, which needs neither.
	sessions := scs.New()
	sessions.Store = memstore.NewWithCleanupInterval(0)
	cfg := vippslogin.Config{
		ClientID:        clientID,
		ClientSecret:    vippslogin.Secret(secret),
		Environment:     vippslogin.Test,
		Issuer:          getenv("VIPPS_ISSUER"),
		BaseURL:         "http://localhost",
		Sessions:        sessions,
		Scopes:          strings.Fields(o.scopes),
		TokenAuthMethod: method,
		System:          vippslogin.SystemInfo{Name: "vippslogin-example-phone"},
		Logger:          slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}

	if clientID == "" {
		mock, err := startMock(o, cfg.TokenAuthMethod, out)
		if err != nil {
			return err
		}
		defer mock.Close()
		cfg.ClientID, cfg.ClientSecret, cfg.Issuer = mock.ClientID(), vippslogin.Secret(mock.ClientSecret()), mock.Issuer()
		if o.phone == "" {
			o.phone = "+" + vippstest.DefaultUsers()[0].PhoneNumber
		}
		fmt.Fprintln(out, "Dev mode: VIPPS_CLIENT_ID and VIPPS_CLIENT_SECRET are empty, so this logs in against the embedded mock provider (vippstest). No real phone gets a message.")
	} else if o.phone == "" {
		return errors.New("-phone is required when logging in with Vipps MobilePay")
	}

	auth, err := vippslogin.New(cfg)
	if err != nil {
		return err
	}
	defer auth.Close()

	fmt.Fprintf(out, "Checking that %s has Vipps MobilePay... ", o.phone)
	exists, err := auth.UserExists(ctx, o.phone)
	if err != nil {
		fmt.Fprintln(out)
		return err
	}
	if !exists {
		fmt.Fprintln(out, "no.")
		return fmt.Errorf("%s: %w", o.phone, vippslogin.ErrUserNotFound)
	}
	fmt.Fprintln(out, "yes.")

	login, err := auth.StartPhoneLogin(ctx, vippslogin.PhoneLoginRequest{
		PhoneNumber:    o.phone,
		BindingMessage: o.bindingMessage,
		Expiry:         o.expiry,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Ask the user to confirm the login in the app, and to check that it shows %s.\n", login.BindingMessage)
	fmt.Fprintf(out, "Waiting until %s (Ctrl-C to stop)...\n", login.ExpiresAt.Format(time.TimeOnly))

	claims, err := auth.WaitPhoneLogin(ctx, login)
	switch {
	case errors.Is(err, vippslogin.ErrLoginCancelled):
		fmt.Fprintln(out, "The user declined the login.")
		return err
	case errors.Is(err, vippslogin.ErrLoginExpired):
		fmt.Fprintln(out, "The user did not answer in time.")
		return err
	case ctx.Err() != nil:
		fmt.Fprintln(out, "Stopped waiting.")
		return ctx.Err()
	case err != nil:
		return err
	}
	printClaims(out, claims)
	return nil
}

// startMock starts the mock provider, whose simulated user answers every
// login as o says.
func startMock(o options, method string, out io.Writer) (*vippstest.Provider, error) {
	decision, verb := vippstest.PhoneApproved, "confirm"
	if o.mockAnswer == "decline" {
		decision, verb = vippstest.PhoneDeclined, "decline"
	}
	return vippstest.New(vippstest.Config{
		TokenAuthMethod:    method,
		PhoneLoginInterval: time.Second,
		PhoneApproval: func(l vippstest.PhoneLogin) vippstest.PhoneAnswer {
			fmt.Fprintf(out, "[simulated phone +%s] The app shows %q; the user will %s in %v.\n", l.PhoneNumber, l.BindingMessage, verb, o.mockDelay)
			return vippstest.PhoneAnswer{Decision: decision, After: o.mockDelay}
		},
	})
}

// printClaims prints what Vipps shared, never tokens.
func printClaims(out io.Writer, c *vippslogin.Claims) {
	fmt.Fprintln(out, "Logged in:")
	line := func(label, value string) {
		if value != "" {
			fmt.Fprintf(out, "  %-6s %s\n", label+":", value)
		}
	}
	line("name", c.Name)
	if c.PhoneNumber != "" {
		line("phone", "+"+c.PhoneNumber)
	}
	if c.Email != "" {
		verified := " (not verified)"
		if c.EmailVerified {
			verified = " (verified)"
		}
		line("email", c.Email+verified)
	}
	line("sub", c.Subject)
}

// randomBindingMessage returns a code like "KQX-427".
func randomBindingMessage() string {
	const letters, digits = "ACDEFHJKLMNPRTUVWXY", "23456789" // none that look alike
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	var s strings.Builder
	for i, v := range b {
		if i < 3 {
			s.WriteByte(letters[int(v)%len(letters)])
			continue
		}
		if i == 3 {
			s.WriteByte('-')
		}
		s.WriteByte(digits[int(v)%len(digits)])
	}
	return s.String()
}

// syncWriter serialises writes to w.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
