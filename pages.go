package vippslogin

import (
	"context"
	"encoding/json"
	"errors"
	"html/template"
	"log/slog"
	"mime"
	"net/http"
	"strings"

	"github.com/vippslogin/vippslogin/internal/untrusted"
)

// Page is what the package's error page says about an error, in the
// language of the request: the title, the message and the ways forward,
// ready for a site's own template. [PageFor] makes it, and [WriteError]
// renders the default page and JSON from it, so a site's page and the
// default one say the same.
//
// A Page holds only the package's own texts, in Norwegian (Bokmål) or
// English, and URLs of the site: never the error's text, a token, or the
// code and description of a [*ProviderError], which anyone can put in a
// callback URL. Its strings are plain text; html/template escapes them.
type Page struct {
	// Status is the HTTP status to answer with.
	Status int
	// Kind names the problem for programs, as the "error" of WriteError's
	// JSON and the kind in the log: "access_denied", "login_expired",
	// "provider_unavailable", ... It is one of a fixed set: a provider's
	// error code only when OAuth 2.0, OpenID Connect or Vipps defines it,
	// else "unknown".
	Kind string
	// Lang is the BCP 47 tag of the texts, "en" or "nb", as [Language]
	// picks for the request. Put it in Content-Language and <html lang>.
	Lang string
	// Title is the page's heading and <title>; Message explains what
	// happened and what to do.
	Title, Message string
	// LoginURL starts a new login that returns where the failed one was
	// going; it is "" when trying again makes no sense (a login the site
	// refused, a cross-origin request). TryAgain is its label: "Try
	// again".
	LoginURL, TryAgain string
	// Home is the site's default page (Config.DefaultReturnTo), or "/";
	// BackToSite is its label: "Back to the site".
	Home, BackToSite string
}

// PageFor returns what the error page for err says to the visitor of r:
// the texts in the language [Language] picks for r, naming the provider as
// Config.ProviderName says. Call it from a Config.ErrorHandler to render
// the package's texts in the site's own layout:
//
//	ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
//		p := vippslogin.PageFor(r, err)
//		w.Header().Set("Content-Language", p.Lang)
//		w.WriteHeader(p.Status)
//		sitePages.ExecuteTemplate(w, "error", p)
//	},
//
// The Client puts the provider's name in the context of the request it
// hands to Config.ErrorHandler; given any other request, PageFor says
// "Vipps MobilePay". The ways forward come from the failed login err is of, when the Client
// gave it; for any other error there is no LoginURL and Home is "/".
func PageFor(r *http.Request, err error) Page {
	p := describe(err)
	l := pickLanguage(r)
	t := &msgs[l]
	text := t.problems[p.text].named(providerName(r.Context()))
	page := Page{
		Status:     p.status,
		Kind:       p.code,
		Lang:       t.tag,
		Title:      text.title,
		Message:    text.message,
		TryAgain:   t.tryAgain,
		Home:       "/",
		BackToSite: t.backToSite,
	}
	if page.Status == 499 { // the client is gone; any status will do
		page.Status = http.StatusBadRequest
	}
	var le *loginError
	if errors.As(err, &le) {
		if p.retry {
			page.LoginURL = le.loginURL
		}
		if le.home != "" {
			page.Home = le.home
		}
	}
	return page
}

// WriteError is the default Config.ErrorHandler. It answers browsers with a
// human page and API, XHR, fetch and htmx requests with JSON of the form
// {"error": kind, "message": text, "login_url": url}, both from
// [PageFor]. It shows the user what happened and what to do, never err's
// text, tokens or codes; from a *ProviderError it shows neither the code
// nor the error_description, which anyone can put in a callback URL. The
// error has already been logged when an error handler runs.
//
// The page and the JSON message are in Norwegian (Bokmål) or English, as
// [Language] picks for r; the kind stays the same in every language. The
// answer carries Content-Language and Vary: Accept-Language.
//
// They name the provider as Config.ProviderName says: the Client puts it
// in the context of the request it hands to Config.ErrorHandler, so a
// custom handler that calls WriteError with that request gets it too.
// Given any other request, WriteError says "Vipps MobilePay".
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	p := PageFor(r, err)
	h := w.Header()
	setPageHeaders(h, p.Lang)
	if isBackground(r) {
		h.Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(p.Status)
		_ = json.NewEncoder(w).Encode(struct {
			Error    string `json:"error"`
			Message  string `json:"message"`
			LoginURL string `json:"login_url,omitempty"`
		}{p.Kind, p.Message, p.LoginURL})
		return
	}
	writePage(w, r, p.Status, errorPage, p)
}

// defaultProviderName is Config.ProviderName's default.
const defaultProviderName = "Vipps MobilePay"

type providerNameKey struct{}

// withProviderName returns r with the Client's provider name in its
// context, where WriteError finds it.
func (c *Client) withProviderName(r *http.Request) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), providerNameKey{}, c.s.ProviderName))
}

// providerName is the provider's name that withProviderName put in ctx, or
// the default.
func providerName(ctx context.Context) string {
	if name, ok := ctx.Value(providerNameKey{}).(string); ok && name != "" {
		return name
	}
	return defaultProviderName
}

