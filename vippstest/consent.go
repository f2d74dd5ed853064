package vippstest

import (
	"html/template"
	"net/http"
)

// The pages a person sees at the provider: the consent page, which asks to
// approve or cancel a login, and the error pages for requests that cannot
// go on.

var consentPage = template.Must(template.New("consent").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Log in with Vipps – test provider</title>
<style>` + pageStyle + `</style>
</head>
<body>
<main>
<h1>Log in with Vipps</h1>
<p><strong>{{.ClientID}}</strong> asks for: <span class="scopes">{{.Scope}}</span></p>
<p>You log in as <strong>{{.Name}}</strong>{{with .Phone}} (+{{.}}){{end}}.</p>
<form method="post" action="{{.Action}}">
<input type="hidden" name="request" value="{{.Request}}">
<div class="buttons">
<button id="approve" name="decision" value="approve">Approve</button>
<button id="cancel" name="decision" value="cancel">Cancel</button>
</div>
</form>
<p class="note">vippstest: a local mock of Vipps MobilePay Login. No real account is used.</p>
</main>
</body>
</html>
`))

var errorPageTemplate = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Login failed – test provider</title>
<style>` + pageStyle + `</style>
</head>
<body>
<main>
<h1>Uff da, something went wrong</h1>
<p>The login cannot go on: <code>{{.Error}}</code>.</p>
<p>{{.Description}}</p>
<p class="note">vippstest: a local mock of Vipps MobilePay Login.</p>
</main>
</body>
</html>
`))

const pageStyle = `
body{font-family:system-ui,sans-serif;background:#f5f2ef;color:#1f1f1f;margin:0;padding:3rem 1rem;display:flex;justify-content:center}
main{background:#fff;border-radius:12px;box-shadow:0 2px 12px rgba(0,0,0,.1);max-width:28rem;width:100%;padding:2rem}
h1{font-size:1.5rem;margin-top:0}
.scopes,code{font-family:ui-monospace,monospace;background:#f1ece8;padding:.1rem .35rem;border-radius:4px}
.buttons{display:flex;gap:.75rem;margin-top:1.5rem}
button{font:inherit;font-weight:600;border:2px solid #cc4a12;border-radius:999px;padding:.65rem 1.5rem;cursor:pointer}
#approve{background:#cc4a12;color:#fff}
#cancel{background:#fff;color:#a63b0e}
button:hover{filter:brightness(.92)}
button:focus-visible{outline:3px solid #1f1f1f;outline-offset:2px}
.note{font-size:.875rem;color:#555;margin-top:2rem}
`

func (p *Provider) showConsent(w http.ResponseWriter, g grant) {
	id := randomToken()
	now := p.now()
	u, _ := p.user(g.sub)
	p.mu.Lock()
	p.sweepLocked(now)
	p.pending[id] = &consent{grant: g, expires: now.Add(consentTTL)}
	p.mu.Unlock()
	setPageHeaders(w)
	w.WriteHeader(http.StatusOK)
	_ = consentPage.Execute(w, map[string]string{
		"ClientID": p.clientID,
		"Scope":    g.scope,
		"Name":     u.Name,
		"Phone":    u.PhoneNumber,
		"Action":   decisionPath,
		"Request":  id,
	})
}

// serveDecision takes the user's answer on the consent page.
func (p *Provider) serveDecision(w http.ResponseWriter, r *http.Request) {
	id := r.PostFormValue("request")
	now := p.now()
	p.mu.Lock()
	c, ok := p.pending[id]
	delete(p.pending, id)
	p.mu.Unlock()
	if !ok || !now.Before(c.expires) {
		p.errorPage(w, "invalid_request", "unknown, expired or already answered login request")
		return
	}
	switch r.PostFormValue("decision") {
	case "approve":
		p.approve(w, r, c.grant)
	case "cancel":
		p.redirectError(w, r, c.grant, "access_denied", "user cancelled the login")
	default:
		p.errorPage(w, "invalid_request", "decision must be approve or cancel")
	}
}

func (p *Provider) errorPage(w http.ResponseWriter, code, desc string) {
	setPageHeaders(w)
	w.WriteHeader(http.StatusBadRequest)
	_ = errorPageTemplate.Execute(w, map[string]string{"Error": code, "Description": desc})
}

func setPageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
}
