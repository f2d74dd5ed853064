package vippslogin

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/alexedwards/scs/v2"
)

// pluginVersion is this package's version, sent to Vipps in the
// Vipps-System-Plugin-Version header unless [SystemInfo] says otherwise.
const pluginVersion = "0.2.0"

// Environment selects one of the two Vipps MobilePay Login environments.
// Test and production have separate keys and separate lists of redirect URIs.
type Environment string

const (
	// Test is the Vipps MobilePay test environment, whose issuer is
	// https://apitest.vipps.no/access-management-1.0/access/.
	Test Environment = "test"
	// Production is the Vipps MobilePay production environment, whose
	// issuer is https://api.vipps.no/access-management-1.0/access/.
	Production Environment = "production"
)

// issuer returns the OpenID Connect issuer of the environment, or "". It
// ends in a slash, as Vipps' issuer does, and is compared byte for byte
// with the issuer that discovery and the ID tokens name.
func (e Environment) issuer() string {
	switch e {
	case Test:
		return "https://apitest.vipps.no" + vippsIssuerPath
	case Production:
		return "https://api.vipps.no" + vippsIssuerPath
	}
	return ""
}

// Secret is a string that is never printed: it formats, logs and marshals as
// "[redacted]". Use it for the client secret.
type Secret string

// String returns "[redacted]".
func (Secret) String() string { return "[redacted]" }

// GoString returns "[redacted]", so %#v does not print the secret either.
func (Secret) GoString() string { return `"[redacted]"` }

// LogValue makes slog print "[redacted]".
func (Secret) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// MarshalText returns "[redacted]", so encoders do not print the secret.
func (Secret) MarshalText() ([]byte, error) { return []byte("[redacted]"), nil }

