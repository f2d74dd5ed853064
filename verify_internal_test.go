package vippslogin

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/vippslogin/vippslogin/internal/jose"
)

// benchVerify is an ID token signed with RS256 and a verifier whose
// discovery and key set are cached, with a fixed clock.
type benchVerify struct {
	v     *verifier
	meta  *metadata
	token string
	jwks  []byte
	now   time.Time
}

func newBenchVerify(b *testing.B) *benchVerify {
	b.Helper()
	now := time.Unix(1_800_000_000, 0)
	s, err := Config{
		ClientID: "client-1", ClientSecret: "secret-1", Issuer: "https://idp.example/",
		BaseURL: "https://shop.example", Sessions: scs.New(), Now: func() time.Time { return now },
	}.validate()
	if err != nil {
		b.Fatal(err)
	}
	key, err := jose.NewRSAKey("k1")
	if err != nil {
		b.Fatal(err)
	}
	jwks, err := jose.PublicJWKS(key)
	if err != nil {
		b.Fatal(err)
	}
	p := newProvider(s)
	b.Cleanup(p.cancel)
	meta := &metadata{Issuer: s.issuer, algs: map[string]bool{"RS256": true}}
	p.meta, p.expires = meta, now.Add(time.Hour)
	p.keys = jose.NewKeySet(p.ctx, func(context.Context) ([]byte, time.Duration, error) { return jwks, time.Hour, nil }, time.Hour)
	payload, _ := json.Marshal(map[string]any{
		"iss": s.issuer, "aud": []string{"client-1"}, "sub": "c3a9f3e2-5d1b-4f0e-9a6c-2b7d8e4f1a05",
		"exp": now.Add(5 * time.Minute).Unix(), "iat": now.Unix(), "nonce": "n-0S6_WzA2Mj",
		"auth_time": now.Unix(), "sid": "7f1c2b1e-6a5d-4c3b-9e8f-0a1b2c3d4e5f", "amr": []string{"pwd"},
	})
	tok, err := key.Sign(payload, map[string]any{"typ": "JWT"})
	if err != nil {
		b.Fatal(err)
	}
	return &benchVerify{v: &verifier{s: s, provider: p}, meta: meta, token: string(tok), jwks: jwks, now: now}
}

// BenchmarkVerifyIDToken is the package's check of an ID token: signature,
// algorithm, issuer, audience, times, subject and nonce.
func BenchmarkVerifyIDToken(b *testing.B) {
	bv := newBenchVerify(b)
	ctx := context.Background()
	if _, err := bv.v.check(ctx, bv.meta, bv.token, idTokenWant{nonce: "n-0S6_WzA2Mj"}, ""); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bv.v.check(ctx, bv.meta, bv.token, idTokenWant{nonce: "n-0S6_WzA2Mj"}, ""); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyIDTokenBareJWX is the floor for BenchmarkVerifyIDToken:
// jwx parsing and validating the same token against a static key set,
// with issuer, audience and times checked.
func BenchmarkVerifyIDTokenBareJWX(b *testing.B) {
	bv := newBenchVerify(b)
	set, err := jwk.Parse(bv.jwks)
	if err != nil {
		b.Fatal(err)
	}
	clock := jwt.ClockFunc(func() time.Time { return bv.now })
	parse := func() error {
		tok, err := jwt.ParseString(bv.token, jwt.WithKeySet(set), jwt.WithValidate(true), jwt.WithClock(clock),
			jwt.WithIssuer("https://idp.example/"), jwt.WithAudience("client-1"), jwt.WithAcceptableSkew(time.Minute))
		if err == nil && tok.Subject() == "" {
			b.Fatal("no sub")
		}
		return err
	}
	if err := parse(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := parse(); err != nil {
			b.Fatal(err)
		}
	}
}
