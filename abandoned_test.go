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
	"github.com/alexedwards/scs/v2"
	"github.com/vippslogin/vippslogin"
	"github.com/vippslogin/vippslogin/internal/testsvc"
)

// pendingKeyPrefix starts the store key of every pending login.
const pendingKeyPrefix = ";l"

// Logins that are started and never finished must not grow memory without
// bound: MaxStartedLogins caps how many are pending at once, each costs a
// bounded amount of memory, and the store drops them when they expire.
// 100 000 fresh browsers start a login against a cap of 20 000, all at one
// instant of the harness's clock; the test then moves the clock past the
// logins' expiry, and a store that expires records by that clock drops them
// (memstore expires by the machine's clock, which would make the test wait
// out the TTL and depend on how fast the logins start).
func TestAbandonedLoginsBounded(t *testing.T) {
	testsvc.Soak(t)
	const (
		starts  = 100_000
		allowed = 20_000
		ttl     = 30 * time.Second // the shortest PendingLoginTTL allowed
		// MaxStartedLogins counts a login for up to a sixtieth of the TTL
		// after its record expires (see startWindow).
		slot = ttl / 60
		// Bounds on the live Go heap per allowed pending login: while they
		// are pending (measured: about 520 bytes, a 333-byte record and its
		// 62-byte key in the store's map), and after they have expired and
		// the store has dropped them (measured: none; what the package keeps
		// of them, in the limits on starts, does not grow with their number).
		maxPerPending = 2 << 10
		maxPerExpired = 16
	)
	store := &clockStore{}
	var tally errorTally
	h := newHarness(t, options{store: store, site: func(c *vippslogin.Config) {
		c.PendingLoginTTL = ttl
		c.MaxStartedLogins = allowed
		c.LoginsPerMinute = 1 << 30 // from one address: the bound in all is under test
		// 80 000 refusals would otherwise fill the harness's log buffer
		// and the harness's list of errors, and be measured as heap.
		c.Logger = slog.New(slog.DiscardHandler)
		c.ErrorHandler = tally.handle
	}})
	store.now = h.clock.Now
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
	if res.accepted != allowed || res.refused != starts-allowed {
		t.Fatalf("%d logins redirected to the provider and %d were refused with 503, want %d and %d",
			res.accepted, res.refused, allowed, starts-allowed)
	}
	tally.check(t, starts-allowed)
	wantRecords(t, store, allowed, "after the first round")
	perPending := (int64(heapPending) - int64(heapBefore)) / allowed
	t.Logf("%d abandoned logins, %d pending (MaxStartedLogins), started in %v (%.0f/s): live heap %.1f MiB before, %.1f MiB with them pending: %d bytes per pending login",
		starts, allowed, took.Round(time.Millisecond), starts/took.Seconds(), mebibytes(heapBefore), mebibytes(heapPending), perPending)
	if perPending >= maxPerPending {
		t.Errorf("%d bytes of live heap per pending login, want less than %d", perPending, maxPerPending)
	}

	// At their expiry the logins are still pending, and the window of
	// started logins is full.
	h.clock.Advance(ttl)
	wantRecords(t, store, allowed, "at the end of PendingLoginTTL")
	if code, loc := startLogin(handler); !refused(code, loc) {
		t.Fatalf("a login at the end of PendingLoginTTL: status %d %q, want 503 busy", code, loc)
	}
	// Half a slot later their records have expired, but the window still
	// counts them.
	h.clock.Advance(slot / 2)
	wantRecords(t, store, 0, "after PendingLoginTTL")
	if code, loc := startLogin(handler); !refused(code, loc) {
		t.Fatalf("a login half a sixtieth of the TTL after the others expired: status %d %q, want 503 busy", code, loc)
	}
	tally.check(t, starts-allowed+2)

	// The store drops them, as memstore's cleanup does, and gives back its
	// map's memory, which memstore keeps: what is left is the package's.
	store.sweep()
	heapExpired := liveHeap()
	perExpired := (int64(heapExpired) - int64(heapBefore)) / allowed
	t.Logf("after they expired: live heap %.1f MiB: %d bytes per expired login", mebibytes(heapExpired), perExpired)
	if perExpired >= maxPerExpired {
		t.Errorf("the live heap is %.1f MiB after the pending logins expired, %.1f MiB before they started: %d bytes per expired login, want less than %d",
			mebibytes(heapExpired), mebibytes(heapBefore), perExpired, maxPerExpired)
	}

	// A slot after their expiry, the whole window is free again: a new
	// round of logins is accepted, up to the cap.
	h.clock.Advance(slot / 2)
	res = startLogins(handler, authz, allowed+1, runtime.GOMAXPROCS(0))
	if res.unexpected != "" || res.accepted != allowed || res.refused != 1 {
		t.Fatalf("a new round of %d logins a sixtieth of the TTL after the first expired: %d accepted, %d refused, %q; want %d and 1",
			allowed+1, res.accepted, res.refused, res.unexpected, allowed)
	}
	tally.check(t, starts-allowed+3)
	wantRecords(t, store, allowed, "after the new round")
	t.Logf("a new round of %d logins accepted; %v in all", allowed, time.Since(start).Round(time.Millisecond))
}

// clockStore is an scs store in memory, like memstore, whose records expire
// by a clock the test moves: Find and All leave out the records whose
// expiry has passed, and sweep drops them, as memstore's cleanup does.
type clockStore struct {
	now   func() time.Time
	mu    sync.RWMutex
	items map[string]clockItem
}

type clockItem struct {
	b      []byte
	expiry time.Time
}

func (s *clockStore) Find(token string) ([]byte, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	it, ok := s.items[token]
	if !ok || s.now().After(it.expiry) {
		return nil, false, nil
	}
	return it.b, true, nil
}

func (s *clockStore) Commit(token string, b []byte, expiry time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.items == nil {
		s.items = make(map[string]clockItem)
	}
	s.items[token] = clockItem{b, expiry}
	return nil
}

func (s *clockStore) Delete(token string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.items, token)
	return nil
}

// All returns the records that have not expired (scs.IterableStore).
func (s *clockStore) All() (map[string][]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	now := s.now()
	all := make(map[string][]byte)
	for token, it := range s.items {
		if !now.After(it.expiry) {
			all[token] = it.b
		}
	}
	return all, nil
}

// sweep drops the expired records, into a new map: a Go map keeps the
// memory of what it once held.
func (s *clockStore) sweep() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	kept := make(map[string]clockItem)
	for token, it := range s.items {
		if !now.After(it.expiry) {
			kept[token] = it
		}
	}
	s.items = kept
}

// wantRecords checks that store holds pending unexpired pending logins and
// no other records.
func wantRecords(t *testing.T, store scs.IterableStore, pending int, when string) {
	t.Helper()
	if p, other := countRecords(t, store); p != pending || other != 0 {
		t.Fatalf("%s the store holds %d pending logins and %d other records, want %d and none", when, p, other, pending)
	}
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
	unexpected        string // the first answer that was neither
}

// startLogins starts n logins, each as a fresh browser with no cookies,
// from the given number of goroutines, through handler in process. A login
// is accepted when it redirects to authz, the provider, and refused when it
// answers 503 for ErrTooManyLogins.
func startLogins(handler http.Handler, authz string, n, goroutines int) startResult {
	var (
		next, accepted, nRefused atomic.Int64
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
	return startResult{int(accepted.Load()), int(nRefused.Load()), unexpected}
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
func countRecords(t *testing.T, store scs.IterableStore) (pending, other int) {
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
