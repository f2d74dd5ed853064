package vippslogin_test

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/alexedwards/scs/v2"
	"github.com/vippslogin/vippslogin"
)

func validConfig() vippslogin.Config {
	return vippslogin.Config{
		ClientID:     "client-id",
		ClientSecret: "client-secret",
		Environment:  vippslogin.Test,
		BaseURL:      "https://shop.example",
		Sessions:     scs.New(),
		Logger:       slog.New(slog.DiscardHandler),
	}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name   string
		change func(*vippslogin.Config)
		want   string // part of the error message; "" for no error
	}{
		{"valid", func(*vippslogin.Config) {}, ""},
		{"production", func(c *vippslogin.Config) { c.Environment = vippslogin.Production }, ""},
		{"issuer override", func(c *vippslogin.Config) { c.Environment = ""; c.Issuer = "https://idp.example/" }, ""},
		{"localhost http", func(c *vippslogin.Config) { c.BaseURL = "http://localhost:8080" }, ""},
		{"loopback http", func(c *vippslogin.Config) { c.BaseURL = "http://127.0.0.1:8080" }, ""},
		{"base path", func(c *vippslogin.Config) { c.BaseURL = "https://shop.example/store/" }, ""},
		{"no client id", func(c *vippslogin.Config) { c.ClientID = " " }, "ClientID"},
		{"no secret", func(c *vippslogin.Config) { c.ClientSecret = "" }, "ClientSecret"},
		{"no environment", func(c *vippslogin.Config) { c.Environment = "" }, "Environment"},
		{"bad environment", func(c *vippslogin.Config) { c.Environment = "staging"; c.Issuer = "https://idp.example/" }, "Environment"},
		{"http issuer", func(c *vippslogin.Config) { c.Issuer = "http://idp.example/" }, "Issuer"},
		{"relative issuer", func(c *vippslogin.Config) { c.Issuer = "/idp" }, "Issuer"},
		{"provider name", func(c *vippslogin.Config) { c.ProviderName = "Acme ID" }, ""},
		{"provider name with a line break", func(c *vippslogin.Config) { c.ProviderName = "Acme\nID" }, "ProviderName"},
		{"blank provider name", func(c *vippslogin.Config) { c.ProviderName = "  " }, "ProviderName"},
		{"long provider name", func(c *vippslogin.Config) { c.ProviderName = strings.Repeat("x", 65) }, "ProviderName"},
		{"no base URL", func(c *vippslogin.Config) { c.BaseURL = "" }, "BaseURL"},
		{"relative base URL", func(c *vippslogin.Config) { c.BaseURL = "shop.example" }, "BaseURL"},
		{"http base URL", func(c *vippslogin.Config) { c.BaseURL = "http://shop.example" }, "https"},
		{"fragment", func(c *vippslogin.Config) { c.BaseURL = "https://shop.example/#x" }, "fragment"},
		{"empty fragment", func(c *vippslogin.Config) { c.BaseURL = "https://shop.example/#" }, "fragment"},
		{"query", func(c *vippslogin.Config) { c.BaseURL = "https://shop.example/?a=b" }, "query"},
		{"user info", func(c *vippslogin.Config) { c.BaseURL = "https://u:p@shop.example" }, "user"},
		{"ftp", func(c *vippslogin.Config) { c.BaseURL = "ftp://shop.example" }, "https"},
		{"auth path without slash", func(c *vippslogin.Config) { c.AuthPath = "auth" }, "AuthPath"},
		{"auth path trailing slash", func(c *vippslogin.Config) { c.AuthPath = "/auth/" }, "AuthPath"},
		{"auth path root", func(c *vippslogin.Config) { c.AuthPath = "/" }, "AuthPath"},
		{"no sessions", func(c *vippslogin.Config) { c.Sessions = nil }, "Sessions"},
		{"scopes without openid", func(c *vippslogin.Config) { c.Scopes = []string{"name"} }, "openid"},
		{"scope with space", func(c *vippslogin.Config) { c.Scopes = []string{"openid", "name email"} }, "scope"},
		{"empty scope", func(c *vippslogin.Config) { c.Scopes = []string{"openid", ""} }, "scope"},
		{"token auth", func(c *vippslogin.Config) { c.TokenAuthMethod = "private_key_jwt" }, "TokenAuthMethod"},
		{"negative timeout", func(c *vippslogin.Config) { c.HTTPTimeout = -1 }, "HTTPTimeout"},
		{"huge skew", func(c *vippslogin.Config) { c.ClockSkew = 10 * 60e9 }, "ClockSkew"},
		{"short ttl", func(c *vippslogin.Config) { c.PendingLoginTTL = 1e9 }, "PendingLoginTTL"},
		{"too many pending", func(c *vippslogin.Config) { c.MaxPendingLogins = 100 }, "MaxPendingLogins"},
		{"default return to", func(c *vippslogin.Config) { c.DefaultReturnTo = "//evil.example" }, "DefaultReturnTo"},
		{"long system name", func(c *vippslogin.Config) { c.System.Name = strings.Repeat("x", 31) }, "Vipps-System-Name"},
		{"system name newline", func(c *vippslogin.Config) { c.System.Name = "a\r\nX-Evil: 1" }, "Vipps-System-Name"},
		{"30-char system name", func(c *vippslogin.Config) { c.System.Name = strings.Repeat("x", 30) }, ""},
		{"msn letters", func(c *vippslogin.Config) { c.MerchantSerialNumber = "12ab" }, "MerchantSerialNumber"},
		{"msn", func(c *vippslogin.Config) { c.MerchantSerialNumber = "123456" }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validConfig()
			tt.change(&cfg)
			_, err := vippslogin.New(cfg)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, vippslogin.ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v, want an ErrInvalidConfig naming %q", err, tt.want)
			}
		})
	}
}

