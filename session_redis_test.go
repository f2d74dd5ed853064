package vippslogin_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/redis/go-redis/v9"

	"github.com/vippslogin/vippslogin"
	"github.com/vippslogin/vippslogin/internal/testsvc"
	"github.com/vippslogin/vippslogin/vippstest"
)

// The tests in this file run the package against scs's own Redis store,
// goredisstore, on a real redis-server, with no code of the package's
// written for Redis.

// redisKeys returns the keys under prefix+pattern, with their time to live.
func redisKeys(t *testing.T, client *redis.Client, prefix, pattern string) map[string]time.Duration {
	t.Helper()
	ctx := context.Background()
	keys := map[string]time.Duration{}
	iter := client.Scan(ctx, 0, prefix+pattern, 1000).Iterator()
	for iter.Next(ctx) {
		ttl, err := client.PTTL(ctx, iter.Val()).Result()
		if err != nil {
			t.Fatal(err)
		}
		keys[strings.TrimPrefix(iter.Val(), prefix)] = ttl
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return keys
}

func TestRedisLoginFlow(t *testing.T) {
	client, prefix := testsvc.RedisClient(t)
	h := newHarness(t, options{store: goredisstore.NewWithPrefix(client, prefix)})
	ttl := 10 * time.Minute // the default PendingLoginTTL
	b := h.browser()

	cb := b.startLogin("/profile")
	pending := redisKeys(t, client, prefix, ";l*")
	if len(pending) != 1 {
		t.Fatalf("pending-login records in Redis: %d, want 1", len(pending))
	}
	for k, left := range pending {
		if left <= 0 || left > ttl {
			t.Errorf("%s expires in %v, want within (0, %v]: abandoned logins must expire", k, left, ttl)
		}
	}

	resp, _ := b.get(cb)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/profile" {
		t.Fatalf("callback: %d %q (error %v)", resp.StatusCode, resp.Header.Get("Location"), h.lastErr())
	}
	claims := b.profile()
	if claims == nil || claims["name"] != "Kari Nordmann" {
		t.Fatalf("profile after login: %v", claims)
	}
	token := b.cookie("session")
	sessions := redisKeys(t, client, prefix, token)
	if left, ok := sessions[token]; !ok || left <= 0 {
		t.Fatalf("the session %q is not in Redis with an expiry (%v)", token, sessions)
	}

	// A reload of the callback is recognised from the record Redis keeps.
	if resp, _ := b.get(cb); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("reload of the callback: status %d, want 303", resp.StatusCode)
	}

	resp, _ = b.logout(nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: status %d (error %v)", resp.StatusCode, h.lastErr())
	}
	if n, err := client.Exists(context.Background(), prefix+token).Result(); err != nil || n != 0 {
		t.Errorf("the logged-out session is still in Redis (exists=%d, %v)", n, err)
	}
	if b.profile() != nil {
		t.Error("still logged in after logout")
	}
}

// An abandoned login's record expires in Redis; a callback after that is
// refused as an expired login, and the browser can log in again at once.
func TestRedisAbandonedLoginExpires(t *testing.T) {
	client, prefix := testsvc.RedisClient(t)
	h := newHarness(t, options{store: goredisstore.NewWithPrefix(client, prefix)})
	b := h.browser()
	cb := b.startLogin("/profile")
	pending := redisKeys(t, client, prefix, ";l*")
	if len(pending) != 1 {
		t.Fatalf("pending-login records in Redis: %d, want 1", len(pending))
	}
	// Let Redis expire the record now rather than in ten minutes.
	for k := range pending {
		if err := client.PExpire(context.Background(), prefix+k, time.Millisecond).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// Redis expires it by its own clock, a millisecond from now: a bounded
	// poll of the real service, against a hang, not a speed limit.
	deadline := time.Now().Add(30 * time.Second)
	for len(redisKeys(t, client, prefix, ";l*")) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("Redis did not expire the pending login")
		}
		time.Sleep(5 * time.Millisecond)
	}
	resp, body := b.get(cb)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Please start again") {
		t.Errorf("callback of an expired login: %d %q", resp.StatusCode, body)
	}
	b.wantRefused(resp, vippslogin.ErrLoginExpired)
	b.login("/profile")
}

