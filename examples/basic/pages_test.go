package main

import (
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/vippslogin/vippslogin/vippstest"
)

// siteHeader is the site's own layout, which vippslogin's default pages
// do not have.
func siteHeader(t *siteTexts) string {
	return `<header><div><a href="/">` + t.SiteName + `</a></div></header>`
}

// acceptLanguage sends Accept-Language with every request, as a browser
// does.
type acceptLanguage string

func (l acceptLanguage) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Accept-Language", string(l))
	return http.DefaultTransport.RoundTrip(r)
}

// A cancelled login shows vippslogin's texts and links in the site's own
// layout, in the browser's language.
func TestErrorPageInSiteLayout(t *testing.T) {
	tests := []struct {
		lang                             string
		texts                            *siteTexts
		title, message, tryAgain, backTo string
	}{
		{"en", &english, "You cancelled the login", "nothing was shared", "Try again", "Back to the site"},
		{"nb", &norwegian, "Du avbrøt innloggingen", "ingenting ble delt", "Prøv igjen", "Tilbake til nettstedet"},
	}
	for _, tc := range tests {
		t.Run(tc.lang, func(t *testing.T) {
			srv, _ := startSite(t, nil)
			c := newBrowser(t)
			c.Transport = acceptLanguage(tc.lang)
			resp, page := decide(t, c, srv.URL, "cancel")
			if resp.StatusCode != http.StatusBadRequest || resp.Request.URL.Path != "/auth/callback" {
				t.Fatalf("after cancelling: got %d at %s, want 400 at /auth/callback", resp.StatusCode, resp.Request.URL)
			}
			if got := resp.Header.Get("Content-Language"); got != tc.lang {
				t.Errorf("Content-Language %q, want %q", got, tc.lang)
			}
			for _, want := range []string{
				siteHeader(tc.texts),
				`<html lang="` + tc.lang + `">`,
				"<title>" + tc.title + " · " + tc.texts.SiteName + "</title>",
				"<h1>" + tc.title + "</h1>",
				tc.message,
				`<a class="button" href="/auth/login?return_to=%2Fprofile">` + tc.tryAgain + `</a>`,
				`<a href="/">` + tc.backTo + `</a>`,
			} {
				if !strings.Contains(page, want) {
					t.Errorf("the page lacks %s:\n%s", want, page)
				}
			}
			if strings.Contains(page, "access_denied") {
				t.Errorf("the page shows the provider's error code:\n%s", page)
			}
			if csp := resp.Header.Get("Content-Security-Policy"); csp != pageCSP {
				t.Errorf("Content-Security-Policy %q, want the site's %q", csp, pageCSP)
			}
		})
	}
}

// An error a browser gets as a page in the site's layout reaches API
// clients as vippslogin's JSON.
func TestErrorJSONForAPIClients(t *testing.T) {
	srv, _ := startSite(t, nil)
	evil := srv.URL + "/auth/login?return_to=" + url.QueryEscape("https://evil.example/")

	resp, page := get(t, newBrowser(t), evil, "text/html")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, siteHeader(&english)) ||
		!strings.Contains(page, "<h1>That link can&#39;t be used</h1>") {
		t.Errorf("browser: got %d, want 400 and the site's page:\n%s", resp.StatusCode, page)
	}
	if strings.Contains(page, "Try again") {
		t.Errorf("browser: the page offers to try a bad link again:\n%s", page)
	}

	for _, header := range [][2]string{{"Accept", "application/json"}, {"Sec-Fetch-Mode", "cors"}, {"HX-Request", "true"}} {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, evil, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set(header[0], header[1])
		resp, body := do(t, newBrowser(t), req)
		var v struct{ Error, Message string }
		if resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") ||
			json.Unmarshal([]byte(body), &v) != nil || v.Error != "invalid_return_to" || v.Message == "" {
			t.Errorf("%s: %s: got %d %s %s, want 400 JSON invalid_return_to", header[0], header[1],
				resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	}
}

func TestHomeLoggedOut(t *testing.T) {
	srv, _ := startSite(t, nil)
	resp, page := get(t, newBrowser(t), srv.URL+"/", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /: got %d, want 200", resp.StatusCode)
	}
	if !strings.Contains(page, `href="/auth/login?return_to=/profile"`) || !strings.Contains(page, "Log in with Vipps") {
		t.Errorf("home page has no login button:\n%s", page)
	}
	if strings.Contains(page, "/auth/logout") {
		t.Errorf("logged-out home page offers to log out")
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "style-src 'unsafe-inline'") {
		t.Errorf("Content-Security-Policy: got %q", csp)
	}
	if resp, _ := get(t, newBrowser(t), srv.URL+"/nothing-here", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nothing-here: got %d, want 404", resp.StatusCode)
	}
}

func TestProfileShowsAddressAndBirthDate(t *testing.T) {
	srv, _ := startSite(t, map[string]string{"VIPPS_SCOPES": "openid name birthDate address"})
	want := vippstest.DefaultUsers()[0]
	resp, page := decide(t, newBrowser(t), srv.URL, "approve")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("after approving: got %d, want 200", resp.StatusCode)
	}
	page = html.UnescapeString(page)
	for _, s := range []string{want.BirthDate, want.Address.Formatted} {
		if !strings.Contains(page, s) {
			t.Errorf("profile page does not show %q:\n%s", s, page)
		}
	}
	if strings.Contains(page, "Email") {
		t.Errorf("profile page shows an email that was not asked for")
	}
}