// Config configures a [Client]. [New] checks every field and fills in the
// defaults; it never touches the network.
type Config struct {
	// ClientID is the client_id of the sales unit, from the Vipps MobilePay
	// portal. Required.
	ClientID string

	// ClientSecret is the client_secret of the sales unit. Required.
	ClientSecret Secret

	// Environment selects the Vipps test or production environment.
	// Required unless Issuer is set.
	Environment Environment

	// Issuer, when set, overrides Environment with the issuer URL of any
	// OpenID Connect provider (the mock provider of package vippstest, for
	// one). Discovery is read from Issuer + ".well-known/openid-configuration"
	// (a slash is put between them when Issuer has none); set ProviderName
	// too. Default: the Environment's issuer.
	Issuer string

	// ProviderName is how the package's pages and JSON messages name the
	// provider to people ("Logging in with Vipps MobilePay is not possible
	// right now"); set it when Issuer names another provider. At most 64
	// bytes of printable text. The login button keeps its Vipps or
	// MobilePay brand. Default: "Vipps MobilePay".
	ProviderName string

	// BaseURL is the public origin of the site, with an optional path prefix
	// when the site lives below one, e.g. "https://shop.example". The redirect
	// URI is BaseURL + AuthPath + "/callback"; register exactly that in the
	// portal. Cookies are Secure exactly when BaseURL is https. It must be
	// https, except for localhost and loopback addresses. Required.
	BaseURL string

	// AuthPath is where the site mounts [Client.Handler], below BaseURL's
	// path. Default: "/auth".
	AuthPath string

	// Sessions is the site's scs session manager. Logged-in state lives in its
	// sessions, and pending logins in its Store as records of their own,
	// under keys no session cookie can name. Any scs store works (memory,
	// Redis, Postgres, ...). Required.
	Sessions *scs.SessionManager

	// SessionStore overrides where the logged-in state lives.
	// Default: the session of Sessions, under the key "vippslogin.claims".
	SessionStore SessionStore

	// Scopes are the scopes to ask for; "openid" must be one of them. Vipps'
	// names are camelCase: openid name email phoneNumber address birthDate
	// nin. With Environment, New refuses a scope Vipps does not document,
	// suggesting the one meant ("phone": did you mean "phoneNumber"?); with
	// Issuer, any scope is sent as it is. Default: openid.
	Scopes []string

	// TokenAuthMethod is how to authenticate to the token endpoint, as
	// OpenID Connect names it: "client_secret_basic" sends the client id
	// and secret in an HTTP Basic Authorization header, "client_secret_post"
	// in the form body. Vipps accepts only the method configured for the
	// sales unit in the portal, where client_secret_post must first be
	// switched on. Default: "client_secret_basic".
	TokenAuthMethod string

	// HTTPClient makes the calls to the provider. Its Transport is wrapped to
	// add the Vipps-System-* headers. Each call is a request with the
	// context of the request or call that needs it (only the key set's
	// background refresh has one of its own), so a tracing transport, such
	// as otelhttp.NewTransport, traces the calls as part of the site's
	// request. Default: a client using http.DefaultTransport.
	HTTPClient *http.Client

	// HTTPTimeout bounds each call to the provider, end to end.
	// Default: 10 seconds.
	HTTPTimeout time.Duration

	// ClockSkew is how far the provider's clock may be from ours when the ID
	// token's exp, iat and nbf are checked. At most 5 minutes.
	// Default: 1 minute.
	ClockSkew time.Duration

	// PendingLoginTTL is how long a started login may take before its
	// callback is refused as expired. Default: 10 minutes.
	PendingLoginTTL time.Duration

	// MaxPendingLogins is how many logins one browser may have pending at
	// once (one per tab); starting one more forgets the oldest. Default: 5.
	MaxPendingLogins int

	// LoginsPerMinute bounds how fast one source (see ClientIP) may start
	// logins: a burst of this many, then this many a minute. Beyond it the
	// login route answers that source 429 with Retry-After, while every
	// other source goes on, so that one client flooding the login route
	// locks nobody else out. Default: 60.
	LoginsPerMinute int

	// ClientIP returns the address a request comes from, for
	// LoginsPerMinute. An IPv6 address counts by its /64, and its /56 and
	// /48 may start 4 and 16 times as many logins; an IPv4 address by
	// itself, and its /24 8 times as many. Default: the
	// address of the connection (r.RemoteAddr). Behind a reverse proxy
	// every request comes from the proxy: return the client's address as
	// your proxy reports it, from a header that it sets and that clients
	// cannot (the last X-Forwarded-For entry your proxy appended, say), or
	// put a middleware that does this in front, such as chi's RealIP when
	// the proxy sets X-Real-IP.
	ClientIP func(r *http.Request) string

	// MaxStartedLogins bounds the pending logins one Client keeps, however
	// many sources start them: it is how many logins may start per
	// PendingLoginTTL. Beyond it the login route answers 503 until older
	// ones expire, so that many sources together cannot fill the session
	// store either. A login counts for a sixtieth of the TTL longer than
	// its record lives. Default: 100000.
	MaxStartedLogins int

	// DefaultReturnTo is where a login ends when it names no return_to, and
	// where a logout ends. Default: BaseURL's path, or "/".
	DefaultReturnTo string

	// System fills the Vipps-System-* headers.
	System SystemInfo

	// MerchantSerialNumber, when set, is sent in the Merchant-Serial-Number
	// header on every call to the provider. Partners must send the
	// merchant's number. Default: none.
	MerchantSerialNumber string

	// Partner, when set, logs in with a partner's keys on behalf of the
	// merchant whose sales unit MerchantSerialNumber names; ClientID and
	// ClientSecret are then not needed. See [PartnerKeys].
	Partner *PartnerKeys

	// AfterLogin, when set, runs after the login is verified and the session
	// renewed, before the claims are saved. It can link the Vipps user to the
	// site's own user registry (r gives it the renewed session; see package
	// vippslogin/linking), send the user elsewhere than the login's return_to
	// with [SetReturnTo], or refuse the login by returning an error, which
	// reaches ErrorHandler wrapped (the default page answers 403, or 503
	// with "try again" for an error that wraps ErrSessionStore, such as a
	// failed lookup in the site's own store); the session is then
	// destroyed, so a refused login leaves nobody logged in. It must not
	// write a response to w. It also runs for logins that come back in
	// another browser, once that browser confirms. The default error page
	// answers an error from AfterLogin with 403, refusing the login, but one
	// that wraps [ErrSessionStore] (as linking.ErrLookup does, when the site's
	// user table cannot be reached) with 503 "try again". Default: none.
	AfterLogin func(w http.ResponseWriter, r *http.Request, c *Claims) error

	// ErrorHandler answers every failed request, after the error has been
	// logged to Logger (Retry-After is already set on 429 and 503 answers
	// to a login start). err can be tested with errors.Is and errors.As
	// against this package's errors; r carries ProviderName in its context
	// for WriteError and [PageFor], which gives the default page's texts to
	// the site's own templates. Default: [WriteError]: a human page for
	// browsers, JSON for API clients.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)

	// Logger receives the package's records, each written with the
	// context of its request: the steps of a login and the calls to the
	// provider at DEBUG, a finished login at INFO, and a failed request at
	// INFO, WARN or ERROR (see "Logs and metrics" in the package
	// documentation). Default: slog.Default().
	Logger *slog.Logger

	// Metrics are called as logins start, finish and fail and as the
	// provider is called, for the site's counters and histograms.
	// Default: none.
	Metrics Metrics

	// Now is the clock. Default: time.Now.
	Now func() time.Time
}

