package vippslogin_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"
	"github.com/vippslogin/vippslogin"
	"github.com/vippslogin/vippslogin/internal/testsvc"
	"github.com/vippslogin/vippslogin/vippstest"
)

// TestLoad runs complete logins, many at once, against the mock provider
// served by a child process: none may fail, and so no pending login may be
// lost between its start and its callback.
//
// The provider (whose RSA signing dominates the CPU cost of a login) runs
// in a child process so that the relying party's CPU can be told apart from
// it. This process holds the site and the load client; the client's share is
// estimated by a calibration run of the same client pattern (a fresh cookie
// jar per login, 3 requests, as many in flight) against trivial handlers
// that the child serves, so that their server side is not counted here
// either. The test reports logins per second; the CPU per login of site and
// client together, of the client alone, and their difference, the site's
// (RP-side) estimate; the provider child's CPU per login; and the peak
// memory of this process: resident set size and Go heap.
func TestLoad(t *testing.T) {
	testsvc.Soak(t)
	const logins, inFlight = 1000, 50
	h, idp := newLoadSite(t)
	if err := loadLogin(h.url+"/auth/login?return_to=/", "/", h.lastErr); err != nil { // warm the caches
		t.Fatalf("first login: %v", err)
	}
	errs0 := h.errCount()
	rss0, _ := procStatusKB("VmRSS")
	hwmReset := resetPeakRSS()
	peakHeap := sampleHeap(50 * time.Millisecond)
	run := runLoad(idp.pid, logins, inFlight, func(i int) *loadStepError {
		returnTo := fmt.Sprintf("/page/%d", i)
		return loadLogin(h.url+"/auth/login?return_to="+returnTo, returnTo, h.lastErr)
	})
	heapAlloc, heapInuse := peakHeap()
	hwm, _ := procStatusKB("VmHWM")
	if run.firstErr != nil {
		t.Fatalf("%d of %d logins failed (%s); first: %v", logins-run.ok, logins, run.failedBySteps(), run.firstErr)
	}
	// Every started login ended in its callback's redirect: none was lost.
	if run.ok != logins {
		t.Fatalf("%d of %d logins finished", run.ok, logins)
	}
	if n := h.errCount() - errs0; n > 0 {
		t.Fatalf("the error handler got %d errors; last: %v", n, h.lastErr())
	}

	// Calibration: the load client alone, in the same pattern, against the
	// child's trivial stand-ins for the site and the provider.
	calibLogin := func(i int) *loadStepError {
		returnTo := fmt.Sprintf("/page/%d", i)
		return loadLogin(idp.calibSite+"/auth/login?return_to="+returnTo, returnTo, nil)
	}
	if err := calibLogin(0); err != nil { // warm the connections
		t.Fatalf("calibration: %v", err)
	}
	calib := runLoad(idp.pid, logins, inFlight, calibLogin)
	if calib.firstErr != nil || calib.ok != logins {
		t.Fatalf("calibration: %d of %d round trip sets failed (%s); first: %v", logins-calib.ok, logins, calib.failedBySteps(), calib.firstErr)
	}

	perLogin := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(logins) }
	t.Logf("%d logins, %d in flight: %.0f logins/s", logins, inFlight, float64(logins)/run.elapsed.Seconds())
	t.Logf("CPU per login: site + load client %.2f ms (this process); load client alone %.2f ms (calibration: the same client pattern, %d x 3 requests, %d in flight, against trivial handlers in the child); site (RP) alone ~ %.2f ms",
		perLogin(run.cpu), perLogin(calib.cpu), logins, inFlight, perLogin(run.cpu-calib.cpu))
	if run.childErr != nil || calib.childErr != nil {
		t.Logf("mock provider (child process): CPU unknown: %v", errors.Join(run.childErr, calib.childErr))
	} else {
		t.Logf("mock provider (child process %d): %.2f ms CPU per login; its trivial calibration handlers %.2f ms per 3 requests (from /proc/%d/stat, in %d ms ticks)",
			idp.pid, perLogin(run.childCPU), perLogin(calib.childCPU), idp.pid, clockTick/time.Millisecond)
	}
	hwmNote := "during the run"
	if !hwmReset {
		hwmNote = "since the process started"
	}
	t.Logf("%d logins, %d in flight: peak RSS %.1f MiB of site and load client, without the provider (%s; %.1f MiB before), peak Go heap %.1f MiB allocated, %.1f MiB in use",
		logins, inFlight, float64(hwm)/1024, hwmNote, float64(rss0)/1024, mebibytes(heapAlloc), mebibytes(heapInuse))
}

