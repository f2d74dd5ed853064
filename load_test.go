package vippslogin_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"
	"github.com/vippslogin/vippslogin/internal/testsvc"
)

// While a login is pending, the same browser's parallel requests load and
// save its session. The pending login is a record of its own, so it
// survives them (with it inside the session, the last writer would win).
//
// Each store's commits are slowed down a little, as over a network, so that
// many requests hold a loaded session while the login saves its record:
// then a pending login kept in the session is lost nearly every run.
func TestPendingLoginSurvivesParallelRequests(t *testing.T) {
	const latency = 2 * time.Millisecond
	t.Run("memstore", func(t *testing.T) {
		store := memstore.NewWithCleanupInterval(0) // no cleanup goroutine: the test is short
		testPendingLoginSurvivesParallelRequests(t, slowCommits{store, latency})
	})
	t.Run("redis", func(t *testing.T) {
		client, prefix := testsvc.RedisClient(t)
		testPendingLoginSurvivesParallelRequests(t, slowCtxCommits{goredisstore.NewWithPrefix(client, prefix), latency})
	})
}

// slowCommits is an scs store whose commits take a while.
type slowCommits struct {
	scs.Store
	latency time.Duration
}

func (s slowCommits) Commit(token string, b []byte, expiry time.Time) error {
	time.Sleep(s.latency)
	return s.Store.Commit(token, b, expiry)
}

// slowCtxCommits is goredisstore with commits that take a while longer.
type slowCtxCommits struct {
	*goredisstore.RedisStore
	latency time.Duration
}

func (s slowCtxCommits) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	time.Sleep(s.latency)
	return s.RedisStore.CommitCtx(ctx, token, b, expiry)
}

func testPendingLoginSurvivesParallelRequests(t *testing.T, store scs.Store) {
	const parallel = 60
	h := newHarness(t, options{store: store})
	b := h.browser()
	b.get("/visit") // the browser has a session before the login starts
	loginURL := h.auth.LoginURL("/profile")
	// /profile sends the browser to log in, and binds it, so that the
	// parallel requests to /profile do not bind it anew while the login
	// sets its binding cookie.
	if resp, _ := b.get("/profile"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != loginURL || b.cookie("vippslogin") == "" {
		t.Fatalf("/profile: status %d location %q, want 303 %q and a binding cookie", resp.StatusCode, resp.Header.Get("Location"), loginURL)
	}

	// The parallel requests start together, are under way when the login
	// starts, go on while the provider asks the user, and stop before the
	// callback: they span the login's pending period.
	var (
		start, busy, stop = make(chan struct{}), make(chan struct{}), make(chan struct{})
		done, failed      atomic.Int32
		mu                sync.Mutex
		failures          []error
		wg                sync.WaitGroup
	)
	for i := range parallel {
		wg.Go(func() {
			<-start
			for r := 0; ; r++ {
				path := "/visit"
				if (i+r)%2 == 1 {
					path = "/profile"
				}
				if err := parallelGet(b, h.site.URL+path, loginURL); err != nil {
					failed.Add(1)
					mu.Lock()
					failures = append(failures, err)
					mu.Unlock()
				}
				if done.Add(1) == parallel/4 {
					close(busy)
				}
				select {
				case <-stop:
					return
				default:
				}
			}
		})
	}
	close(start)
	<-busy
	resp, _ := b.get("/auth/login?return_to=%2Fprofile")
	if resp.StatusCode != http.StatusFound {
		close(stop)
		wg.Wait()
		t.Fatalf("login: status %d, want 302 (error %v)", resp.StatusCode, h.lastErr())
	}
	resp, _ = b.get(resp.Header.Get("Location")) // the provider
	close(stop)
	wg.Wait()
	cb := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(cb, h.site.URL+"/auth/callback") {
		t.Fatalf("authorize: status %d, location %q", resp.StatusCode, cb)
	}
	for i, err := range failures {
		if i == 5 {
			break
		}
		t.Error(err)
	}
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d parallel requests failed", n, done.Load())
	}
	if c := h.errCount(); c != 0 {
		t.Fatalf("the error handler got %d errors during the parallel requests; last: %v", c, h.lastErr())
	}
	// The pending login survived: its callback succeeds.
	resp, _ = b.get(cb)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/profile" {
		t.Fatalf("callback after %d parallel requests: %d %q (error %v)", done.Load(), resp.StatusCode, resp.Header.Get("Location"), h.lastErr())
	}
	if b.profile() == nil {
		t.Fatal("not logged in")
	}
	t.Logf("%d parallel requests from %d goroutines during the login", done.Load(), parallel)
}

// parallelGet fetches u and checks the answer: 200 "hello" from /visit, and
// from /profile, which the browser is not logged in to, a redirect to
// loginURL.
func parallelGet(b *browser, u, loginURL string) error {
	resp, err := b.Get(u)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("GET %s: %v", u, err)
	}
	if strings.HasSuffix(u, "/visit") {
		if resp.StatusCode != http.StatusOK || string(body) != "hello" {
			return fmt.Errorf("GET %s: status %d %q, want 200 hello", u, resp.StatusCode, body)
		}
		return nil
	}
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != loginURL {
		return fmt.Errorf("GET %s: status %d location %q, want 303 %q", u, resp.StatusCode, resp.Header.Get("Location"), loginURL)
	}
	return nil
}

