package vippslogin_test

import (
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/vippslogin/vippslogin"
	"github.com/vippslogin/vippslogin/vippstest"
)

// Accept-Language headers a Norwegian and an English browser send.
const (
	norwegianBrowser = "nb-NO,nb;q=0.9,no;q=0.8,nn;q=0.7,en-US;q=0.6,en;q=0.5"
	englishBrowser   = "en-GB,en;q=0.9"
)

// wantPage checks that an HTML error page is in the language tag and says
// title and message.
func wantPage(t *testing.T, resp *http.Response, body, tag, title, message string) {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("Content-Type = %q, want HTML; body:\n%s", ct, body)
	}
	wantLanguageHeaders(t, resp, tag)
	for _, want := range []string{
		`<html lang="` + tag + `">`,
		"<title>" + html.EscapeString(title) + "</title>",
		"<h1>" + html.EscapeString(title) + "</h1>",
		"<p>" + html.EscapeString(message) + "</p>",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s:\n%s", want, body)
		}
	}
}

// wantLanguageHeaders checks the headers of an answer in the language tag.
func wantLanguageHeaders(t *testing.T, resp *http.Response, tag string) {
	t.Helper()
	if got := resp.Header.Get("Content-Language"); got != tag {
		t.Errorf("Content-Language = %q, want %q", got, tag)
	}
	vary := strings.Join(resp.Header.Values("Vary"), ",")
	if !strings.Contains(vary, "Accept-Language") {
		t.Errorf("Vary = %q, want Accept-Language in it", vary)
	}
}

// jsonMessage decodes the JSON answer of the default error handler.
func jsonMessage(t testing.TB, resp *http.Response, body string) (code, message, loginURL string) {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type = %q, want JSON; body %q", ct, body)
	}
	var v struct {
		Error    string `json:"error"`
		Message  string `json:"message"`
		LoginURL string `json:"login_url"`
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	return v.Error, v.Message, v.LoginURL
}

func TestCancelledPage(t *testing.T) {
	tests := []struct {
		name, acceptLanguage, tag        string
		title, message, tryAgain, backTo string
	}{
		{
			name: "English", acceptLanguage: englishBrowser, tag: "en",
			title:    "You cancelled the login",
			message:  "No problem: nothing was shared. You can log in again whenever you like.",
			tryAgain: "Try again", backTo: "Back to the site",
		},
		{
			name: "no header", acceptLanguage: "", tag: "en",
			title:    "You cancelled the login",
			message:  "No problem: nothing was shared. You can log in again whenever you like.",
			tryAgain: "Try again", backTo: "Back to the site",
		},
		{
			name: "Norwegian", acceptLanguage: norwegianBrowser, tag: "nb",
			title:    "Du avbrøt innloggingen",
			message:  "Helt i orden – ingenting ble delt. Du kan logge inn igjen når du vil.",
			tryAgain: "Prøv igjen", backTo: "Tilbake til nettstedet",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.idp.SetHooks(vippstest.Hooks{AuthorizeError: "access_denied"})
			b := h.browser()

			resp, body := b.get(b.startLogin("/shop"), "Accept-Language", tc.acceptLanguage)
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("status %d, want 400", resp.StatusCode)
			}
			h.wantErr(vippslogin.ErrLoginCancelled)
			wantPage(t, resp, body, tc.tag, tc.title, tc.message)
			for _, want := range []string{
				`<a class="button" href="/auth/login?return_to=%2Fshop">` + tc.tryAgain + `</a>`,
				`<a class="quiet" href="/">` + tc.backTo + `</a>`,
			} {
				if !strings.Contains(body, want) {
					t.Errorf("page lacks %s:\n%s", want, body)
				}
			}
			// vippstest sends the description "error set in vippstest
			// Hooks.AuthorizeError".
			for _, leak := range []string{"access_denied", "vippstest", "Hooks"} {
				if strings.Contains(body, leak) {
					t.Errorf("page shows %q:\n%s", leak, body)
				}
			}
		})
	}
}