// loadResult is the outcome of runLoad.
type loadResult struct {
	ok       int
	failed   [len(loginSteps)]int
	firstErr *loadStepError
	elapsed  time.Duration
	cpu      time.Duration // of this process
	childCPU time.Duration // of the provider's process
	childErr error         // why childCPU is unknown
}

func (r *loadResult) failedBySteps() string {
	var counts []string
	for step, name := range loginSteps {
		counts = append(counts, fmt.Sprintf("%s %d", name, r.failed[step]))
	}
	return strings.Join(counts, ", ")
}

// runLoad calls login(i) for i from 0 to n-1, inFlight at a time, and
// measures the time taken, the CPU time of this process and that of the
// process childPID.
func runLoad(childPID, n, inFlight int, login func(i int) *loadStepError) loadResult {
	var (
		ok       atomic.Int32
		failed   [len(loginSteps)]atomic.Int32
		firstErr atomic.Pointer[loadStepError]
		wg       sync.WaitGroup
	)
	sem := make(chan struct{}, inFlight)
	child0, err0 := procCPUTime(childPID)
	cpu0 := cpuTime()
	start := time.Now()
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := login(i); err != nil {
				failed[err.step].Add(1)
				firstErr.CompareAndSwap(nil, err)
				return
			}
			ok.Add(1)
		})
	}
	wg.Wait()
	r := loadResult{elapsed: time.Since(start), cpu: cpuTime() - cpu0}
	child1, err1 := procCPUTime(childPID)
	r.childCPU, r.childErr = child1-child0, errors.Join(err0, err1)
	r.ok, r.firstErr = int(ok.Load()), firstErr.Load()
	for step := range failed {
		r.failed[step] = int(failed[step].Load())
	}
	return r
}

// loginSteps names the steps of a login, for the failures of loadLogin.
var loginSteps = [...]string{"start", "authorize", "callback"}

// loadStepError is a failed login and the step it failed at (an index into
// loginSteps).
type loadStepError struct {
	step int
	err  error
}

func (e *loadStepError) Error() string { return loginSteps[e.step] + ": " + e.err.Error() }

