package vippslogin_test

import (
	"context"
	"errors"
	"fmt"
	"html"
	"html/template"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vippslogin/vippslogin"
	"github.com/vippslogin/vippslogin/vippstest"
)

// TestProviderName: a site that logs in with another OpenID Connect
// provider than Vipps (Config.Issuer) names it in Config.ProviderName, and
// the error pages, their JSON messages and the confirmation page, in
// English and Norwegian, say that name and never "Vipps MobilePay". The
// name reaches WriteError, the default error handler, and PageFor, for a
// site's own pages, through the request the Client hands to the error
// handler.
func TestProviderName(t *testing.T) {
	const name = "Acme & Co ID"
	withName := options{site: func(c *vippslogin.Config) { c.ProviderName = name }}
	wantNamed := func(t *testing.T, what, body, want string) {
		t.Helper()
		text := html.UnescapeString(body)
		if !strings.Contains(text, want) {
			t.Errorf("%s lacks %q:\n%s", what, want, body)
		}
		if strings.Contains(text, "Vipps MobilePay") {
			t.Errorf("%s names Vipps MobilePay:\n%s", what, body)
		}
	}

	t.Run("provider down", func(t *testing.T) {
		h := newHarness(t, withName)
		h.idp.SetFault(vippstest.Discovery, vippstest.Fault{Status: http.StatusServiceUnavailable})
		b := h.browser()
		_, body := b.get("/auth/login")
		wantNamed(t, "English page", body, name+" can't be reached")
		_, body = b.get("/auth/login", "Accept-Language", "nb")
		wantNamed(t, "Norwegian page", body, "Vi får ikke kontakt med "+name)
		resp, body := b.get("/auth/login", "Accept", "application/json")
		_, message, _ := jsonMessage(t, resp, body)
		wantNamed(t, "JSON message", message, "Logging in with "+name+" is not possible right now.")
	})

	t.Run("provider error", func(t *testing.T) {
		h := newHarness(t, withName)
		h.idp.SetHooks(vippstest.Hooks{AuthorizeError: "server_error"})
		b := h.browser()
		_, body := b.get(b.startLogin("/"), "Accept-Language", "nb")
		wantNamed(t, "Norwegian page", body, "Noe gikk galt hos "+name+".")
	})

	t.Run("confirmation page", func(t *testing.T) {
		h := crossBrowserHarness(t, withName)
		a, other := h.browser(), h.browser()
		cb := startAutomatic(t, a)
		resp, body := other.get(cb)
		wantConfirmPage(t, resp, body, "Kari Nordmann")
		wantNamed(t, "confirmation page", body, "You logged in with "+name+" as Kari Nordmann")
	})

	t.Run("a site's own page", func(t *testing.T) {
		h := newHarness(t, options{site: func(c *vippslogin.Config) {
			c.ProviderName = name
			c.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
				p := vippslogin.PageFor(r, err)
				w.WriteHeader(p.Status)
				fmt.Fprintf(w, "%s: %s", p.Title, p.Message)
			}
		}})
		h.idp.SetFault(vippstest.Discovery, vippstest.Fault{Status: http.StatusServiceUnavailable})
		resp, body := h.browser().get("/auth/login", "Accept-Language", "nb")
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("status %d, want 503", resp.StatusCode)
		}
		wantNamed(t, "the site's page", body, "Vi får ikke kontakt med "+name)
	})

	t.Run("default", func(t *testing.T) {
		h := newHarness(t)
		h.idp.SetFault(vippstest.Discovery, vippstest.Fault{Status: http.StatusServiceUnavailable})
		_, body := h.browser().get("/auth/login")
		if !strings.Contains(html.UnescapeString(body), "Vipps MobilePay can't be reached") {
			t.Errorf("the page of a site without ProviderName does not name Vipps MobilePay:\n%s", body)
		}
	})
}

