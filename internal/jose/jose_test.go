package jose

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// keyServer serves the public halves of keys as a JWKS and counts fetches.
func keyServer(t *testing.T, keys ...*SigningKey) (*KeySet, *atomic.Int32) {
	t.Helper()
	body, err := PublicJWKS(keys...)
	if err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ks, err := NewKeySet(ctx, srv.URL, srv.Client(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ks, &hits
}

func TestVerify(t *testing.T) {
	rsa, err := NewRSAKey("rsa-1")
	if err != nil {
		t.Fatal(err)
	}
	ec, err := NewECKey("ec-1")
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewRSAKey("rsa-1") // same kid, not published
	if err != nil {
		t.Fatal(err)
	}
	ks, hits := keyServer(t, rsa, ec)
	ctx := context.Background()
	sign := func(k *SigningKey, extra map[string]any) []byte {
		tok, err := k.Sign([]byte(`{"sub":"u"}`), extra)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	tests := []struct {
		name     string
		token    []byte
		alg, kid string
		want     error
	}{
		{"rsa", sign(rsa, nil), "RS256", "rsa-1", nil},
		{"ec", sign(ec, nil), "ES256", "ec-1", nil},
		{"unknown kid", sign(rsa, nil), "RS256", "nope", ErrUnknownKey},
		{"ambiguous without kid", sign(rsa, nil), "RS256", "", ErrUnknownKey},
		{"alg of another key type", sign(rsa, nil), "ES256", "rsa-1", ErrKeyMismatch},
		{"none", sign(rsa, nil), "none", "rsa-1", ErrKeyMismatch},
		{"unpublished key", sign(other, nil), "RS256", "rsa-1", ErrSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			payload, err := ks.Verify(ctx, tt.token, tt.alg, tt.kid)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			if err == nil && string(payload) != `{"sub":"u"}` {
				t.Errorf("payload = %s", payload)
			}
		})
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("key set fetched %d times, want 1", n)
	}
}

func TestVerifySingleKeyWithoutKid(t *testing.T) {
	k, err := NewRSAKey("only")
	if err != nil {
		t.Fatal(err)
	}
	ks, _ := keyServer(t, k)
	tok, _ := k.Sign([]byte(`{}`), nil)
	if _, err := ks.Verify(context.Background(), tok, "RS256", ""); err != nil {
		t.Fatalf("Verify with the only key and no kid: %v", err)
	}
}

func TestParseHeader(t *testing.T) {
	k, err := NewRSAKey("kid-1")
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := k.Sign([]byte(`{}`), map[string]any{"typ": "at+jwt"})
	h, err := ParseHeader(tok)
	if err != nil {
		t.Fatal(err)
	}
	if h != (Header{Alg: "RS256", Kid: "kid-1", Typ: "at+jwt"}) {
		t.Errorf("header = %+v", h)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	for _, bad := range []string{"", "abc", "a.b", "a.b.c.d", b64([]byte("{")) + ".e30.", "..."} {
		if _, err := ParseHeader([]byte(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseHeader(%q) = %v, want ErrMalformed", bad, err)
		}
	}
}