// The guidance for each error code Vipps sends to the callback, in both
// languages.
func TestProviderErrorPages(t *testing.T) {
	type texts struct{ title, message string }
	var (
		setupEN = texts{"We couldn't finish your login", "This site's login is not set up correctly. Please tell the site."}
		setupNB = texts{"Vi fikk ikke fullført innloggingen", "Innloggingen på dette nettstedet er ikke riktig satt opp. Si gjerne fra til dem som driver nettstedet."}
		otherEN = texts{"We couldn't finish your login", "Vipps MobilePay could not complete the login. Please try again."}
		otherNB = texts{"Vi fikk ikke fullført innloggingen", "Vipps MobilePay fikk ikke fullført innloggingen. Prøv igjen."}
		downEN  = texts{"We couldn't finish your login", "Vipps MobilePay had a problem. Please try again in a moment."}
		downNB  = texts{"Vi fikk ikke fullført innloggingen", "Noe gikk galt hos Vipps MobilePay. Prøv igjen om litt."}
	)
	tests := []struct {
		code     string
		status   int
		jsonCode string
		en, nb   texts
	}{
		{"access_denied", 400, "access_denied",
			texts{"You cancelled the login", "No problem: nothing was shared. You can log in again whenever you like."},
			texts{"Du avbrøt innloggingen", "Helt i orden – ingenting ble delt. Du kan logge inn igjen når du vil."}},
		{"outdated_app_version", 400, "outdated_app_version",
			texts{"Update your app", "Your Vipps or MobilePay app is too old to log in. Update it from the app store and try again."},
			texts{"Oppdater appen", "Vipps- eller MobilePay-appen din må oppdateres før du kan logge inn. Oppdater den i App Store eller Google Play, og prøv igjen."}},
		{"wrong_challenge", 400, "wrong_challenge",
			texts{"The login was not confirmed", "The code you picked in the app did not match the one shown in your browser. Please try again and pick the same one."},
			texts{"Innloggingen ble ikke bekreftet", "Koden du valgte i appen, stemte ikke med den som ble vist i nettleseren. Prøv igjen, og velg den samme koden."}},
		{"login_required", 400, "login_required",
			texts{"Please log in again", "Vipps MobilePay needs you to log in again."},
			texts{"Logg inn på nytt", "Du må logge inn på nytt hos Vipps MobilePay."}},
		{"server_error", 502, "server_error", downEN, downNB},
		{"temporarily_unavailable", 503, "temporarily_unavailable", downEN, downNB},
		{"invalid_request", 400, "invalid_request", setupEN, setupNB},
		{"invalid_client", 400, "invalid_client", setupEN, setupNB},
		{"invalid_scope", 400, "invalid_scope", setupEN, setupNB},
		{"unauthorized_client", 400, "unauthorized_client", setupEN, setupNB},
		{"invalid_app_callback_uri", 400, "invalid_app_callback_uri", setupEN, setupNB},
		{"app_callback_uri_not_registered", 400, "app_callback_uri_not_registered", setupEN, setupNB},
		{"unknown_reject_reason", 400, "unknown_reject_reason", otherEN, otherNB},
		// Anyone can write a code into a URL: an unknown one is "unknown".
		{"never_heard_of_it", 400, "unknown", otherEN, otherNB},
	}
	h := newHarness(t)
	for _, tc := range tests {
		t.Run(tc.code, func(t *testing.T) {
			h.idp.SetHooks(vippstest.Hooks{AuthorizeError: tc.code})
			for _, lc := range []struct {
				acceptLanguage, tag string
				want                texts
			}{
				{englishBrowser, "en", tc.en},
				{norwegianBrowser, "nb", tc.nb},
			} {
				b := h.browser()
				resp, body := b.get(b.startLogin("/shop"), "Accept-Language", lc.acceptLanguage)
				if resp.StatusCode != tc.status {
					t.Errorf("%s: status %d, want %d", lc.tag, resp.StatusCode, tc.status)
				}
				wantPage(t, resp, body, lc.tag, lc.want.title, lc.want.message)
				for _, leak := range []string{tc.code, "vippstest", "Hooks"} {
					if strings.Contains(body, leak) {
						t.Errorf("%s: page shows %q:\n%s", lc.tag, leak, body)
					}
				}

				resp, body = b.get(b.startLogin("/shop"), "Accept", "application/json", "Accept-Language", lc.acceptLanguage)
				code, message, _ := jsonMessage(t, resp, body)
				if code != tc.jsonCode || message != lc.want.message {
					t.Errorf("%s: JSON error %q message %q, want %q %q", lc.tag, code, message, tc.jsonCode, lc.want.message)
				}
				wantLanguageHeaders(t, resp, lc.tag)
			}
		})
	}
}

