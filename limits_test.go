package vippslogin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2/memstore"
	"github.com/vippslogin/vippslogin"
	"github.com/vippslogin/vippslogin/vippstest"
)

// loginRecordPrefix starts the store key of every pending (or used) login
// record.
const loginRecordPrefix = ";l"

// loginRecordsIn counts the login records in store.
func loginRecordsIn(t *testing.T, store *memstore.MemStore) int {
	t.Helper()
	all, err := store.All()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for k := range all {
		if strings.HasPrefix(k, loginRecordPrefix) {
			n++
		}
	}
	return n
}

// heapInUse returns HeapAlloc after a full garbage collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// logLines decodes every line of h's log, failing on a line that is not
// one JSON record.
func logLines(t *testing.T, h *harness) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for _, line := range strings.Split(h.logs.String(), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q is not one JSON record: %v", line, err)
		}
		recs = append(recs, rec)
	}
	return recs
}

// wantStart asks for a login from b, with optional headers, and checks the
// answer: 302 to the provider, or (limited) 429 with a Retry-After of
// retryAfter seconds and an error that wraps ErrTooManyLogins.
func wantStart(t *testing.T, b *browser, limited bool, retryAfter string, what string, header ...string) {
	t.Helper()
	resp, body := b.get("/auth/login", header...)
	switch {
	case !limited && resp.StatusCode != http.StatusFound:
		t.Fatalf("%s: status %d, want 302 (error %v): %s", what, resp.StatusCode, b.h.lastErr(), body)
	case limited && resp.StatusCode != http.StatusTooManyRequests:
		t.Fatalf("%s: status %d (location %q), want 429", what, resp.StatusCode, resp.Header.Get("Location"))
	case limited:
		b.h.wantErr(vippslogin.ErrTooManyLogins)
		if got := resp.Header.Get("Retry-After"); got != retryAfter {
			t.Errorf("%s: Retry-After %q, want %q", what, got, retryAfter)
		}
	}
}

// One cookie-less client that floods the login route from one address
// gets its burst of LoginsPerMinute and then 429s, costs the store no more
// records than its burst and the process no memory to speak of, and locks
// out no one else.
func TestLoginFloodFromOneSource(t *testing.T) {
	const (
		flood     = 3000
		burst     = 60      // the default LoginsPerMinute
		maxGrowth = 4 << 20 // live heap the flood may leave behind, generously
	)
	store := memstore.NewWithCleanupInterval(0)
	h := newHarness(t, options{store: store})
	if err := h.auth.Ready(context.Background()); err != nil { // discovery, before the heap is measured
		t.Fatal(err)
	}
	flooder := h.browserFrom("127.0.0.2")
	flooder.Jar = nil // cookie-less: each start is a fresh browser
	honest := h.browserFrom("127.0.0.3")
	honestLogins := 0
	var honestGot []string
	honestLogin := func(when string) {
		t.Helper()
		honest.login("/profile")
		honestLogins++
		p := honest.profile()
		if p == nil {
			t.Fatalf("the honest browser is not logged in %s the flood", when)
		}
		honestGot = append(honestGot, fmt.Sprintf("%s: logged in as %v", when, p["sub"]))
	}

	heapBefore := heapInUse()
	found, limited, lastFound := 0, 0, -1
	firstRetryAfter := ""
	for i := range flood {
		if i == 1000 {
			honestLogin("during")
		}
		resp, body := flooder.get("/auth/login")
		switch resp.StatusCode {
		case http.StatusFound:
			found++
			lastFound = i
		case http.StatusTooManyRequests:
			limited++
			ra := resp.Header.Get("Retry-After")
			if n, err := strconv.Atoi(ra); err != nil || n <= 0 {
				t.Fatalf("request %d: 429 with Retry-After %q, want a positive number of seconds", i, ra)
			}
			if firstRetryAfter == "" {
				firstRetryAfter = ra
			}
		default:
			t.Fatalf("request %d of the flood: status %d: %s", i, resp.StatusCode, body)
		}
	}
	h.wantErr(vippslogin.ErrTooManyLogins)
	honestLogin("after")
	records := loginRecordsIn(t, store)
	heapAfter := heapInUse()
	growth := int64(heapAfter) - int64(heapBefore)

	t.Logf("flooder (127.0.0.2, no cookies): %d requests, %d answered 302, %d answered 429 (first Retry-After %q)",
		flood, found, limited, firstRetryAfter)
	t.Logf("honest browser (127.0.0.3): %s", strings.Join(honestGot, "; "))
	t.Logf("login records in the store: %d (bound %d: the burst of %d and %d honest logins)",
		records, burst+honestLogins, burst, honestLogins)
	t.Logf("live heap: %.2f MiB before the flood, %.2f MiB after: %+d bytes (bound %d)",
		float64(heapBefore)/(1<<20), float64(heapAfter)/(1<<20), growth, maxGrowth)

	if found != burst || limited != flood-burst || lastFound != burst-1 {
		t.Errorf("the flooder got %d redirects (the last at request %d) and %d 429s, want its first %d redirected and %d refused",
			found, lastFound, limited, burst, flood-burst)
	}
	if records > burst+honestLogins {
		t.Errorf("the store holds %d login records, want at most %d", records, burst+honestLogins)
	}
	if growth >= maxGrowth {
		t.Errorf("the flood left the live heap %d bytes bigger, want less than %d", growth, maxGrowth)
	}

	slowDown := 0
	for _, rec := range logLines(t, h) {
		if rec["level"] == "ERROR" {
			t.Errorf("record at level ERROR: %v", rec)
		}
		if rec["kind"] == "slow_down" {
			slowDown++
			if rec["level"] != "WARN" {
				t.Errorf("slow_down record at level %v, want WARN: %v", rec["level"], rec)
			}
		}
	}
	if slowDown == 0 || slowDown > 10 {
		t.Errorf("%d records of kind slow_down for %d refusals, want 1 to 10", slowDown, limited)
	}

	// The flooder waited as long as the first 429 asked: a second. A
	// minute fills its bucket again.
	if firstRetryAfter != "1" {
		t.Errorf("first 429: Retry-After %q, want 1: one login comes back each second", firstRetryAfter)
	}
	h.clock.Advance(time.Minute)
	wantStart(t, flooder, false, "", "the flooder a minute later")
}

