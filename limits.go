package vippslogin

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Limits on starting logins. Every started login costs a record in the
// store until it expires, so starts are limited twice:
//   - per source (Config.ClientIP), with a token bucket of
//     Config.LoginsPerMinute: one source that floods the login route is
//     refused with 429 and Retry-After, and everyone else goes on;
//   - in all, with Config.MaxStartedLogins per PendingLoginTTL, so that
//     many sources together cannot fill the store either (503).

// errSourceLimited: one source started logins faster than
// Config.LoginsPerMinute allows; errAllLimited: too many are pending in all.
func errSourceLimited() error { return newErr(ErrTooManyLogins, "source", "from this address") }
func errAllLimited() error    { return newErr(ErrTooManyLogins, "pending", "") }

// maxSources bounds the sources the limiter remembers. When they are all
// busy, new sources share one bucket.
const maxSources = 1 << 14

type startLimits struct {
	mu      sync.Mutex
	perMin  float64
	buckets map[string]*bucket
	swept   time.Time // when sweep last ran
	window  startWindow
}

// bucket holds the logins a source may still start, as of at, of at most
// size (also the number it regains a minute).
type bucket struct {
	tokens, size float64
	at           time.Time
}

func newStartLimits(perMinute int, ttl time.Duration, maxStarted int) *startLimits {
	return &startLimits{
		perMin:  float64(perMinute),
		buckets: make(map[string]*bucket),
		window:  startWindow{slot: ttl / (startSlots - 1), max: maxStarted},
	}
}

// allow counts a login started at now from the address addr, or says why
// not, and when the source may try again. A source is counted at several
// widths at once (see sourceKeys), each with its own bucket.
func (l *startLimits) allow(addr string, now time.Time) (retryAfter time.Duration, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	keys := sourceKeys(addr)
	buckets := make([]*bucket, len(keys))
	for i, k := range keys {
		b := l.bucket(k.key, l.perMin*float64(k.share), now)
		if d := now.Sub(b.at); d > 0 { // a clock that goes back adds nothing
			b.tokens, b.at = b.tokens+d.Minutes()*b.size, now
		}
		b.tokens = min(b.tokens, b.size)
		if b.tokens < 1 {
			wait := time.Duration(math.Ceil((1 - b.tokens) / b.size * 60))
			retryAfter = max(retryAfter, max(wait, 1)*time.Second)
		}
		if !slices.Contains(buckets[:i], b) { // sources sharing the overflow bucket count once
			buckets[i] = b
		}
	}
	if retryAfter > 0 {
		return retryAfter, errSourceLimited()
	}
	if !l.window.allow(now) {
		return l.window.slot, errAllLimited()
	}
	for _, b := range buckets {
		if b != nil {
			b.tokens--
		}
	}
	return 0, nil
}

// bucket returns the bucket of key, a new full one of size if there is none.
func (l *startLimits) bucket(key string, size float64, now time.Time) *bucket {
	if b := l.buckets[key]; b != nil {
		return b
	}
	if len(l.buckets) >= maxSources && now.Sub(l.swept) >= time.Second {
		// At most once a second: a flood of new sources must not make
		// every request walk the whole table.
		l.sweep(now)
		l.swept = now
	}
	if len(l.buckets) >= maxSources {
		key = overflowKey // every slot busy: new sources share one bucket
		if b := l.buckets[key]; b != nil {
			return b
		}
	}
	b := &bucket{tokens: size, size: size, at: now}
	l.buckets[key] = b
	return b
}

// sweep forgets the sources whose buckets have filled up again: they hold
// nothing a new bucket would not.
func (l *startLimits) sweep(now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.at).Minutes()*b.size >= b.size {
			delete(l.buckets, k)
		}
	}
}

// startWindow counts the logins started in the last PendingLoginTTL, in
// startSlots slots. Sixty slots cover the TTL, and one more the slot under
// way, so a login counts for a sixtieth of the TTL after its record expires.
type startWindow struct {
	slot   time.Duration
	max    int
	counts [startSlots]int
	ids    [startSlots]int64 // which slot of time each count is for
}

const startSlots = 61

// allow counts a login started at now, unless the window is full.
func (w *startWindow) allow(now time.Time) bool {
	id := now.UnixNano() / int64(w.slot)
	total := 0
	for i := range w.counts {
		if d := id - w.ids[i]; d >= 0 && d < startSlots {
			total += w.counts[i]
		}
	}
	if total >= w.max {
		return false
	}
	j := id % startSlots
	if w.ids[j] != id {
		w.ids[j], w.counts[j] = id, 0
	}
	w.counts[j]++
	return true
}

// remoteSource is the default Config.ClientIP: the address of the
// connection.
func remoteSource(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// sourceKey is one width at which a source is counted: its bucket's key,
// and its share, the bucket's size in multiples of LoginsPerMinute.
type sourceKey struct {
	key   string
	share int
}

// overflowKey is the bucket that new sources share when maxSources are
// busy: no key of sourceKeys starts with '~'.
const overflowKey = "~overflow"

// sourceKeys are the widths at which the login starts of addr are counted,
// so that one network cannot take the whole of MaxStartedLogins by
// spreading over its addresses: an IPv6 address by its /64, which one user
// usually has whole, its /56 (a home's allocation, 4 shares) and its /48
// (16 shares); an IPv4 address by itself and its /24 (8 shares); anything
// else Config.ClientIP returns as it is, or by its hash when long.
func sourceKeys(addr string) []sourceKey {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		if len(addr) > 64 {
			sum := sha256.Sum256([]byte(addr))
			addr = hex.EncodeToString(sum[:16])
		}
		return []sourceKey{{"s:" + addr, 1}}
	}
	prefix := func(bits int) string {
		p, _ := ip.Prefix(bits)
		return p.String()
	}
	if ip = ip.Unmap(); ip.Is4() {
		return []sourceKey{{"4:" + ip.String(), 1}, {"4:" + prefix(24), 8}}
	}
	return []sourceKey{{"6:" + prefix(64), 1}, {"6:" + prefix(56), 4}, {"6:" + prefix(48), 16}}
}

// logGate bounds how many log records of one kind are written: logBurst per
// logEvery at most. The rest are counted, and the count is reported with
// the next record of the kind, so that a flood of forged requests cannot
// flood the log.
type logGate struct {
	mu    sync.Mutex
	kinds map[string]*gateCount
}

type gateCount struct {
	since      time.Time
	written    int
	suppressed int
}

const (
	logBurst = 10
	logEvery = 10 * time.Second
)

// allow reports whether a record of kind may be written at now, and how
// many were held back before it.
func (g *logGate) allow(kind string, now time.Time) (ok bool, suppressed int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.kinds == nil {
		g.kinds = make(map[string]*gateCount)
	}
	c := g.kinds[kind]
	if c == nil {
		c = &gateCount{since: now}
		g.kinds[kind] = c
	}
	if now.Sub(c.since) >= logEvery || now.Before(c.since) {
		c.since, c.written = now, 0
	}
	if c.written >= logBurst {
		c.suppressed++
		return false, 0
	}
	c.written++
	suppressed, c.suppressed = c.suppressed, 0
	return true, suppressed
}
