package vippslogin_test

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/vippslogin/vippslogin"
)

func TestLogout(t *testing.T) {
	tests := []struct {
		name         string
		method       string
		form         url.Values
		header       []string
		wantStatus   int
		wantLocation string
		wantLoggedIn bool
	}{
		{name: "same origin", method: "POST", wantStatus: 303, wantLocation: "/"},
		{name: "return_to", method: "POST", form: url.Values{"return_to": {"/bye"}}, wantStatus: 303, wantLocation: "/bye"},
		{name: "return_to another site", method: "POST", form: url.Values{"return_to": {"//evil.example"}}, wantStatus: 303, wantLocation: "/"},
		{name: "return_to absolute", method: "POST", form: url.Values{"return_to": {"https://evil.example/"}}, wantStatus: 303, wantLocation: "/"},
		{name: "cross-site", method: "POST", header: []string{"Sec-Fetch-Site", "cross-site"}, wantStatus: 403, wantLoggedIn: true},
		{name: "cross-origin Origin", method: "POST", header: []string{"Origin", "https://evil.example"}, wantStatus: 403, wantLoggedIn: true},
		{name: "GET shows a page only", method: "GET", wantStatus: 200, wantLoggedIn: true},
		{name: "PUT", method: "PUT", wantStatus: 405, wantLoggedIn: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			b := h.browser()
			b.login("/profile")
			var resp *http.Response
			if tc.method == "POST" {
				if len(tc.header) > 0 {
					resp, _ = b.do("POST", "/auth/logout", strings.NewReader(tc.form.Encode()), tc.header...)
				} else {
					resp, _ = b.logout(tc.form)
				}
			} else {
				resp, _ = b.do(tc.method, "/auth/logout", nil)
			}
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d (error %v)", resp.StatusCode, tc.wantStatus, h.lastErr())
			}
			if got := resp.Header.Get("Location"); got != tc.wantLocation {
				t.Errorf("Location %q, want %q", got, tc.wantLocation)
			}
			if tc.wantStatus == http.StatusForbidden {
				h.wantErr(&vippslogin.Error{Err: vippslogin.ErrInvalidRequest, Reason: "cross_origin"})
			}
			if got := b.profile() != nil; got != tc.wantLoggedIn {
				t.Errorf("logged in after logout = %v, want %v", got, tc.wantLoggedIn)
			}
		})
	}
}

// GET /auth/logout, where a logout link leads, shows a page in the
// browser's language whose button POSTs the logout. The GET itself logs
// nobody out and sets no cookie.
func TestLogoutLink(t *testing.T) {
	tests := []struct{ acceptLanguage, tag, title, message, logOut, stay string }{
		{englishBrowser, "en", "Log out", "Do you want to log out of this site in this browser?", "Log out", "Stay logged in"},
		{norwegianBrowser, "nb", "Logg ut", "Vil du logge ut av dette nettstedet i denne nettleseren?", "Logg ut", "Forbli innlogget"},
	}
	for _, tc := range tests {
		t.Run(tc.tag, func(t *testing.T) {
			h := newHarness(t)
			b := h.browser()
			b.login("/profile")
			session := b.cookie("session")
			if session == "" {
				t.Fatal("no session cookie after login")
			}
			resp, body := b.get("/auth/logout", "Accept-Language", tc.acceptLanguage)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200 (error %v)", resp.StatusCode, h.lastErr())
			}
			wantPage(t, resp, body, tc.tag, tc.title, tc.message)
			wantLogoutHeaders(t, resp)
			for _, want := range []string{
				`<form method="post" action="/auth/logout">`,
				`<button class="button" type="submit">` + tc.logOut + `</button>`,
				`<a class="quiet" href="/">` + tc.stay + `</a>`,
			} {
				if !strings.Contains(body, want) {
					t.Errorf("page lacks %s:\n%s", want, body)
				}
			}
			if strings.Contains(body, `name="return_to"`) {
				t.Errorf("page carries a return_to nobody gave:\n%s", body)
			}
			if b.cookie("session") != session || b.profile() == nil {
				t.Error("GET /auth/logout logged the browser out")
			}
		})
	}
}

// wantLogoutHeaders checks that the logout link's answer is not cached,
// has the pages' Content-Security-Policy and sets no cookie.
func wantLogoutHeaders(t *testing.T, resp *http.Response) {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type %q, want HTML", ct)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "form-action 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %s", csp, want)
		}
	}
	if c := resp.Header.Values("Set-Cookie"); len(c) > 0 {
		t.Errorf("sets cookies %q", c)
	}
}

