package vippslogin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/alexedwards/scs/v2"

	"github.com/vippslogin/vippslogin/internal/testsvc"
)

// A record stored with no time left still gets an expiry in Redis
// (goredisstore keeps a key with a non-positive TTL for ever).
func TestRedisRecordAlwaysExpires(t *testing.T) {
	client, prefix := testsvc.RedisClient(t)
	sm := scs.New()
	sm.Store = goredisstore.NewWithPrefix(client, prefix)
	store := newRecords(sm, time.Now) // Redis turns the expiry into a TTL by the real clock
	ctx := context.Background()
	for i, expiry := range []time.Time{time.Now().Add(-time.Hour), time.Now()} {
		key := recordKey(spaceLogin, string(rune('a'+i)))
		if err := store.put(ctx, key, []byte("x"), expiry); err != nil {
			t.Fatal(err)
		}
		left, err := client.PTTL(ctx, prefix+key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if left <= 0 || left > 2*time.Second {
			t.Errorf("record stored with expiry %v: Redis TTL %v, want a second or so", expiry, left)
		}
	}
}

// A record's expiry is at least a second away by Config.Now, the
// package's clock, whatever the machine's clock says.
func TestRecordExpiryFloor(t *testing.T) {
	now := time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)
	store := &expiries{}
	recs := &records{store: store, codec: scs.GobCodec{}, now: func() time.Time { return now }}
	for _, tc := range []struct{ expiry, want time.Time }{
		{now.Add(-time.Hour), now.Add(time.Second)},
		{now, now.Add(time.Second)},
		{now.Add(time.Minute), now.Add(time.Minute)},
	} {
		if err := recs.put(t.Context(), recordKey(spaceLogin, "x"), []byte("x"), tc.expiry); err != nil {
			t.Fatal(err)
		}
		if !store.last.Equal(tc.want) {
			t.Errorf("a record put to expire at %v is committed to expire at %v, want %v", tc.expiry, store.last, tc.want)
		}
	}
}

// expiries is an scs.Store that keeps nothing but the expiry of the last
// commit.
type expiries struct{ last time.Time }

func (s *expiries) Find(string) ([]byte, bool, error) { return nil, false, nil }
func (s *expiries) Delete(string) error               { return nil }
func (s *expiries) Commit(_ string, _ []byte, expiry time.Time) error {
	s.last = expiry
	return nil
}

// Record keys look like scs tokens in length, so that stores with a fixed
// token column (scs's mysqlstore: CHAR(43)) hold them, and start with ';',
// which no cookie value can hold, so that no session cookie names one.
func TestRecordKeys(t *testing.T) {
	seen := map[string]bool{}
	for _, space := range []byte{spaceLogin, spaceHandoff, spacePhone, 'b'} {
		for _, id := range []string{"", "x", randomString()} {
			k := recordKey(space, id)
			if len(k) != 43 || k[0] != ';' || k[1] != space {
				t.Errorf("recordKey(%q, %q) = %q", space, id, k)
			}
			if seen[k] {
				t.Errorf("recordKey(%q, %q) = %q, a key seen before", space, id, k)
			}
			seen[k] = true
		}
	}
}

// When every slot of the limiter is busy, new sources share the overflow
// bucket, and a start counts once in it even when all of a source's widths
// land there; the table is swept at most once a second.
func TestStartLimitsOverflow(t *testing.T) {
	const perMinute = 3
	now := time.Unix(1_800_000_000, 0)
	l := newStartLimits(perMinute, time.Minute, 1<<30)
	for i := 0; len(l.buckets) < maxSources; i++ {
		if _, err := l.allow(fmt.Sprintf("s-%d", i), now); err != nil {
			t.Fatal(err)
		}
	}
	for i := range perMinute { // an IPv4 address: two widths, both new, both overflowing
		if _, err := l.allow("198.51.100.7", now); err != nil {
			t.Fatalf("start %d from a new source when full: %v", i+1, err)
		}
	}
	if _, err := l.allow("198.51.100.8", now); err == nil {
		t.Fatal("the overflow bucket allowed more than its size")
	}
	if len(l.buckets) > maxSources+1 {
		t.Errorf("%d buckets, want at most %d", len(l.buckets), maxSources+1)
	}
}

// A pending login's record is small: at most 256 bytes in the store, as
// scs's codec keeps it, for an ordinary login that returns to a short
// path. The return_to path, a flow and step-up add their own length.
func TestRecordSize(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct {
		rec  pendingLogin
		want int
	}{
		{pendingLogin{ReturnTo: "/profile"}, 256},
		{pendingLogin{ReturnTo: "/account/orders/2031-01-02?page=12&sort=a", ACR: stepUpACR, Flow: FlowAutomaticReturn}, 256 + 40 + 60},
	} {
		sm := scs.New()
		p := &pendingLogins{records: newRecords(sm, func() time.Time { return now })}
		rec := tc.rec
		rec.Verifier, rec.Created, rec.Binding = randomString(), now.Unix(), bindingHash(randomString())
		if err := p.put(t.Context(), spaceLogin, randomString(), &rec, now.Add(10*time.Minute)); err != nil {
			t.Fatal(err)
		}
		all, err := sm.Store.(scs.IterableStore).All()
		if err != nil || len(all) != 1 {
			t.Fatalf("%d records, %v", len(all), err)
		}
		for _, b := range all {
			if len(b) > tc.want {
				t.Errorf("the record of a login to %s takes %d bytes, want at most %d", rec.ReturnTo, len(b), tc.want)
			}
			t.Logf("the record of a login to %s: %d bytes", rec.ReturnTo, len(b))
		}
	}
}

