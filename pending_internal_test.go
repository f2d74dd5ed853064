package vippslogin

import (
	"context"
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
	store := newRecords(sm)
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