// Each source has a bucket of its own: one that has used its logins up
// does not use up another's.
func TestLoginLimitPerSourceIsPerSource(t *testing.T) {
	const perMinute = 5
	h := newHarness(t, options{site: func(c *vippslogin.Config) { c.LoginsPerMinute = perMinute }})
	first, second := h.browserFrom("127.0.0.4"), h.browserFrom("127.0.0.5")
	for i := range perMinute {
		wantStart(t, first, false, "", fmt.Sprintf("127.0.0.4, login %d", i+1))
	}
	// With none left, the next comes back in 60/5 seconds.
	wantStart(t, first, true, "12", "127.0.0.4, login 6")
	for i := range perMinute {
		wantStart(t, second, false, "", fmt.Sprintf("127.0.0.5, login %d (after 127.0.0.4 was refused)", i+1))
	}
	wantStart(t, second, true, "12", "127.0.0.5, login 6")

	h.clock.Advance(12 * time.Second) // a fifth of a minute: one login back
	wantStart(t, first, false, "", "127.0.0.4, 12 s later")
	wantStart(t, first, true, "12", "127.0.0.4, the second 12 s later")
}

// Behind a proxy every request comes from the proxy's address; with
// ClientIP the limit counts by the address the proxy reports, and IPv6
// addresses by their /64.
func TestClientIPBehindProxy(t *testing.T) {
	const perMinute = 3
	h := newHarness(t, options{site: func(c *vippslogin.Config) {
		c.LoginsPerMinute = perMinute
		c.ClientIP = func(r *http.Request) string { return r.Header.Get("X-Test-Client") }
	}})
	b := h.browser() // every request over the same connection address
	as := func(client string) []string { return []string{"X-Test-Client", client} }

	for i := range perMinute {
		wantStart(t, b, false, "", fmt.Sprintf("192.0.2.1, login %d", i+1), as("192.0.2.1")...)
	}
	wantStart(t, b, true, "20", "192.0.2.1, login 4", as("192.0.2.1")...)
	for i := range perMinute {
		wantStart(t, b, false, "", fmt.Sprintf("192.0.2.2, login %d", i+1), as("192.0.2.2")...)
	}
	wantStart(t, b, true, "20", "192.0.2.2, login 4", as("192.0.2.2")...)

	// 2001:db8::1 and 2001:db8::2 are one /64, and share one bucket.
	wantStart(t, b, false, "", "2001:db8::1, login 1", as("2001:db8::1")...)
	wantStart(t, b, false, "", "2001:db8::2, login 1", as("2001:db8::2")...)
	wantStart(t, b, false, "", "2001:db8::1, login 2", as("2001:db8::1")...)
	wantStart(t, b, true, "20", "2001:db8::2 after three logins from its /64", as("2001:db8::2")...)
	wantStart(t, b, true, "20", "2001:db8::1 after three logins from its /64", as("2001:db8::1")...)
	// 2001:db8:0:1::1 is in another /64.
	for i := range perMinute {
		wantStart(t, b, false, "", fmt.Sprintf("2001:db8:0:1::1, login %d", i+1), as("2001:db8:0:1::1")...)
	}
	wantStart(t, b, true, "20", "2001:db8:0:1::1, login 4", as("2001:db8:0:1::1")...)
}

