package jose

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
)

func sha256Sum(b []byte) []byte {
	sum := sha256.Sum256(b)
	return sum[:]
}

// keyServer serves the public halves of keys as a JWKS and counts fetches.
func keyServer(t *testing.T, keys ...*SigningKey) (*KeySet, *atomic.Int32) {
	t.Helper()
	body, err := PublicJWKS(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return jwksServer(t, body)
}

// jwksServer serves body as a JWKS and counts fetches.
func jwksServer(t *testing.T, body []byte) (*KeySet, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	fetch := func(ctx context.Context) ([]byte, time.Duration, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		if err != nil {
			return nil, 0, err
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			return nil, 0, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return body, 0, err
	}
	return NewKeySet(ctx, fetch, time.Hour), &hits
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

// A key renamed with WithKid signs under its new kid, with the same key.
func TestWithKid(t *testing.T) {
	key, err := NewECKey("ec-1")
	if err != nil {
		t.Fatal(err)
	}
	renamed, err := key.WithKid("ec-2")
	if err != nil {
		t.Fatal(err)
	}
	if renamed.Kid != "ec-2" || renamed.Alg != "ES256" || key.Kid != "ec-1" {
		t.Fatalf("WithKid: %s %s, the original now %s", renamed.Kid, renamed.Alg, key.Kid)
	}
	ks, _ := keyServer(t, renamed)
	tok, err := renamed.Sign([]byte(`{"sub":"u"}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if h, err := ParseHeader(tok); err != nil || h.Kid != "ec-2" {
		t.Fatalf("header %+v, %v; want kid ec-2", h, err)
	}
	if _, err := ks.Verify(t.Context(), tok, "ES256", "ec-2"); err != nil {
		t.Fatalf("Verify under the new kid: %v", err)
	}
	// The old name signs with the same key: its tokens verify too.
	old, err := key.Sign([]byte(`{"sub":"u"}`), map[string]any{"kid": "ec-2"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Verify(t.Context(), old, "ES256", "ec-2"); err != nil {
		t.Fatalf("a token of the original key under the new kid: %v", err)
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

func TestParse(t *testing.T) {
	k, err := NewRSAKey("kid-1")
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := k.Sign([]byte(`{}`), map[string]any{"typ": "at+jwt"})
	parsed, err := Parse(tok)
	if err != nil {
		t.Fatal(err)
	}
	if h := parsed.Header; h != (Header{Alg: "RS256", Kid: "kid-1", Typ: "at+jwt"}) {
		t.Errorf("header = %+v", h)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	for _, bad := range []string{"", "abc", "a.b", "a.b.c.d", b64([]byte("{")) + ".e30.", "..."} {
		if _, err := Parse([]byte(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("Parse(%q) = %v, want ErrMalformed", bad, err)
		}
	}
}

// TestVerifyRefusesWhatItDoesNotProcess: a header asking for critical
// extensions or an unencoded payload, and parts that are not strict
// unpadded base64url, are refused even with a good signature.
func TestVerifyRefusesWhatItDoesNotProcess(t *testing.T) {
	k, err := NewRSAKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	set, _ := keyServer(t, k)
	ctx := context.Background()
	enc := base64.RawURLEncoding
	signRaw := func(header string, payload string) []byte {
		input := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
		sig, err := k.key.Sign(rand.Reader, sha256Sum([]byte(input)), crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		return []byte(input + "." + enc.EncodeToString(sig))
	}
	good := signRaw(`{"alg":"RS256","kid":"k1"}`, `{"sub":"u"}`)
	if p, err := set.Verify(ctx, good, "RS256", "k1"); err != nil || string(p) != `{"sub":"u"}` {
		t.Fatalf("Verify(good) = %s, %v", p, err)
	}
	for name, tok := range map[string][]byte{
		"crit":          signRaw(`{"alg":"RS256","kid":"k1","crit":["exp"],"exp":1}`, `{"sub":"u"}`),
		"b64":           signRaw(`{"alg":"RS256","kid":"k1","b64":false,"crit":["b64"]}`, `{"sub":"u"}`),
		"b64 alone":     signRaw(`{"alg":"RS256","kid":"k1","b64":true}`, `{"sub":"u"}`),
		"kid number":    signRaw(`{"alg":"RS256","kid":1}`, `{"sub":"u"}`),
		"header array":  signRaw(`["RS256"]`, `{"sub":"u"}`),
		"header null":   signRaw(`null`, `{"sub":"u"}`),
		"padded":        []byte(strings.Replace(string(good), ".", "=.", 1)),
		"four parts":    append(slices.Clone(good), ".x"...),
		"std alphabet":  []byte(strings.NewReplacer("-", "+", "_", "/").Replace(string(good))),
		"space in part": []byte(strings.Replace(string(good), ".", " .", 1)),
		"non-canonical": nonCanonical(good),
	} {
		if bytes.Equal(tok, good) {
			continue // the change did not apply to this token
		}
		if _, err := set.Verify(ctx, tok, "RS256", "k1"); !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrSignature) {
			t.Errorf("%s: Verify = %v, want ErrMalformed or ErrSignature", name, err)
		} else if err == nil {
			t.Errorf("%s: verified", name)
		}
	}
}

// The header's member names are matched exactly, as RFC 7515 has them: a
// member "Alg" or "KID" is not alg or kid.
func TestParseMatchesNamesExactly(t *testing.T) {
	enc := base64.RawURLEncoding
	for header, want := range map[string]Header{
		`{"alg":"RS256","kid":"k1","Alg":"PS256","KID":"k2"}`: {Alg: "RS256", Kid: "k1"},
		`{"ALG":"RS256","Kid":"k1"}`:                          {},
		`{"alg":"RS256","alg":"ES256"}`:                       {Alg: "ES256"}, // the last one
		`{"alg":"RS256","typ":"JWT","x5c":5}`:                 {Alg: "RS256", Typ: "JWT"},
	} {
		tok, err := Parse([]byte(enc.EncodeToString([]byte(header)) + ".e30.AAAA"))
		if err != nil || tok.Header != want {
			t.Errorf("Parse(%s) header = %+v, %v; want %+v", header, tok, err, want)
		}
	}
	for _, header := range []string{`{"alg":1}`, `{"kid":["a"]}`, `{"typ":{}}`, `{"crit":[]}`, `{"b64":true}`, `[]`, `null`, `"x"`, `{"alg":"RS256"} x`} {
		if _, err := Parse([]byte(enc.EncodeToString([]byte(header)) + ".e30.AAAA")); !errors.Is(err, ErrMalformed) {
			t.Errorf("Parse(%s) = %v, want ErrMalformed", header, err)
		}
	}
}

// A key that does not make a sound public key (an Ed25519 key of 31 bytes)
// verifies nothing, and does not make the verifier panic.
func TestVerifyUnusableKey(t *testing.T) {
	enc := base64.RawURLEncoding
	body, _ := json.Marshal(map[string]any{"keys": []any{map[string]string{"kty": "OKP", "crv": "Ed25519", "kid": "d",
		"x": enc.EncodeToString(make([]byte, 31))}}})
	set, _ := jwksServer(t, body)
	tok := enc.EncodeToString([]byte(`{"alg":"EdDSA","kid":"d"}`)) + ".e30." + enc.EncodeToString(make([]byte, 64))
	for _, alg := range []string{"EdDSA", Ed25519} {
		if _, err := set.Verify(context.Background(), []byte(tok), alg, "d"); !errors.Is(err, ErrKeyMismatch) {
			t.Errorf("%s: Verify with a 31-byte key = %v, want ErrKeyMismatch", alg, err)
		}
	}
}

// FuzzParse: Parse never panics, signs what the token's first two parts
// say, and never lets crit or b64 through.
func FuzzParse(f *testing.F) {
	enc := base64.RawURLEncoding
	for _, h := range []string{`{"alg":"RS256","kid":"k"}`, `{"alg":"EdDSA","crit":["b64"],"b64":false}`, `{"ALG":"x"}`} {
		f.Add([]byte(enc.EncodeToString([]byte(h)) + ".eyJzdWIiOiJ1In0.c2ln"))
	}
	f.Add([]byte("..."))
	f.Fuzz(func(t *testing.T, token []byte) {
		tok, err := Parse(token)
		if err != nil {
			return
		}
		if !bytes.HasPrefix(token, tok.signingInput) || bytes.Count(tok.signingInput, []byte{'.'}) != 1 {
			t.Fatalf("signing input %q of %q", tok.signingInput, token)
		}
		head, _, _ := bytes.Cut(token, []byte{'.'})
		header, _ := enc.DecodeString(string(head))
		var m map[string]any
		if json.Unmarshal(header, &m) != nil {
			t.Fatalf("accepted a header that is not JSON: %q", header)
		}
		if _, ok := m["crit"]; ok {
			t.Fatalf("accepted crit: %q", header)
		}
		if _, ok := m["b64"]; ok {
			t.Fatalf("accepted b64: %q", header)
		}
		if alg, _ := m["alg"].(string); alg != tok.Header.Alg {
			t.Fatalf("alg %q, the header says %q", tok.Header.Alg, alg)
		}
	})
}

// nonCanonical returns tok with the unused low bits of its last base64url
// character set: the same signature bytes to a lenient decoder.
func nonCanonical(tok []byte) []byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	out := slices.Clone(tok)
	last := strings.IndexByte(alphabet, out[len(out)-1])
	out[len(out)-1] = alphabet[last|1]
	return out
}

// TestVerifyNeverAcceptsWhatJWXRefuses flips every bit of signed tokens:
// whatever Verify accepts, jws.Verify accepts too, with the same payload.
func TestVerifyNeverAcceptsWhatJWXRefuses(t *testing.T) {
	rsaKey, _ := NewRSAKey("r")
	ecKey, _ := NewECKey("e")
	edKey, _ := NewEd25519Key("d", "EdDSA")
	set, _ := keyServer(t, rsaKey, ecKey, edKey)
	ctx := context.Background()
	for _, k := range []*SigningKey{rsaKey, ecKey, edKey} {
		tok, err := k.Sign([]byte(`{"sub":"u","n":1}`), nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := range len(tok) * 8 {
			bad := slices.Clone(tok)
			bad[i/8] ^= 1 << (i % 8)
			got, err := set.Verify(ctx, bad, k.Alg, k.Kid)
			if err != nil {
				continue
			}
			want, jerr := jws.Verify(bad, jws.WithKey(jwa.SignatureAlgorithm(k.Alg), k.key.Public()))
			if jerr != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s: Verify accepted %q (payload %q), jws.Verify: %q, %v", k.Alg, bad, got, want, jerr)
			}
		}
	}
}

// TestVerifyEd25519 checks the fully-specified algorithm Ed25519 (RFC 9864,
// section 2.2), which jwx v2 does not know: it verifies with an OKP key on
// the Ed25519 curve only, and a key labelled for one of EdDSA and Ed25519
// does not serve the other (RFC 9864, section 7: one key, one algorithm).
func TestVerifyEd25519(t *testing.T) {
	newKey := func(kid, alg string) *SigningKey {
		t.Helper()
		k, err := NewEd25519Key(kid, alg)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	ed := newKey("ed-1", Ed25519)
	eddsa := newKey("eddsa-1", "EdDSA")
	edBare := newKey("ed-bare", Ed25519) // published without alg
	edOther := newKey("ed-1", Ed25519)   // same kid, not published
	rsaBare, err := NewRSAKey("rsa-bare")
	if err != nil {
		t.Fatal(err)
	}
	body, err := PublicJWKS(ed, eddsa, edBare, rsaBare)
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatal(err)
	}
	for _, k := range set.Keys {
		if k["kid"] == "ed-bare" || k["kid"] == "rsa-bare" {
			delete(k, "alg")
		}
	}
	x, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	set.Keys = append(set.Keys, map[string]any{
		"kty": "OKP", "crv": "X25519", "kid": "x-1", "use": "sig",
		"x": base64.RawURLEncoding.EncodeToString(x.PublicKey().Bytes()),
	})
	if body, err = json.Marshal(set); err != nil {
		t.Fatal(err)
	}
	ks, _ := jwksServer(t, body)

	sign := func(k *SigningKey, kid string) []byte {
		t.Helper()
		tok, err := k.Sign([]byte(`{"sub":"u"}`), map[string]any{"kid": kid})
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
		{"Ed25519 with its key", sign(ed, "ed-1"), Ed25519, "ed-1", nil},
		{"Ed25519 with an Ed25519 key without alg", sign(edBare, "ed-bare"), Ed25519, "ed-bare", nil},
		{"EdDSA with its key", sign(eddsa, "eddsa-1"), "EdDSA", "eddsa-1", nil},
		{"Ed25519 with a key for EdDSA", sign(eddsa, "eddsa-1"), Ed25519, "eddsa-1", ErrKeyMismatch},
		{"EdDSA with a key for Ed25519", sign(ed, "ed-1"), "EdDSA", "ed-1", ErrKeyMismatch},
		{"Ed25519 with an RSA key without alg", sign(ed, "rsa-bare"), Ed25519, "rsa-bare", ErrKeyMismatch},
		{"Ed25519 with an X25519 key", sign(ed, "x-1"), Ed25519, "x-1", ErrKeyMismatch},
		{"Ed25519 by an unpublished key", sign(edOther, "ed-1"), Ed25519, "ed-1", ErrSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			payload, err := ks.Verify(context.Background(), tt.token, tt.alg, tt.kid)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			if err == nil && string(payload) != `{"sub":"u"}` {
				t.Errorf("payload = %s", payload)
			}
		})
	}

	h, err := ParseHeader(sign(ed, "ed-1"))
	if err != nil || h.Alg != Ed25519 || h.Kid != "ed-1" || h.Typ != "JWT" {
		t.Errorf("ParseHeader of an Ed25519 token = %+v, %v", h, err)
	}
	if _, err := NewEd25519Key("k", "ES256"); err == nil {
		t.Error("NewEd25519Key made a key for ES256")
	}
}

type ctxLabel struct{}

// fetchLog is a FetchFunc that serves body and records the label each
// fetch's context carries ("" for none); failing makes it fail.
type fetchLog struct {
	body    []byte
	maxAge  time.Duration
	mu      sync.Mutex
	labels  []string
	failing bool
}

func (f *fetchLog) fetch(ctx context.Context) ([]byte, time.Duration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	label, _ := ctx.Value(ctxLabel{}).(string)
	f.labels = append(f.labels, label)
	if f.failing {
		return nil, 0, errors.New("down")
	}
	return f.body, f.maxAge, nil
}

func (f *fetchLog) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.labels)
}

// Every fetch a caller waits for runs with the caller's context, so that
// its trace and request ids reach the request for the key set.
func TestKeySetFetchesWithCallersContext(t *testing.T) {
	k, err := NewRSAKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	body, err := PublicJWKS(k)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := k.Sign([]byte(`{}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &fetchLog{body: body}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ks := NewKeySet(ctx, f.fetch, time.Hour)

	verifyCtx := context.WithValue(context.Background(), ctxLabel{}, "verify")
	if _, err := ks.Verify(verifyCtx, tok, "RS256", "k1"); err != nil {
		t.Fatal(err)
	}
	refreshCtx := context.WithValue(context.Background(), ctxLabel{}, "refresh")
	if err := ks.Refresh(refreshCtx); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Verify(verifyCtx, tok, "RS256", "k1"); err != nil { // cached: no fetch
		t.Fatal(err)
	}
	if got, want := f.seen(), []string{"verify", "refresh"}; !slices.Equal(got, want) {
		t.Errorf("fetches saw contexts %q, want %q", got, want)
	}
}

// The set is fetched again in the background after its max-age (or
// minRefresh, when longer), on the key set's own context; a failed refresh
// keeps the set, and cancelling the context stops the refreshing.
func TestKeySetBackgroundRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k, err := NewRSAKey("k1")
		if err != nil {
			t.Fatal(err)
		}
		body, err := PublicJWKS(k)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := k.Sign([]byte(`{}`), nil)
		if err != nil {
			t.Fatal(err)
		}
		f := &fetchLog{body: body, maxAge: 10 * time.Minute}
		ctx, cancel := context.WithCancel(context.WithValue(context.Background(), ctxLabel{}, "background"))
		ks := NewKeySet(ctx, f.fetch, 5*time.Minute)
		if err := ks.Ready(context.WithValue(context.Background(), ctxLabel{}, "first")); err != nil {
			t.Fatal(err)
		}

		time.Sleep(10*time.Minute - time.Second)
		synctest.Wait()
		if got := len(f.seen()); got != 1 {
			t.Fatalf("%d fetches before the max-age ran out, want 1", got)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if got, want := f.seen(), []string{"first", "background"}; !slices.Equal(got, want) {
			t.Fatalf("fetches %q, want %q", got, want)
		}

		f.mu.Lock()
		f.failing = true
		f.mu.Unlock()
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		if got := len(f.seen()); got != 3 {
			t.Fatalf("%d fetches, want 3", got)
		}
		if _, err := ks.Verify(context.Background(), tok, "RS256", "k1"); err != nil {
			t.Errorf("after a failed refresh: %v, want the set fetched before", err)
		}

		// A failed refresh is tried again after minRefresh.
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		if got := len(f.seen()); got != 4 {
			t.Fatalf("%d fetches, want 4", got)
		}

		cancel()
		time.Sleep(time.Hour)
		synctest.Wait()
		if got := len(f.seen()); got != 4 {
			t.Errorf("%d fetches after the context was cancelled, want 4", got)
		}
	})
}