// What the URL says about the error never reaches the page: anyone can
// send a user a callback link with any error and error_description.
func TestProviderErrorNotEchoed(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	const (
		code        = `access_denied"><script>alert(1)</script>`
		description = `Your account is locked. Call +47 12 34 56 78 <img src=x onerror=alert(2)>`
	)
	q := url.Values{"error": {code}, "error_description": {description}}
	for _, acceptLanguage := range []string{englishBrowser, norwegianBrowser} {
		resp, body := b.get("/auth/callback?"+q.Encode(), "Accept-Language", acceptLanguage)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("status %d, want 400", resp.StatusCode)
		}
		for _, leak := range []string{"<script", "alert", "locked", "+47", "<img", "access_denied"} {
			if strings.Contains(body, leak) {
				t.Errorf("page shows %q:\n%s", leak, body)
			}
		}
		resp, body = b.get("/auth/callback?"+q.Encode(), "Accept", "application/json", "Accept-Language", acceptLanguage)
		if got, _, _ := jsonMessage(t, resp, body); got != "unknown" {
			t.Errorf(`JSON "error" = %q, want unknown`, got)
		}
		if strings.Contains(body, "locked") || strings.Contains(body, "alert") {
			t.Errorf("JSON shows the URL's text: %s", body)
		}
	}
}

func TestLanguageNegotiation(t *testing.T) {
	tests := []struct {
		name, acceptLanguage, want string
	}{
		{"no header", "", "en"},
		{"English", "en", "en"},
		{"Norwegian browser", "nb-NO,nb;q=0.9,en;q=0.8", "nb"},
		{"Bokmål", "nb", "nb"},
		{"Nynorsk gets Bokmål", "nn", "nb"},
		{"Norwegian", "no", "nb"},
		{"region only differs", "nb-SJ", "nb"},
		{"upper case", "NB-no", "nb"},
		{"English weighs more", "en;q=1, nb;q=0.5", "en"},
		{"Norwegian weighs more", "en;q=0.5, nb;q=0.8", "nb"},
		{"weights beat order", "nb;q=0.5, en", "en"},
		{"three decimals", "en;q=0.001, nb;q=0.002", "nb"},
		{"tie: first wins", "en, nb", "en"},
		{"tie: first wins, Norwegian", "nb, en", "nb"},
		{"other languages skipped", "sv-SE, nn;q=0.9, en;q=0.8", "nb"},
		{"only other languages", "de-DE, fr;q=0.9", "en"},
		{"Danish then English", "da, en;q=0.9, nb;q=0.8", "en"},
		{"spaces around", " nb ;q=0.9 ,\ten;q=0.3 ", "nb"},
		{"empty elements", ",,nb,,", "nb"},
		{"highest weight of a language counts", "nb-NO;q=0.1, en;q=0.5, nb;q=0.9", "nb"},
		{"wildcard", "*", "en"},
		{"wildcard and Norwegian", "*;q=0.5, nb", "nb"},
		{"anything but English", "en;q=0, *", "nb"},
		{"anything but Norwegian", "nb;q=0, *", "en"},
		{"Norwegian refused", "nb;q=0", "en"},
		{"q=0.000 refuses", "nb;q=0.000, en;q=0.1", "en"},
		{"q=1.000", "en;q=0.9, nb;q=1.000", "nb"},
		{"garbage", "%%%, ;;;, ===", "en"},
		{"q above 1", "nb;q=1.5, en;q=0.1", "en"},
		{"q with four decimals", "nb;q=0.5000, en;q=0.1", "en"},
		{"q not a number", "nb;q=high, en;q=0.1", "en"},
		{"space inside q", "nb;q= 0.9, en;q=0.1", "en"},
		{"other parameter", "nb;level=1, en;q=0.1", "en"},
		{"two weights", "nb;q=0.9;q=0.8, en;q=0.1", "en"},
		{"subtag too long", "nb-verylongsubtag, en;q=0.1", "en"},
		{"primary subtag with a digit", "n1, nb;q=0.5", "nb"},
		{"trailing hyphen", "nb-, en;q=0.1", "en"},
		{"underscore", "nb_NO, en;q=0.1", "en"},
		{"entries after the 32nd", strings.Repeat("de,", 32) + "nb", "en"},
		{"32nd entry counts", strings.Repeat("de,", 31) + "nb", "nb"},
	}
	h := newHarness(t)
	b := h.browser()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			title := map[string]string{"en": "The login link is incomplete", "nb": "Innloggingslenken er ufullstendig"}[tc.want]
			message := map[string]string{
				"en": "The address you came back with from Vipps MobilePay is incomplete or has been changed. Please log in again.",
				"nb": "Adressen du kom tilbake med fra Vipps MobilePay, er ufullstendig eller endret. Logg inn på nytt.",
			}[tc.want]
			// A callback without state: ErrBadCallback.
			resp, body := b.get("/auth/callback", "Accept-Language", tc.acceptLanguage)
			wantPage(t, resp, body, tc.want, title, message)

			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header.Set("Accept-Language", tc.acceptLanguage)
			if got := vippslogin.Language(r); got != tc.want {
				t.Errorf("Language = %q, want %q", got, tc.want)
			}
		})
	}
}

