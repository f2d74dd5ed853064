package vippslogin

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
)

// How the Client calls the provider: the headers Vipps asks for on every
// call, no redirects to another origin, and the one check of the URLs it
// calls or sends people to.

// SystemInfo fills the four Vipps-System-* headers that Vipps asks every
// integration to send on every call to its APIs (developers/http-headers.md,
// "HTTP headers": required for plugins and partners, strongly recommended
// for everyone), here discovery, JWKS, token, userinfo and the rest. They
// are always sent. Each value is at most 30 printable ASCII characters.
type SystemInfo struct {
	// Name is the name of the site or shop system, e.g. "acme-shop".
	// Default: the last element of the program's main module path, from
	// its build information ("shop" for github.com/acme/shop).
	Name string
	// Version is the site's version. Default: the main module's version
	// from the build information, else its VCS revision (12 hex digits,
	// "+dirty" when modified), else "devel".
	Version string
	// PluginName names the integration. Default: "vippslogin".
	PluginName string
	// PluginVersion is the integration's version. Default: this package's
	// version when PluginName is the default.
	PluginVersion string
}

// systemHeaders fills in System's defaults and makes the headers of every
// call to the provider.
func (s *settings) systemHeaders() error {
	if s.System.PluginName == "" {
		s.System.PluginName = "vippslogin"
		if s.System.PluginVersion == "" {
			s.System.PluginVersion = pluginVersion
		}
	}
	if s.System.Name == "" || s.System.Version == "" {
		name, version := buildSystem()
		s.System.Name = cmp.Or(s.System.Name, name)
		s.System.Version = cmp.Or(s.System.Version, version)
	}
	s.headers = http.Header{}
	for _, h := range []struct{ name, value string }{
		{"Vipps-System-Name", s.System.Name},
		{"Vipps-System-Version", s.System.Version},
		{"Vipps-System-Plugin-Name", s.System.PluginName},
		{"Vipps-System-Plugin-Version", s.System.PluginVersion},
	} {
		if h.value == "" {
			continue
		}
		if len(h.value) > 30 || !printableASCII(h.value) {
			return configErr("System", "%s %q must be 1 to 30 printable ASCII characters", h.name, h.value)
		}
		s.headers.Set(h.name, h.value)
	}
	if msn := s.MerchantSerialNumber; msn != "" {
		if len(msn) > 12 || strings.Trim(msn, "0123456789") != "" {
			return configErr("MerchantSerialNumber", "%q must be digits only", msn)
		}
		s.headers.Set("Merchant-Serial-Number", msn)
	}
	return nil
}

// newHTTPClient returns a copy of base (or of a zero client) that sends
// headers with every request and follows no redirect to another origin.
//
// It sets no Timeout: every call to the provider has a context that ends
// after Config.HTTPTimeout. A Client.Timeout would end it too, but over a
// transport that net/http does not know, such as headerTransport, it costs
// two goroutines and a timer per call.
func newHTTPClient(base *http.Client, headers http.Header) *http.Client {
	hc := http.Client{}
	if base != nil {
		hc = *base
	}
	hc.Transport = &headerTransport{base: hc.Transport, headers: headers}
	hc.CheckRedirect = sameOrigin(hc.CheckRedirect)
	return &hc
}

// sameOrigin refuses a redirect of a call to the provider to another
// origin, before next (the site's own rule, or Go's default of at most 10
// redirects) has its say: net/http drops Authorization there, but not the
// headers Vipps' access token API takes its keys in (client_id,
// client_secret, Ocp-Apim-Subscription-Key), nor a form's client_secret.
func sameOrigin(next func(*http.Request, []*http.Request) error) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if from := via[0].URL; req.URL.Scheme != from.Scheme || req.URL.Host != from.Host {
			return fmt.Errorf("vippslogin: %s redirected to another origin, %s; not followed", from.Host, safeText(req.URL.Host))
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("vippslogin: stopped after 10 redirects")
		}
		return nil
	}
}

// buildSystem names the program and its version from its build
// information, for the Vipps-System-Name and -Version headers, as printable
// ASCII of at most 30 characters.
func buildSystem() (name, version string) {
	bi, _ := debug.ReadBuildInfo()
	return systemOf(bi)
}

// systemOf is buildSystem for the build information bi, which may be nil.
func systemOf(bi *debug.BuildInfo) (name, version string) {
	name, version = "go-program", "devel"
	if bi == nil {
		return name, version
	}
	path := bi.Main.Path
	if path == "" || path == "command-line-arguments" {
		path = bi.Path
	}
	if i := strings.LastIndex(path, "/"); i >= 0 {
		path = path[i+1:]
	}
	name = cmp.Or(headerValue(path), name)
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return name, cmp.Or(headerValue(v), version)
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision" && len(s.Value) >= 12:
			rev = s.Value[:12]
		case s.Key == "vcs.modified" && s.Value == "true":
			dirty = "+dirty"
		}
	}
	if rev != "" {
		version = rev + dirty
	}
	return name, version
}

// headerValue keeps the printable ASCII of s, at most 30 characters of it.
func headerValue(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return -1
		}
		return r
	}, s)
	return strings.TrimSpace(s[:min(len(s), 30)])
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// headerTransport adds fixed headers to every request it carries.
type headerTransport struct {
	base    http.RoundTripper
	headers http.Header
}

func (t *headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r2 := r.Clone(r.Context())
	for k, v := range t.headers {
		r2.Header[k] = v
	}
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(r2)
}

// checkURL reports what is wrong with s as the URL of the provider's
// endpoints, of the issuer, or of a page the provider sends a user to: it
// must be absolute, https (http only on a loopback host, for development),
// and have no user info or fragment.
func checkURL(s string) error {
	if s == "" {
		return errors.New("missing")
	}
	u, err := url.Parse(s)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "":
		return errors.New("not an absolute URL")
	case u.User != nil:
		return errors.New("has user info")
	case u.Fragment != "" || strings.Contains(s, "#"):
		return errors.New("has a fragment")
	case u.Scheme == "https", u.Scheme == "http" && isLoopback(u.Hostname()):
		return nil
	}
	return errors.New("not https (http only for localhost)")
}

// isLoopback reports whether host is localhost or a loopback address.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