// TestLoad runs complete logins, many at once, against the in-process mock
// provider: none may fail, and so no pending login may be lost between its
// start and its callback. It reports logins per second, the process's CPU
// time per login (site and mock provider together), and the peak memory:
// resident set size and Go heap.
func TestLoad(t *testing.T) {
	logins, inFlight := 1000, 50
	if testing.Short() {
		logins = 100
	}
	h := newHarness(t)
	h.browser().login("/") // warm the caches
	errs0 := h.errCount()
	var (
		ok       atomic.Int32
		failed   [len(loginSteps)]atomic.Int32
		firstErr atomic.Pointer[loadStepError]
	)
	sem := make(chan struct{}, inFlight)
	var wg sync.WaitGroup
	rss0, _ := procStatusKB("VmRSS")
	hwmReset := resetPeakRSS()
	peakHeap := sampleHeap(50 * time.Millisecond)
	cpu0 := cpuTime()
	start := time.Now()
	for i := range logins {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := h.tryLogin(fmt.Sprintf("/page/%d", i)); err != nil {
				failed[err.step].Add(1)
				firstErr.CompareAndSwap(nil, err)
				return
			}
			ok.Add(1)
		}()
	}
	wg.Wait()
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	heapAlloc, heapInuse := peakHeap()
	hwm, _ := procStatusKB("VmHWM")
	if err := firstErr.Load(); err != nil {
		var counts []string
		for step, name := range loginSteps {
			counts = append(counts, fmt.Sprintf("%s %d", name, failed[step].Load()))
		}
		t.Fatalf("%d of %d logins failed (%s); first: %v", logins-int(ok.Load()), logins, strings.Join(counts, ", "), err)
	}
	// Every started login ended in its callback's redirect: none was lost.
	if n := int(ok.Load()); n != logins {
		t.Fatalf("%d of %d logins finished", n, logins)
	}
	if n := h.errCount() - errs0; n > 0 {
		t.Fatalf("the error handler got %d errors; last: %v", n, h.lastErr())
	}
	t.Logf("%d logins, %d in flight: %.0f logins/s, %.2f ms CPU per login (site and mock provider)",
		logins, inFlight, float64(logins)/elapsed.Seconds(), float64(cpu.Microseconds())/1000/float64(logins))
	hwmNote := "during the run"
	if !hwmReset {
		hwmNote = "since the process started"
	}
	t.Logf("%d logins, %d in flight: peak RSS %.1f MiB (%s; %.1f MiB before), peak Go heap %.1f MiB allocated, %.1f MiB in use",
		logins, inFlight, float64(hwm)/1024, hwmNote, float64(rss0)/1024, mebibytes(heapAlloc), mebibytes(heapInuse))
}

// loginSteps names the steps of a login, for the failures of tryLogin.
var loginSteps = [...]string{"start", "authorize", "callback"}

// loadStepError is a failed login and the step it failed at (an index into
// loginSteps).
type loadStepError struct {
	step int
	err  error
}

func (e *loadStepError) Error() string { return loginSteps[e.step] + ": " + e.err.Error() }

// tryLogin runs one login in a fresh browser and reports the step that
// failed: start (GET /auth/login), authorize (the provider) or callback
// (which fails when the pending login was lost).
func (h *harness) tryLogin(returnTo string) *loadStepError {
	b := h.browser()
	u := h.site.URL + "/auth/login?return_to=" + returnTo
	for step, want := range []int{http.StatusFound, http.StatusFound, http.StatusSeeOther} {
		resp, err := b.Get(u)
		if err != nil {
			return &loadStepError{step, err}
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			err := fmt.Errorf("GET %s: status %d, want %d", resp.Request.URL.Path, resp.StatusCode, want)
			if step != 1 {
				err = fmt.Errorf("%w (the site's last error: %v)", err, h.lastErr())
			}
			return &loadStepError{step, err}
		}
		u = resp.Header.Get("Location")
	}
	if u != returnTo {
		return &loadStepError{2, fmt.Errorf("callback redirected to %q, want %q", u, returnTo)}
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

// procStatusKB returns a field of /proc/self/status that is counted in kB,
// such as VmRSS (resident set size) or VmHWM (its peak).
func procStatusKB(field string) (int64, bool) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		name, value, found := strings.Cut(sc.Text(), ":")
		if !found || name != field {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		return kb, err == nil
	}
	return 0, false
}

// resetPeakRSS resets VmHWM to the current RSS (Linux 4.0 and later), so that
// it reports the peak of what follows rather than of the whole process.
func resetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// sampleHeap samples the Go heap every interval until the returned function
// is called, which returns the peaks of HeapAlloc and HeapInuse.
func sampleHeap(every time.Duration) (stop func() (alloc, inuse uint64)) {
	done := make(chan struct{})
	var alloc, inuse uint64
	var wg sync.WaitGroup
	sample := func() {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		alloc, inuse = max(alloc, m.HeapAlloc), max(inuse, m.HeapInuse)
	}
	wg.Go(func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			sample()
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	return func() (uint64, uint64) {
		close(done)
		wg.Wait()
		return alloc, inuse
	}
}

func mebibytes(b uint64) float64 { return float64(b) / (1 << 20) }
