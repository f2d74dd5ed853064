package vippstest_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vippslogin/vippslogin/vippstest"
)

const webhookSub = "c9d10444-d992-4850-ac60-9d3502095008"

// decodePart decodes one base64url part of a token into a JSON object,
// keeping numbers as json.Number.
func decodePart(t *testing.T, part string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		t.Fatalf("part %q: %v", part, err)
	}
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatalf("part %s: %v", b, err)
	}
	return m
}

func TestConsentRevokedToken(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 700_000_000, time.UTC)
	tok := vippstest.ConsentRevokedToken(webhookSub, now)
	parts := strings.Split(tok, ".")
	if len(parts) != 2 {
		t.Fatalf("token %q has %d parts, want 2 (header.payload, as in Vipps' example)", tok, len(parts))
	}
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	if got, want := string(hb), `{"alg":"none","typ":"JWT"}`; got != want {
		t.Errorf("header = %s, want %s", got, want)
	}
	claims := decodePart(t, parts[1])
	iat := now.Unix()
	want := map[string]any{
		"exp":   json.Number(fmt.Sprint(iat + 300)),
		"iat":   json.Number(fmt.Sprint(iat)),
		"nbf":   json.Number(fmt.Sprint(iat)),
		"sub":   webhookSub,
		"event": "CONSENT_REVOKED",
	}
	if len(claims) != len(want) {
		t.Errorf("claims = %v, want %v", claims, want)
	}
	for k, v := range want {
		if claims[k] != v {
			t.Errorf("claim %s = %v, want %v", k, claims[k], v)
		}
	}
}

// webhookRecorder is a site that records the webhooks it gets.
type webhookRecorder struct {
	mu   sync.Mutex
	reqs []recordedRequest
}

type recordedRequest struct {
	method, path, query, contentType, authorization, body string
}

func (rec *webhookRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rec.mu.Lock()
	rec.reqs = append(rec.reqs, recordedRequest{r.Method, r.URL.Path, r.URL.RawQuery,
		r.Header.Get("Content-Type"), r.Header.Get("Authorization"), string(b)})
	rec.mu.Unlock()
	if r.URL.Path == "/moved" {
		http.Redirect(w, r, "/hook", http.StatusTemporaryRedirect)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (rec *webhookRecorder) requests() []recordedRequest {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]recordedRequest(nil), rec.reqs...)
}

func TestSendConsentRevoked(t *testing.T) {
	clk := newClock()
	p, err := vippstest.New(vippstest.Config{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	rec := &webhookRecorder{}
	site := httptest.NewServer(rec)
	defer site.Close()

	ctx := context.Background()
	for i := range 2 {
		resp, err := p.SendConsentRevoked(ctx, site.URL+"/hook?secret=s3cret&x=1", webhookSub)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Errorf("status = %d, want the site's 204", resp.StatusCode)
		}
		reqs := rec.requests()
		if len(reqs) != i+1 {
			t.Fatalf("site got %d requests, want %d", len(reqs), i+1)
		}
		got := reqs[i]
		want := recordedRequest{
			method:      http.MethodPost,
			path:        "/hook",
			query:       "secret=s3cret&x=1",
			contentType: "text/plain",
			body:        vippstest.ConsentRevokedToken(webhookSub, clk.Now()),
		}
		if got != want {
			t.Errorf("request %d = %+v,\nwant %+v", i, got, want)
		}
		clk.Add(time.Minute) // the provider's clock dates the next event
	}
}

func TestSendConsentRevokedDoesNotFollowRedirects(t *testing.T) {
	p, err := vippstest.New(vippstest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	rec := &webhookRecorder{}
	site := httptest.NewServer(rec)
	defer site.Close()

	resp, err := p.SendConsentRevoked(context.Background(), site.URL+"/moved", webhookSub)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect {
		t.Errorf("status = %d, want 307", resp.StatusCode)
	}
	if n := len(rec.requests()); n != 1 {
		t.Errorf("site got %d requests, want 1", n)
	}
}

func TestSendConsentRevokedErrors(t *testing.T) {
	p, err := vippstest.New(vippstest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	site := httptest.NewServer(&webhookRecorder{})
	siteURL := site.URL
	site.Close() // nothing listens there any more

	for _, u := range []string{"", "/hook?secret=s3cret", "ftp://site.example/?secret=s3cret", "http://%zz/?secret=s3cret"} {
		if resp, err := p.SendConsentRevoked(context.Background(), u, webhookSub); err == nil {
			resp.Body.Close()
			t.Errorf("SendConsentRevoked(%q) did not fail", u)
		} else if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error %q shows the secret", err)
		}
	}

	resp, err := p.SendConsentRevoked(context.Background(), siteURL+"/hook?secret=s3cret", webhookSub)
	if err == nil {
		resp.Body.Close()
		t.Fatal("sending to a closed site did not fail")
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %q shows the secret", err)
	}
	if !strings.Contains(err.Error(), siteURL+"/hook") {
		t.Errorf("error %q does not name the URL without its query", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if resp, err := p.SendConsentRevoked(ctx, siteURL+"/hook", webhookSub); !errors.Is(err, context.Canceled) {
		if err == nil {
			resp.Body.Close()
		}
		t.Errorf("with a cancelled context: err = %v, want context.Canceled", err)
	}
}

// The body of a CONSENT_REVOKED webhook, for a fixed time.
func ExampleConsentRevokedToken() {
	now := time.Unix(1592571488, 0)
	tok := vippstest.ConsentRevokedToken("c9d10444-d992-4850-ac60-9d3502095008", now)
	header, payload, _ := strings.Cut(tok, ".")
	h, _ := base64.RawURLEncoding.DecodeString(header)
	p, _ := base64.RawURLEncoding.DecodeString(payload)
	fmt.Println(string(h))
	fmt.Println(string(p))
	// Output:
	// {"alg":"none","typ":"JWT"}
	// {"exp":1592571788,"iat":1592571488,"nbf":1592571488,"sub":"c9d10444-d992-4850-ac60-9d3502095008","event":"CONSENT_REVOKED"}
}
