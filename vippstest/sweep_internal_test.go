package vippstest

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

func TestSweep(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	p, err := New(Config{Now: clock, AutoApprove: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	r := httptest.NewRequest(http.MethodGet, authorizePath, nil)
	g := grant{redirectURI: "https://site.example/cb", state: "state-123", scope: "openid"}
	for range minSweep {
		p.approve(httptest.NewRecorder(), r, g)
		p.showConsent(httptest.NewRecorder(), r, g)
	}
	p.mu.Lock()
	for i := range minSweep {
		p.tokens[string(rune('a'+i))] = &accessToken{expires: now.Add(time.Minute)}
	}
	p.mu.Unlock()

	mu.Lock()
	now = now.Add(time.Hour)
	mu.Unlock()
	p.approve(httptest.NewRecorder(), r, g)

	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.codes) != 1 || len(p.pending) != 0 || len(p.tokens) != 0 {
		t.Errorf("after the sweep: %d codes, %d pending, %d tokens; want 1, 0, 0", len(p.codes), len(p.pending), len(p.tokens))
	}
	if p.sweepAt != minSweep {
		t.Errorf("sweepAt = %d, want %d", p.sweepAt, minSweep)
	}
}

func TestNoSweepOfLiveEntries(t *testing.T) {
	p, err := New(Config{AutoApprove: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	r := httptest.NewRequest(http.MethodGet, authorizePath, nil)
	g := grant{redirectURI: "https://site.example/cb", state: "state-123", scope: "openid"}
	for range 2*minSweep + 1 {
		p.approve(httptest.NewRecorder(), r, g)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.codes) != 2*minSweep+1 {
		t.Errorf("%d codes, want %d: live codes were dropped", len(p.codes), 2*minSweep+1)
	}
	if p.sweepAt <= len(p.codes)/2 {
		t.Errorf("sweepAt = %d did not grow with %d live codes", p.sweepAt, len(p.codes))
	}
}
