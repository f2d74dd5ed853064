package vippslogin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/alexedwards/scs/v2/memstore"
	"github.com/vippslogin/vippslogin"
	"github.com/vippslogin/vippslogin/internal/testsvc"
)

// pendingKeyPrefix starts the store key of every pending login.
const pendingKeyPrefix = ";l"

// Logins that are started and never finished must not grow memory without
// bound: MaxStartedLogins caps how many are pending at once, each costs a
// bounded amount of memory, and the store drops them when they expire.
// 100 000 fresh browsers start a login against a cap of 20 000.
func TestAbandonedLoginsBounded(t *testing.T) {
	const (
		starts     = 100_000
		allowed    = 20_000
		ttl        = 30 * time.Second // the shortest PendingLoginTTL allowed
		cleanEvery = 500 * time.Millisecond
		// Bounds on the live Go heap per allowed pending login: while they
		// are pending (measured: about 510 bytes, a 333-byte record and its
		// 62-byte key in the memstore's map), and after they have expired
		// (measured: about 90 bytes, the memstore's map keeps its slots
		// when its entries are deleted).
		maxPerPending = 2 << 10
		maxPerExpired = 192
	)
	store := memstore.NewWithCleanupInterval(cleanEvery)
	stopCleanup(t, store, cleanEvery)
	var tally errorTally
	h := newHarness(t, options{store: store, site: func(c *vippslogin.Config) {
		c.Now = time.Now // the memstore expires records by the real clock
		c.PendingLoginTTL = ttl
		c.MaxStartedLogins = allowed
		c.LoginsPerMinute = 1 << 30 // from one address: the bound in all is under test
		// 80 000 refusals would otherwise fill the harness's log buffer
		// and the harness's list of errors, and be measured as heap.
		c.Logger = slog.New(slog.DiscardHandler)
		c.ErrorHandler = tally.handle
	}})
	if err := h.auth.Ready(context.Background()); err != nil { // discovery, without starting a login
		t.Fatal(err)
	}
	handler := h.site.Config.Handler // LoadAndSave and the routes, in process
	authz := h.idp.URL()

	heapBefore := liveHeap()
	start := time.Now()
	res := startLogins(handler, authz, starts, runtime.GOMAXPROCS(0))
	took := time.Since(start)
	heapPending := liveHeap()
	if res.unexpected != "" {
		t.Fatalf("a login answered %s", res.unexpected)
	}
	if took >= ttl-5*time.Second {
		t.Fatalf("starting %d logins took %v, nearly PendingLoginTTL (%v): the first ones expire before they can be counted", starts, took, ttl)
	}
	if res.accepted != allowed || res.refused != starts-allowed {
		t.Fatalf("%d logins redirected to the provider and %d were refused with 503, want %d and %d",
			res.accepted, res.refused, allowed, starts-allowed)
	}
	tally.check(t, starts-allowed)
	if pending, other := countRecords(t, store); pending != allowed || other != 0 {
		t.Fatalf("the store holds %d pending logins and %d other records, want %d and none", pending, other, allowed)
	}
	perPending := (int64(heapPending) - int64(heapBefore)) / allowed
	t.Logf("%d abandoned logins, %d pending (MaxStartedLogins), started in %v (%.0f/s): live heap %.1f MiB before, %.1f MiB with them pending: %d bytes per pending login",
		starts, allowed, took.Round(time.Millisecond), starts/took.Seconds(), mebibytes(heapBefore), mebibytes(heapPending), perPending)
	if perPending >= maxPerPending {
		t.Errorf("%d bytes of live heap per pending login, want less than %d", perPending, maxPerPending)
	}

	if testing.Short() {
		t.Log("-short: not waiting for the pending logins to expire")
		return
	}

	// Wait out the TTL: the records expire, the memstore's cleanup drops
	// them, and the window of started logins frees up.
	expired := waitFor(t, res.lastAccepted.Add(ttl+10*time.Second), 250*time.Millisecond, func() bool {
		pending, _ := countRecords(t, store)
		return pending == 0
	})
	if !expired {
		pending, _ := countRecords(t, store)
		t.Fatalf("%d pending logins left %v after the last one started", pending, time.Since(res.lastAccepted))
	}
	// The memstore hides expired records from All at once, but frees them
	// only when its cleanup runs: the heap tells that it has.
	time.Sleep(2 * cleanEvery)
	var heapExpired uint64
	waitFor(t, time.Now().Add(10*cleanEvery), cleanEvery/2, func() bool {
		heapExpired = liveHeap()
		return int64(heapExpired)-int64(heapBefore) < maxPerExpired*allowed
	})
	perExpired := (int64(heapExpired) - int64(heapBefore)) / allowed
	t.Logf("%v after the last login started: no pending logins left; live heap %.1f MiB: %d bytes per expired login",
		time.Since(res.lastAccepted).Round(time.Millisecond), mebibytes(heapExpired), perExpired)
	if perExpired >= maxPerExpired {
		t.Errorf("the live heap is %.1f MiB after the pending logins expired, %.1f MiB before they started: %d bytes per expired login, want less than %d",
			mebibytes(heapExpired), mebibytes(heapBefore), perExpired, maxPerExpired)
	}

	// A new round of logins is accepted: the whole window is free again.
	// It counts a login for up to a tenth of the TTL longer than the login
	// lives, so some attempts may still be refused at first.
	deadline := res.lastAccepted.Add(ttl + ttl/10 + 10*time.Second)
	accepted, refusals, waited := 0, 0, time.Duration(0)
	for accepted < allowed && time.Now().Before(deadline) {
		switch code, loc := startLogin(handler); {
		case code == http.StatusFound && strings.HasPrefix(loc, authz):
			accepted++
		case refused(code, loc): // the window still counts some of the first round
			refusals++
			waited = time.Since(res.lastAccepted) - ttl
			time.Sleep(50 * time.Millisecond)
		default:
			t.Fatalf("login %d of the new round: status %d %q", accepted+1, code, loc)
		}
	}
	if accepted < allowed {
		t.Fatalf("only %d logins of a new round accepted %v after the last one of the first round started, want %d",
			accepted, time.Since(res.lastAccepted), allowed)
	}
	if code, loc := startLogin(handler); !refused(code, loc) {
		t.Fatalf("login beyond the cap in the new round: status %d %q, want 503 busy", code, loc)
	}
	if pending, other := countRecords(t, store); pending != allowed || other != 0 {
		t.Fatalf("after the new round the store holds %d pending logins and %d other records, want %d and none", pending, other, allowed)
	}
	wait := "none refused first"
	if refusals > 0 {
		wait = fmt.Sprintf("%d refused first, up to %v after the last login of the first round expired", refusals, waited.Round(time.Millisecond))
	}
	t.Logf("a new round of %d logins accepted (%s); %v in all", allowed, wait, time.Since(start).Round(time.Millisecond))
}

