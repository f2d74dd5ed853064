// Package untrusted checks and cleans values that come from the network,
// for vippslogin and its webhook alike: the NumericDates and sub of a JWT,
// and text bound for a log record or an error.
package untrusted

import (
	"encoding/json"
	"math"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// NumericDate reads a JWT NumericDate, as a json.Decoder with UseNumber
// decodes it: seconds since the epoch, maybe fractional, from 0 to 2^40.
func NumericDate(v any) (time.Time, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, false
	}
	if i, err := n.Int64(); err == nil {
		if i < 0 || i > 1<<40 {
			return time.Time{}, false
		}
		return time.Unix(i, 0), true
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || f < 0 || f > 1<<40 {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}

// ValidSubject reports whether sub is 1 to 255 visible ASCII characters:
// Vipps' subjects are UUIDs, and a subject ends up in logs and databases.
func ValidSubject(sub string) bool {
	if sub == "" || len(sub) > 255 {
		return false
	}
	for i := 0; i < len(sub); i++ {
		if sub[i] <= ' ' || sub[i] > '~' {
			return false
		}
	}
	return true
}

// LogText makes text from the network fit for a log record or an error:
// at most 200 bytes, valid UTF-8, and no control or formatting characters
// (line breaks, escapes, bidirectional overrides), each of which becomes
// '?'.
func LogText(s string) string {
	return Truncate(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError {
			return '?'
		}
		return r
	}, s), 200)
}

// Truncate cuts s to at most n bytes, on a rune boundary, and marks the
// cut with "…".
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