// PageFor says what the error page says: status, kind, texts in the
// request's language, and the ways forward of the failed login.
func TestPageFor(t *testing.T) {
	with := func(err error) error { return vippslogin.LoginFailure("/auth/login?return_to=%2Fshop", "/start", err) }
	tests := []struct {
		name, acceptLanguage string
		err                  error
		want                 vippslogin.Page
	}{
		{
			name: "cancelled", acceptLanguage: englishBrowser,
			err: with(&vippslogin.ProviderError{Code: "access_denied"}),
			want: vippslogin.Page{Status: 400, Kind: "access_denied", Lang: "en",
				Title:    "You cancelled the login",
				Message:  "No problem: nothing was shared. You can log in again whenever you like.",
				LoginURL: "/auth/login?return_to=%2Fshop", TryAgain: "Try again",
				Home: "/start", BackToSite: "Back to the site"},
		},
		{
			name: "cancelled, Norwegian", acceptLanguage: norwegianBrowser,
			err: with(&vippslogin.ProviderError{Code: "access_denied"}),
			want: vippslogin.Page{Status: 400, Kind: "access_denied", Lang: "nb",
				Title:    "Du avbrøt innloggingen",
				Message:  "Helt i orden – ingenting ble delt. Du kan logge inn igjen når du vil.",
				LoginURL: "/auth/login?return_to=%2Fshop", TryAgain: "Prøv igjen",
				Home: "/start", BackToSite: "Tilbake til nettstedet"},
		},
		{
			name: "refused: no point trying again", acceptLanguage: englishBrowser,
			err: with(vippslogin.Refused(errors.New("blocked"))),
			want: vippslogin.Page{Status: 403, Kind: "login_refused", Lang: "en",
				Title:    "This account can't be used here",
				Message:  "You logged in with Vipps MobilePay, but this site does not accept the account. Contact the site if you think this is wrong.",
				TryAgain: "Try again", Home: "/start", BackToSite: "Back to the site"},
		},
		{
			name: "no ways forward", acceptLanguage: englishBrowser,
			err: vippslogin.ErrLoginExpired,
			want: vippslogin.Page{Status: 400, Kind: "login_expired", Lang: "en",
				Title:    "Your login took too long",
				Message:  "The login was not finished in time. Please start again.",
				TryAgain: "Try again", Home: "/", BackToSite: "Back to the site"},
		},
		{
			// The visitor went away: the status is one an HTTP answer can
			// carry.
			name: "request cancelled", acceptLanguage: englishBrowser,
			err: with(context.Canceled),
			want: vippslogin.Page{Status: 400, Kind: "cancelled", Lang: "en",
				Title: "Request cancelled", Message: "The request was cancelled.",
				LoginURL: "/auth/login?return_to=%2Fshop", TryAgain: "Try again",
				Home: "/start", BackToSite: "Back to the site"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/auth/callback", nil)
			r.Header.Set("Accept-Language", tc.acceptLanguage)
			if got := vippslogin.PageFor(r, tc.err); got != tc.want {
				t.Errorf("PageFor =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

// Nothing from the error reaches a Page: not its text, not a provider's
// code or description (anyone can write them in a callback URL).
func TestPageForShowsNothingOfTheError(t *testing.T) {
	errs := []error{
		vippslogin.LoginFailure("/auth/login", "/", &vippslogin.ProviderError{
			Code: "evil_<b>code</b>", Description: "secret description: call +47 555 55 555"}),
		vippslogin.LoginFailure("/auth/login", "/", &vippslogin.ProviderError{
			Code: "server_error", Description: "secret description"}),
		fmt.Errorf("%w: token eyJhbGciOi.secret", vippslogin.ErrInvalidIDToken),
		&vippslogin.ProviderError{StatusCode: 400, Code: "invalid_grant", Description: "secret description"},
	}
	for _, err := range errs {
		r := httptest.NewRequest(http.MethodGet, "/auth/callback", nil)
		p := vippslogin.PageFor(r, err)
		all := fmt.Sprintf("%#v", p)
		for _, leak := range []string{"evil", "<b>", "secret", "555", "eyJ", "vippslogin:"} {
			if strings.Contains(all, leak) {
				t.Errorf("PageFor(%v) shows %q: %s", err, leak, all)
			}
		}
	}
	r := httptest.NewRequest(http.MethodGet, "/auth/callback", nil)
	if got := vippslogin.PageFor(r, errs[0]).Kind; got != "unknown" {
		t.Errorf("Kind of an unknown provider code = %q, want unknown", got)
	}
}

// WriteError renders what PageFor says, as a page and as JSON, so a site's
// own pages and the default ones cannot differ.
func TestWriteErrorSaysWhatPageForSays(t *testing.T) {
	errs := []error{
		vippslogin.LoginFailure("/auth/login?return_to=%2Fa%3Fb%3Dc%26d", "/home",
			&vippslogin.ProviderError{Code: "wrong_challenge"}),
		vippslogin.LoginFailure("/auth/login", "/", &vippslogin.Error{Err: vippslogin.ErrInvalidRequest, Reason: "cross_origin"}),
		fmt.Errorf("%w: down", vippslogin.ErrProviderUnavailable),
	}
	for _, err := range errs {
		for _, lang := range []string{englishBrowser, norwegianBrowser} {
			r := httptest.NewRequest(http.MethodGet, "/auth/callback", nil)
			r.Header.Set("Accept-Language", lang)
			p := vippslogin.PageFor(r, err)

			w := httptest.NewRecorder()
			vippslogin.WriteError(w, r, err)
			resp, body := w.Result(), w.Body.String()
			if resp.StatusCode != p.Status {
				t.Errorf("%v: page status %d, Page.Status %d", err, resp.StatusCode, p.Status)
			}
			wantPage(t, resp, body, p.Lang, p.Title, p.Message)
			wantLinks := []string{`<a class="quiet" href="` + html.EscapeString(p.Home) + `">` + p.BackToSite + `</a>`}
			if p.LoginURL != "" {
				wantLinks = append(wantLinks, `<a class="button" href="`+html.EscapeString(p.LoginURL)+`">`+p.TryAgain+`</a>`)
			} else if strings.Contains(body, `class="button"`) {
				t.Errorf("%v: the page offers to try again, Page.LoginURL is empty:\n%s", err, body)
			}
			for _, want := range wantLinks {
				if !strings.Contains(body, want) {
					t.Errorf("%v: page lacks %s:\n%s", err, want, body)
				}
			}

			r.Header.Set("Accept", "application/json")
			w = httptest.NewRecorder()
			vippslogin.WriteError(w, r, err)
			code, message, loginURL := jsonMessage(t, w.Result(), w.Body.String())
			if w.Code != p.Status || code != p.Kind || message != p.Message || loginURL != p.LoginURL {
				t.Errorf("%v: JSON %d %s, Page %+v", err, w.Code, w.Body, p)
			}
		}
	}
}

// A site renders the package's error texts in its own layout. (The
// example in examples/basic leaves API clients to WriteError's JSON.)
func ExamplePageFor() {
	sitePage := template.Must(template.New("error").Parse(
		`<h1>{{.Title}}</h1> <p>{{.Message}}</p> {{with .LoginURL}}<a href="{{.}}">{{$.TryAgain}}</a>{{end}}`))
	errorHandler := func(w http.ResponseWriter, r *http.Request, err error) {
		p := vippslogin.PageFor(r, err)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Language", p.Lang)
		w.WriteHeader(p.Status)
		_ = sitePage.Execute(w, p)
	}

	r := httptest.NewRequest(http.MethodGet, "/auth/callback?error=access_denied", nil)
	r.Header.Set("Accept-Language", "nb")
	w := httptest.NewRecorder()
	errorHandler(w, r, vippslogin.LoginFailure("/auth/login?return_to=%2Fshop", "", &vippslogin.ProviderError{Code: "access_denied"}))
	fmt.Println(w.Code, w.Header().Get("Content-Language"))
	fmt.Println(w.Body)
	// Output:
	// 400 nb
	// <h1>Du avbrøt innloggingen</h1> <p>Helt i orden – ingenting ble delt. Du kan logge inn igjen når du vil.</p> <a href="/auth/login?return_to=%2Fshop">Prøv igjen</a>
}
