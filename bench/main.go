// Command bench compares the relying party's cost of package vippslogin with
// that of the hand-written alternative (github.com/coreos/go-oidc/v3,
// golang.org/x/oauth2 and github.com/alexedwards/scs/v2, with state, nonce
// and PKCE by hand). From the repository's root:
//
//	go run ./bench
//
// It builds ./bench/cmd/provider (the mock provider of package vippstest,
// approving every login at once) and ./bench/cmd/rp (the site, in either
// flavour) with go build into a temporary directory, starts the provider
// once, and then, for each round, starts each flavour of the site as a
// fresh process, the order alternating from round to round. On each it
// runs some warm-up logins and requests, then measures:
//
//   - -logins complete logins, each in a browser of its own (a cookie jar):
//     GET /auth/login, the provider's authorize endpoint (which redirects
//     straight back), GET /auth/callback and GET /profile;
//   - -requests GET /profile (Accept: application/json) by the browsers
//     logged in so far;
//
// with -concurrency of them in flight. The site's process reports its own
// CPU time (user + system, getrusage) before and after each phase and its
// peak RSS; the provider and this driver are other processes, so their
// CPU is not counted. The table gives per-login and per-request CPU time,
// peak RSS, and the ratio vippslogin / handwritten of each round and the
// median of those ratios.
//
// With -profile DIR, one more round of each flavour runs with the site's
// CPU profile on, written to DIR/vippslogin.pprof and DIR/handwritten.pprof
// for go tool pprof -top, and what is live on its heap at the end to
// DIR/vippslogin.heap.pprof and DIR/handwritten.heap.pprof; that round is
// not in the table.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vippslogin/vippslogin/bench/internal/usage"
)

// The flavours of the site, by their -impl names.
const (
	vl = "vippslogin"
	hw = "handwritten"
)

// settings are the driver's flags.
type settings struct {
	logins, requests, rounds, concurrency int
	warmLogins, warmRequests              int
	profileDir                            string
}