// A link checker's HEAD gets the page's headers, and logs nobody out.
func TestLogoutLinkHead(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	b.login("/profile")
	resp, body := b.do(http.MethodHead, "/auth/logout?return_to=/bye", nil)
	if resp.StatusCode != http.StatusOK || body != "" {
		t.Errorf("HEAD: %d with body %q, want 200 and none", resp.StatusCode, body)
	}
	wantLogoutHeaders(t, resp)
	if b.profile() == nil {
		t.Error("HEAD /auth/logout logged the browser out")
	}
}

// The page carries return_to to the logout, and to its link back, when
// it is a path on this site, and drops any other.
func TestLogoutLinkReturnTo(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	tests := []struct{ returnTo, want string }{
		{"/bye", "/bye"},
		{"/bye?a=1&b=2", "/bye?a=1&amp;b=2"},
		{"//evil.example/", ""},
		{"https://evil.example/", ""},
		{"/\\evil.example", ""},
		{"javascript:alert(1)", ""},
		{"/auth/login", ""}, // the package's own routes are no place to end
	}
	for _, tc := range tests {
		_, body := b.get("/auth/logout?return_to=" + url.QueryEscape(tc.returnTo))
		if tc.want == "" {
			if strings.Contains(body, `name="return_to"`) || !strings.Contains(body, `<a class="quiet" href="/">`) ||
				strings.Contains(body, "evil") || strings.Contains(body, "javascript") || strings.Contains(body, "/auth/login") {
				t.Errorf("return_to %q is not dropped:\n%s", tc.returnTo, body)
			}
			continue
		}
		for _, want := range []string{
			`<input type="hidden" name="return_to" value="` + tc.want + `">`,
			`<a class="quiet" href="` + tc.want + `">`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("return_to %q: page lacks %s:\n%s", tc.returnTo, want, body)
			}
		}
	}
}

// The page's button logs out: its form, posted as a browser posts it,
// ends the session and goes to return_to.
func TestLogoutLinkForm(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	b.login("/profile")
	_, body := b.get("/auth/logout?return_to=/bye")
	action, form := logoutForm(t, body)
	resp, _ := b.do(http.MethodPost, action, strings.NewReader(form.Encode()), "Sec-Fetch-Site", "same-origin")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/bye" {
		t.Fatalf("posting the form: %d %q, want 303 /bye (error %v)", resp.StatusCode, resp.Header.Get("Location"), h.lastErr())
	}
	if b.profile() != nil {
		t.Error("still logged in after posting the logout page's form")
	}
}

var (
	postForm    = regexp.MustCompile(`<form method="post" action="([^"]*)">`)
	hiddenField = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)
)

// logoutForm returns the action and the hidden fields of the form on a
// logout link's page.
func logoutForm(t *testing.T, body string) (string, url.Values) {
	t.Helper()
	m := postForm.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no form on the page:\n%s", body)
	}
	form := url.Values{}
	for _, f := range hiddenField.FindAllStringSubmatch(body, -1) {
		form.Add(html.UnescapeString(f[1]), html.UnescapeString(f[2]))
	}
	return html.UnescapeString(m[1]), form
}

// LogoutHandler, mounted by itself, logs out on POST only: a GET neither
// logs out nor shows the page, whose form needs the route Handler serves.
func TestLogoutHandlerPostOnly(t *testing.T) {
	h := newHarness(t, options{routes: func(mux *http.ServeMux, auth *vippslogin.Client) {
		mux.Handle("/signout", auth.LogoutHandler())
	}})
	b := h.browser()
	b.login("/profile")
	resp, _ := b.get("/signout")
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != http.MethodPost {
		t.Errorf("GET: %d, Allow %q; want 405, POST", resp.StatusCode, resp.Header.Get("Allow"))
	}
	if b.profile() == nil {
		t.Fatal("GET logged the browser out")
	}
	resp, _ = b.do(http.MethodPost, "/signout", strings.NewReader(""), "Sec-Fetch-Site", "same-origin")
	if resp.StatusCode != http.StatusSeeOther || b.profile() != nil {
		t.Errorf("POST: %d, logged in %v; want 303 and logged out", resp.StatusCode, b.profile() != nil)
	}
}
