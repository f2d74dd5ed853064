package vippslogin

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func TestReadAccessToken(t *testing.T) {
	now := time.Unix(1495184574, 0)
	tests := []struct {
		name string
		ct   string
		body string
		want time.Duration // from now; 0 for a refusal
	}{
		// access-token-api/README.md, "Get an access token", the sample
		// response: every field a string.
		{"accesstoken/get", "application/json;charset=UTF-8", `{"token_type":"Bearer","expires_in":"86398","ext_expires_in":"0",
			"expires_on":"1495271273","not_before":"1495184574","resource":"00000002-0000-0000-c000-000000000000",
			"access_token":"eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1Ni.e30.c2ln"}`, 86398 * time.Second},
		// access-token-api/README.md, "Token endpoint": expires_in a number.
		{"miami/v1/token", "application/json", `{"access_token":"abc.def","token_type":"Bearer","expires_in":900}`, 900 * time.Second},
		{"expires_on only", "", `{"access_token":"abc","token_type":"bearer","expires_on":"1495185574"}`, 1000 * time.Second},
		{"expires_in wins over expires_on", "", `{"access_token":"abc","token_type":"Bearer","expires_in":"60","expires_on":"1495185574"}`, time.Minute},
		{"no expiry", "", `{"access_token":"abc","token_type":"Bearer"}`, 0},
		{"expires_in zero", "", `{"access_token":"abc","token_type":"Bearer","expires_in":"0"}`, 0},
		{"expires_in negative", "", `{"access_token":"abc","token_type":"Bearer","expires_in":-5}`, 0},
		{"expires_in a fraction", "", `{"access_token":"abc","token_type":"Bearer","expires_in":900.5}`, 0},
		{"expires_in an exponent", "", `{"access_token":"abc","token_type":"Bearer","expires_in":9e2}`, 0},
		{"expires_in words", "", `{"access_token":"abc","token_type":"Bearer","expires_in":"a day"}`, 0},
		{"expires_in beyond ten years", "", `{"access_token":"abc","token_type":"Bearer","expires_in":"999999999999"}`, 0},
		{"expires_on past", "", `{"access_token":"abc","token_type":"Bearer","expires_on":"1495184000"}`, 0},
		{"token_type mac", "", `{"access_token":"abc","token_type":"mac","expires_in":"60"}`, 0},
		{"no token_type", "", `{"access_token":"abc","expires_in":"60"}`, 0},
		{"no access_token", "", `{"token_type":"Bearer","expires_in":"60"}`, 0},
		{"access_token with a space", "", `{"access_token":"a b","token_type":"Bearer","expires_in":"60"}`, 0},
		{"access_token with a line break", "", `{"access_token":"a\r\nX: y","token_type":"Bearer","expires_in":"60"}`, 0},
		{"an HTML page", "text/html", `<html>maintenance</html>`, 0},
		{"not JSON", "application/json", `{"access_token":`, 0},
		{"too large", "", `{"access_token":"` + strings.Repeat("a", maxAccessTokenAnswer) + `","token_type":"Bearer","expires_in":"60"}`, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := &http.Response{Header: http.Header{}, Body: io.NopCloser(strings.NewReader(tc.body))}
			if tc.ct != "" {
				resp.Header.Set("Content-Type", tc.ct)
			}
			tok, expires, err := readAccessToken(resp, now)
			switch {
			case tc.want == 0 && err == nil:
				t.Errorf("accepted, expiring in %v", expires.Sub(now))
			case tc.want == 0:
				if tok != "" || strings.Contains(err.Error(), "abc") {
					t.Errorf("refusal %q shows the token", err)
				}
			case err != nil:
				t.Errorf("refused: %v", err)
			case expires.Sub(now) != tc.want:
				t.Errorf("expires in %v, want %v", expires.Sub(now), tc.want)
			}
		})
	}
}

// fakeFetch is an access token API whose answers wait for release.
type fakeFetch struct {
	calls   atomic.Int32
	release chan struct{}
	life    time.Duration
	err     error
}

func (f *fakeFetch) fetch(ctx context.Context, now time.Time) (string, time.Time, error) {
	n := f.calls.Add(1)
	select {
	case <-f.release:
	case <-ctx.Done():
		return "", time.Time{}, ctx.Err()
	}
	if f.err != nil {
		return "", time.Time{}, f.err
	}
	return "token-" + string(rune('0'+n)), now.Add(f.life), nil
}

func newFakeAuth(f *fakeFetch) *partnerAuth {
	return &partnerAuth{fetch: f.fetch, now: time.Now, timeout: 10 * time.Second}
}