func main() {
	var s settings
	flag.IntVar(&s.logins, "logins", 1000, "complete logins measured per run")
	flag.IntVar(&s.requests, "requests", 20000, "logged-in GET /profile requests measured per run")
	flag.IntVar(&s.rounds, "rounds", 5, "rounds; each runs both flavours, the order alternating")
	flag.IntVar(&s.concurrency, "concurrency", 20, "logins or requests in flight at once")
	flag.IntVar(&s.warmLogins, "warmup-logins", 20, "logins before measuring, per run")
	flag.IntVar(&s.warmRequests, "warmup-requests", 200, "requests before measuring, per run")
	flag.StringVar(&s.profileDir, "profile", "", "also run one round of each flavour with the site's CPU profile on, and save the profiles in this directory")
	flag.Parse()
	switch {
	case flag.NArg() > 0:
		fail(fmt.Errorf("unexpected arguments %q", flag.Args()))
	case s.logins < 1 || s.requests < 1 || s.rounds < 1 || s.concurrency < 1:
		fail(errors.New("-logins, -requests, -rounds and -concurrency must be at least 1"))
	case s.warmLogins < 1 || s.warmRequests < 0:
		fail(errors.New("-warmup-logins must be at least 1 and -warmup-requests at least 0"))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, s)
	stop()
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

func run(ctx context.Context, s settings) error {
	bin, err := os.MkdirTemp("", "vippslogin-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(bin)
	if s.profileDir != "" {
		if err := os.MkdirAll(s.profileDir, 0o755); err != nil {
			return err
		}
		if s.profileDir, err = filepath.Abs(s.profileDir); err != nil {
			return err
		}
	}

	fmt.Fprintln(os.Stderr, "building the provider and the site ...")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin+string(filepath.Separator),
		"github.com/vippslogin/vippslogin/bench/cmd/provider",
		"github.com/vippslogin/vippslogin/bench/cmd/rp")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("go build (run this from the repository, e.g. go run ./bench at its root): %w", err)
	}

	prov, err := startProvider(ctx, filepath.Join(bin, "provider"))
	if err != nil {
		return err
	}
	defer prov.close()

	rpPath := filepath.Join(bin, "rp")
	var results [][2]result // per round: vippslogin, handwritten
	var info usage.Usage
	for round := 1; round <= s.rounds; round++ {
		order := []string{vl, hw}
		if round%2 == 0 {
			order = []string{hw, vl}
		}
		var pair [2]result
		for _, impl := range order {
			fmt.Fprintf(os.Stderr, "round %d/%d: %s ...", round, s.rounds, impl)
			r, err := measure(ctx, s, prov, rpPath, impl, "")
			if err != nil {
				fmt.Fprintln(os.Stderr)
				return fmt.Errorf("round %d, %s: %w", round, impl, err)
			}
			fmt.Fprintf(os.Stderr, " %.0f µs/login (%.0f system, %.0f allocations, %.1f kB, %.1f context switches), %.1f µs/request (%.1f system, %.0f allocations), %.1f MiB\n",
				r.loginCPU, r.loginSys, r.loginAllocs, r.loginAllocKB, r.loginSwitches, r.requestCPU, r.requestSys, r.requestAllocs, r.peakRSS)
			info = r.info
			pair[slices.Index([]string{vl, hw}, impl)] = r
		}
		pair[0].first = order[0] == vl
		results = append(results, pair)
	}

	report(os.Stdout, s, info, results)

	if s.profileDir != "" {
		for _, impl := range []string{vl, hw} {
			path := filepath.Join(s.profileDir, impl)
			fmt.Fprintf(os.Stderr, "profiling round: %s ...\n", impl)
			if _, err := measure(ctx, s, prov, rpPath, impl, path); err != nil {
				return fmt.Errorf("profiling round, %s: %w", impl, err)
			}
		}
		fmt.Printf("\nCPU and heap profiles of one more run of each site (not in the table above):\n")
		for _, impl := range []string{vl, hw} {
			fmt.Printf("  go tool pprof -top -nodecount=40 %s\n", filepath.Join(s.profileDir, impl+".pprof"))
		}
		for _, impl := range []string{vl, hw} {
			fmt.Printf("  go tool pprof -top -sample_index=inuse_space %s\n", filepath.Join(s.profileDir, impl+".heap.pprof"))
		}
	}
	return nil
}

// result is what one run of one flavour measured.
type result struct {
	loginCPU, requestCPU float64 // µs of the site's CPU per login, per request
	loginSys, requestSys float64 // of which system time
	loginAllocs          float64 // heap allocations per login
	loginAllocKB         float64 // KB allocated on the heap per login
	loginSwitches        float64 // context switches per login
	requestAllocs        float64 // heap allocations per request
	peakRSS              float64 // MiB
	loginRate, reqRate   float64 // per second of wall time
	first                bool    // (vippslogin's result only) it ran first in its round
	info                 usage.Usage
}