// Every Accept-Language field line counts, as if joined by commas.
func TestLanguageSeveralFieldLines(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Add("Accept-Language", "en;q=0.5")
	r.Header.Add("Accept-Language", "nb")
	if got := vippslogin.Language(r); got != "nb" {
		t.Errorf("Language = %q, want nb", got)
	}
}

func TestHeadErrorPageLanguage(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	resp, body := b.do(http.MethodHead, "/auth/callback", nil, "Accept-Language", "nb")
	if body != "" {
		t.Errorf("HEAD body %q, want none", body)
	}
	wantLanguageHeaders(t, resp, "nb")
}

// Other errors than the provider's, in Norwegian, as page and as JSON.
func TestErrorPagesNorwegian(t *testing.T) {
	tests := []struct {
		name           string
		call           func(h *harness, b *browser, header ...string) (*http.Response, string)
		status         int
		title, message string
	}{
		{
			name: "expired",
			call: func(h *harness, b *browser, header ...string) (*http.Response, string) {
				cb := b.startLogin("/profile")
				h.clock.Advance(10*time.Minute + time.Second)
				return b.get(cb, header...)
			},
			status:  400,
			title:   "Innloggingen tok for lang tid",
			message: "Innloggingen ble ikke fullført i tide. Start på nytt.",
		},
		{
			name: "replayed after logout",
			call: func(h *harness, b *browser, header ...string) (*http.Response, string) {
				cb := b.startLogin("/profile")
				if resp, _ := b.get(cb); resp.StatusCode != http.StatusSeeOther {
					h.t.Fatalf("first callback: status %d", resp.StatusCode)
				}
				if resp, _ := b.logout(nil); resp.StatusCode != http.StatusSeeOther {
					h.t.Fatalf("logout: status %d", resp.StatusCode)
				}
				return b.get(cb, header...)
			},
			status:  400,
			title:   "Denne innloggingen er allerede brukt",
			message: "En innlogging kan bare brukes én gang, og denne er allerede brukt. Hvis du ikke er logget inn, logg inn på nytt.",
		},
		{
			name: "return_to on another site",
			call: func(h *harness, b *browser, header ...string) (*http.Response, string) {
				return b.get("/auth/login?return_to="+url.QueryEscape("https://evil.example/"), header...)
			},
			status:  400,
			title:   "Lenken kan ikke brukes",
			message: "Adressen du skal tilbake til etter innloggingen, er ikke en side på dette nettstedet.",
		},
		{
			name: "token endpoint down",
			call: func(h *harness, b *browser, header ...string) (*http.Response, string) {
				cb := b.startLogin("/profile")
				h.idp.SetFault(vippstest.Token, vippstest.Fault{Status: 500})
				return b.get(cb, header...)
			},
			status:  502,
			title:   "Vi fikk ikke fullført innloggingen",
			message: "Noe gikk galt hos Vipps MobilePay. Prøv igjen om litt.",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			resp, body := tc.call(h, h.browser(), "Accept-Language", norwegianBrowser)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			wantPage(t, resp, body, "nb", tc.title, tc.message)

			h = newHarness(t)
			resp, body = tc.call(h, h.browser(), "Accept-Language", norwegianBrowser, "Accept", "application/json")
			if _, message, _ := jsonMessage(t, resp, body); message != tc.message {
				t.Errorf("JSON message %q, want %q", message, tc.message)
			}
			wantLanguageHeaders(t, resp, "nb")
		})
	}
}