// balancer is a load balancer in front of two instances of a site: route
// picks the instance for each request.
type balancer struct {
	*httptest.Server
	route func(r *http.Request) int
	hits  [2]atomic.Int32
}

func newBalancer(t *testing.T) *balancer {
	lb := &balancer{Server: httptest.NewUnstartedServer(nil)}
	t.Cleanup(lb.Close)
	return lb
}

func (lb *balancer) start(a, b *harness) {
	targets := [2]*url.URL{}
	for i, h := range []*harness{a, b} {
		targets[i], _ = url.Parse(h.site.URL)
	}
	lb.Config.Handler = &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		i := lb.route(pr.In)
		lb.hits[i].Add(1)
		pr.SetURL(targets[i])
		pr.Out.Host = pr.In.Host // the instances see the public host
	}}
	lb.Start()
}

// twoInstances starts two instances of a site sharing one Redis and one
// provider behind a balancer; the browser of the first harness goes
// through the balancer.
func twoInstances(t *testing.T, route func(r *http.Request) int, opts ...options) (a, b *harness, lb *balancer) {
	client, prefix := testsvc.RedisClient(t)
	lb = newBalancer(t)
	lb.route = route
	base := "http://" + lb.Listener.Addr().String()
	a = newHarness(t, append(opts, options{store: goredisstore.NewWithPrefix(client, prefix), baseURL: base})...)
	b = newHarness(t, append(opts, options{store: goredisstore.NewWithPrefix(client, prefix), baseURL: base, sameProvider: a})...)
	lb.start(a, b)
	return a, b, lb
}

// A login started on one instance finishes on the other; each instance
// fetches and caches the provider's keys itself and verifies with them.
func TestTwoInstancesShareRedis(t *testing.T) {
	onCallback := 1 // the instance that gets callbacks; the other gets the rest
	a, b, lb := twoInstances(t, func(r *http.Request) int {
		if strings.HasSuffix(r.URL.Path, "/auth/callback") {
			return onCallback
		}
		return 1 - onCallback
	})

	first := a.browser()
	first.login("/profile") // started on A, finished on B
	if lb.hits[0].Load() == 0 || lb.hits[1].Load() == 0 {
		t.Fatalf("requests per instance: %d, %d; want both used", lb.hits[0].Load(), lb.hits[1].Load())
	}
	if c := first.profile(); c == nil || c["name"] != "Kari Nordmann" {
		t.Fatalf("profile on instance A after the callback on B: %v", c)
	}

	onCallback = 0
	second := a.browser()
	second.login("/profile") // started on B, finished on A
	onCallback = 1
	if c := second.profile(); c == nil { // served by B
		t.Fatal("profile on instance B after the callback on A: not logged in")
	}

	if got := a.idp.Hits(vippstest.JWKS); got != 2 {
		t.Errorf("key set fetched %d times, want 2: once by each instance", got)
	}
	for _, h := range []*harness{a, b} {
		if n := h.errCount(); n != 0 {
			t.Errorf("an instance had %d errors, last %v", n, h.lastErr())
		}
	}
}

// Every request of many logins goes to the other instance than the one
// before: each login's steps alternate between them.
func TestTwoInstancesAlternating(t *testing.T) {
	var n atomic.Int64
	a, b, lb := twoInstances(t, func(*http.Request) int { return int(n.Add(1) % 2) })
	for range 20 {
		br := a.browser()
		br.login("/profile")
		if br.profile() == nil {
			t.Fatal("not logged in after a login across instances")
		}
	}
	if lb.hits[0].Load() < 20 || lb.hits[1].Load() < 20 {
		t.Errorf("requests per instance: %d, %d", lb.hits[0].Load(), lb.hits[1].Load())
	}
	if a.errCount()+b.errCount() != 0 {
		t.Errorf("errors: %d on A (last %v), %d on B (last %v)", a.errCount(), a.lastErr(), b.errCount(), b.lastErr())
	}
}

