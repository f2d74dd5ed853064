package vippslogin

import (
	"encoding/json"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
)

// WriteError is the default Config.ErrorHandler. It answers browsers with a
// human page and API, XHR, fetch and htmx requests with JSON of the form
// {"error": code, "message": text, "login_url": url}. It shows the user what
// happened and what to do, never err's text, tokens or codes. The error has
// already been logged when an error handler runs.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	p := describe(err)
	var le *LoginError
	errors.As(err, &le)
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
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
		}{p.code, p.message, loginURL})
		return
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	_ = errorPage.Execute(w, struct {
		Title, Message, LoginURL, Home string
	}{p.title, p.message, loginURL, home})
}

// logError writes the operator's record of a failed request. It logs the
// error chain (which never holds tokens, codes or secrets), the request's
// method and path, never its query.
func logError(logger *slog.Logger, r *http.Request, err error) {
	p := describe(err)
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
		slog.String("path", r.URL.Path),
	}
	var pe *ProviderError
	if errors.As(err, &pe) {
		attrs = append(attrs, slog.String("provider_error", safeText(pe.Code)))
		if pe.Description != "" {
			attrs = append(attrs, slog.String("provider_error_description", safeText(pe.Description)))
		}
	}
	var te *TokenError
	if errors.As(err, &te) && te.Description != "" {
		attrs = append(attrs, slog.String("token_error_description", safeText(te.Description)))
	}
	logger.LogAttrs(r.Context(), level, "vippslogin: "+p.code, attrs...)
}

// safeText bounds text from the network before it goes into a log record.
func safeText(s string) string {
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strings.ToValidUTF8(s, "�")
}

var errorPage = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en">
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
a.button{display:inline-block;padding:.7rem 1.3rem;border-radius:8px;background:#ff5b24;color:#fff;text-decoration:none;font-weight:600;margin-right:1rem}
a.button:focus,a.button:hover{background:#e04a16}
a.quiet{color:#444}
</style>
</head>
<body>
<main>
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
{{if .LoginURL}}<a class="button" href="{{.LoginURL}}">Try again</a>{{end}}
<a class="quiet" href="{{.Home}}">Back to the site</a>
</main>
</body>
</html>
`))
