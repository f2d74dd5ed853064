package vippslogin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vippslogin/vippslogin/internal/jose"
)

// metadata is the part of the provider's discovery document we use.
type metadata struct {
	Issuer                string   `json:"issuer"`
	AuthorizationEndpoint string   `json:"authorization_endpoint"`
	TokenEndpoint         string   `json:"token_endpoint"`
	JWKSURI               string   `json:"jwks_uri"`
	UserinfoEndpoint      string   `json:"userinfo_endpoint"`
	SigningAlgs           []string `json:"id_token_signing_alg_values_supported"`
	IssParameter          bool     `json:"authorization_response_iss_parameter_supported"`

	// BackchannelAuthenticationEndpoint starts a login from phone number
	// (CIBA); it is checked where it is used.
	BackchannelAuthenticationEndpoint string `json:"backchannel_authentication_endpoint"`

	algs map[string]bool // SigningAlgs we accept
}

// asymmetric lists the signature algorithms an ID token may use. HMAC
// (which would turn the public key into a shared secret) and "none" are
// never accepted, whatever discovery says. Ed25519 is the fully-specified
// name of EdDSA over Ed25519 (RFC 9864, section 2.2), verified with an
// Ed25519 key only.
var asymmetric = map[string]bool{
	"RS256": true, "RS384": true, "RS512": true,
	"PS256": true, "PS384": true, "PS512": true,
	"ES256": true, "ES384": true, "ES512": true,
	"EdDSA": true, jose.Ed25519: true,
}

const (
	maxDocumentSize  = 1 << 20
	discoveryMinTTL  = time.Minute
	discoveryMaxTTL  = 24 * time.Hour
	discoveryDefault = time.Hour
	// failureBackoff is how long a failed discovery fetch is not repeated;
	// requests in that time get the remembered error.
	failureBackoff = 2 * time.Second
	// refetchBurst refetches may be made at once for ID tokens that the
	// cache cannot explain (an unknown key id, an algorithm discovery does
	// not list); then one per refetchEvery.
	refetchBurst = 3
	refetchEvery = 10 * time.Second
)

// provider holds the cached discovery document and key set.
type provider struct {
	s      *settings
	ctx    context.Context // bounds the key set's background refresh
	cancel context.CancelFunc

	fetchMu sync.Mutex // held while discovery is fetched

	mu         sync.Mutex // guards the fields below
	meta       *metadata
	expires    time.Time
	refreshing bool
	failed     failure // of the last fetch of discovery
	keys       *jose.KeySet
	keysURL    string
	stopKeys   context.CancelFunc
	first      *sharedFetch[*metadata] // the fetch of the first document, while under way

	refetchMu     sync.Mutex
	refetchTokens float64
	refetchLast   time.Time
}

func newProvider(s *settings) *provider {
	ctx, cancel := context.WithCancel(context.Background())
	return &provider{s: s, ctx: ctx, cancel: cancel, refetchTokens: refetchBurst}
}

// metadata returns the discovery document. The first call fetches it (the
// callers that come meanwhile wait for that fetch); once it is stale, it is
// refreshed in the background while the stale copy keeps serving, so a
// provider outage or a slow provider does not hold up logins that need only
// what is cached. After a failed first fetch, calls in the next
// failureBackoff get the same error without a new fetch.
func (p *provider) metadata(ctx context.Context) (*metadata, error) {
	p.mu.Lock()
	m, now := p.meta, p.s.Now()
	if m != nil {
		if !now.Before(p.expires) && !p.refreshing {
			p.refreshing = true
			go p.refresh(ctx)
		}
		p.mu.Unlock()
		return m, nil
	}
	if err := p.failed.recent(now, failureBackoff); err != nil {
		p.mu.Unlock()
		return nil, err
	}
	// One fetch serves every caller waiting for the first document. It
	// keeps the values of the context of the caller that started it, such
	// as the site's trace id.
	f := p.first
	if f == nil {
		fetchCtx, done := p.detached(ctx)
		f = startFetch(fetchCtx, func(ctx context.Context) (*metadata, error) {
			defer done()
			p.fetchMu.Lock()
			defer p.fetchMu.Unlock()
			return p.load(ctx)
		}, func(*metadata, error) {
			p.mu.Lock()
			p.first = nil
			p.mu.Unlock()
		})
		p.first = f
	}
	p.mu.Unlock()
	m, err := f.wait(ctx)
	if err != nil && ctx.Err() != nil {
		return nil, upstreamErr(ctx, endpointDiscovery, ctx.Err())
	}
	return m, err
}

// detached returns a context with the values of ctx, for a fetch that a
// request starts and others share: it ends when the provider is closed,
// not when ctx does.
func (p *provider) detached(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(detached(ctx))
	stop := context.AfterFunc(p.ctx, cancel)
	return ctx, func() { stop(); cancel() }
}