// setupErrorCode reports whether an error code from the authorization
// endpoint means the site's own setup is wrong (client, redirect URI,
// scopes, request), not the user's login.
func setupErrorCode(code string) bool {
	switch code {
	case "unauthorized_client", "unsupported_response_type", "app_callback_uri_not_registered":
		return true
	}
	return strings.HasPrefix(code, "invalid_") || strings.HasSuffix(code, "_not_supported")
}

// logError writes the operator's record of a failed request, p being
// describe(err). It logs the error chain (which never holds tokens, codes
// or secrets), the request's method and path, never its query, the login
// the request's context names, if any, and how many records of the same
// kind logGate held back before it.
func logError(logger *slog.Logger, r *http.Request, err error, p problem, suppressed int) {
	level := slog.LevelInfo
	switch p.level {
	case 1:
		level = slog.LevelWarn
	case 2:
		level = slog.LevelError
	}
	attrs := []slog.Attr{
		slog.String("error", err.Error()),
		slog.String("kind", p.code),
		slog.Int("status", p.status),
		slog.String("method", r.Method),
		slog.String("path", safeText(r.URL.Path)),
	}
	if l := loginOf(r.Context()); l != nil {
		attrs = append(attrs, slog.String("login_id", l.id), slog.String("flow", l.flow))
	}
	if suppressed > 0 {
		attrs = append(attrs, slog.Int("suppressed", suppressed))
	}
	var pe *ProviderError
	if errors.As(err, &pe) {
		attrs = append(attrs, slog.String("provider_error", untrusted.Truncate(pe.Code, 64)))
		if pe.ErrorCode != "" {
			attrs = append(attrs, slog.String("provider_error_code", pe.ErrorCode))
		}
		if pe.Description != "" {
			attrs = append(attrs, slog.String("provider_error_description", safeText(pe.Description)))
		}
	}
	logger.LogAttrs(r.Context(), level, "vippslogin: "+p.code, attrs...)
}

// safeText makes text from the network fit for a log record or an error;
// see [untrusted.LogText].
func safeText(s string) string { return untrusted.LogText(s) }

// The package's HTML pages share pageLayout: a page clones it and defines
// "content" (see errorPage). Their data has the fields of pageView: the
// error page's is a Page, the others' embed pageView. Texts come from
// msgs, in the language of the request.

// pageView is what pageLayout needs from a page's data.
type pageView struct {
	Lang  string // BCP 47 tag, for <html lang>
	Title string
}

// setPageHeaders sets the headers every answer of the package's pages,
// HTML or JSON, carries: not cached, in the language tag.
func setPageHeaders(h http.Header, tag string) {
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Language", tag)
	h.Add("Vary", "Accept-Language")
}

// pageCSP allows the pages' inline style and nothing else.
const pageCSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// writePage writes one of the package's HTML pages. The caller has called
// setPageHeaders.
func writePage(w http.ResponseWriter, r *http.Request, status int, page *template.Template, data any) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", pageCSP)
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	_ = page.Execute(w, data)
}

var pageLayout = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="{{.Lang}}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{{.Title}}</title>
<style>
body{margin:0;font:17px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f1f1f;background:#f7f5f2}
main{max-width:32rem;margin:12vh auto;padding:2rem;background:#fff;border-radius:12px;box-shadow:0 1px 4px #0002}
h1{font-size:1.4rem;margin:0 0 .75rem}
p{margin:0 0 1.5rem}
.button{display:inline-block;padding:.6rem 1.3rem;border:0;border-radius:8px;background:#ff5b24;color:#fff;text-decoration:none;font:inherit;font-size:1.2rem;font-weight:700;margin-right:1rem;cursor:pointer}
.button:focus,.button:hover{background:#e04a16}
a:focus-visible,button:focus-visible{outline:3px solid #1f1f1f;outline-offset:2px}
.quiet{color:#444}
button.quiet{padding:0;border:0;background:none;font:inherit;text-decoration:underline;cursor:pointer}
</style>
</head>
<body>
<main>
{{block "content" .}}{{end}}
</main>
</body>
</html>
`))

var errorPage = template.Must(template.Must(pageLayout.Clone()).Parse(`{{define "content" -}}
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
{{if .LoginURL}}<a class="button" href="{{.LoginURL}}">{{.TryAgain}}</a>{{end}}
<a class="quiet" href="{{.Home}}">{{.BackToSite}}</a>
{{- end}}`))

// isHTMX reports whether r comes from htmx.
func isHTMX(r *http.Request) bool { return r.Header.Get("HX-Request") == "true" }

// isBackground reports whether r is an API, XHR, fetch or htmx request,
// which must get a status code, not a page or a redirect to a login.
func isBackground(r *http.Request) bool {
	if isHTMX(r) || r.Header.Get("X-Requested-With") != "" {
		return true
	}
	if m := r.Header.Get("Sec-Fetch-Mode"); m != "" && m != "navigate" {
		return true
	}
	return prefersJSON(r.Header.Get("Accept"))
}

// prefersJSON reports whether an Accept header asks for JSON rather than
// HTML.
func prefersJSON(accept string) bool {
	if accept == "" {
		return false
	}
	json, html := false, false
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil || params["q"] == "0" {
			continue
		}
		switch {
		case mt == "application/json" || strings.HasSuffix(mt, "+json"):
			json = true
		case mt == "text/html" || mt == "application/xhtml+xml":
			html = true
		}
	}
	return json && !html
}