// report writes the table.
func report(w io.Writer, s settings, info usage.Usage, results [][2]result) {
	fmt.Fprintf(w, "\nRelying-party cost: vippslogin vs hand-written go-oidc + x/oauth2 + scs\n")
	fmt.Fprintf(w, "per run: %d logins, then %d logged-in GET /profile, %d in flight, after %d warm-up logins and %d requests\n",
		s.logins, s.requests, s.concurrency, s.warmLogins, s.warmRequests)
	fmt.Fprintf(w, "%d round(s), each a fresh process of each site, the order alternating\n", s.rounds)
	fmt.Fprintf(w, "site: %s %s/%s, GOMAXPROCS %d; machine: %d CPUs, shared with the mock provider and this driver (separate processes, not counted)\n",
		info.GoVersion, runtime.GOOS, runtime.GOARCH, info.GOMAXPROCS, runtime.NumCPU())
	fmt.Fprintf(w, "CPU = the site process's user + system time (getrusage) over the phase, divided by its logins or requests\n\n")

	const (
		head = "%-6s %-12s %-5s %12s %14s %12s %9s %10s\n"
		row  = "%-6s %-12s %-5s %12.0f %14.2f %12.1f %9.0f %10.0f\n"
		rrow = "%-6s %-12s %-5s %12.2f %14.2f %12.2f\n"
	)
	fmt.Fprintf(w, head, "round", "site", "first", "CPU/login µs", "CPU/request µs", "peak RSS MiB", "logins/s", "requests/s")
	var ratios [3][]float64
	var per [2][5][]float64
	for i, pair := range results {
		round := fmt.Sprint(i + 1)
		for j, impl := range []string{vl, hw} {
			r := pair[j]
			first := pair[0].first == (j == 0)
			fmt.Fprintf(w, row, round, impl, yes(first), r.loginCPU, r.requestCPU, r.peakRSS, r.loginRate, r.reqRate)
			for k, v := range []float64{r.loginCPU, r.requestCPU, r.peakRSS, r.loginRate, r.reqRate} {
				per[j][k] = append(per[j][k], v)
			}
		}
		a, b := pair[0], pair[1]
		rs := [3]float64{a.loginCPU / b.loginCPU, a.requestCPU / b.requestCPU, a.peakRSS / b.peakRSS}
		fmt.Fprintf(w, rrow, round, "vl/hw", "", rs[0], rs[1], rs[2])
		for k := range rs {
			ratios[k] = append(ratios[k], rs[k])
		}
	}
	fmt.Fprintln(w)
	for j, impl := range []string{vl, hw} {
		fmt.Fprintf(w, row, "median", impl, "", median(per[j][0]), median(per[j][1]), median(per[j][2]), median(per[j][3]), median(per[j][4]))
	}
	fmt.Fprintf(w, rrow, "median", "of ratios", "", median(ratios[0]), median(ratios[1]), median(ratios[2]))
	fmt.Fprintf(w, "\nlogins/s and requests/s are wall-clock rates, bounded by the provider and the driver on the same CPUs;\n")
	fmt.Fprintf(w, "they are for orientation only. Ratios above 1 mean vippslogin costs more.\n")
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return ""
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

// provider is the running mock provider.
type provider struct {
	cmd                      *exec.Cmd
	in                       io.WriteCloser
	out                      *bufio.Scanner
	issuer, clientID, secret string
}

// startProvider starts the provider and reads its issuer and credentials.
func startProvider(ctx context.Context, path string) (*provider, error) {
	cmd := exec.CommandContext(ctx, path)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the provider: %w", err)
	}
	p := &provider{cmd: cmd, in: in, out: bufio.NewScanner(stdout)}
	for p.out.Scan() {
		k, v, _ := strings.Cut(p.out.Text(), " ")
		switch k {
		case "issuer":
			p.issuer = v
		case "client_id":
			p.clientID = v
		case "client_secret":
			p.secret = v
		case "ready":
			if p.issuer == "" || p.clientID == "" || p.secret == "" {
				p.close()
				return nil, errors.New("the provider did not say its issuer, client id and secret")
			}
			return p, nil
		}
	}
	p.close()
	return nil, fmt.Errorf("the provider stopped before it was ready: %v", p.out.Err())
}

// addRedirectURI registers uri at the provider.
func (p *provider) addRedirectURI(uri string) error {
	if _, err := fmt.Fprintf(p.in, "redirect %s\n", uri); err != nil {
		return fmt.Errorf("tell the provider the redirect URI: %w", err)
	}
	if !p.out.Scan() {
		return fmt.Errorf("the provider stopped: %v", p.out.Err())
	}
	if got := p.out.Text(); got != "ok "+uri {
		return fmt.Errorf("the provider answered %q to redirect %s", got, uri)
	}
	return nil
}

