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

	"github.com/alexedwards/scs/goredisstore"
	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"
	"github.com/vippslogin/vippslogin"
	"github.com/vippslogin/vippslogin/internal/testsvc"
	"github.com/vippslogin/vippslogin/vippstest"
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
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			h.mu.Lock()
			h.errs = append(h.errs, err)
			h.mu.Unlock()
			vippslogin.WriteError(w, r, err)
		},
		System: vippslogin.SystemInfo{Name: "testshop", Version: "1.2.3"},
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
