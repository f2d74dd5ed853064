package vippstest_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/vippslogin/vippslogin"
	"github.com/vippslogin/vippslogin/vippstest"
)

// getIn loads u as a browser whose Accept-Language is lang.
func getIn(t *testing.T, u, lang string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept-Language", lang)
	return do(t, req)
}

// decideIn answers a consent page as a browser whose Accept-Language is
// lang.
func decideIn(t *testing.T, action, request, decision, lang string) (*http.Response, string) {
	t.Helper()
	form := url.Values{"request": {request}, "decision": {decision}}
	req, err := http.NewRequest(http.MethodPost, action, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept-Language", lang)
	return do(t, req)
}

func hasAll(t *testing.T, what, body string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, body)
		}
	}
}

func hasNone(t *testing.T, what, body string, unwanted ...string) {
	t.Helper()
	for _, w := range unwanted {
		if strings.Contains(body, w) {
			t.Errorf("%s shows %q:\n%s", what, w, body)
		}
	}
}

func TestConsentLanguage(t *testing.T) {
	p := newProvider(t, vippstest.Config{})
	u := p.URL() + authorizePath + "?" + authParams(p, "openid name").Encode()
	for _, tc := range []struct {
		acceptLanguage, lang string
		want                 []string
	}{
		{"", "en", []string{"<title>Log in with Vipps", "<h1>Log in with Vipps</h1>", "asks for:", "You log in as <strong>Kari Nordmann</strong>", ">Approve</button>", ">Cancel</button>"}},
		{"nb-NO,nb;q=0.9,en;q=0.8", "nb", []string{"<title>Logg inn med Vipps", "<h1>Logg inn med Vipps</h1>", "ber om:", "Du logger inn som <strong>Kari Nordmann</strong>", ">Godkjenn</button>", ">Avbryt</button>", "Ingen ekte konto"}},
	} {
		resp, body := getIn(t, u, tc.acceptLanguage)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("Accept-Language %q: status %d", tc.acceptLanguage, resp.StatusCode)
		}
		if got := resp.Header.Get("Content-Language"); got != tc.lang {
			t.Errorf("Accept-Language %q: Content-Language %q, want %q", tc.acceptLanguage, got, tc.lang)
		}
		hasAll(t, "consent page in "+tc.lang, body, append(tc.want, `<html lang="`+tc.lang+`">`)...)
	}
}

// The provider's pages speak the language that vippslogin's pages speak
// for the same Accept-Language, so that a login reads in one language from
// the site's button to the site's profile page.
func TestConsentLanguageMatchesVippslogin(t *testing.T) {
	p := newProvider(t, vippstest.Config{})
	u := p.URL() + authorizePath + "?" + authParams(p, "openid").Encode()
	for _, header := range []string{
		"", "nb", "nn-NO", "no", "NB", "en", "en-GB,nb;q=0.5", "da, nb;q=0.7, en;q=0.6",
		"en;q=0.5, nb;q=0.5", "nb;q=0.5, en;q=0.5", "*", "*, en;q=0.1", "en;q=0, *", "nb;q=0",
		"sv, de", "nb;q=1.000", "nb;q=.5, en;q=0.4", "nb;q=0.5000, en;q=0.4", "nb;q=1e0, en;q=0.4", "nb;q=2, en;q=0.1", "nb;q=0.001, en;q=0", "fr-CA, *;q=0.2, en;q=0.1",
	} {
		resp, _ := getIn(t, u, header)
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Accept-Language", header)
		if got, want := resp.Header.Get("Content-Language"), vippslogin.Language(r); got != want {
			t.Errorf("Accept-Language %q: the provider speaks %q, vippslogin %q", header, got, want)
		}
	}
}

// A consent page left open past its expiry explains itself in plain words
// and leads back to the site; it shows no error code.
func TestConsentExpired(t *testing.T) {
	clk := newClock()
	p := newProvider(t, vippstest.Config{Now: clk.Now})
	for _, tc := range []struct {
		lang, decision string
		want           []string
	}{
		{"en", "approve", []string{"<h1>This login has expired</h1>", "left open too long", "Nothing was shared", ">Back to site.example</a>"}},
		{"nb", "cancel", []string{"<h1>Denne innloggingen har gått ut</h1>", "sto åpen for lenge", "Ingenting ble delt", ">Tilbake til site.example</a>"}},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			action, request := consent(t, p, authParams(p, "openid"))
			clk.Add(10 * time.Minute)
			resp, body := decideIn(t, action, request, tc.decision, tc.lang)
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
				t.Errorf("status %d, Location %q; want 400 and no redirect", resp.StatusCode, resp.Header.Get("Location"))
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Errorf("Content-Type %q, want text/html", ct)
			}
			hasAll(t, "expired page", body, append(tc.want, `<html lang="`+tc.lang+`">`, `href="https://site.example/"`)...)
			hasNone(t, "expired page", body, "invalid_request", "access_denied", "Uff da", "state-0123456789", "/auth/callback")
		})
	}
}

// An answer just before the expiry still counts.
func TestConsentJustInTime(t *testing.T) {
	clk := newClock()
	p := newProvider(t, vippstest.Config{Now: clk.Now})
	action, request := consent(t, p, authParams(p, "openid"))
	clk.Add(10*time.Minute - time.Second)
	resp, body := decide(t, action, request, "approve")
	if got := redirectQuery(t, resp, body); got.Get("code") == "" {
		t.Errorf("redirect query = %v, want a code", got)
	}
}

func TestConsentAnsweredTwice(t *testing.T) {
	p := newProvider(t, vippstest.Config{})
	action, request := consent(t, p, authParams(p, "openid"))
	resp, body := decide(t, action, request, "cancel")
	redirectQuery(t, resp, body)

	resp, body = decide(t, action, request, "approve")
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
		t.Errorf("second answer: status %d, Location %q; want 400 and no redirect", resp.StatusCode, resp.Header.Get("Location"))
	}
	hasAll(t, "second answer", body, "<h1>This login is already finished</h1>", `href="https://site.example/"`, ">Back to site.example</a>")
	hasNone(t, "second answer", body, "invalid_request", "code=")
}

// An answer to a consent the provider never showed has nowhere to lead.
func TestConsentUnknown(t *testing.T) {
	p := newProvider(t, vippstest.Config{})
	action, _ := consent(t, p, authParams(p, "openid"))
	resp, body := decideIn(t, action, "made-up", "approve", "nb")
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("status %d, want 400", resp.StatusCode)
	}
	hasAll(t, "unknown consent", body, "<h1>Denne innloggingen kan ikke fortsette</h1>", "Gå tilbake til nettstedet du kom fra")
	hasNone(t, "unknown consent", body, "invalid_request", "<a ")
}

// A request the site built wrong asks the user to tell the site, and shows
// the code and description for its developers.
func TestAuthorizeErrorPage(t *testing.T) {
	p := newProvider(t, vippstest.Config{})
	q := authParams(p, "openid")
	q.Set("client_id", "someone-else")
	resp, body := getIn(t, p.URL()+authorizePath+"?"+q.Encode(), "en")
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("status %d, want 400", resp.StatusCode)
	}
	hasAll(t, "error page", body, "<h1>This login can&#39;t start</h1>", "Please tell the site",
		"For the site&#39;s developers: <code>invalid_request: unknown client_id</code>")
	hasNone(t, "error page", body, "<a ", "Uff da")
}