func configErr(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidConfig, field, fmt.Sprintf(format, args...))
}

// settings is a validated Config with its derived values.
type settings struct {
	Config
	issuer       string
	discoveryURL string
	base         *url.URL
	basePath     string // BaseURL's path without a trailing slash; "" for the root
	redirectURI  string
	loginPath    string // site-absolute path of the login route
	secure       bool
	vippsPath    bool // the issuer has Vipps' path: a Vipps environment, or its mock
	headers      http.Header
}

// vippsIssuerPath is the path of the issuer of both Vipps environments.
const vippsIssuerPath = "/access-management-1.0/access/"

// strictScopes reports whether New and StartPhoneLogin refuse a scope
// Vipps does not document: with a Vipps environment, not with Issuer.
func (s *settings) strictScopes() bool { return s.Issuer == "" }

func (cfg Config) validate() (*settings, error) {
	s := &settings{Config: cfg}
	if cfg.Partner == nil {
		if strings.TrimSpace(cfg.ClientID) == "" {
			return nil, configErr("ClientID", "is empty; copy it from the Vipps MobilePay portal")
		}
		if cfg.ClientSecret == "" {
			return nil, configErr("ClientSecret", "is empty; copy it from the Vipps MobilePay portal")
		}
	}

	s.issuer = cfg.Issuer
	if s.issuer == "" {
		s.issuer = cfg.Environment.issuer()
		if s.issuer == "" && cfg.Environment == "" {
			return nil, configErr("Environment", "is not set; use vippslogin.Test or vippslogin.Production, or set Issuer")
		}
	}
	if cfg.Environment != "" && cfg.Environment.issuer() == "" {
		return nil, configErr("Environment", "%q is neither vippslogin.Test nor vippslogin.Production", safeText(string(cfg.Environment)))
	}
	if err := checkURL(s.issuer); err != nil {
		return nil, configErr("Issuer", "%q: %v", s.issuer, err)
	}
	iss, _ := url.Parse(s.issuer)
	if iss.RawQuery != "" || iss.ForceQuery {
		return nil, configErr("Issuer", "%q must not have a query", s.issuer)
	}
	s.discoveryURL = strings.TrimSuffix(s.issuer, "/") + "/.well-known/openid-configuration"
	if s.ProviderName == "" {
		s.ProviderName = defaultProviderName
	} else if len(s.ProviderName) > 64 || strings.TrimSpace(s.ProviderName) == "" || safeText(s.ProviderName) != s.ProviderName {
		return nil, configErr("ProviderName", "%q must be 1 to 64 bytes of printable text", s.ProviderName)
	}

	if cfg.BaseURL == "" {
		return nil, configErr("BaseURL", "is empty; set the public origin of the site, e.g. https://shop.example")
	}
	// The redirect URI is made from it: Vipps refuses one with a fragment,
	// and allows http only for localhost.
	if err := checkURL(cfg.BaseURL); err != nil {
		return nil, configErr("BaseURL", "%q: %v; use the public origin of the site, such as https://shop.example", cfg.BaseURL, err)
	}
	base, _ := url.Parse(cfg.BaseURL)
	if base.RawQuery != "" || base.ForceQuery {
		return nil, configErr("BaseURL", "must not have a query")
	}
	s.secure = base.Scheme == "https"
	s.base = base
	s.basePath = strings.TrimSuffix(base.EscapedPath(), "/")

	if s.AuthPath == "" {
		s.AuthPath = "/auth"
	}
	if !strings.HasPrefix(s.AuthPath, "/") || strings.HasSuffix(s.AuthPath, "/") || strings.ContainsAny(s.AuthPath, "?#%\\ ") || strings.Contains(s.AuthPath, "//") {
		return nil, configErr("AuthPath", "%q must be a path like /auth: leading slash, no trailing slash, no query", s.AuthPath)
	}
	s.redirectURI = base.Scheme + "://" + base.Host + s.basePath + s.AuthPath + "/callback"
	s.loginPath = s.basePath + s.AuthPath + "/login"

	if cfg.Sessions == nil {
		return nil, configErr("Sessions", "is nil; pass the site's *scs.SessionManager (scs.New())")
	}
	if cfg.Sessions.Store == nil || cfg.Sessions.Codec == nil {
		return nil, configErr("Sessions", "has a nil Store or Codec")
	}
	if s.SessionStore == nil {
		s.SessionStore = scsSession{cfg.Sessions}
	}

	if len(s.Scopes) == 0 {
		s.Scopes = []string{"openid"}
	}
	s.vippsPath = iss.Path == vippsIssuerPath
	for _, sc := range s.Scopes {
		if err := checkScope(sc, s.strictScopes(), false); err != nil {
			return nil, configErr("Scopes", "%v", err)
		}
	}
	if !slices.Contains(s.Scopes, "openid") {
		return nil, configErr("Scopes", "must include \"openid\"")
	}
	s.Scopes = append([]string(nil), s.Scopes...)

	switch s.TokenAuthMethod {
	case "":
		s.TokenAuthMethod = clientSecretBasic
	case clientSecretBasic, clientSecretPost:
	default:
		return nil, configErr("TokenAuthMethod", "%q is not client_secret_basic or client_secret_post", safeText(s.TokenAuthMethod))
	}

	if s.HTTPTimeout == 0 {
		s.HTTPTimeout = 10 * time.Second
	} else if s.HTTPTimeout < 0 || s.HTTPTimeout > 2*time.Minute {
		return nil, configErr("HTTPTimeout", "%v is outside 0 to 2m", s.HTTPTimeout)
	}
	if s.ClockSkew == 0 {
		s.ClockSkew = time.Minute
	} else if s.ClockSkew < 0 || s.ClockSkew > 5*time.Minute {
		return nil, configErr("ClockSkew", "%v is outside 0 to 5m", s.ClockSkew)
	}
	if s.PendingLoginTTL == 0 {
		s.PendingLoginTTL = 10 * time.Minute
	} else if s.PendingLoginTTL < 30*time.Second || s.PendingLoginTTL > time.Hour {
		return nil, configErr("PendingLoginTTL", "%v is outside 30s to 1h", s.PendingLoginTTL)
	}
	if s.MaxPendingLogins == 0 {
		s.MaxPendingLogins = 5
	} else if s.MaxPendingLogins < 1 || s.MaxPendingLogins > 20 {
		return nil, configErr("MaxPendingLogins", "%d is outside 1 to 20", s.MaxPendingLogins)
	}
	if s.LoginsPerMinute == 0 {
		s.LoginsPerMinute = 60
	} else if s.LoginsPerMinute < 1 {
		return nil, configErr("LoginsPerMinute", "%d must be positive", s.LoginsPerMinute)
	}
	if s.ClientIP == nil {
		s.ClientIP = remoteSource
	}
	if s.MaxStartedLogins == 0 {
		s.MaxStartedLogins = 100000
	} else if s.MaxStartedLogins < 1 {
		return nil, configErr("MaxStartedLogins", "%d must be positive", s.MaxStartedLogins)
	}
	if s.DefaultReturnTo == "" {
		s.DefaultReturnTo = s.basePath + "/"
	} else if _, err := cleanReturnTo(s.DefaultReturnTo); err != nil {
		return nil, configErr("DefaultReturnTo", "%q must be a path on this site, like /account", s.DefaultReturnTo)
	}

	if err := s.systemHeaders(); err != nil {
		return nil, err
	}

	if s.Partner != nil {
		if err := s.validatePartner(iss); err != nil {
			return nil, err
		}
	}

	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.ErrorHandler == nil {
		s.ErrorHandler = WriteError
	}

	s.HTTPClient = newHTTPClient(cfg.HTTPClient, s.headers)
	return s, nil
}