// close ends the provider: end of its standard input stops it.
func (p *provider) close() {
	p.in.Close()
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

// site is a running relying party.
type site struct {
	cmd         *exec.Cmd
	base        string
	redirectURI string
	client      *http.Client // without a cookie jar, for /debug
	transport   *http.Transport
	exited      chan struct{}
	exitErr     error
}

// startSite starts the site's flavour impl, with its CPU and heap profiles
// written to profile+".pprof" and profile+".heap.pprof" unless profile is
// "", and registers its redirect URI.
func startSite(ctx context.Context, path, impl, profile string, prov *provider, concurrency int) (*site, error) {
	args := []string{"-impl", impl}
	if profile != "" {
		args = append(args, "-cpuprofile", profile+".pprof", "-memprofile", profile+".heap.pprof")
	}
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(),
		"VIPPS_ISSUER="+prov.issuer,
		"VIPPS_CLIENT_ID="+prov.clientID,
		"VIPPS_CLIENT_SECRET="+prov.secret)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the site: %w", err)
	}
	transport := &http.Transport{
		MaxIdleConns:        4 * concurrency,
		MaxIdleConnsPerHost: 2 * concurrency,
		IdleConnTimeout:     time.Minute,
	}
	s := &site{
		cmd:       cmd,
		transport: transport,
		client:    &http.Client{Transport: transport, Timeout: 30 * time.Second},
		exited:    make(chan struct{}),
	}

	lines := make(chan string)
	read := make(chan struct{}) // closed when the first lines are read
	defer close(read)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-read: // later lines are not for us
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		s.exitErr = cmd.Wait()
		close(s.exited)
	}()
	timeout := time.After(30 * time.Second)
	for s.base == "" || s.redirectURI == "" {
		select {
		case line := <-lines:
			k, v, _ := strings.Cut(line, " ")
			switch k {
			case "listening":
				s.base = v
			case "redirect_uri":
				s.redirectURI = v
			}
		case <-s.exited:
			return nil, fmt.Errorf("the site exited before it listened: %v", s.exitErr)
		case <-timeout:
			s.kill()
			return nil, errors.New("the site did not say where it listens within 30 s")
		case <-ctx.Done():
			s.kill()
			return nil, ctx.Err()
		}
	}
	if err := prov.addRedirectURI(s.redirectURI); err != nil {
		s.kill()
		return nil, err
	}
	return s, nil
}

