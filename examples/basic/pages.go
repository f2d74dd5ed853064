package main

import (
	"bytes"
	"context"
	"encoding/json"
	"html/template"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/vippslogin/vippslogin"
	"github.com/vippslogin/vippslogin/button"
)

// loginLink starts a login that ends on the profile page.
const loginLink = "/auth/login?return_to=/profile"

// pageCSP lets pages use their inline styles and nothing else: no scripts,
// no images, no frames, forms only to this site.
const pageCSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// pages serves the site's own pages.
type pages struct {
	auth   *vippslogin.Client
	logger *slog.Logger
}

type homeView struct {
	T           *siteTexts
	LoggedIn    bool
	Name        string
	LoginButton template.HTML
}

// home is public. LoadClaims puts the user's claims in the context when the
// browser is logged in.
func (p *pages) home(w http.ResponseWriter, r *http.Request) {
	v := homeView{T: textsFor(r)}
	if c, ok := vippslogin.ClaimsFromContext(r.Context()); ok {
		v.LoggedIn = true
		v.Name = c.Name
	} else {
		loginButton, err := button.HTML(loginLink, button.Options{
			Brand:    button.Vipps,
			Rounded:  true,
			Language: v.T.Lang, // as vippslogin.Language(r)
		})
		if err != nil {
			p.logger.Error("render the login button", "error", err)
			http.Error(w, "Something went wrong.", http.StatusInternalServerError)
			return
		}
		v.LoginButton = loginButton
	}
	p.render(w, r, http.StatusOK, homePage, v)
}

type profileView struct {
	T             *siteTexts
	Name          string
	Email         string
	EmailVerified bool
	Phone         string
	BirthDate     string
	Address       string
	Subject       string
}

func newProfileView(c *vippslogin.Claims, t *siteTexts) profileView {
	v := profileView{
		T:             t,
		Name:          c.Name,
		Email:         c.Email,
		EmailVerified: c.EmailVerified,
		BirthDate:     c.BirthDate,
		Subject:       c.Subject,
	}
	if c.PhoneNumber != "" {
		v.Phone = formatPhone(c.PhoneNumber)
	}
	if a := c.Address; a != (vippslogin.Address{}) {
		v.Address = a.Formatted
		if v.Address == "" {
			v.Address = strings.Join([]string{a.StreetAddress, strings.TrimSpace(a.PostalCode + " " + a.Region), a.Country}, "\n")
		}
	}
	return v
}

// profile runs behind RequireLogin, so the claims are always there. API
// clients get them as JSON, under the claim names Vipps uses.
func (p *pages) profile(w http.ResponseWriter, r *http.Request) {
	c, ok := vippslogin.ClaimsFromContext(r.Context())
	if !ok {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	w.Header().Add("Vary", "Accept")
	if !wantsJSON(r) {
		p.render(w, r, http.StatusOK, profilePage, newProfileView(c, textsFor(r)))
		return
	}
	body, err := json.Marshal(c)
	if err != nil {
		p.logger.Error("encode claims", "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(body)
}

// showError is the site's Config.ErrorHandler. A browser gets the page
// vippslogin would show, its texts and links (vippslogin.PageFor), in the
// site's own layout; API clients and scripts get vippslogin.WriteError's
// JSON.
func (p *pages) showError(w http.ResponseWriter, r *http.Request, err error) {
	if !wantsPage(r) {
		vippslogin.WriteError(w, r, err)
		return
	}
	page := vippslogin.PageFor(r, err) // in the language of textsFor(r)
	p.render(w, r, page.Status, errorPage, errorView{T: textsFor(r), Page: page})
}

// errorView is a vippslogin.Page with the site's texts for the layout.
type errorView struct {
	T *siteTexts
	vippslogin.Page
}

// wantsPage reports whether r comes from a browser that navigates to a
// page, not from an API client or a script in a page (XHR, fetch, htmx).
func wantsPage(r *http.Request) bool {
	if r.Header.Get("HX-Request") != "" || r.Header.Get("X-Requested-With") != "" {
		return false
	}
	if mode := r.Header.Get("Sec-Fetch-Mode"); mode != "" && mode != "navigate" {
		return false
	}
	return !wantsJSON(r)
}

// wantsJSON reports whether the Accept header asks for JSON and not HTML.
func wantsJSON(r *http.Request) bool {
	var asJSON, asHTML bool
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case "application/json":
			asJSON = true
		case "text/html":
			asHTML = true
		}
	}
	return asJSON && !asHTML
}

// healthz reports that the process serves requests.
func healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = io.WriteString(w, "ok")
}

// readyz reports whether logins can start: whether the provider's discovery
// document and keys can be fetched (or are cached).
func (p *pages) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := p.auth.Ready(ctx); err != nil {
		p.logger.Warn("not ready: the login provider cannot be reached", "error", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "login provider unavailable")
		return
	}
	_, _ = io.WriteString(w, "ok")
}