// One network cannot take the whole of MaxStartedLogins by spreading over
// its addresses: an IPv6 /56 (a home's allocation, 256 /64s) starts 4
// times LoginsPerMinute at most, a /48 16 times, an IPv4 /24 8 times; and
// an address of another network still starts its login.
func TestLoginLimitPerNetwork(t *testing.T) {
	const perMinute = 2
	tests := []struct {
		name  string
		addr  func(i int) string // the i-th address of the network
		share int
	}{
		{"IPv6 /56", func(i int) string { return fmt.Sprintf("2001:db8:0:%x::1", i%256) }, 4},
		{"IPv6 /48", func(i int) string { return fmt.Sprintf("2001:db8:0:%x::1", i*256%65536) }, 16},
		{"IPv4 /24", func(i int) string { return fmt.Sprintf("198.51.100.%d", i%256) }, 8},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, options{site: func(c *vippslogin.Config) {
				c.LoginsPerMinute = perMinute
				c.MaxStartedLogins = 1000
				c.ClientIP = func(r *http.Request) string { return r.Header.Get("X-Test-Client") }
			}})
			b := h.browser()
			started := 0
			for i := range 300 {
				resp, _ := b.get("/auth/login", "X-Test-Client", tc.addr(i))
				if resp.StatusCode == http.StatusFound {
					started++
				}
			}
			if want := perMinute * tc.share; started != want {
				t.Errorf("300 starts from one network over its addresses: %d started, want %d", started, want)
			}
			wantStart(t, b, false, "", "an address of another network", "X-Test-Client", "203.0.113.7")
		})
	}
}

// A flood of warnings does not hide the errors an operator must see: the
// log gate counts each kind at each level apart.
func TestLogGateKeepsErrors(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	for range 12 { // a visitor's bogus codes: invalid_grant, a warning
		cb := b.startLogin("/profile")
		b.get(editQuery(t, cb, func(q url.Values) { q.Set("code", randomToken()) }))
	}
	h.idp.SetHooks(vippstest.Hooks{IDToken: func(_, claims map[string]any) string {
		claims["aud"] = "someone-else" // the provider's mistake, or an attack on it: an error
		return ""
	}})
	for range 3 {
		b.get(b.startLogin("/profile"))
	}
	levels := map[string]int{}
	for _, rec := range logLines(t, h) {
		if rec["kind"] == "login_failed" {
			levels[rec["level"].(string)]++
		}
	}
	if levels["WARN"] != 10 || levels["ERROR"] != 3 {
		t.Errorf("login_failed records by level: %v, want 10 WARN (of 12) and 3 ERROR", levels)
	}
}

func TestMaxStartedLogins(t *testing.T) {
	h := newHarness(t, options{site: func(c *vippslogin.Config) { c.MaxStartedLogins = 3 }})
	for i := range 3 {
		resp, _ := h.browser().get("/auth/login")
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("login %d: status %d, want 302", i, resp.StatusCode)
		}
	}
	resp, body := h.browser().get("/auth/login")
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("login beyond the bound: status %d, want 503: %s", resp.StatusCode, body)
	}
	h.wantErr(vippslogin.ErrTooManyLogins)

	if resp.Header.Get("Retry-After") != "10" {
		t.Errorf("Retry-After %q, want 10 (a sixtieth of PendingLoginTTL)", resp.Header.Get("Retry-After"))
	}

	// A flood of refusals is logged ten times in ten seconds at most, and
	// the next record counts those held back.
	for range 50 {
		if resp, _ := h.browser().get("/auth/login"); resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("login beyond the bound: status %d, want 503", resp.StatusCode)
		}
	}
	if n := strings.Count(h.logs.String(), `"msg":"vippslogin: busy"`); n != 10 {
		t.Errorf("51 refusals in a moment made %d log records, want 10", n)
	}
	h.clock.Advance(10 * time.Second)
	h.browser().get("/auth/login")
	if logs := h.logs.String(); !strings.Contains(logs, `"suppressed":41`) {
		t.Errorf("the next record does not count the 41 refusals held back:\n%s", logs)
	}

	h.clock.Advance(10*time.Minute + 10*time.Second) // a sixtieth past PendingLoginTTL: the old ones have expired
	h.browser().login("/")
}
