package vippslogin_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vippslogin/vippslogin"
	"github.com/vippslogin/vippslogin/vippstest"
)

// Pending logins sit in the session store as session-shaped records, so
// scs's Iterate, which decodes every record, keeps working.
func TestSessionIterateWithPendingLogins(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	b.login("/profile")
	b.startLogin("/pending") // left pending
	h.browser().startLogin("/other")
	n := 0
	err := h.sessions.Iterate(context.Background(), func(ctx context.Context) error {
		n++
		return nil
	})
	if err != nil {
		t.Fatalf("Iterate: %v", err)
	}
	if n < 3 {
		t.Errorf("Iterate saw %d records, want the session and the pending logins", n)
	}
}

func TestHeadLoginStartsNothing(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	resp, _ := b.do(http.MethodHead, "/auth/login?return_to=/profile", nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Location") != "" {
		t.Fatalf("HEAD /auth/login = %d %q, want 200 and no redirect", resp.StatusCode, resp.Header.Get("Location"))
	}
	if b.cookie("vippslogin") != "" || h.idp.Hits(vippstest.Discovery) != 0 {
		t.Error("HEAD /auth/login started a login")
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

// A request from another browser that knows the state must not use up the
// login of the browser that started it.
func TestForeignCallbackLeavesLoginIntact(t *testing.T) {
	for _, name := range []string{"code", "error"} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			b := h.browser()
			cb := b.startLogin("/profile")
			foreign := cb
			if name == "error" {
				foreign = h.site.URL + "/auth/callback?error=access_denied&state=" + queryParam(t, cb, "state")
			}
			resp, _ := h.browser().get(foreign)
			if resp.StatusCode < 400 {
				t.Fatalf("foreign callback: status %d", resp.StatusCode)
			}
			if name == "code" {
				h.wantErr(&vippslogin.Error{Err: vippslogin.ErrBadCallback, Reason: "other_browser"})
			}
			resp, _ = b.get(cb)
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/profile" {
				t.Fatalf("own callback after a foreign one: %d %q (error %v)", resp.StatusCode, resp.Header.Get("Location"), h.lastErr())
			}
		})
	}
}

// RequireLogin binds the browser when it sends it to log in, so tabs sent
// at the same moment share one binding.
func TestRequireLoginBindsBrowser(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	resp, _ := b.get("/profile")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("status %d", resp.StatusCode)
	}
	secret := b.cookie("vippslogin")
	if len(secret) != 43 {
		t.Fatalf("binding cookie %q after the redirect to login", secret)
	}
	cb1 := b.startLogin("/one")
	cb2 := b.startLogin("/two")
	for _, cb := range []string{cb2, cb1} {
		if resp, _ := b.get(cb); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("callback: %d (error %v)", resp.StatusCode, h.lastErr())
		}
	}
	if got := b.cookie("vippslogin"); got[:43] != secret {
		t.Errorf("binding secret changed from %q to %q", secret, got)
	}
}

// A caller that gives up while discovery is slow returns at once, and
// does not fail the fetch for those after it. Discovery is held until the
// test lets it go: the first caller must return while it is held.
func TestDiscoveryCallerGivesUp(t *testing.T) {
	held := &holdDiscovery{arrived: make(chan struct{}), release: make(chan struct{})}
	h := newHarness(t, options{site: func(c *vippslogin.Config) { c.HTTPClient = &http.Client{Transport: held} }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.auth.Ready(ctx) }()
	<-held.arrived
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) || !errors.Is(err, vippslogin.ErrProviderUnavailable) {
		t.Fatalf("Ready cancelled while discovery is held: %v, want context.Canceled and ErrProviderUnavailable", err)
	}
	close(held.release)
	if err := h.auth.Ready(context.Background()); err != nil {
		t.Fatalf("Ready after a caller gave up: %v", err)
	}
	if n := h.idp.Hits(vippstest.Discovery); n != 1 {
		t.Errorf("discovery was fetched %d times, want once: the fetch outlives the caller that gave up", n)
	}
}

// holdDiscovery is a transport that holds the first request for the
// discovery document until release is closed, after closing arrived.
type holdDiscovery struct {
	arrived, release chan struct{}
	once             sync.Once
}

func (d *holdDiscovery) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/openid-configuration") {
		d.once.Do(func() {
			close(d.arrived)
			<-d.release
		})
	}
	return http.DefaultTransport.RoundTrip(r)
}