// An API client that is not logged in gets a 401 with a message in its
// language, and the login URL.
func TestNotLoggedInJSONLanguage(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	resp, body := b.get("/profile", "Accept", "application/json", "Accept-Language", "nb")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401", resp.StatusCode)
	}
	code, message, loginURL := jsonMessage(t, resp, body)
	if code != "login_required" || message != "Du må logge inn for å se denne siden." || loginURL == "" {
		t.Errorf("JSON = %s", body)
	}
	wantLanguageHeaders(t, resp, "nb")
}

// A site can choose the language itself with WithLanguage, here in its
// error handler; the Accept-Language header then does not count.
func TestWithLanguage(t *testing.T) {
	tests := []struct{ tag, acceptLanguage, want string }{
		{"nb", englishBrowser, "nb"},
		{"nn-NO", englishBrowser, "nb"},
		{"en", norwegianBrowser, "en"},
		{"de", norwegianBrowser, "en"}, // no German texts: English
		{"", norwegianBrowser, "en"},
	}
	for _, tc := range tests {
		t.Run(tc.tag, func(t *testing.T) {
			h := newHarness(t, options{site: func(c *vippslogin.Config) {
				c.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
					vippslogin.WriteError(w, r.WithContext(vippslogin.WithLanguage(r.Context(), tc.tag)), err)
				}
			}})
			h.idp.SetHooks(vippstest.Hooks{AuthorizeError: "access_denied"})
			b := h.browser()
			resp, body := b.get(b.startLogin("/"), "Accept-Language", tc.acceptLanguage)
			title := map[string]string{"en": "You cancelled the login", "nb": "Du avbrøt innloggingen"}[tc.want]
			if !strings.Contains(body, "<title>"+title+"</title>") || resp.Header.Get("Content-Language") != tc.want {
				t.Errorf("Content-Language %q, page:\n%s", resp.Header.Get("Content-Language"), body)
			}
		})
	}
}

// Language gives a site's own pages the language of the package's pages.
func ExampleLanguage() {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Accept-Language", "sv-SE, nn;q=0.9, en;q=0.8")
	fmt.Println(vippslogin.Language(r))

	r.Header.Set("Accept-Language", "en-GB, nb;q=0.7")
	fmt.Println(vippslogin.Language(r))

	r = r.WithContext(vippslogin.WithLanguage(r.Context(), "nb-NO"))
	fmt.Println(vippslogin.Language(r))
	// Output:
	// nb
	// en
	// nb
}

// A Norwegian site shows the package's pages in Norwegian to every browser,
// whatever language the browser asks for.
func ExampleWithLanguage() {
	norwegian := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r.WithContext(vippslogin.WithLanguage(r.Context(), "nb")))
		})
	}
	failing := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		vippslogin.WriteError(w, r, vippslogin.ErrLoginExpired)
	})

	r := httptest.NewRequest(http.MethodGet, "/auth/callback", nil)
	r.Header.Set("Accept-Language", "en")
	w := httptest.NewRecorder()
	norwegian(failing).ServeHTTP(w, r)
	fmt.Println(w.Code, w.Header().Get("Content-Language"))
	fmt.Println(strings.Contains(w.Body.String(), "<h1>Innloggingen tok for lang tid</h1>"))
	// Output:
	// 400 nb
	// true
}

// A login the site itself calls off (wrapping ErrLoginCancelled) gets the
// same page as one cancelled at Vipps.
func TestCancelledOnTheSite(t *testing.T) {
	for _, tc := range []struct{ acceptLanguage, tag, title, message string }{
		{englishBrowser, "en", "You cancelled the login", "No problem: nothing was shared. You can log in again whenever you like."},
		{norwegianBrowser, "nb", "Du avbrøt innloggingen", "Helt i orden – ingenting ble delt. Du kan logge inn igjen når du vil."},
	} {
		r := httptest.NewRequest(http.MethodGet, "/auth/confirm", nil)
		r.Header.Set("Accept-Language", tc.acceptLanguage)
		w := httptest.NewRecorder()
		vippslogin.WriteError(w, r, vippslogin.LoginFailure("/auth/login", "/",
			fmt.Errorf("%w: on the site", vippslogin.ErrLoginCancelled)))
		resp := w.Result()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", tc.tag, resp.StatusCode)
		}
		wantPage(t, resp, w.Body.String(), tc.tag, tc.title, tc.message)
	}
}