func TestRedirectURI(t *testing.T) {
	tests := []struct{ base, authPath, want string }{
		{"https://shop.example", "", "https://shop.example/auth/callback"},
		{"https://shop.example/", "", "https://shop.example/auth/callback"},
		{"https://shop.example/store", "/login", "https://shop.example/store/login/callback"},
		{"http://localhost:8080", "", "http://localhost:8080/auth/callback"},
	}
	for _, tt := range tests {
		cfg := validConfig()
		cfg.BaseURL, cfg.AuthPath = tt.base, tt.authPath
		c, err := vippslogin.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.RedirectURI(); got != tt.want {
			t.Errorf("RedirectURI(%q, %q) = %q, want %q", tt.base, tt.authPath, got, tt.want)
		}
	}
}

func TestEnvironmentIssuers(t *testing.T) {
	if got := "https://apitest.vipps.no/access-management-1.0/access/"; got != "https://apitest.vipps.no/access-management-1.0/access/" {
		t.Errorf("Test.Issuer() = %q", got)
	}
	if got := "https://api.vipps.no/access-management-1.0/access/"; got != "https://api.vipps.no/access-management-1.0/access/" {
		t.Errorf("Production.Issuer() = %q", got)
	}
}

func TestSecretIsRedacted(t *testing.T) {
	s := vippslogin.Secret("hunter2-very-secret")
	var buf syncBuffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("cfg", "secret", s)
	for _, got := range []string{fmt.Sprint(s), fmt.Sprintf("%v %s %#v %+v", s, s, s, s), buf.String(), fmt.Sprintf("%+v", validConfig())} {
		if strings.Contains(got, "hunter2") || strings.Contains(got, "client-secret") {
			t.Errorf("secret printed: %s", got)
		}
	}
}

// With a Vipps environment, New refuses a scope Vipps does not document
// (login-api/api-guide/core-concepts.md, "Scopes"), suggesting the one
// meant; with Issuer, any scope is sent as it is.
func TestScopesCheckedForVipps(t *testing.T) {
	tests := []struct {
		scope string
		want  string // part of the error; "" for none
	}{
		{"phoneNumber", ""},
		{"delegatedConsents", "only for login from phone number"},
		{"api_version_2", ""},
		{"phone", `did you mean "phoneNumber"`},
		{"phone_number", `did you mean "phoneNumber"`},
		{"birthdate", `did you mean "birthDate"`},
		{"Email", `did you mean "email"`},
		{"profile", `did you mean "name"`},
		{"adress", `did you mean "address"`},
		{"nnin", `did you mean "nin"`},
		{"xyzzy", "set Issuer"},
	}
	for _, tc := range tests {
		t.Run(tc.scope, func(t *testing.T) {
			cfg := validConfig()
			cfg.Scopes = []string{"openid", tc.scope}
			_, err := vippslogin.New(cfg)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if !errors.Is(err, vippslogin.ErrInvalidConfig) || !strings.Contains(err.Error(), "Scopes") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an ErrInvalidConfig on Scopes saying %s", err, tc.want)
			}

			cfg.Environment, cfg.Issuer = "", "https://idp.example/"
			if _, err := vippslogin.New(cfg); err != nil {
				t.Errorf("with Issuer: %v, want any scope accepted", err)
			}
		})
	}
}