// Abandoned logins expire in Redis too: every pending login is a key with
// a time to live of at most PendingLoginTTL.
func TestAbandonedLoginsExpireInRedis(t *testing.T) {
	const (
		starts  = 2000
		allowed = 1500
		ttl     = 5 * time.Minute
	)
	client, prefix := testsvc.RedisClient(t)
	var tally errorTally
	h := newHarness(t, options{store: goredisstore.NewWithPrefix(client, prefix), site: func(c *vippslogin.Config) {
		c.Now = time.Now // goredisstore turns the expiry into a TTL by the real clock
		c.PendingLoginTTL = ttl
		c.MaxStartedLogins = allowed
		c.LoginsPerMinute = 1 << 30 // from one address: the bound in all is under test
		c.Logger = slog.New(slog.DiscardHandler)
		c.ErrorHandler = tally.handle
	}})
	ctx := context.Background()
	if err := h.auth.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res := startLogins(h.site.Config.Handler, h.idp.URL(), starts, 8)
	if res.unexpected != "" {
		t.Fatalf("a login answered %s", res.unexpected)
	}
	if res.accepted != allowed || res.refused != starts-allowed {
		t.Fatalf("%d logins redirected to the provider and %d were refused with 503, want %d and %d",
			res.accepted, res.refused, allowed, starts-allowed)
	}
	tally.check(t, starts-allowed)

	var pending, other []string
	iter := client.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		if strings.HasPrefix(iter.Val(), prefix+pendingKeyPrefix) {
			pending = append(pending, iter.Val())
		} else {
			other = append(other, iter.Val())
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	if len(pending) != allowed || len(other) != 0 {
		t.Fatalf("Redis holds %d pending logins and %d other keys (%.3q), want %d and none", len(pending), len(other), other, allowed)
	}
	pipe := client.Pipeline()
	for _, k := range pending {
		pipe.PTTL(ctx, k)
	}
	cmds, err := pipe.Exec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Each key lives at most PendingLoginTTL, and no less than what is left
	// of it since the login started.
	lowest := ttl - time.Since(start) - time.Second
	minTTL, maxTTL := ttl, time.Duration(0)
	for i, c := range cmds {
		left, err := c.(interface{ Result() (time.Duration, error) }).Result()
		if err != nil {
			t.Fatalf("PTTL %s: %v", pending[i], err)
		}
		if left <= 0 || left > ttl || left < lowest {
			t.Fatalf("key %s has PTTL %v, want %v to %v (-1ns: no expiry, -2ns: gone)", pending[i], left, lowest, ttl)
		}
		minTTL, maxTTL = min(minTTL, left), max(maxTTL, left)
	}
	t.Logf("%d abandoned logins, %d pending in Redis, each with a TTL of %v to %v (PendingLoginTTL %v); %v",
		starts, allowed, minTTL, maxTTL, ttl, time.Since(start).Round(time.Millisecond))
}

// startResult counts the answers to the logins startLogins started.
type startResult struct {
	accepted, refused int
	lastAccepted      time.Time // when the last accepted login was answered
	unexpected        string    // the first answer that was neither
}

// startLogins starts n logins, each as a fresh browser with no cookies,
// from the given number of goroutines, through handler in process. A login
// is accepted when it redirects to authz, the provider, and refused when it
// answers 503 for ErrTooManyLogins.
func startLogins(handler http.Handler, authz string, n, goroutines int) startResult {
	var (
		next, accepted, nRefused atomic.Int64
		last                     atomic.Int64 // unix nanoseconds
		mu                       sync.Mutex
		unexpected               string
		wg                       sync.WaitGroup
	)
	for range goroutines {
		wg.Go(func() {
			req := loginRequest() // handlers leave their request as it is
			for next.Add(1) <= int64(n) {
				switch code, loc := serveLogin(handler, req); {
				case code == http.StatusFound && strings.HasPrefix(loc, authz):
					accepted.Add(1)
					now := time.Now().UnixNano()
					for old := last.Load(); now > old && !last.CompareAndSwap(old, now); old = last.Load() {
					}
				case refused(code, loc):
					nRefused.Add(1)
				default:
					mu.Lock()
					if unexpected == "" {
						unexpected = fmt.Sprintf("status %d %q", code, loc)
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return startResult{int(accepted.Load()), int(nRefused.Load()), time.Unix(0, last.Load()), unexpected}
}

// loginRequest is the request to start a login of a fresh browser, with no
// cookies. It asks for JSON, which is much cheaper to answer under the race
// detector than the HTML error page, and is the same login.
func loginRequest() *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/auth/login?return_to=/profile", nil)
	r.Header.Set("Accept", "application/json")
	return r
}

// startLogin starts a login as a fresh browser and returns the status and
// location of the answer.
func startLogin(handler http.Handler) (int, string) {
	return serveLogin(handler, loginRequest())
}

// serveLogin serves req, a loginRequest, and returns the status of the
// answer and its location, or for an error the code in its JSON body.
func serveLogin(handler http.Handler, req *http.Request) (int, string) {
	w := httptest.NewRecorder()
	handler.ServeHTTP(w, req)
	if w.Code >= 400 {
		var v struct{ Error string }
		_ = json.Unmarshal(w.Body.Bytes(), &v)
		return w.Code, v.Error
	}
	return w.Code, w.Header().Get("Location")
}

// refused reports whether a login was answered as WriteError answers
// ErrTooManyLogins.
func refused(code int, errCode string) bool {
	return code == http.StatusServiceUnavailable && errCode == "busy"
}

// errorTally is an error handler that counts the errors it gets instead of
// keeping them, and answers with vippslogin.WriteError.
type errorTally struct {
	tooMany, other atomic.Int64
	mu             sync.Mutex
	first          error // the first error other than ErrTooManyLogins
}

func (e *errorTally) handle(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, vippslogin.ErrTooManyLogins) {
		e.tooMany.Add(1)
	} else {
		e.other.Add(1)
		e.mu.Lock()
		if e.first == nil {
			e.first = err
		}
		e.mu.Unlock()
	}
	vippslogin.WriteError(w, r, err)
}

// check checks that the handler got ErrTooManyLogins tooMany times and no
// other error.
func (e *errorTally) check(t *testing.T, tooMany int) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if n := e.other.Load(); n > 0 {
		t.Fatalf("the error handler got %d errors other than ErrTooManyLogins; first: %v", n, e.first)
	}
	if n := e.tooMany.Load(); n != int64(tooMany) {
		t.Fatalf("the error handler got ErrTooManyLogins %d times, want %d", n, tooMany)
	}
}

// countRecords counts the unexpired records in store: pending logins and
// others (sessions).
func countRecords(t *testing.T, store *memstore.MemStore) (pending, other int) {
	t.Helper()
	all, err := store.All()
	if err != nil {
		t.Fatal(err)
	}
	for k := range all {
		if strings.HasPrefix(k, pendingKeyPrefix) {
			pending++
		} else {
			other++
		}
	}
	return pending, other
}

// liveHeap returns the bytes of the Go heap still in use after a full
// garbage collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// waitFor polls cond every interval until it holds or deadline passes, and
// returns whether it held.
func waitFor(t *testing.T, deadline time.Time, every time.Duration, cond func() bool) bool {
	t.Helper()
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(every)
	}
}

// stopCleanup stops the cleanup goroutine of store, made with the given
// interval, when the test ends. The goroutine makes its stop channel itself
// once it runs, and StopCleanup reads that field without a lock: a call
// before the goroutine has run does nothing, and one without a lock taken
// after a cleanup pass is a data race. So wait for a few passes and take
// the store's lock (All) first.
func stopCleanup(t *testing.T, store *memstore.MemStore, every time.Duration) {
	created := time.Now()
	t.Cleanup(func() {
		time.Sleep(time.Until(created.Add(3 * every)))
		_, _ = store.All()
		store.StopCleanup()
	})
}