// Callers that need a token while one is being fetched wait for that
// fetch: the API is asked once, whatever the number of callers.
func TestPartnerAuthFetchesOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeFetch{release: make(chan struct{}), life: time.Hour}
		a := newFakeAuth(f)
		var wg sync.WaitGroup
		got := make([]string, 50)
		for i := range got {
			wg.Go(func() {
				tok, err := a.token(t.Context())
				if err != nil {
					t.Error(err)
				}
				got[i] = tok
			})
		}
		synctest.Wait() // every caller waits
		if n := f.calls.Load(); n != 1 {
			t.Fatalf("%d fetches under way for 50 callers, want 1", n)
		}
		close(f.release)
		wg.Wait()
		for i, tok := range got {
			if tok != "token-1" {
				t.Fatalf("caller %d got %q", i, tok)
			}
		}

		// A 401 on a stale token does not drop the fresh one.
		time.Sleep(youngToken) // a token is not discarded in its first minute
		a.forget("token-1")
		if tok, _ := a.token(t.Context()); tok != "token-2" {
			t.Fatalf("after forget: %q, want a new token", tok)
		}
		a.forget("token-1")
		if tok, _ := a.token(t.Context()); tok != "token-2" || f.calls.Load() != 2 {
			t.Fatalf("forgetting a stale token: %q after %d fetches", tok, f.calls.Load())
		}
	})
}

// The token is renewed a minute before it expires, or a tenth of its
// lifetime before when that is less.
func TestPartnerAuthRenewal(t *testing.T) {
	for _, tc := range []struct {
		life, renewAfter time.Duration
	}{
		{24 * time.Hour, 24*time.Hour - time.Minute},
		{15 * time.Minute, 14 * time.Minute},
		{5 * time.Minute, 4*time.Minute + 30*time.Second},
		{10 * time.Second, 9 * time.Second},
	} {
		synctest.Test(t, func(t *testing.T) {
			f := &fakeFetch{release: make(chan struct{}), life: tc.life}
			close(f.release)
			a := newFakeAuth(f)
			_, _ = a.token(t.Context())
			time.Sleep(tc.renewAfter - time.Millisecond)
			_, _ = a.token(t.Context())
			if n := f.calls.Load(); n != 1 {
				t.Errorf("lifetime %v: renewed before %v", tc.life, tc.renewAfter)
			}
			time.Sleep(time.Millisecond)
			_, _ = a.token(t.Context())
			if n := f.calls.Load(); n != 2 {
				t.Errorf("lifetime %v: not renewed at %v", tc.life, tc.renewAfter)
			}
		})
	}
}

// A caller that gives up stops waiting; the fetch goes on for the others,
// and a failed fetch is not cached.
func TestPartnerAuthCallerGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeFetch{release: make(chan struct{}), life: time.Hour, err: errors.New("refused")}
		a := newFakeAuth(f)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			_, err := a.token(ctx)
			done <- err
		}()
		synctest.Wait()
		cancel()
		if err := <-done; !errors.Is(err, &Error{Err: ErrProviderUnavailable, Reason: endpointAccessToken}) || !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled caller: %v", err)
		}
		close(f.release)
		synctest.Wait() // the first fetch has failed
		if _, err := a.token(t.Context()); err == nil || f.calls.Load() != 1 {
			t.Errorf("right after a failed fetch: err %v, %d fetches; want the failure again, no new fetch", err, f.calls.Load())
		}
		time.Sleep(fetchBackoff)
		if _, err := a.token(t.Context()); err == nil || f.calls.Load() != 2 {
			t.Errorf("after the back-off: err %v, %d fetches; want a new fetch", err, f.calls.Load())
		}
	})
}

// The partner's access token is put on the requests the Client makes, and
// never on one a redirect made: Go's client would have dropped the
// Authorization header there, and the transport must not put it back.
func TestPartnerTransportRefusesRedirects(t *testing.T) {
	var sent int
	base := roundTripFunc(func(*http.Request) (*http.Response, error) {
		sent++
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody}, nil
	})
	f := &fakeFetch{life: time.Hour, release: make(chan struct{})}
	close(f.release)
	tr := &partnerTransport{auth: newFakeAuth(f), base: base}
	req := httptest.NewRequest(http.MethodPost, "https://api.vipps.no/access-management-1.0/access/oauth2/token", nil)
	if _, err := tr.RoundTrip(req); err != nil || sent != 1 {
		t.Fatalf("the Client's own request: %v, sent %d", err, sent)
	}
	redirected := httptest.NewRequest(http.MethodGet, "https://elsewhere.example/", nil)
	redirected.Response = &http.Response{StatusCode: http.StatusTemporaryRedirect}
	if _, err := tr.RoundTrip(redirected); err == nil || sent != 1 {
		t.Fatalf("a redirected request: %v, sent %d; want it refused", err, sent)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
