package vippslogin_test

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// While a login is pending, the same browser's parallel requests load and
// save its session. The pending login is a record of its own, so it
// survives them (with it inside the session, the last writer would win).
func TestPendingLoginSurvivesParallelRequests(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	b.get("/visit") // the browser has a session before the login starts
	cb := b.startLogin("/profile")
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			path := "/visit"
			if i%2 == 1 {
				path = "/profile"
			}
			resp, err := b.Get(h.site.URL + path)
			if err == nil {
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	resp, _ := b.get(cb)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/profile" {
		t.Fatalf("callback after parallel requests: %d %q (error %v)", resp.StatusCode, resp.Header.Get("Location"), h.lastErr())
	}
	if b.profile() == nil {
		t.Fatal("not logged in")
	}
}

// TestLoad runs complete logins, many at once, against the in-process mock
// provider: none may fail. It reports logins per second and the process's
// CPU time per login (site and mock provider together).
func TestLoad(t *testing.T) {
	logins, inFlight := 1000, 50
	if testing.Short() {
		logins = 100
	}
	h := newHarness(t)
	h.browser().login("/") // warm the caches
	var failed atomic.Int32
	var firstErr atomic.Value
	sem := make(chan struct{}, inFlight)
	var wg sync.WaitGroup
	cpu0 := cpuTime()
	start := time.Now()
	for i := range logins {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := h.tryLogin(fmt.Sprintf("/page/%d", i)); err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err)
			}
		}()
	}
	wg.Wait()
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d logins failed; first: %v", n, logins, firstErr.Load())
	}
	t.Logf("%d logins, %d in flight: %.0f logins/s, %.2f ms CPU per login (site and mock provider)",
		logins, inFlight, float64(logins)/elapsed.Seconds(), float64(cpu.Microseconds())/1000/float64(logins))
}

// tryLogin runs one login in a fresh browser and reports what went wrong.
func (h *harness) tryLogin(returnTo string) error {
	b := h.browser()
	resp, err := b.Get(h.site.URL + "/auth/login?return_to=" + returnTo)
	if err != nil {
		return err
	}
	resp.Body.Close()
	for _, want := range []int{http.StatusFound, http.StatusFound, http.StatusSeeOther} {
		if resp.StatusCode != want {
			return fmt.Errorf("%s: status %d, want %d", resp.Request.URL.Path, resp.StatusCode, want)
		}
		if want == http.StatusSeeOther {
			if loc := resp.Header.Get("Location"); loc != returnTo {
				return fmt.Errorf("callback redirected to %q, want %q", loc, returnTo)
			}
			return nil
		}
		if resp, err = b.Get(resp.Header.Get("Location")); err != nil {
			return err
		}
		resp.Body.Close()
	}
	return nil
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