// A callback replayed on the other instance is recognised from the shared
// record, not accepted again.
func TestTwoInstancesReplay(t *testing.T) {
	onCallback := 1
	a, b, _ := twoInstances(t, func(r *http.Request) int {
		if strings.HasSuffix(r.URL.Path, "/auth/callback") {
			return onCallback
		}
		return 0
	})
	br := a.browser()
	cb := br.startLogin("/profile")
	if resp, _ := br.get(cb); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("callback on B: %d (error %v)", resp.StatusCode, b.lastErr())
	}
	// Another browser replays the callback on A.
	onCallback = 0
	thief := a.browser()
	resp, _ := thief.get(cb)
	if resp.StatusCode == http.StatusSeeOther && thief.profile() != nil {
		t.Fatal("the replayed callback logged another browser in")
	}
	if a.errCount() == 0 {
		t.Error("the replay was not reported as an error")
	}
}

// Redis restarting between a login's start and its callback loses the
// pending login: the callback fails with a clear answer, nothing panics,
// and the next login works.
func TestRedisRestartBetweenLoginAndCallback(t *testing.T) {
	srv := testsvc.StartRedis(t)
	// No retries and one dial: a command fails at once while Redis is down.
	client := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { _ = client.Close() })
	h := newHarness(t, options{store: goredisstore.New(client)})
	b := h.browser()
	b.get("/visit")
	cb := b.startLogin("/profile")

	srv.Stop()
	resp, body := b.get(cb)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("callback with Redis down: status %d, want 503: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") || !strings.Contains(body, "session storage") {
		t.Errorf("callback with Redis down: not a clear page (%s): %s", ct, body)
	}
	if strings.Contains(body, "connection refused") || strings.Contains(body, srv.Addr) {
		t.Errorf("the page shows the store's error: %s", body)
	}
	h.wantErr(vippslogin.ErrSessionStore)
	if logs := h.logs.String(); !strings.Contains(logs, `"level":"WARN"`) || !strings.Contains(logs, `"kind":"session_unavailable"`) {
		t.Errorf("no record of the outage for the operator:\n%s", logs)
	}
	resp, _ = b.get("/auth/login")
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("login with Redis down: status %d, want 503", resp.StatusCode)
	}

	srv.Start() // empty: the pending login and the session are gone
	resp, body = b.get(cb)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Please start again") {
		t.Errorf("callback after the restart: %d %s", resp.StatusCode, body)
	}
	b.wantRefused(resp, vippslogin.ErrLoginExpired)
	b.login("/profile")
	if c := b.profile(); c == nil {
		t.Fatal("not logged in after the restart")
	}
}

