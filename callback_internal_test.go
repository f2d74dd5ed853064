package vippslogin

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/alexedwards/scs/v2"
)

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