// usage asks the site for its CPU time and peak RSS.
func (s *site) usage(ctx context.Context) (usage.Usage, error) {
	var u usage.Usage
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/debug/usage", nil)
	if err != nil {
		return u, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return u, fmt.Errorf("GET /debug/usage: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return u, fmt.Errorf("GET /debug/usage: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&u); err != nil {
		return u, fmt.Errorf("GET /debug/usage: %w", err)
	}
	return u, nil
}

// stop ends the site: with GET /debug/stop when it writes a profile (so
// that the profile is complete before it exits), else with SIGTERM.
func (s *site) stop(ctx context.Context, viaDebugStop bool) error {
	defer s.transport.CloseIdleConnections()
	if viaDebugStop {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/debug/stop", nil)
		if err != nil {
			return err
		}
		resp, err := s.client.Do(req)
		if err != nil {
			s.kill()
			return fmt.Errorf("GET /debug/stop: %w", err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			s.kill()
			return fmt.Errorf("GET /debug/stop: %s", resp.Status)
		}
	} else {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-s.exited:
		return s.exitErr
	case <-time.After(10 * time.Second):
		s.kill()
		return errors.New("the site did not exit within 10 s")
	}
}

// kill ends the site at once and waits for it.
func (s *site) kill() {
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// measure runs one flavour once: start, warm up, measure, stop.
func measure(ctx context.Context, s settings, prov *provider, rpPath, impl, profile string) (result, error) {
	st, err := startSite(ctx, rpPath, impl, profile, prov, s.concurrency)
	if err != nil {
		return result{}, err
	}
	ok := false
	defer func() {
		if !ok {
			st.kill()
		}
	}()

	warm, err := st.logins(ctx, s.warmLogins, s.concurrency)
	if err != nil {
		return result{}, fmt.Errorf("warm-up: %w", err)
	}
	if err := st.requests(ctx, warm, s.warmRequests, s.concurrency); err != nil {
		return result{}, fmt.Errorf("warm-up: %w", err)
	}

	u0, err := st.usage(ctx)
	if err != nil {
		return result{}, err
	}
	t0 := time.Now()
	browsers, err := st.logins(ctx, s.logins, s.concurrency)
	if err != nil {
		return result{}, err
	}
	t1 := time.Now()
	u1, err := st.usage(ctx)
	if err != nil {
		return result{}, err
	}
	if err := st.requests(ctx, browsers, s.requests, s.concurrency); err != nil {
		return result{}, err
	}
	t2 := time.Now()
	u2, err := st.usage(ctx)
	if err != nil {
		return result{}, err
	}
	ok = true
	if err := st.stop(ctx, profile != ""); err != nil {
		return result{}, fmt.Errorf("stop the site: %w", err)
	}
	if u2.Impl != impl {
		return result{}, fmt.Errorf("the site says it is %q", u2.Impl)
	}
	return result{
		loginCPU:      float64((u1.CPU() - u0.CPU()).Microseconds()) / float64(s.logins),
		loginSys:      float64(u1.SysNanos-u0.SysNanos) / 1e3 / float64(s.logins),
		loginAllocs:   float64(u1.HeapAllocs-u0.HeapAllocs) / float64(s.logins),
		loginAllocKB:  float64(u1.HeapAllocBytes-u0.HeapAllocBytes) / 1e3 / float64(s.logins),
		loginSwitches: float64(u1.VoluntarySwitches+u1.InvoluntarySwitches-u0.VoluntarySwitches-u0.InvoluntarySwitches) / float64(s.logins),
		requestAllocs: float64(u2.HeapAllocs-u1.HeapAllocs) / float64(s.requests),
		requestSys:    float64(u2.SysNanos-u1.SysNanos) / 1e3 / float64(s.requests),
		requestCPU:    float64((u2.CPU() - u1.CPU()).Nanoseconds()) / 1e3 / float64(s.requests),
		peakRSS:       float64(u2.MaxRSSKiB) / 1024,
		loginRate:     float64(s.logins) / t1.Sub(t0).Seconds(),
		reqRate:       float64(s.requests) / t2.Sub(t1).Seconds(),
		info:          u2,
	}, nil
}

// browser is a simulated browser: a cookie jar of its own, the site's
// shared connection pool, and no following of redirects, so that each
// step of a login is checked.
type browser struct {
	client *http.Client
}

func (s *site) newBrowser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{client: &http.Client{
		Transport: s.transport,
		Jar:       jar,
		Timeout:   30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}}
}

// get sends GET url with Accept: accept and returns the response with its
// body read.
func (b *browser) get(ctx context.Context, u, accept string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", accept)
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

const acceptHTML = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

// stepError is a failed step of a login or request.
type stepError struct {
	step   string
	status string
	detail string
}

func (e *stepError) Error() string {
	msg := "failed at " + e.step
	if e.status != "" {
		msg += ": status " + e.status
	}
	if e.detail != "" {
		msg += ": " + e.detail
	}
	return msg
}

func stepFail(step string, resp *http.Response, body []byte, detail string) error {
	e := &stepError{step: step, detail: detail}
	if resp != nil {
		e.status = resp.Status
		if loc := resp.Header.Get("Location"); loc != "" {
			e.detail = strings.TrimPrefix(e.detail+"; Location: "+loc, "; ")
		}
		b := strings.TrimSpace(string(body))
		if _, t, ok := strings.Cut(b, "<title>"); ok { // an HTML page: its title says it
			t, _, _ = strings.Cut(t, "</title>")
			b = "page titled " + html.UnescapeString(t)
		}
		if b != "" {
			if len(b) > 300 {
				b = b[:300] + "..."
			}
			e.detail = strings.TrimPrefix(e.detail+"; body: "+b, "; ")
		}
	}
	return e
}

// redirected checks that resp is a redirect and returns its target.
func redirected(step string, resp *http.Response, body []byte) (*url.URL, error) {
	switch resp.StatusCode {
	case http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect:
	default:
		return nil, stepFail(step, resp, body, "want a redirect")
	}
	loc, err := resp.Location()
	if err != nil {
		return nil, stepFail(step, resp, body, err.Error())
	}
	return loc, nil
}

// login logs b in and checks each step.
func (s *site) login(ctx context.Context, b *browser) error {
	step := "GET /auth/login"
	resp, body, err := b.get(ctx, s.base+"/auth/login?return_to=%2Fprofile", acceptHTML)
	if err != nil {
		return stepFail(step, nil, nil, err.Error())
	}
	authorize, err := redirected(step, resp, body)
	if err != nil {
		return err
	}

	step = "GET provider authorize " + authorize.Path
	resp, body, err = b.get(ctx, authorize.String(), acceptHTML)
	if err != nil {
		return stepFail(step, nil, nil, err.Error())
	}
	callback, err := redirected(step, resp, body)
	if err != nil {
		return err
	}
	if e := callback.Query().Get("error"); e != "" {
		return stepFail(step, resp, body, "the provider refused: "+e)
	}
	if !strings.HasPrefix(callback.String(), s.redirectURI+"?") {
		return stepFail(step, resp, body, "not a redirect to "+s.redirectURI)
	}

	step = "GET /auth/callback"
	resp, body, err = b.get(ctx, callback.String(), acceptHTML)
	if err != nil {
		return stepFail(step, nil, nil, err.Error())
	}
	profile, err := redirected(step, resp, body)
	if err != nil {
		return err
	}
	if profile.String() != s.base+"/profile" {
		return stepFail(step, resp, body, "not a redirect to /profile")
	}

	return s.profile(ctx, b, "GET /profile after the login")
}

// profile fetches /profile as b and checks that it names a user.
func (s *site) profile(ctx context.Context, b *browser, step string) error {
	resp, body, err := b.get(ctx, s.base+"/profile", "application/json")
	if err != nil {
		return stepFail(step, nil, nil, err.Error())
	}
	if resp.StatusCode != http.StatusOK {
		return stepFail(step, resp, body, "")
	}
	var claims struct {
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal(body, &claims); err != nil || claims.Sub == "" {
		return stepFail(step, resp, body, "want JSON claims with sub")
	}
	return nil
}

// logins runs n logins, each in a new browser, concurrency at a time, and
// returns the logged-in browsers. The first failure stops them all.
func (s *site) logins(ctx context.Context, n, concurrency int) ([]*browser, error) {
	browsers := make([]*browser, n)
	err := parallel(ctx, n, concurrency, func(ctx context.Context, i int) error {
		b := s.newBrowser()
		if err := s.login(ctx, b); err != nil {
			return fmt.Errorf("login %d of %d %w", i+1, n, err)
		}
		browsers[i] = b
		return nil
	})
	return browsers, err
}

// requests sends n GET /profile by the browsers in turn, concurrency at a
// time.
func (s *site) requests(ctx context.Context, browsers []*browser, n, concurrency int) error {
	return parallel(ctx, n, concurrency, func(ctx context.Context, i int) error {
		if err := s.profile(ctx, browsers[i%len(browsers)], "GET /profile"); err != nil {
			return fmt.Errorf("request %d of %d %w", i+1, n, err)
		}
		return nil
	})
}

// parallel calls f for 0 to n-1 on concurrency goroutines, and returns the
// first error, after which no more calls start.
func parallel(ctx context.Context, n, concurrency int, f func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(concurrency, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := f(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}