// refresh reloads a stale discovery document in the background, for the
// request whose context is ctx (see detached). When that fails, the stale
// copy stays in use and the next try is a minute away.
func (p *provider) refresh(ctx context.Context) {
	ctx, done := p.detached(ctx)
	defer done()
	p.fetchMu.Lock()
	defer p.fetchMu.Unlock()
	if _, err := p.load(ctx); err != nil {
		p.s.Logger.LogAttrs(ctx, levelWarn, "vippslogin: discovery refresh failed; using the cached document", attrErr(err))
		p.mu.Lock()
		p.expires = p.s.Now().Add(discoveryMinTTL)
		p.mu.Unlock()
	}
	p.mu.Lock()
	p.refreshing = false
	p.mu.Unlock()
}

// load fetches the discovery document and stores it. The caller holds
// fetchMu.
func (p *provider) load(ctx context.Context) (*metadata, error) {
	m, ttl, err := p.fetchMetadata(ctx)
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.s.Now()
	if err != nil {
		p.failed = failure{now, err}
		return nil, err
	}
	if p.keys == nil || p.keysURL != m.JWKSURI {
		ctx, cancel := context.WithCancel(p.ctx)
		uri := m.JWKSURI
		ks := jose.NewKeySet(ctx, func(ctx context.Context) ([]byte, time.Duration, error) {
			return p.fetchKeys(ctx, uri)
		}, keysMinRefresh)
		if p.stopKeys != nil {
			p.stopKeys() // the old key set's background refresh
		}
		p.keys, p.keysURL, p.stopKeys = ks, m.JWKSURI, cancel
	}
	p.failed = failure{}
	p.meta, p.expires = m, now.Add(ttl)
	return m, nil
}

func (p *provider) keySet() *jose.KeySet {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.keys
}