// loadLogin runs one login in a fresh browser, from the login route at
// start, and reports the step that failed: start (GET /auth/login),
// authorize (the provider) or callback (which fails when the pending login
// was lost). siteErr, if not nil, returns the site's last error, for the
// failures of the site's steps.
func loadLogin(start, returnTo string, siteErr func() error) *loadStepError {
	jar, _ := cookiejar.New(nil)
	b := &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	u := start
	for step, want := range []int{http.StatusFound, http.StatusFound, http.StatusSeeOther} {
		resp, err := b.Get(u)
		if err != nil {
			return &loadStepError{step, err}
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			err := fmt.Errorf("GET %s: status %d, want %d", resp.Request.URL.Path, resp.StatusCode, want)
			if step != 1 && siteErr != nil {
				err = fmt.Errorf("%w (the site's last error: %v)", err, siteErr())
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

// loadProviderEnv, when set, makes the test binary serve a mock provider
// for TestLoad instead of running tests (see TestMain). Its value is a JSON
// loadProviderConfig.
const loadProviderEnv = "VIPPSLOGIN_TEST_LOAD_PROVIDER"

// loadProviderConfig configures the provider process of TestLoad.
type loadProviderConfig struct {
	ClientID     string   `json:"client_id"`
	ClientSecret string   `json:"client_secret"`
	RedirectURIs []string `json:"redirect_uris"`
}

// Paths of the calibration handlers: those of the site's login and
// callback, and of the provider's authorize endpoint.
const (
	calibLoginPath     = "/auth/login"
	calibCallbackPath  = "/auth/callback"
	calibAuthorizePath = "/access-management-1.0/access/oauth2/auth"
)

// serveLoadProvider is the child process of TestLoad. It serves a vippstest
// provider configured by cfg (a JSON loadProviderConfig) and two trivial
// servers for the calibration, which mimic the redirects and cookies of the
// site and of the provider without their work. It writes the provider's
// issuer on the first line of stdout and the calibration site's URL on the
// second, then serves until its stdin is closed (or ends: the parent is
// gone), and returns the exit code.
func serveLoadProvider(cfg string) int {
	var c loadProviderConfig
	if err := json.Unmarshal([]byte(cfg), &c); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", loadProviderEnv, err)
		return 2
	}
	idp, err := vippstest.New(vippstest.Config{
		AutoApprove:  true,
		ClientID:     c.ClientID,
		ClientSecret: c.ClientSecret,
		RedirectURIs: c.RedirectURIs,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer idp.Close()
	site, prov := httptest.NewUnstartedServer(nil), httptest.NewUnstartedServer(nil)
	siteURL, provURL := "http://"+site.Listener.Addr().String(), "http://"+prov.Listener.Addr().String()
	token := strings.Repeat("x", 43) // the length of the package's states and of scs tokens
	redirect := func(w http.ResponseWriter, location string, code int) {
		http.SetCookie(w, &http.Cookie{Name: "session", Value: token, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
		w.Header().Set("Location", location)
		w.WriteHeader(code)
	}
	siteMux := http.NewServeMux()
	siteMux.HandleFunc("GET "+calibLoginPath, func(w http.ResponseWriter, r *http.Request) {
		q := url.Values{"state": {token}, "nonce": {token}, "code_challenge": {token}, "return_to": {r.FormValue("return_to")}}
		redirect(w, provURL+calibAuthorizePath+"?"+q.Encode(), http.StatusFound)
	})
	siteMux.HandleFunc("GET "+calibCallbackPath, func(w http.ResponseWriter, r *http.Request) {
		redirect(w, r.FormValue("return_to"), http.StatusSeeOther)
	})
	site.Config.Handler = siteMux
	prov.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != calibAuthorizePath {
			http.NotFound(w, r)
			return
		}
		q := url.Values{"code": {token}, "state": {r.FormValue("state")}, "return_to": {r.FormValue("return_to")}}
		redirect(w, siteURL+calibCallbackPath+"?"+q.Encode(), http.StatusFound)
	})
	site.Start()
	defer site.Close()
	prov.Start()
	defer prov.Close()
	if _, err := fmt.Printf("%s\n%s\n", idp.Issuer(), siteURL); err != nil {
		return 2
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// loadProvider is the provider process of TestLoad.
type loadProvider struct {
	pid       int
	issuer    string
	calibSite string // the URL of the calibration stand-in for the site
}

// startLoadProvider runs the test binary as the provider process of
// TestLoad and stops it when the test ends.
func startLoadProvider(t *testing.T, cfg loadProviderConfig) *loadProvider {
	t.Helper()
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, os.Args[0]) // cmd.Cancel kills it once ctx is cancelled
	cmd.Env = append(os.Environ(), loadProviderEnv+"="+string(cfgJSON))
	cmd.WaitDelay = 5 * time.Second
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start the provider process (the test binary %s): %v", os.Args[0], err)
	}
	// stop closes the child's stdin, which ends it, and kills it if it has
	// not ended within a minute.
	stop := sync.OnceValue(func() error {
		defer cancel()
		_ = stdin.Close()
		waited := make(chan error, 1)
		go func() { waited <- cmd.Wait() }()
		select {
		case err := <-waited:
			return err
		case <-time.After(time.Minute): // against a hang, not a speed limit
			cancel()
			return fmt.Errorf("killed after its stdin was closed: %v", <-waited)
		}
	})
	startFailed := false // and reported
	t.Cleanup(func() {
		if err := stop(); err != nil && !startFailed {
			t.Errorf("provider process: %v; its stderr:\n%s", err, stderr)
		}
	})

	type lines struct {
		issuer, calibSite string
		err               error
	}
	read := make(chan lines, 1)
	go func() {
		var l lines
		r := bufio.NewReader(stdout)
		l.issuer, l.err = r.ReadString('\n')
		if l.err == nil {
			l.calibSite, l.err = r.ReadString('\n')
		}
		read <- l
	}()
	var l lines
	select {
	case l = <-read:
	case <-time.After(2 * time.Minute): // against a hang, not a speed limit
		l.err = errors.New("no URLs on its stdout within 2 minutes")
	}
	if l.err != nil {
		err := stop()
		startFailed = true
		t.Fatalf("the provider process (the test binary %s with %s set) did not start: %v (exit: %v); its stderr:\n%s",
			os.Args[0], loadProviderEnv, l.err, err, stderr)
	}
	return &loadProvider{
		pid:       cmd.Process.Pid,
		issuer:    strings.TrimSpace(l.issuer),
		calibSite: strings.TrimSpace(l.calibSite),
	}
}

// newLoadSite starts the provider process and a site that logs in with it,
// like newHarness's but with the real clock (in both processes), and
// without the provider's handle (h.idp and h.clock are nil), so that only
// the helpers that do not use them apply. The site logs at Info level, as in
// production, to nowhere.
func newLoadSite(t *testing.T) (*harness, *loadProvider) {
	t.Helper()
	const clientID, clientSecret = "load-client", "load-secret"
	h := &harness{t: t, logs: &syncBuffer{}}
	h.site = httptest.NewUnstartedServer(nil)
	t.Cleanup(h.site.Close)
	h.url = "http://" + h.site.Listener.Addr().String()
	redirectURI := h.url + "/auth/callback"
	idp := startLoadProvider(t, loadProviderConfig{ClientID: clientID, ClientSecret: clientSecret, RedirectURIs: []string{redirectURI}})

	h.sessions = scs.New()
	// No cleanup goroutine: it would outlive the test, holding its sessions.
	h.sessions.Store = memstore.NewWithCleanupInterval(0)
	auth, err := vippslogin.New(vippslogin.Config{
		ClientID:     clientID,
		ClientSecret: vippslogin.Secret(clientSecret),
		Issuer:       idp.issuer,
		BaseURL:      h.url,
		Sessions:     h.sessions,
		Scopes:       []string{"openid", "name", "email", "phoneNumber", "address", "birthDate"},
		Logger:       slog.New(slog.NewJSONHandler(io.Discard, nil)),
		ErrorHandler: h.errorHandler,
		System:       vippslogin.SystemInfo{Name: "testshop", Version: "1.2.3"},
		// Every load login comes from this machine's one address.
		LoginsPerMinute: 1 << 30,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = auth.Close() })
	if got := auth.RedirectURI(); got != redirectURI {
		t.Fatalf("RedirectURI() = %q, but the provider process registered %q", got, redirectURI)
	}
	h.auth = auth
	h.sessions.ErrorFunc = auth.SessionError

	mux := http.NewServeMux()
	mux.Handle("/auth/", auth.Handler())
	mux.Handle("/page/", auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "page")
	})))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "home") })
	h.site.Config.Handler = h.sessions.LoadAndSave(mux)
	h.site.Start()
	return h, idp
}

