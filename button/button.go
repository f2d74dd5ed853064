// Package button renders the "Log in with Vipps" (or MobilePay) button as a
// plain link for html/template pages, in English or Norwegian, with [CSS]
// as its stylesheet. It needs nothing but the URL that starts the login,
// usually vippslogin's Client.LoginURL.
package button

import (
	"errors"
	"fmt"
	"html/template"
	"net/url"
	"strings"
)

// Brand is the app a login button names. Vipps and MobilePay are one
// service with one login: Vipps is the brand in Norway and Sweden,
// MobilePay in Denmark and Finland.
type Brand int

const (
	// Vipps: an orange (#FF5B24) button, "Log in with Vipps".
	Vipps Brand = iota
	// MobilePay: a blue (#5A78FF) button, "Log in with MobilePay".
	MobilePay
)

// String returns the brand's name as it is written: "Vipps" or
// "MobilePay".
func (b Brand) String() string {
	switch b {
	case Vipps:
		return "Vipps"
	case MobilePay:
		return "MobilePay"
	}
	return fmt.Sprintf("Brand(%d)", int(b))
}

// Options choose the look of the button [HTML] renders.
type Options struct {
	// Brand is the app the button names.
	// Default: Vipps.
	Brand Brand

	// Language is the BCP 47 tag of the button's text: "nb", "nn" and
	// "no" (with any subtags) give "Logg inn med Vipps", other tags
	// "Log in with Vipps". Pass vippslogin.Language(r) to match the
	// language of vippslogin's error pages.
	// Default: English.
	Language string

	// Rounded gives the button fully round ends, like the rounded
	// variant of the official buttons.
	// Default: slightly rounded corners.
	Rounded bool
}

// HTML returns the markup of a "Log in with Vipps" (or "Logg inn med
// Vipps", or MobilePay) button that links to loginURL, for use in an
// html/template page: register it as a template function, or put its result
// in the page's data. It is a plain link, so it works without JavaScript:
//
//	<a class="vippslogin-button vippslogin-vipps" href="/auth/login?return_to=%2Forders" lang="nb">Logg inn med Vipps</a>
//
// The link gets its look (the brand's colour, white bold text in the
// site's own font, as Vipps MobilePay's text guidelines ask) from the
// classes in [CSS], which the page must include. Classes, not style
// attributes, because style attributes need 'unsafe-inline' in the page's
// Content-Security-Policy, and because a style attribute cannot style
// :hover and :focus-visible.
//
// loginURL is usually vippslogin's Client.LoginURL. It must be a path on the site
// ("/auth/login?return_to=%2Forders") or an absolute http or https URL
// without user info; anything else (javascript:, data:, "//host", a URL
// with surrounding spaces or control characters) is refused with an error,
// and then the template that called HTML stops with that error. The
// URL is escaped as html/template escapes any href.
//
// Vipps MobilePay also offer the official button as a web component,
// <vipps-mobilepay-button brand="vipps" language="no" verb="login">, drawn
// by their script (see
// https://developer.vippsmobilepay.com/docs/buttons-and-widgets/buttons/).
// It follows brand changes by itself, but it needs their script (and a
// script-src for it in the site's CSP), and it is a button, not a link:
// the site's own script must start the login when it is clicked.
// HTML needs neither.
func HTML(loginURL string, opts Options) (template.HTML, error) {
	if err := checkURL(loginURL); err != nil {
		return "", fmt.Errorf("vippslogin: login button URL %q: %w", loginURL, err)
	}
	var class string
	switch opts.Brand {
	case Vipps:
		class = "vippslogin-vipps"
	case MobilePay:
		class = "vippslogin-mobilepay"
	default:
		return "", fmt.Errorf("vippslogin: login button: unknown %v", opts.Brand)
	}
	lang := language(opts.Language)
	var b strings.Builder
	err := buttonTemplate.Execute(&b, struct {
		Class, URL, Lang, Label string
		Rounded                 bool
	}{class, loginURL, lang, loginWith[lang] + " " + opts.Brand.String(), opts.Rounded})
	if err != nil {
		return "", fmt.Errorf("vippslogin: login button: %w", err)
	}
	return template.HTML(b.String()), nil
}

var buttonTemplate = template.Must(template.New("button").Parse(
	`<a class="vippslogin-button {{.Class}}{{if .Rounded}} vippslogin-rounded{{end}}" href="{{.URL}}" lang="{{.Lang}}">{{.Label}}</a>`))

// loginWith is the button's text before the brand's name, by the tag of
// its language.
var loginWith = map[string]string{"en": "Log in with", "nb": "Logg inn med"}

// language returns the tag of the button's language for a BCP 47 tag, by
// its primary subtag: "nb" (Norwegian, written in Bokmål) for nb, nn and
// no, and "en" for any other.
func language(tag string) string {
	primary, _, _ := strings.Cut(tag, "-")
	switch strings.ToLower(primary) {
	case "nb", "nn", "no":
		return "nb"
	}
	return "en"
}

// checkURL refuses what a login link must not point to.
func checkURL(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	if strings.TrimSpace(s) != s {
		return errors.New("surrounding white space")
	}
	// Browsers read "/\host" as "//host": another site, not a path.
	if strings.HasPrefix(s, "//") || strings.HasPrefix(s, `/\`) || strings.HasPrefix(s, `\`) {
		return errors.New("scheme-relative URL; use a path or an absolute http(s) URL")
	}
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("does not parse")
	}
	switch u.Scheme {
	case "":
		return nil
	case "http", "https":
		if u.Host == "" || u.Opaque != "" {
			return errors.New("absolute URL without a host")
		}
		if u.User != nil {
			return errors.New("URL with user info")
		}
		return nil
	}
	return errors.New("scheme is not http or https")
}

// CSS styles the markup of [HTML]. Include it once per page:
// serve it as a stylesheet (the way that works under a strict
// Content-Security-Policy, style-src 'self'), or put it in the page's
// <style> element (html/template inserts a template.CSS as it is), which
// needs 'unsafe-inline', a nonce or a hash in style-src.
//
// White bold text of 1.2rem on the brand colours is large text by WCAG 2,
// with a contrast of 3.1:1 (Vipps) and 3.8:1 (MobilePay); keep the font size
// if you restyle the button. Override the classes' rules to fit the site:
// vippslogin-button on every button, vippslogin-vipps or
// vippslogin-mobilepay for the brand, vippslogin-rounded when
// Options.Rounded is set.
const CSS template.CSS = `.vippslogin-button,.vippslogin-button:link,.vippslogin-button:visited{display:inline-flex;align-items:center;justify-content:center;box-sizing:border-box;min-height:48px;padding:.55em 1.4em;border:2px solid transparent;border-radius:8px;background:#ff5b24;color:#fff;font:inherit;font-size:1.2rem;font-weight:700;line-height:1.2;text-align:center;text-decoration:none;cursor:pointer}
.vippslogin-button:hover{background:#e04a16;color:#fff}
.vippslogin-button:focus-visible{outline:3px solid #1f1f1f;outline-offset:2px}
.vippslogin-button.vippslogin-mobilepay{background:#5a78ff}
.vippslogin-button.vippslogin-mobilepay:hover{background:#4262f0}
.vippslogin-button.vippslogin-rounded{border-radius:999px}
`
