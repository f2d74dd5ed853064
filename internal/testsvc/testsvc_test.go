package testsvc

import (
	"context"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// The report names the package, and counts the skipped tests of each
// missing service.
func TestSkipsReport(t *testing.T) {
	var s skips
	if got := s.report("vippslogin"); got != "" {
		t.Errorf("report of no skips: %q", got)
	}
	for _, msg := range []string{"no Redis", "no chromium", "no Redis"} {
		s.add(msg)
	}
	want := "vippslogin: skipped 2 tests: no Redis\nvippslogin: skipped 1 test: no chromium\n"
	if got := s.report("vippslogin"); got != want {
		t.Errorf("report = %q, want %q", got, want)
	}
}

func TestStartRedisRestart(t *testing.T) {
	r := StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: r.Addr, DialerRetries: 1}) // fail soon while it is down
	defer c.Close()
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	r.Stop()
	if err := c.Get(ctx, "k").Err(); err == nil {
		t.Fatal("GET succeeded with the server stopped")
	}
	r.Start()
	if err := c.Get(ctx, "k").Err(); err != redis.Nil {
		t.Fatalf("after a restart: GET = %v, want redis.Nil (nothing persisted)", err)
	}
}

func TestStartPersistentRedisRestart(t *testing.T) {
	r := StartPersistentRedis(t)
	c := redis.NewClient(&redis.Options{Addr: r.Addr, DialerRetries: 1}) // fail soon while it is down
	defer c.Close()
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	r.Stop()
	if err := c.Get(ctx, "k").Err(); err == nil {
		t.Fatal("GET succeeded with the server stopped")
	}
	r.Start()
	if got, err := c.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Fatalf("after a restart: GET = %q, %v; want \"v\" (persisted)", got, err)
	}
}

func TestRedisClientPrefix(t *testing.T) {
	c, prefix := RedisClient(t)
	if err := c.Set(context.Background(), prefix+"k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
}
