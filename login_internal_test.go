package vippslogin

import (
	"net/url"
	"strings"
	"testing"
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
