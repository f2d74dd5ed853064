// Command rp is the relying party of the benchmark in package bench: a small
// site with "Log in with Vipps MobilePay", built in one of two ways that
// -impl selects:
//
//	-impl vippslogin   with this module's package vippslogin
//	-impl handwritten  by hand, with github.com/coreos/go-oidc/v3,
//	                   golang.org/x/oauth2 and github.com/alexedwards/scs/v2
//
// Both serve the same routes with the same scopes (openid name email
// phoneNumber) and keep sessions in scs's memory store:
//
//	GET /auth/login     starts a login (302 to the provider)
//	GET /auth/callback  finishes it, then 303 to /profile
//	GET /profile        the logged-in user's claims as JSON; 401 otherwise
//	GET /debug/usage    the process's CPU time and peak RSS, as JSON
//	GET /debug/stop     writes the CPU profile (-cpuprofile) and exits
//
// Neither has the mock provider compiled in: the issuer and the client's
// credentials come from flags or from VIPPS_ISSUER, VIPPS_CLIENT_ID and
// VIPPS_CLIENT_SECRET. On start it writes two lines to standard output,
//
//	listening <base URL>
//	redirect_uri <URI to register at the provider>
//
// and it serves until SIGINT, SIGTERM or GET /debug/stop. The /debug routes
// are for the benchmark and have no place on a real site.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"
)

// scopes are the scopes both flavours ask for.
var scopes = []string{"openid", "name", "email", "phoneNumber"}

// options are the settings of a site.
type options struct {
	BaseURL      string
	Issuer       string
	ClientID     string
	ClientSecret string
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "rp:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		impl       = flag.String("impl", "", "vippslogin or handwritten")
		addr       = flag.String("addr", "127.0.0.1:0", "listen address")
		baseURL    = flag.String("base-url", "", "public base URL (default http:// and the listener's address)")
		issuer     = flag.String("issuer", os.Getenv("VIPPS_ISSUER"), "issuer URL (default $VIPPS_ISSUER)")
		clientID   = flag.String("client-id", os.Getenv("VIPPS_CLIENT_ID"), "client id (default $VIPPS_CLIENT_ID)")
		secret     = flag.String("client-secret", os.Getenv("VIPPS_CLIENT_SECRET"), "client secret (default $VIPPS_CLIENT_SECRET)")
		cpuprofile = flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file on SIGINT, SIGTERM or GET /debug/stop")
		memprofile = flag.String("memprofile", "", "write a heap profile to this file on SIGINT, SIGTERM or GET /debug/stop")
	)
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	if *issuer == "" || *clientID == "" || *secret == "" {
		return errors.New("-issuer, -client-id and -client-secret (or VIPPS_ISSUER, VIPPS_CLIENT_ID and VIPPS_CLIENT_SECRET) are required")
	}

	prof, err := startProfile(*cpuprofile, *memprofile)
	if err != nil {
		return err
	}
	defer prof.stop()

	// Both flavours call the provider with http.DefaultTransport. Its pool
	// keeps 2 idle connections per host, which under 20 logins at once
	// makes most calls dial anew; a site with that load would keep more.
	// This is the same for both, and keeps the measure on the login code.
	http.DefaultTransport.(*http.Transport).MaxIdleConnsPerHost = 64

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	opts := options{
		BaseURL:      strings.TrimSuffix(*baseURL, "/"),
		Issuer:       *issuer,
		ClientID:     *clientID,
		ClientSecret: *secret,
	}
	if opts.BaseURL == "" {
		opts.BaseURL = "http://" + ln.Addr().String()
	}

	var (
		site        http.Handler
		redirectURI string
	)
	switch *impl {
	case "vippslogin":
		site, redirectURI, err = newVippsloginSite(opts)
	case "handwritten":
		site, redirectURI, err = newHandwrittenSite(opts)
	default:
		return fmt.Errorf("-impl %q: want vippslogin or handwritten", *impl)
	}
	if err != nil {
		return err
	}

	stop := make(chan struct{})
	var stopOnce sync.Once
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/usage", func(w http.ResponseWriter, r *http.Request) {
		u, err := getUsage()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		u.Impl = *impl
		u.HeapAllocs, u.HeapAllocBytes = heapAllocs()
		u.GoVersion = runtime.Version()
		u.GOMAXPROCS = runtime.GOMAXPROCS(0)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(u)
	})
	mux.HandleFunc("GET /debug/stop", func(w http.ResponseWriter, r *http.Request) {
		if err := prof.stop(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = fmt.Fprintln(w, "stopping")
		stopOnce.Do(func() { close(stop) })
	})
	mux.Handle("/", site) // everything else is the site, inside its session middleware

	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Printf("listening %s\nredirect_uri %s\n", opts.BaseURL, redirectURI)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	select {
	case err := <-served:
		return err
	case <-sig:
	case <-stop:
	}
	signal.Stop(sig)
	if err := prof.stop(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(ctx)
}

// heapAllocs returns how many objects and bytes the process has allocated.
func heapAllocs() (objects, bytes uint64) {
	m := []metrics.Sample{{Name: "/gc/heap/allocs:objects"}, {Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(m)
	return m[0].Value.Uint64(), m[1].Value.Uint64()
}

// profile is a CPU profile being written to a file and a heap profile to
// write at the end, or nothing.
type profile struct {
	mu      sync.Mutex
	f       *os.File
	mempath string
	done    bool
	err     error
}

// startProfile starts a CPU profile into path, and notes where stop is to
// write a heap profile; with "" for either it does not write that one.
func startProfile(path, mempath string) (*profile, error) {
	p := &profile{mempath: mempath}
	if path == "" {
		return p, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	p.f = f
	return p, nil
}

// stop ends the CPU profile, closes its file and writes the heap profile;
// later calls return the first call's result.
func (p *profile) stop() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return p.err
	}
	p.done = true
	if p.f != nil {
		pprof.StopCPUProfile()
		p.err = p.f.Close()
	}
	if p.mempath != "" && p.err == nil {
		p.err = writeHeapProfile(p.mempath)
	}
	return p.err
}

// writeHeapProfile writes what is live on the heap after a collection.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
