package vippslogin

import (
	"context"
	"fmt"
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
