package button_test

import (
	"bytes"
	"fmt"
	"html/template"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/vippslogin/vippslogin"
	"github.com/vippslogin/vippslogin/button"
)

func TestHTML(t *testing.T) {
	tests := []struct {
		name string
		url  string
		opts button.Options
		want template.HTML
	}{
		{
			name: "Vipps, English by default",
			url:  "/auth/login",
			want: `<a class="vippslogin-button vippslogin-vipps" href="/auth/login" lang="en">Log in with Vipps</a>`,
		},
		{
			name: "Vipps, Norwegian",
			url:  "/auth/login?return_to=%2Forders",
			opts: button.Options{Language: "nb"},
			want: `<a class="vippslogin-button vippslogin-vipps" href="/auth/login?return_to=%2Forders" lang="nb">Logg inn med Vipps</a>`,
		},
		{
			name: "Vipps, Nynorsk tag",
			url:  "/auth/login",
			opts: button.Options{Language: "nn-NO"},
			want: `<a class="vippslogin-button vippslogin-vipps" href="/auth/login" lang="nb">Logg inn med Vipps</a>`,
		},
		{
			name: "Vipps, rounded",
			url:  "/auth/login",
			opts: button.Options{Language: "no", Rounded: true},
			want: `<a class="vippslogin-button vippslogin-vipps vippslogin-rounded" href="/auth/login" lang="nb">Logg inn med Vipps</a>`,
		},
		{
			name: "MobilePay, English",
			url:  "https://shop.example/auth/login",
			opts: button.Options{Brand: button.MobilePay, Language: "en-DK"},
			want: `<a class="vippslogin-button vippslogin-mobilepay" href="https://shop.example/auth/login" lang="en">Log in with MobilePay</a>`,
		},
		{
			name: "MobilePay, Norwegian",
			url:  "/auth/login",
			opts: button.Options{Brand: button.MobilePay, Language: "nb-NO"},
			want: `<a class="vippslogin-button vippslogin-mobilepay" href="/auth/login" lang="nb">Logg inn med MobilePay</a>`,
		},
		{
			name: "language without texts: English",
			url:  "/auth/login",
			opts: button.Options{Brand: button.MobilePay, Language: "da"},
			want: `<a class="vippslogin-button vippslogin-mobilepay" href="/auth/login" lang="en">Log in with MobilePay</a>`,
		},
		{
			name: "hostile query is escaped",
			url:  `/auth/login?return_to=/x"><script>alert(1)</script>&a='b'`,
			want: `<a class="vippslogin-button vippslogin-vipps" href="/auth/login?return_to=/x%22%3e%3cscript%3ealert%281%29%3c/script%3e&amp;a=%27b%27" lang="en">Log in with Vipps</a>`,
		},
		{
			name: "backslash and spaces in the path are escaped",
			url:  `/auth/lo gin\x`,
			want: `<a class="vippslogin-button vippslogin-vipps" href="/auth/lo%20gin%5cx" lang="en">Log in with Vipps</a>`,
		},
		{
			name: "relative path",
			url:  "login",
			want: `<a class="vippslogin-button vippslogin-vipps" href="login" lang="en">Log in with Vipps</a>`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := button.HTML(tc.url, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// The button speaks Norwegian for the tags whose primary subtag is nb, nn
// or no, in any case and with any subtags, as vippslogin's pages do, and
// English for every other tag.
func TestHTMLLanguage(t *testing.T) {
	for _, tc := range []struct{ tag, lang, label string }{
		{"nb", "nb", "Logg inn med Vipps"},
		{"NB-no", "nb", "Logg inn med Vipps"},
		{"nn", "nb", "Logg inn med Vipps"},
		{"no", "nb", "Logg inn med Vipps"},
		{"no-bok", "nb", "Logg inn med Vipps"},
		{"en", "en", "Log in with Vipps"},
		{"en-GB", "en", "Log in with Vipps"},
		{"", "en", "Log in with Vipps"},
		{"sv", "en", "Log in with Vipps"},
		{"nob", "en", "Log in with Vipps"},
		{"x-nb", "en", "Log in with Vipps"},
		{"nb_NO", "en", "Log in with Vipps"},
	} {
		got, err := button.HTML("/auth/login", button.Options{Language: tc.tag})
		if err != nil {
			t.Fatal(err)
		}
		want := `lang="` + tc.lang + `">` + tc.label + `</a>`
		if !strings.HasSuffix(string(got), want) {
			t.Errorf("Language %q: got %s, want it to end with %s", tc.tag, got, want)
		}
	}
}

func TestHTMLRefusesURL(t *testing.T) {
	for _, u := range []string{
		"",
		"javascript:alert(1)",
		"JavaScript:alert(1)",
		" javascript:alert(1)",
		"java\tscript:alert(1)",
		"java\nscript:alert(1)",
		"data:text/html,<script>alert(1)</script>",
		"vbscript:msgbox(1)",
		"mailto:someone@example.com",
		"ftp://shop.example/auth/login",
		"//evil.example/auth/login",
		`/\evil.example/auth/login`,
		`\\evil.example/auth/login`,
		"https://user:password@evil.example/",
		"https:evil.example",
		"http://",
		"/auth/login ",
		"/auth/login\x00",
		"%zz",
	} {
		t.Run(fmt.Sprintf("%q", u), func(t *testing.T) {
			got, err := button.HTML(u, button.Options{})
			if err == nil || got != "" {
				t.Errorf("HTML(%q) = %q, %v; want an error", u, got, err)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "vippslogin: ") {
				t.Errorf("error %q does not start with vippslogin: ", err)
			}
		})
	}
}

func TestHTMLUnknownBrand(t *testing.T) {
	if got, err := button.HTML("/auth/login", button.Options{Brand: 7}); err == nil {
		t.Errorf("Brand 7: got %q, want an error", got)
	}
}

func TestCSS(t *testing.T) {
	css := string(button.CSS)
	for _, want := range []string{
		".vippslogin-button", ".vippslogin-mobilepay", ".vippslogin-rounded",
		"#ff5b24", "#5a78ff", "color:#fff", ":focus-visible",
	} {
		if !strings.Contains(css, want) {
			t.Errorf("CSS lacks %q", want)
		}
	}
	for _, bad := range []string{"<", "url(", "@import", "expression("} {
		if strings.Contains(css, bad) {
			t.Errorf("CSS contains %q", bad)
		}
	}
}

// In a template, a refused URL stops the page instead of rendering a link.
func TestHTMLInTemplate(t *testing.T) {
	page := template.Must(template.New("p").Funcs(template.FuncMap{
		"loginButton": button.HTML,
	}).Parse(`<style>{{.CSS}}</style>{{loginButton .URL .Options}}`))

	var b bytes.Buffer
	err := page.Execute(&b, map[string]any{"CSS": button.CSS, "URL": "/auth/login", "Options": button.Options{}})
	if err != nil {
		t.Fatal(err)
	}
	if got := b.String(); !strings.Contains(got, "<style>"+string(button.CSS)+"</style>") ||
		!strings.Contains(got, `<a class="vippslogin-button vippslogin-vipps" href="/auth/login" lang="en">Log in with Vipps</a>`) {
		t.Errorf("page:\n%s", got)
	}

	b.Reset()
	err = page.Execute(&b, map[string]any{"CSS": button.CSS, "URL": "javascript:alert(1)", "Options": button.Options{}})
	if err == nil || strings.Contains(b.String(), "javascript") {
		t.Errorf("javascript: URL: err %v, page:\n%s", err, b.String())
	}
}

// A home page with the login button in the visitor's language. The button's
// stylesheet is served by the site, so the page's Content-Security-Policy
// can keep style-src 'self'.
func ExampleHTML() {
	page := template.Must(template.New("home").Funcs(template.FuncMap{
		"loginButton": button.HTML,
	}).Parse(`<!doctype html>
<html lang="{{.Lang}}">
<link rel="stylesheet" href="/vippslogin.css">
<title>Shop</title>
{{loginButton .LoginURL .Button}}
`))

	mux := http.NewServeMux()
	mux.HandleFunc("GET /vippslogin.css", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		fmt.Fprint(w, button.CSS)
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		lang := vippslogin.Language(r)
		w.Header().Set("Content-Security-Policy", "default-src 'self'")
		err := page.Execute(w, map[string]any{
			"Lang":     lang,
			"LoginURL": "/auth/login?return_to=%2Forders", // auth.LoginURL("/orders")
			"Button":   button.Options{Brand: button.Vipps, Language: lang},
		})
		if err != nil {
			log.Print(err)
		}
	})

	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Accept-Language", "nb-NO,nb;q=0.9,en;q=0.8")
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	os.Stdout.Write(w.Body.Bytes())
	// Output:
	// <!doctype html>
	// <html lang="nb">
	// <link rel="stylesheet" href="/vippslogin.css">
	// <title>Shop</title>
	// <a class="vippslogin-button vippslogin-vipps" href="/auth/login?return_to=%2Forders" lang="nb">Logg inn med Vipps</a>
}