// A record that an older version wrote (its own nonce, a longer binding,
// and the older name of its value) is read and checked as before.
func TestOlderRecordStillRead(t *testing.T) {
	sm := scs.New()
	now := time.Unix(1_800_000_000, 0)
	recs := newRecords(sm, func() time.Time { return now })
	p := &pendingLogins{records: recs, ttl: 10 * time.Minute, now: func() time.Time { return now }}
	secret, state := randomString(), randomString()
	old := pendingLogin{Verifier: randomString(), Nonce: "older-nonce", ReturnTo: "/", Created: now.Unix(),
		Binding: recordKey('b', secret)}
	data, _ := json.Marshal(old)
	b, err := sm.Codec.Encode(now.Add(time.Minute), map[string]any{oldRecordValue: data})
	if err != nil {
		t.Fatal(err)
	}
	if err := sm.Store.Commit(recordKey(spaceLogin, state), b, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	var got pendingLogin
	if found, err := p.get(t.Context(), spaceLogin, state, &got, false, nil); !found || err != nil {
		t.Fatalf("found %v, %v", found, err)
	}
	if got.nonce() != "older-nonce" || !got.sameBinding(secret) || got.sameBinding(randomString()) {
		t.Errorf("nonce %q, binding of its browser %v", got.nonce(), got.sameBinding(secret))
	}
	fresh := pendingLogin{Verifier: old.Verifier}
	if n := fresh.nonce(); n == "" || n == fresh.Verifier || n != (&pendingLogin{Verifier: old.Verifier}).nonce() {
		t.Errorf("the nonce made from a verifier: %q", n)
	}
}

// A record is read as the store holds it: what an instance remembers of
// the records it decoded is used only while the store's bytes are the
// same, so a record that another instance changed is read anew.
func TestRecordsReadAsStored(t *testing.T) {
	sm := scs.New()
	now := time.Unix(1_800_000_000, 0)
	a, b := newRecords(sm, func() time.Time { return now }), newRecords(sm, func() time.Time { return now })
	key := recordKey(spaceLogin, randomString())
	for i, tc := range []struct {
		writer *records
		data   string
	}{{a, "pending"}, {b, "used"}, {a, "pending again"}} {
		if err := tc.writer.put(t.Context(), key, []byte(tc.data), now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		for _, reader := range []*records{a, b} {
			got, err := reader.get(t.Context(), key)
			if err != nil || string(got) != tc.data {
				t.Errorf("write %d: read %q, %v; want %q", i, got, err, tc.data)
			}
		}
	}
	if err := b.delete(t.Context(), key); err != nil {
		t.Fatal(err)
	}
	if got, err := a.get(t.Context(), key); got != nil || err != nil {
		t.Errorf("after another instance deleted it: %q, %v", got, err)
	}
}

// consume reads the record again under its lock: the record lookup read is
// used only while the store holds the same bytes, so a login that another
// instance took in between is not taken twice.
func TestConsumeReadsTheStoreAgain(t *testing.T) {
	sm := scs.New()
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	p := &pendingLogins{records: newRecords(sm, clock), ttl: 10 * time.Minute, now: clock, perBrowser: 3}
	other := &pendingLogins{records: newRecords(sm, clock), ttl: 10 * time.Minute, now: clock, perBrowser: 3}
	start := func() (*http.Request, string) {
		w := httptest.NewRecorder()
		state, err := p.start(t.Context(), w, httptest.NewRequest(http.MethodGet, "/auth/login", nil),
			&pendingLogin{Verifier: randomString(), ReturnTo: "/account", Created: now.Unix()})
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodGet, "/auth/callback", nil)
		for _, c := range w.Result().Cookies() {
			r.AddCookie(c)
		}
		return r, state
	}

	r, state := start()
	seen, status, bound, err := p.lookup(t.Context(), r, state)
	if err != nil || status != loginPending || !bound {
		t.Fatalf("lookup: %v, %v, %v", status, bound, err)
	}
	got, err := p.consume(t.Context(), httptest.NewRecorder(), r, state, seen)
	if err != nil || got == nil || got.Verifier != seen.Verifier || got.ReturnTo != "/account" {
		t.Fatalf("consume of an unchanged record: %+v, %v", got, err)
	}

	r, state = start()
	seen, _, _, _ = p.lookup(t.Context(), r, state)
	if taken, err := other.consume(t.Context(), httptest.NewRecorder(), r, state, nil); taken == nil || err != nil {
		t.Fatalf("the other instance's consume: %v, %v", taken, err)
	}
	if got, err := p.consume(t.Context(), httptest.NewRecorder(), r, state, seen); got != nil || err != nil {
		t.Errorf("a login the other instance took is taken again: %+v, %v", got, err)
	}
}
