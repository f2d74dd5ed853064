package untrusted

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestNumericDate(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want time.Time
		ok   bool
	}{
		{json.Number("1700000000"), time.Unix(1700000000, 0), true},
		{json.Number("1700000000.5"), time.Unix(1700000000, 5e8), true},
		{json.Number("0"), time.Unix(0, 0), true},
		{json.Number("1099511627776"), time.Unix(1<<40, 0), true},
		{json.Number("1099511627777"), time.Time{}, false},
		{json.Number("-1"), time.Time{}, false},
		{json.Number("-0.5"), time.Time{}, false},
		{json.Number("1e999"), time.Time{}, false},
		{json.Number("x"), time.Time{}, false},
		{float64(1700000000), time.Time{}, false}, // decoded without UseNumber
		{"1700000000", time.Time{}, false},
		{nil, time.Time{}, false},
	} {
		got, ok := NumericDate(tc.in)
		if ok != tc.ok || !got.Equal(tc.want) {
			t.Errorf("NumericDate(%#v) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestValidSubject(t *testing.T) {
	for _, tc := range []struct {
		sub  string
		want bool
	}{
		{"c3a9f3e2-5d1b-4f0e-9a6c-2b7d8e4f1a05", true},
		{"!~", true},
		{strings.Repeat("a", 255), true},
		{strings.Repeat("a", 256), false},
		{"", false},
		{"a b", false},
		{"a\x00", false},
		{"a\x7f", false},
		{"å", false},
	} {
		if got := ValidSubject(tc.sub); got != tc.want {
			t.Errorf("ValidSubject(%q) = %v, want %v", tc.sub, got, tc.want)
		}
	}
}

func TestLogText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/webhooks/vipps-consent", "/webhooks/vipps-consent"},
		{"Kari Nordmann, Åse", "Kari Nordmann, Åse"},
		{"a\r\nb\x1b[31m", "a??b?[31m"},
		{"a\u202eb", "a?b"},
		{"a\xffb", "a?b"},
		{strings.Repeat("x", 199) + "øø", strings.Repeat("x", 199) + "…"},
	} {
		if got := LogText(tc.in); got != tc.want {
			t.Errorf("LogText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := Truncate("abc", 3); got != "abc" {
		t.Errorf("Truncate(abc, 3) = %q", got)
	}
	if got := Truncate("aøb", 2); got != "a…" {
		t.Errorf("Truncate(aøb, 2) = %q, want a…", got)
	}
}
