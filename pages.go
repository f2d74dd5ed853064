package vippslogin

import (
	"context"
	"encoding/json"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"
)

// WriteError is the default Config.ErrorHandler. It answers browsers with a
// human page and API, XHR, fetch and htmx requests with JSON of the form
// {"error": code, "message": text, "login_url": url}. It shows the user what
// happened and what to do, never err's text, tokens or codes; from a
// *ProviderError it shows neither the code nor the error_description, which
// anyone can put in a callback URL. The error has already been logged when
// an error handler runs.
//
// The page and the JSON message are in Norwegian (Bokmål) or English, as
// [Language] picks for r; the code stays the same in every language. The
// answer carries Content-Language and Vary: Accept-Language.
//
// They name the provider as Config.ProviderName says: the Client puts it
// in the context of the request it hands to Config.ErrorHandler, so a
// custom handler that calls WriteError with that request gets it too.
// Given any other request, WriteError says "Vipps MobilePay".
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	p := describe(err)
	var le *LoginError
	errors.As(err, &le)
	l := pickLanguage(r)
	t := &msgs[l]
	text := t.problems[p.text].named(providerName(r.Context()))
	h := w.Header()
	setPageHeaders(h, l)
	status := p.status
	if status == 499 { // the client is gone; any status will do
		status = http.StatusBadRequest
	}
	loginURL, home := "", "/"
	if le != nil {
		if p.retry {
			loginURL = le.LoginURL
		}
		if le.Home != "" {
			home = le.Home
		}
	}
	if isBackground(r) {
		h.Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(struct {
			Error    string `json:"error"`
			Message  string `json:"message"`
			LoginURL string `json:"login_url,omitempty"`
		}{p.code, text.message, loginURL})
		return
	}
	writePage(w, r, status, errorPage, errorView{
		pageView:   pageView{Lang: t.tag, Title: text.title},
		Message:    text.message,
		LoginURL:   loginURL,
		Home:       home,
		TryAgain:   t.tryAgain,
		BackToSite: t.backToSite,
	})
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
		attrs = append(attrs, slog.String("provider_error", truncate(pe.Code, 64)))
		if pe.Description != "" {
			attrs = append(attrs, slog.String("provider_error_description", pe.Description))
		}
	}
	var te *TokenError
	if errors.As(err, &te) && te.Description != "" {
		attrs = append(attrs, slog.String("token_error_description", safeText(te.Description)))
	}
	logger.LogAttrs(r.Context(), level, "vippslogin: "+p.code, attrs...)
}

// safeText makes text from the network fit for a log record or an error:
// at most 200 bytes, valid UTF-8, and no control or formatting characters
// (line breaks, escapes, bidirectional overrides), each of which becomes
// '?'.
func safeText(s string) string {
	return truncate(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError {
			return '?'
		}
		return r
	}, s), 200)
}

// truncate cuts s to at most n bytes, on a rune boundary, and marks the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// The package's HTML pages share pageLayout: a page clones it and defines
// "content" (see errorPage). Their data embeds pageView. Texts come from
// msgs, in the language of the request.

// pageView is what pageLayout needs from a page's data.
type pageView struct {
	Lang  string // BCP 47 tag, for <html lang>
	Title string
}

// errorView is the data of errorPage.
type errorView struct {
	pageView
	Message  string
	LoginURL string // "" when trying again makes no sense
	Home     string
	// The links' labels.
	TryAgain, BackToSite string
}

// setPageHeaders sets the headers every answer of the package's pages,
// HTML or JSON, carries: not cached, in language l.
func setPageHeaders(h http.Header, l lang) {
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Language", l.tag())
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