// clockTick is the unit of the CPU times in /proc/<pid>/stat: 1/CLK_TCK
// seconds, where sysconf(_SC_CLK_TCK) is 100 on Linux on every architecture
// (USER_HZ; the kernel's own tick rate may differ). Reading the real value
// from /proc/self/auxv (AT_CLKTCK) would be overkill.
const clockTick = time.Second / 100

// procCPUTime returns the user and system CPU time of process pid, all its
// threads together, from /proc/<pid>/stat (Linux): its fields 14 and 15,
// utime and stime, in clock ticks.
func procCPUTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Field 2, the command name in parentheses, may hold spaces and
	// parentheses: the fields from 3 on follow the last ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no ')' in %q", pid, data)
	}
	fields := strings.Fields(string(data[i+1:]))
	const utime, stime = 14 - 3, 15 - 3 // fields[0] is field 3, the state
	if len(fields) <= stime {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields after the command name", pid, len(fields))
	}
	var ticks int64
	for _, f := range []int{utime, stime} {
		n, err := strconv.ParseInt(fields[f], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: field %d: %v", pid, f+3, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * clockTick, nil
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
	res.want(t, allowed, starts)
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

// startResult counts the answers to the logins startLogins started.
type startResult struct {
	accepted, refused int
	unexpected        string // the first answer that was neither
}

// want fails t unless allowed of n logins were accepted and the rest
// refused, and nothing else answered.
func (res startResult) want(t *testing.T, allowed, n int) {
	t.Helper()
	if res.unexpected != "" {
		t.Fatalf("a login answered %s", res.unexpected)
	}
	if res.accepted != allowed || res.refused != n-allowed {
		t.Fatalf("%d logins redirected to the provider and %d were refused with 503, want %d and %d",
			res.accepted, res.refused, allowed, n-allowed)
	}
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