func (p *provider) fetchMetadata(ctx context.Context) (_ *metadata, _ time.Duration, err error) {
	defer func(ctx context.Context, start time.Time) { p.s.providerCall(ctx, endpointDiscovery, start, err) }(ctx, time.Now())
	ctx, cancel := context.WithTimeout(ctx, p.s.HTTPTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.s.discoveryURL, nil)
	if err != nil {
		return nil, 0, newErr(ErrProviderUnavailable, endpointDiscovery, "%v", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := p.s.HTTPClient.Do(req)
	if err != nil {
		return nil, 0, upstreamErr(ctx, endpointDiscovery, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, newErr(ErrProviderUnavailable, endpointDiscovery, "status %d", resp.StatusCode)
	}
	var m metadata
	if err := decodeJSON(resp, &m); err != nil {
		return nil, 0, newErr(ErrProviderUnavailable, endpointDiscovery, "%v", err)
	}
	if err := p.check(&m); err != nil {
		return nil, 0, newErr(ErrProviderUnavailable, endpointDiscovery, "%v", err)
	}
	return &m, maxAge(resp.Header.Get("Cache-Control")), nil
}

// keysMinRefresh is the least time between two background fetches of the
// key set.
const keysMinRefresh = 5 * time.Minute

// fetchKeys fetches the key set at uri, and how long it may be cached.
func (p *provider) fetchKeys(ctx context.Context, uri string) (_ []byte, _ time.Duration, err error) {
	defer func(ctx context.Context, start time.Time) { p.s.providerCall(ctx, endpointJWKS, start, err) }(ctx, time.Now())
	ctx, cancel := context.WithTimeout(ctx, p.s.HTTPTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := p.s.HTTPClient.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, 0, fmt.Errorf("answered %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentSize+1))
	switch {
	case err != nil:
		return nil, 0, err
	case len(body) > maxDocumentSize:
		return nil, 0, errors.New("response too large")
	}
	age, _ := cacheMaxAge(resp.Header.Get("Cache-Control"))
	return body, min(age, discoveryMaxTTL), nil
}

// check validates a discovery document against the configuration.
func (p *provider) check(m *metadata) error {
	if m.Issuer != p.s.issuer {
		return fmt.Errorf("issuer %q is not the configured %q", m.Issuer, p.s.issuer)
	}
	for _, e := range []struct {
		name, value string
		optional    bool
	}{
		{"authorization_endpoint", m.AuthorizationEndpoint, false},
		{"token_endpoint", m.TokenEndpoint, false},
		{"jwks_uri", m.JWKSURI, false},
		// Only RECOMMENDED (OpenID Connect Discovery 1.0, section 3);
		// without it the claims come from the ID token alone.
		{"userinfo_endpoint", m.UserinfoEndpoint, true},
	} {
		if e.optional && e.value == "" {
			continue
		}
		if err := checkURL(e.value); err != nil {
			return fmt.Errorf("%s %q: %v", e.name, safeText(e.value), err)
		}
	}
	algs := m.SigningAlgs
	if len(algs) == 0 {
		algs = []string{"RS256"} // the default OpenID Connect Discovery names
	}
	m.algs = map[string]bool{}
	for _, a := range algs {
		if asymmetric[a] {
			m.algs[a] = true
		}
	}
	if len(m.algs) == 0 {
		return fmt.Errorf("no acceptable ID token signing algorithm in %q", algs)
	}
	return nil
}

// allowRefetch reports whether an ID token that the cache cannot explain
// (an unknown kid, an algorithm discovery does not list) may refetch
// discovery and the key set now: a burst of refetchBurst, then one per
// refetchEvery, so that forged tokens cannot hammer the provider.
func (p *provider) allowRefetch() bool {
	p.refetchMu.Lock()
	defer p.refetchMu.Unlock()
	now := p.s.Now()
	if !p.refetchLast.IsZero() {
		if d := now.Sub(p.refetchLast); d > 0 {
			p.refetchTokens += d.Seconds() / refetchEvery.Seconds()
		}
	}
	if p.refetchTokens > refetchBurst {
		p.refetchTokens = refetchBurst
	}
	p.refetchLast = now
	if p.refetchTokens < 1 {
		return false
	}
	p.refetchTokens--
	return true
}

// reload fetches discovery now, however fresh the cached copy, for an ID
// token that suggests the provider has changed it (a new key, a new
// algorithm). The caller has asked allowRefetch. On failure the cached
// copy stays in use.
func (p *provider) reload(ctx context.Context) (*metadata, error) {
	p.fetchMu.Lock()
	defer p.fetchMu.Unlock()
	return p.load(ctx)
}

// ready fetches discovery and the key set.
func (p *provider) ready(ctx context.Context) error {
	if _, err := p.metadata(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, p.s.HTTPTimeout)
	defer cancel()
	if err := p.keySet().Ready(ctx); err != nil {
		return upstreamErr(ctx, endpointJWKS, err)
	}
	return nil
}

// maxAge is how long a discovery document with the Cache-Control header
// cc is kept.
func maxAge(cc string) time.Duration {
	if t, ok := cacheMaxAge(cc); ok {
		return min(max(t, discoveryMinTTL), discoveryMaxTTL)
	}
	return discoveryDefault
}

// cacheMaxAge returns the max-age of the Cache-Control header cc, and
// whether it has one.
func cacheMaxAge(cc string) (time.Duration, bool) {
	for _, d := range strings.Split(cc, ",") {
		d = strings.TrimSpace(d)
		if v, ok := strings.CutPrefix(strings.ToLower(d), "max-age="); ok {
			if n, err := strconv.Atoi(v); err == nil {
				return time.Duration(min(max(n, 0), int(discoveryMaxTTL/time.Second))) * time.Second, true
			}
		}
	}
	return 0, false
}

// decodeJSON reads a bounded JSON object from a response that says it is
// JSON.
func decodeJSON(resp *http.Response, v any) error {
	body, err := readJSON(resp)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return errors.New("response is not valid JSON")
	}
	return nil
}

// readJSON reads the body of a response that says it is JSON, at most
// maxDocumentSize bytes of it, into a buffer of the size it announces.
func readJSON(resp *http.Response) ([]byte, error) {
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return nil, fmt.Errorf("content type %q is not JSON", ct)
		}
	}
	size := 512
	if n := resp.ContentLength; n >= 0 && n < maxDocumentSize {
		size = int(n) + 1 // room to read the end without growing
	}
	body := make([]byte, 0, size)
	r := io.LimitReader(resp.Body, maxDocumentSize+1)
	for {
		if len(body) == cap(body) {
			body = append(body, 0)[:len(body)]
		}
		n, err := r.Read(body[len(body):cap(body)])
		body = body[:len(body)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if len(body) > maxDocumentSize {
		return nil, errors.New("response too large")
	}
	return body, nil
}

// upstreamErr classifies a failed call to the endpoint called what: a
// time-out is ErrProviderUnavailable with the reason "timeout", and
// anything else ErrProviderUnavailable with the endpoint as its reason,
// which for a cancelled request wraps context.Canceled too.
func upstreamErr(ctx context.Context, what string, err error) error {
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		return newErr(ErrProviderUnavailable, "timeout", what)
	case errors.Is(err, context.Canceled):
		e := newErr(ErrProviderUnavailable, what, "")
		e.cause = context.Canceled
		return e
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // the URL is known; keep the cause
	}
	return newErr(ErrProviderUnavailable, what, "%v", err)
}
