package vippstest

import (
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// The pages a person sees at the provider: the consent page, which asks to
// approve or cancel a login, and the error pages for requests that cannot
// go on. They speak English or Norwegian (Bokmål), as the browser's
// Accept-Language prefers (see pageLanguage).

// problem is an error page's heading and explanation.
type problem struct {
	Title, Message string
}

// pageTexts is everything the provider's pages say, in one language.
type pageTexts struct {
	Lang string // BCP 47 tag, for <html lang>

	// The consent page: "Log in with Vipps", "<client> asks for: <scopes>",
	// "You log in as <name>".
	LogIn, AsksFor, LogInAs string
	Approve, Cancel         string
	// Note says what the provider is, at the foot of every page.
	Note string

	// Expired is the page for an answer to a consent page that was left
	// open too long, Answered for a second answer, Unknown for an answer
	// to a consent the provider does not know (any more), and Setup for a
	// request that the site built wrong.
	Expired, Answered, Unknown, Setup problem
	// BackTo labels the link back to the site; %s is its host.
	BackTo string
	// ForDevelopers comes before the technical detail of a Setup page.
	ForDevelopers string
}

var english = pageTexts{
	Lang:    "en",
	LogIn:   "Log in with Vipps",
	AsksFor: "asks for:",
	LogInAs: "You log in as",
	Approve: "Approve",
	Cancel:  "Cancel",
	Note:    "vippstest: a local mock of Vipps MobilePay Login. No real account is used.",
	Expired: problem{"This login has expired",
		"This page was left open too long, so the login was stopped. Nothing was shared with the site. Go back to the site and log in again."},
	Answered: problem{"This login is already finished",
		"You have already approved or cancelled this login. To log in again, go back to the site and start over."},
	Unknown: problem{"This login can't be continued",
		"This login was not found: it may have expired a while ago or been finished already. Go back to the site you came from and log in again."},
	Setup: problem{"This login can't start",
		"The site that sent you here asked for the login in a way that doesn't work. Please tell the site."},
	BackTo:        "Back to %s",
	ForDevelopers: "For the site's developers:",
}

var norwegian = pageTexts{
	Lang:    "nb",
	LogIn:   "Logg inn med Vipps",
	AsksFor: "ber om:",
	LogInAs: "Du logger inn som",
	Approve: "Godkjenn",
	Cancel:  "Avbryt",
	Note:    "vippstest: en lokal etterligning av Vipps MobilePay Login. Ingen ekte konto brukes.",
	Expired: problem{"Denne innloggingen har gått ut",
		"Siden sto åpen for lenge, så innloggingen ble stoppet. Ingenting ble delt med nettstedet. Gå tilbake til nettstedet og logg inn på nytt."},
	Answered: problem{"Denne innloggingen er allerede avsluttet",
		"Du har allerede godkjent eller avbrutt denne innloggingen. Gå tilbake til nettstedet for å logge inn på nytt."},
	Unknown: problem{"Denne innloggingen kan ikke fortsette",
		"Vi finner ikke denne innloggingen. Den kan ha gått ut for en stund siden eller allerede være avsluttet. Gå tilbake til nettstedet du kom fra, og logg inn på nytt."},
	Setup: problem{"Denne innloggingen kan ikke starte",
		"Nettstedet som sendte deg hit, ba om innloggingen på en måte som ikke fungerer. Si fra til nettstedet."},
	BackTo:        "Tilbake til %s",
	ForDevelopers: "For nettstedets utviklere:",
}

var consentPage = template.Must(template.New("consent").Parse(`<!doctype html>
<html lang="{{.T.Lang}}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.T.LogIn}} – vippstest</title>
<style>` + pageStyle + `</style>
</head>
<body>
<main>
<h1>{{.T.LogIn}}</h1>
<p><strong>{{.ClientID}}</strong> {{.T.AsksFor}} <span class="scopes">{{.Scope}}</span></p>
<p>{{.T.LogInAs}} <strong>{{.Name}}</strong>{{with .Phone}} (+{{.}}){{end}}.</p>
<form method="post" action="{{.Action}}">
<input type="hidden" name="request" value="{{.Request}}">
<div class="buttons">
<button id="approve" name="decision" value="approve">{{.T.Approve}}</button>
<button id="cancel" name="decision" value="cancel">{{.T.Cancel}}</button>
</div>
</form>
<p class="note">{{.T.Note}}</p>
</main>
</body>
</html>
`))

var errorPageTemplate = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="{{.T.Lang}}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} – vippstest</title>
<style>` + pageStyle + `</style>
</head>
<body>
<main>
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
{{- with .Back}}
<p><a id="back" class="button" href="{{.}}">{{$.BackLabel}}</a></p>
{{- end}}
{{- with .Detail}}
<p class="note">{{$.T.ForDevelopers}} <code>{{.}}</code></p>
{{- end}}
<p class="note">{{.T.Note}}</p>
</main>
</body>
</html>
`))

const pageStyle = `
*{box-sizing:border-box}
body{font-family:system-ui,sans-serif;line-height:1.5;background:#f5f2ef;color:#1f1f1f;margin:0;padding:3rem 1rem;display:flex;justify-content:center}
main{background:#fff;border-radius:12px;box-shadow:0 2px 12px rgba(0,0,0,.1);max-width:28rem;width:100%;padding:2rem}
h1{font-size:1.5rem;line-height:1.25;margin-top:0;overflow-wrap:break-word}
.scopes,code{font-family:ui-monospace,monospace;background:#f1ece8;padding:.1rem .35rem;border-radius:4px;overflow-wrap:anywhere}
.buttons{display:flex;flex-wrap:wrap;gap:.75rem;margin-top:1.5rem}
button,.button{display:inline-block;font:inherit;font-weight:600;border:2px solid #cc4a12;border-radius:1.5rem;padding:.65rem 1.5rem;cursor:pointer;text-decoration:none;overflow-wrap:anywhere}
#approve,.button{background:#cc4a12;color:#fff}
#cancel{background:#fff;color:#a63b0e}
button:hover,.button:hover{filter:brightness(.92)}
button:focus-visible,a:focus-visible{outline:3px solid #1f1f1f;outline-offset:2px}
.note{font-size:.875rem;color:#555;margin-top:2rem}
`

func (p *Provider) showConsent(w http.ResponseWriter, r *http.Request, g grant) {
	id := randomToken()
	now := p.now()
	u, _ := p.user(g.sub)
	p.mu.Lock()
	p.sweepLocked(now)
	p.pending[id] = &consent{grant: g, expires: now.Add(consentTTL)}
	p.mu.Unlock()
	t := pageLanguage(r)
	setPageHeaders(w, t)
	w.WriteHeader(http.StatusOK)
	_ = consentPage.Execute(w, map[string]any{
		"T":        t,
		"ClientID": p.clientID,
		"Scope":    g.scope,
		"Name":     u.Name,
		"Phone":    u.PhoneNumber,
		"Action":   decisionPath,
		"Request":  id,
	})
}

// serveDecision takes the user's answer on the consent page. An answer to
// a consent that expired or was answered before gets a page that says so
// and links back to the site, since the site's own login has most likely
// expired too; Vipps' documentation does not say what Vipps does then.
func (p *Provider) serveDecision(w http.ResponseWriter, r *http.Request) {
	decision := r.PostFormValue("decision")
	if decision != "approve" && decision != "cancel" {
		p.errorPage(w, r, "invalid_request", "decision must be approve or cancel")
		return
	}
	id := r.PostFormValue("request")
	now := p.now()
	t := pageLanguage(r)
	p.mu.Lock()
	c, ok := p.pending[id]
	var late *problem
	switch {
	case !ok:
		late = &t.Unknown
	case c.answered:
		late = &t.Answered
	case !now.Before(c.expires):
		late = &t.Expired
	default:
		c.answered = true
	}
	p.mu.Unlock()
	if late != nil {
		var site string
		if ok {
			site = c.redirectURI
		}
		p.problemPage(w, r, *late, site, "")
		return
	}
	if decision == "approve" {
		p.approve(w, r, c.grant)
		return
	}
	p.redirectError(w, r, c.grant, "access_denied", "user cancelled the login")
}

// errorPage answers a request that the site built wrong, which the
// provider cannot send back to the site: the page asks the user to tell
// the site, and shows the error code and description for its developers.
func (p *Provider) errorPage(w http.ResponseWriter, r *http.Request, code, desc string) {
	p.problemPage(w, r, pageLanguage(r).Setup, "", code+": "+desc)
}

// problemPage shows what went wrong in words for people. When redirectURI
// is an http(s) URL, a link leads back to its origin; detail, when not "",
// is shown for developers.
func (p *Provider) problemPage(w http.ResponseWriter, r *http.Request, pr problem, redirectURI, detail string) {
	t := pageLanguage(r)
	v := map[string]any{"T": t, "Title": pr.Title, "Message": pr.Message, "Detail": detail}
	if u, err := url.Parse(redirectURI); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		v["Back"] = u.Scheme + "://" + u.Host + "/"
		v["BackLabel"] = fmt.Sprintf(t.BackTo, u.Host)
	}
	setPageHeaders(w, t)
	w.WriteHeader(http.StatusBadRequest)
	_ = errorPageTemplate.Execute(w, v)
}

func setPageHeaders(w http.ResponseWriter, t *pageTexts) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Language", t.Lang)
	h.Add("Vary", "Accept-Language")
}

// qValue is a weight in Accept-Language (RFC 9110, section 12.4.2).
var qValue = regexp.MustCompile(`^(0(\.[0-9]{0,3})?|1(\.0{0,3})?)$`)

// pageLanguage picks the language of the provider's pages from r's
// Accept-Language header, as vippslogin.Language does for a site's pages:
// Norwegian for nb, nn and no, English for en, and "*" for whichever of the
// two the header does not name. The higher q-value wins; of equal ones, the
// first in the header. Without a usable preference the pages are in
// English.
func pageLanguage(r *http.Request) *pageTexts {
	const unnamed = -1.0
	type pref struct {
		q   float64
		pos int // in the header
	}
	langs := [...]*pageTexts{&english, &norwegian}
	named := [len(langs)]pref{{unnamed, 0}, {unnamed, 0}}
	wildcard := pref{unnamed, 0}
	pos := 0
	for _, field := range r.Header.Values("Accept-Language") {
		for elem := range strings.SplitSeq(field, ",") {
			rng, params, _ := strings.Cut(elem, ";")
			if rng = strings.TrimSpace(rng); rng == "" {
				continue
			}
			pos++
			q := 1.0
			if params = strings.TrimSpace(params); params != "" {
				v, ok := strings.CutPrefix(strings.ToLower(params), "q=")
				if !ok || !qValue.MatchString(v) {
					continue
				}
				q, _ = strconv.ParseFloat(v, 64)
			}
			primary, _, _ := strings.Cut(rng, "-")
			var i int
			switch strings.ToLower(primary) {
			case "*":
				if wildcard.q == unnamed {
					wildcard = pref{q, pos}
				}
				continue
			case "en":
				i = 0
			case "nb", "nn", "no":
				i = 1
			default:
				continue
			}
			if q > named[i].q {
				named[i] = pref{q, pos}
			}
		}
	}
	best, bestPref := 0, pref{0, 0}
	for i, p := range named {
		if p.q == unnamed {
			p = wildcard
		}
		if p.q <= 0 {
			continue // not acceptable
		}
		if p.q > bestPref.q || p.q == bestPref.q && p.pos < bestPref.pos {
			best, bestPref = i, p
		}
	}
	return langs[best]
}
