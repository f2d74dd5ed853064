// Package testsvc finds the real services some tests need, a Redis server
// and a Chromium binary, and applies the project's rule for a missing one:
// run by hand, the test is skipped with a message saying how to provide it;
// under CI=true it fails, so that a green CI run means the test really ran.
package testsvc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func init() {
	// go-redis logs each failed dial; the tests that stop Redis on purpose
	// check the errors themselves.
	redis.SetLogger(quiet{})
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// InCI reports whether the tests run in CI (CI=true), where a missing
// service is a failure.
func InCI() bool {
	v, _ := strconv.ParseBool(os.Getenv("CI"))
	return v
}

// Missing stops the test because a service it needs is not there: it
// fails under CI=true and is skipped otherwise, and counted for Main's
// report.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("CI=true and a service this test needs is missing: %s", msg)
	}
	skipped.add(msg)
	t.Skipf("skipped: %s", msg)
}

// skipped counts the tests Missing skipped, by its message.
var skipped skips

type skips struct {
	mu    sync.Mutex
	count map[string]int
	order []string // the messages, in the order of their first skip
}

func (s *skips) add(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.count == nil {
		s.count = make(map[string]int)
	}
	if s.count[msg] == 0 {
		s.order = append(s.order, msg)
	}
	s.count[msg]++
}

// report returns a line per message: pkg, how many tests were skipped,
// and why.
func (s *skips) report(pkg string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for _, msg := range s.order {
		tests := "tests"
		if s.count[msg] == 1 {
			tests = "test"
		}
		fmt.Fprintf(&b, "%s: skipped %d %s: %s\n", pkg, s.count[msg], tests, msg)
	}
	return b.String()
}

// Main runs the tests of a package whose tests use the services; call it
// from the package's TestMain as os.Exit(testsvc.Main(m)). Afterwards it
// says, one line per missing service, how many tests Missing skipped and
// why: without -v, go test shows nothing of a package that passes, neither
// its skip messages nor what it writes to its standard error. So the lines
// go to the terminal (/dev/tty), when the tests run in one, and else to the
// standard error, which go test shows in a package's directory, with -v,
// and when the package fails.
func Main(m *testing.M) int {
	code := m.Run()
	if report := skipped.report(packageName()); report != "" {
		out := io.Writer(os.Stderr)
		if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
			defer tty.Close()
			out = tty
		}
		_, _ = io.WriteString(out, report)
	}
	return code
}

// packageName is the test binary's package, without the module's host and
// owner: vippslogin, vippslogin/examples/basic.
func packageName() string {
	name := "vippslogin"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Path != "" {
		name = strings.TrimSuffix(bi.Path, ".test")
	}
	return strings.TrimPrefix(name, "github.com/vippslogin/")
}

// SoakEnv names the switch of the soak and volume tests, which take long
// or much memory: they run only when it is 1. .ci/run sets it.
const SoakEnv = "VIPPSLOGIN_SOAK"

// Soak skips a soak or volume test unless VIPPSLOGIN_SOAK=1.
func Soak(t testing.TB) {
	t.Helper()
	if os.Getenv(SoakEnv) != "1" {
		t.Skipf("skipped: a soak test; run it with %s=1 (.ci/run does)", SoakEnv)
	}
}

// RedisAddr returns the address of a running Redis server, $REDIS_ADDR or
// 127.0.0.1:6379, after checking that it answers PING.
func RedisAddr(t testing.TB) string {
	t.Helper()
	addr := os.Getenv("REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	if err := ping(addr, 0); err != nil {
		Missing(t, "no Redis server at %s (%v); start one with `redis-server --port 6379` or set REDIS_ADDR", addr, err)
	}
	return addr
}

// RedisClient returns a client of the Redis server at RedisAddr and a key
// prefix of its own for the test; the test's keys are deleted when it ends.
func RedisClient(t testing.TB) (client *redis.Client, prefix string) {
	t.Helper()
	client = redis.NewClient(&redis.Options{Addr: RedisAddr(t)})
	prefix = "vippslogin-test:" + randomHex(8) + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		iter := client.Scan(ctx, 0, prefix+"*", 100).Iterator()
		for iter.Next(ctx) {
			client.Del(ctx, iter.Val())
		}
		_ = client.Close()
	})
	return client, prefix
}

// Redis is a redis-server process of the test's own, on a loopback port,
// that the test can stop and start again.
type Redis struct {
	t       testing.TB
	bin     string
	dir     string
	persist bool   // keep the data in an append-only file across restarts
	Addr    string // host:port, the same across restarts

	mu  sync.Mutex
	cmd *exec.Cmd
}

// StartRedis starts a private redis-server, with no persistence, which
// is stopped when the test ends.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	return startRedis(t, false)
}

// StartPersistentRedis is StartRedis with an append-only file, written
// through on every write, so that what the server holds survives Stop and
// Start.
func StartPersistentRedis(t testing.TB) *Redis {
	t.Helper()
	return startRedis(t, true)
}

func startRedis(t testing.TB, persist bool) *Redis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		Missing(t, "redis-server is not on PATH; install it (apt-get install redis-server)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	r := &Redis{t: t, bin: bin, dir: t.TempDir(), persist: persist, Addr: addr}
	t.Cleanup(r.Stop)
	r.Start()
	return r
}

// Start starts the server (again) and waits until it answers PING.
func (r *Redis) Start() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		return
	}
	_, port, _ := net.SplitHostPort(r.Addr)
	persistence := []string{"--appendonly", "no"}
	if r.persist {
		persistence = []string{"--appendonly", "yes", "--appendfsync", "always"}
	}
	args := append([]string{"--bind", "127.0.0.1", "--port", port, "--save", ""}, persistence...)
	args = append(args, "--dir", r.dir, "--logfile", filepath.Join(r.dir, "redis.log"))
	cmd := exec.Command(r.bin, args...)
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("start redis-server: %v", err)
	}
	r.cmd = cmd
	// A bounded poll of the starting server, against a hang, not a speed
	// limit.
	if err := ping(r.Addr, 30*time.Second); err != nil {
		log, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
		r.t.Fatalf("redis-server on %s did not come up: %v\n%s", r.Addr, err, log)
	}
}

// Stop stops the server. Unless it was started by StartPersistentRedis,
// everything it held is lost.
func (r *Redis) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = r.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = r.cmd.Process.Kill()
		<-done
	}
	r.cmd = nil
}

// ping waits up to wait for the Redis server at addr to answer PING.
func ping(addr string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		err := pingOnce(addr)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func pingOnce(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	buf := make([]byte, 7)
	if _, err := io.ReadFull(conn, buf); err != nil {
		return err
	}
	if string(buf) != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", buf)
	}
	return nil
}

// Chromium returns the path of a Chromium binary: $CHROME_PATH, or the
// first of chromium, chromium-browser and google-chrome on PATH.
func Chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("CHROME_PATH"); p != "" {
		if _, err := os.Stat(p); err != nil {
			Missing(t, "CHROME_PATH=%s: %v", p, err)
		}
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	Missing(t, "no chromium on PATH; install it (apt-get install chromium) or set CHROME_PATH")
	return ""
}

// ChromiumFlags are the command-line switches that make Chromium run
// headless in a sandboxed test machine without reaching for the network.
var ChromiumFlags = []string{
	"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
	"--disable-background-networking", "--disable-component-update", "--disable-sync",
	"--disable-dev-shm-usage", "--lang=en-US",
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(errors.New("testsvc: no randomness: " + err.Error()))
	}
	return hex.EncodeToString(b)
}
