package vippslogin

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/alexedwards/scs/v2"
)

func FuzzCleanReturnTo(f *testing.F) {
	for _, s := range []string{"", "/", "/a/b?c=d#e", "//evil.example", "/\\evil", "https://evil.example", "/%2F%2Fevil",
		"/\t/evil", "javascript:alert(1)", "/a\x00", "/ä/ø?æ=å", "/.//evil", "/@evil", "/:80"} {
		f.Add(s)
	}
	base, _ := url.Parse("https://shop.example/store/")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := cleanReturnTo(s)
		if err != nil {
			return
		}
		if got != s {
			t.Fatalf("cleanReturnTo(%q) = %q, want it unchanged", s, got)
		}
		if s == "" {
			return
		}
		if !strings.HasPrefix(got, "/") || strings.HasPrefix(got, "//") || strings.ContainsAny(got, "\\") {
			t.Fatalf("accepted %q", got)
		}
		for _, r := range got {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("accepted a control character in %q", got)
			}
		}
		// Wherever a browser resolves it, it stays on the site.
		ref, err := url.Parse(got)
		if err != nil {
			t.Fatalf("accepted unparsable %q: %v", got, err)
		}
		if u := base.ResolveReference(ref); u.Host != base.Host || u.Scheme != base.Scheme || u.User != nil {
			t.Fatalf("%q resolves to %v", got, u)
		}
	})
}

func FuzzClaimsDecode(f *testing.F) {
	f.Add([]byte(`{"sub":"u","name":"Kari","email_verified":true,"auth_time":1700000000}`))
	f.Add([]byte(`{"sub":"u","address":{"street_address":"a\nb"},"other_addresses":[{"region":"Oslo"},7]}`))
	f.Add([]byte(`{"sub":"u","delegatedConsents":{"consents":[{"id":"email","accepted":"true"}],"links":{}}}`))
	f.Add([]byte(`{"auth_time":1e400}`))
	f.Add([]byte(`{"auth_time":-1.5}`))
	f.Add([]byte(`[1,2]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var c Claims
		if err := c.UnmarshalJSON(b); err != nil {
			return
		}
		out, err := json.Marshal(&c)
		if err != nil {
			t.Fatalf("decoded %q but cannot encode it: %v", b, err)
		}
		var again Claims
		if err := json.Unmarshal(out, &again); err != nil {
			t.Fatalf("cannot decode own encoding %q: %v", out, err)
		}
		if again.Subject != c.Subject || again.Email != c.Email || again.EmailVerified != c.EmailVerified || !again.AuthTime.Equal(c.AuthTime) {
			t.Fatalf("round trip changed claims: %+v -> %+v", c, again)
		}
	})
}

// FuzzCallback sends hostile callback queries and binding cookies. The
// provider is unreachable, so nothing may get past the state checks; no
// input may crash the handler, log a user in, echo the code, or get any
// answer but an error other than 500.
func FuzzCallback(f *testing.F) {
	for _, q := range []string{"", "state=x", "code=c&state=" + strings.Repeat("A", 43), "error=access_denied&state=abc", "error=server_error",
		"error=%00%ff&error_description=%0d%0aSet-Cookie", "state=a&state=b", "iss=https://evil&code=1&state=1",
		"code=" + strings.Repeat("x", 5000), "%zz", "state=" + strings.Repeat("_", 43) + "&code=1"} {
		f.Add(q, "")
		f.Add(q, strings.Repeat("a", 43)+"."+strings.Repeat("A", 43))
	}
	sessions := scs.New()
	c, err := New(Config{
		ClientID: "client", ClientSecret: "secret", Issuer: "http://127.0.0.1:1/",
		BaseURL: "http://127.0.0.1:8080", Sessions: sessions,
		Logger: slog.New(slog.DiscardHandler), HTTPTimeout: 100e6,
	})
	if err != nil {
		f.Fatal(err)
	}
	h := sessions.LoadAndSave(c.Handler())
	f.Fuzz(func(t *testing.T, query, cookie string) {
		r := httptest.NewRequest(http.MethodGet, "/auth/callback", nil)
		r.URL.RawQuery = query
		if cookie != "" && !strings.ContainsAny(cookie, "\x00\r\n;\"") {
			r.Header.Set("Cookie", "vippslogin="+cookie)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code < 400 || w.Code == http.StatusInternalServerError {
			t.Fatalf("callback?%s answered %d", query, w.Code)
		}
		for _, ck := range w.Result().Cookies() {
			if ck.Name == sessions.Cookie.Name {
				t.Fatalf("callback?%s set a session cookie", query)
			}
		}
		if code := r.URL.Query().Get("code"); len(code) > 3 && strings.Contains(w.Body.String(), code) {
			t.Fatalf("the code appears in the answer to callback?%s", query)
		}
	})
}