// waitReconnected waits until client reaches Redis again. After many
// failed dials go-redis fails fast with the last dial error, and probes
// the server in the background until it answers.
func waitReconnected(t *testing.T, client *redis.Client) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second) // against a hang, not a speed limit
	for {
		err := client.Ping(context.Background()).Err()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Redis client does not reach the restarted server: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// byHeader routes a request to the instance its X-Instance header names.
func byHeader(r *http.Request) int {
	if r.Header.Get("X-Instance") == "1" {
		return 1
	}
	return 0
}

// One code gives one session at most, across two instances on one Redis:
// the callback of a login with automatic return (which any browser may
// finish) is sent at the same moment by the browser that started it and by
// another one, each to both instances. At most one of them is logged in or
// asked to confirm, round after round.
func TestTwoInstancesOneSessionPerCode(t *testing.T) {
	a, _, _ := twoInstances(t, byHeader, withLoginRoute(vippslogin.LoginOptions{Flow: vippslogin.FlowAutomaticReturn}))
	starts := 0
	for round := range 10 {
		starter, other := a.browser(), a.browser()
		resp, _ := starter.get("/start?return_to=/profile")
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("round %d: start: %d (error %v)", round, resp.StatusCode, a.lastErr())
		}
		starts++
		resp, _ = starter.get(resp.Header.Get("Location"))
		cb := resp.Header.Get("Location")
		if !strings.Contains(cb, "code=") {
			t.Fatalf("round %d: authorize: %d %q", round, resp.StatusCode, cb)
		}
		type result struct {
			br     *browser
			status int
			body   string
		}
		results := make(chan result, 4)
		for _, br := range []*browser{starter, other} {
			for _, instance := range []string{"0", "1"} {
				go func() {
					req, _ := http.NewRequest(http.MethodGet, cb, nil)
					req.Header.Set("X-Instance", instance)
					resp, err := br.Do(req)
					if err != nil {
						results <- result{br: br}
						return
					}
					defer resp.Body.Close()
					body, _ := io.ReadAll(resp.Body)
					results <- result{br, resp.StatusCode, string(body)}
				}()
			}
		}
		wins := 0
		for range 4 {
			r := <-results
			switch {
			case r.status == http.StatusSeeOther:
				wins++
			case r.status == http.StatusOK && strings.Contains(r.body, `value="continue"`):
				wins++
			}
		}
		if wins > 1 {
			t.Fatalf("round %d: %d callbacks with one code logged in or asked to confirm", round, wins)
		}
		if starter.profile() != nil && other.profile() != nil {
			t.Fatalf("round %d: both browsers are logged in with one code", round)
		}
	}
	if got := a.idp.Hits(vippstest.Token); got > 4*starts {
		t.Errorf("token endpoint hits %d", got)
	}
}

// A hand-off is single-use across instances: the confirmation of a login
// that came back in another browser, replayed on the other instance with
// the same secret, is refused.
func TestTwoInstancesHandoffSingleUse(t *testing.T) {
	a, _, _ := twoInstances(t, byHeader, withLoginRoute(vippslogin.LoginOptions{Flow: vippslogin.FlowAutomaticReturn}))
	starter, other := a.browser(), a.browser()
	cb := startAutomatic(t, starter)
	resp, body := other.get(cb, "X-Instance", "0")
	wantConfirmPage(t, resp, body, "Kari Nordmann")
	secret := other.cookie("vippslogin-confirm")
	if secret == "" {
		t.Fatal("no confirm cookie")
	}
	if resp, _ := other.confirm("continue", "X-Instance", "0"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("confirm on A: %d (error %v)", resp.StatusCode, a.lastErr())
	}
	replay := a.browser()
	u, _ := url.Parse(a.url)
	replay.Jar.SetCookies(u, []*http.Cookie{{Name: "vippslogin-confirm", Value: secret, Path: "/"}})
	resp, _ = replay.confirm("continue", "X-Instance", "1")
	if resp.StatusCode < 400 || replay.profile() != nil {
		t.Fatalf("the confirmation replayed on B: %d", resp.StatusCode)
	}
}

// Redis stopping under a logged-in browser: public pages and a stylesheet
// are still served, as to a guest, pages that need the login and the login
// routes answer 503, and the session is left in Redis, so that the login is
// back once Redis is.
func TestRedisOutageUnderLoggedInBrowser(t *testing.T) {
	srv := testsvc.StartPersistentRedis(t) // the session must outlive the restart
	// No retries and one dial: a command fails at once while Redis is down.
	client := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { _ = client.Close() })
	h := newHarness(t, options{store: goredisstore.New(client)}, outageRoutes)
	b := h.browser()
	b.login("/profile")
	token := b.cookie("session")
	claims := b.profile()
	if claims == nil {
		t.Fatal("not logged in")
	}
	sub := claims["sub"].(string)

	srv.Stop()
	wantServedWithoutSession(t, h, b, sub)

	srv.Start()
	waitReconnected(t, client)
	wantSessionBack(t, b, sub, token, "after Redis restarted")
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
	res.want(t, allowed, starts)
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