// render writes the page t with status and its security headers. The page
// is rendered to a buffer first, so a template error becomes a clean 500.
// data has the site's texts for r in its field T.
func (p *pages) render(w http.ResponseWriter, r *http.Request, status int, t *template.Template, data any) {
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		p.logger.Error("render page", "path", r.URL.Path, "error", err)
		http.Error(w, "Something went wrong.", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store") // pages differ per user
	h.Set("Content-Language", textsFor(r).Lang)
	h.Add("Vary", "Accept-Language")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// page parses a page's "title" and "content" templates into a copy of the
// layout. The layout takes the language and the site's name from .T.
func page(src string) *template.Template {
	return template.Must(template.Must(layout.Clone()).Parse(src))
}

var layout = template.Must(template.New("layout").Parse(`<!doctype html>
<html lang="{{.T.Lang}}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{template "title" .}} · {{.T.SiteName}}</title>
<style>
*{box-sizing:border-box}
body{margin:0;font:17px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f1f1f;background:#f6f3f0}
header{background:#fff;border-bottom:1px solid #e7e1db}
header div{max-width:40rem;margin:0 auto;padding:.9rem 1.25rem}
header a{color:inherit;text-decoration:none;font-weight:700}
main{max-width:40rem;margin:2.5rem auto}
.card{background:#fff;border-radius:14px;box-shadow:0 1px 4px rgba(0,0,0,.08);padding:2rem}
h1{font-size:1.6rem;line-height:1.25;margin:0 0 .75rem}
p{margin:0 0 1.5rem}
a{color:#a63b0e}
.button{display:inline-block;font:inherit;font-size:1.2rem;font-weight:700;line-height:1.2;padding:.8rem 1.6rem;border:2px solid #ff5b24;border-radius:999px;background:#ff5b24;color:#fff;text-decoration:none;cursor:pointer}
.button:hover{background:#e94c17;border-color:#e94c17}
.button.quiet{font-size:1rem;padding:.55rem 1.2rem;background:#fff;border-color:#1f1f1f;color:#1f1f1f}
.button.quiet:hover{background:#f1ece8}
a:focus-visible,.button:focus-visible{outline:3px solid #1f1f1f;outline-offset:3px}
.actions{display:flex;flex-wrap:wrap;gap:1rem;align-items:center}
.actions form{margin:0}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.5rem 1.5rem;margin:0 0 2rem}
dt{color:#5c5650}
dd{margin:0;overflow-wrap:anywhere}
.address{white-space:pre-line}
.tag{display:inline-block;white-space:nowrap;font-size:.8rem;font-weight:600;line-height:1.4;color:#1d5e35;background:#e3f3e8;border-radius:999px;padding:.1rem .5rem}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.9em}
@media (max-width:42rem){
main{margin:1rem .75rem}
.card{padding:1.5rem 1.25rem}
}
@media (max-width:36rem){
h1{font-size:1.45rem}
dl{grid-template-columns:1fr;gap:0}
dt{margin-top:.75rem}
dt:first-child{margin-top:0}
code{font-size:.8em}
}
` + string(button.CSS) + `
</style>
</head>
<body>
<header><div><a href="/">{{.T.SiteName}}</a></div></header>
<main class="card">
{{- template "content" .}}</main>
</body>
</html>
`))

var homePage = page(`{{define "title"}}{{.T.HomeTitle}}{{end}}
{{define "content"}}
{{- if .LoggedIn}}
<h1>{{.T.Hello}}{{with .Name}}, {{.}}{{end}}</h1>
<p>{{.T.LoggedIn}}</p>
<div class="actions">
<a href="/profile">{{.T.SeeShared}}</a>
<form method="post" action="/auth/logout"><button class="button quiet" type="submit">{{.T.LogOut}}</button></form>
</div>
{{- else}}
<h1>{{.T.Welcome}}</h1>
<p>{{.T.Intro}}</p>
{{.LoginButton}}
{{- end}}
{{end}}`)

var profilePage = page(`{{define "title"}}{{.T.ProfileTitle}}{{end}}
{{define "content"}}
<h1>{{with .Name}}{{.}}{{else}}{{$.T.ProfileTitle}}{{end}}</h1>
<p>{{.T.Shared}}</p>
<dl>
{{- with .Name}}
<dt>{{$.T.Name}}</dt><dd>{{.}}</dd>
{{- end}}
{{- with .Email}}
<dt>{{$.T.Email}}</dt><dd>{{.}}{{if $.EmailVerified}} <span class="tag">{{$.T.Verified}}</span>{{end}}</dd>
{{- end}}
{{- with .Phone}}
<dt>{{$.T.Phone}}</dt><dd>{{.}}</dd>
{{- end}}
{{- with .BirthDate}}
<dt>{{$.T.BirthDate}}</dt><dd>{{.}}</dd>
{{- end}}
{{- with .Address}}
<dt>{{$.T.Address}}</dt><dd class="address">{{.}}</dd>
{{- end}}
<dt>{{.T.UserID}}</dt><dd><code>{{.Subject}}</code></dd>
</dl>
<div class="actions">
<form method="post" action="/auth/logout"><button class="button quiet" type="submit">{{.T.LogOut}}</button></form>
<a href="/">{{.T.Home}}</a>
</div>
{{end}}`)

// errorPage shows a vippslogin.Page: what went wrong, in the visitor's
// language, and the ways forward.
var errorPage = page(`{{define "title"}}{{.Title}}{{end}}
{{define "content"}}
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
<div class="actions">
{{- with .LoginURL}}
<a class="button" href="{{.}}">{{$.TryAgain}}</a>
{{- end}}
<a href="{{.Home}}">{{.BackToSite}}</a>
</div>
{{end}}`)