// Every text of the site has its Norwegian version.
func TestTextsComplete(t *testing.T) {
	for _, texts := range []siteTexts{english, norwegian} {
		v := reflect.ValueOf(texts)
		for i := range v.NumField() {
			if v.Field(i).String() == "" {
				t.Errorf("%s: %s is empty", texts.Lang, v.Type().Field(i).Name)
			}
		}
	}
}

// The site speaks one language from the home page to the profile: its own
// pages, the login button, the provider's consent page and vippslogin's
// logout page, as the browser's Accept-Language prefers.
func TestOneLanguage(t *testing.T) {
	tests := []struct {
		acceptLanguage string
		texts          *siteTexts
		button         string
		consent        string // the provider's consent page
		logout         string // vippslogin's logout page
		other          []string
	}{
		{"en-GB,en;q=0.9", &english, "Log in with Vipps", "Approve", "Stay logged in",
			[]string{"Velkommen", "Logg inn", "Logg ut", "Profilen", "bekreftet", "Godkjenn", "Telefon"}},
		{"nb-NO,nb;q=0.9,en;q=0.8", &norwegian, "Logg inn med Vipps", "Godkjenn", "Forbli innlogget",
			[]string{"Welcome", "Log in", "Log out", "Your profile", "verified", "Approve", "Phone"}},
	}
	for _, tc := range tests {
		t.Run(tc.texts.Lang, func(t *testing.T) {
			srv, _ := startSite(t, nil)
			c := newBrowser(t)
			c.Transport = acceptLanguage(tc.acceptLanguage)
			T := tc.texts
			check := func(what string, resp *http.Response, page string, want ...string) {
				t.Helper()
				if got := resp.Header.Get("Content-Language"); got != T.Lang {
					t.Errorf("%s: Content-Language %q, want %q", what, got, T.Lang)
				}
				page = html.UnescapeString(page)
				for _, w := range append(want, `<html lang="`+T.Lang+`">`) {
					if !strings.Contains(page, w) {
						t.Errorf("%s: the page lacks %q:\n%s", what, w, page)
					}
				}
				for _, w := range tc.other {
					if strings.Contains(page, w) {
						t.Errorf("%s: the page says %q, in the other language:\n%s", what, w, page)
					}
				}
			}

			resp, page := get(t, c, srv.URL+"/", "")
			check("home page", resp, page, siteHeader(T), T.Welcome, T.Intro,
				`href="/auth/login?return_to=/profile" lang="`+T.Lang+`">`+tc.button+`</a>`)

			resp, page = get(t, c, srv.URL+loginLink, "")
			check("consent page", resp, page, ">"+tc.consent+"</button>")

			resp, page = decide(t, c, srv.URL, "approve")
			if resp.Request.URL.Path != "/profile" {
				t.Fatalf("after approving: at %s, want /profile", resp.Request.URL)
			}
			check("profile", resp, page, "<title>"+T.ProfileTitle+" · "+T.SiteName+"</title>",
				T.Shared, "<dt>"+T.Name+"</dt>", "<dt>"+T.Email+"</dt>", `<span class="tag">`+T.Verified+"</span>",
				"<dt>"+T.Phone+"</dt><dd>+47 912 34 567</dd>", "<dt>"+T.UserID+"</dt>", ">"+T.LogOut+"</button>", ">"+T.Home+"</a>")

			resp, page = get(t, c, srv.URL+"/", "")
			check("home page, logged in", resp, page, T.Hello+", Kari Nordmann", T.LoggedIn, T.SeeShared)

			resp, page = get(t, c, srv.URL+"/auth/logout", "")
			check("logout page", resp, page, ">"+T.LogOut+"</button>", tc.logout)
		})
	}
}
