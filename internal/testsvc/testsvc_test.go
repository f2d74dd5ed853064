package testsvc

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestStartRedisRestart(t *testing.T) {
	r := StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
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
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
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
