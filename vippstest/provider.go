package vippstest

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vippslogin/vippslogin/internal/jose"
)

// Paths of the endpoints, relative to [Provider.URL], as at Vipps.
const (
	issuerPath    = "/access-management-1.0/access/"
	discoveryPath = issuerPath + ".well-known/openid-configuration"
	jwksPath      = issuerPath + ".well-known/jwks.json"
	authorizePath = issuerPath + "oauth2/auth"
	decisionPath  = authorizePath + "/decision"
	tokenPath     = issuerPath + "oauth2/token"
	userinfoPath  = "/vipps-userinfo-api/userinfo"
)

// Client authentication methods at the token endpoint.
const (
	methodBasic = "client_secret_basic"
	methodPost  = "client_secret_post"
)

// consentTTL is how long a consent page stays valid.
const consentTTL = 10 * time.Minute

// consentMemory is how long a consent is remembered after it expired, so
// that a late answer gets a page that says so and leads back to the site.
const consentMemory = 30 * time.Minute

// minSweep is the number of stored codes, tokens and pending consents below
// which expired entries are not swept.
const minSweep = 256

// Config configures a [Provider]. The zero value is ready to use.
type Config struct {
	// ClientID is the only client the provider knows.
	// Default: "vippstest-client".
	ClientID string

	// ClientSecret is the secret of the client.
	// Default: "vippstest-secret".
	ClientSecret string

	// RedirectURIs are the registered redirect URIs. As at Vipps, the
	// redirect_uri of a request must equal one of them byte for byte.
	// While the list is empty, any absolute http or https URI without a
	// fragment is accepted: a convenience for development that Vipps does
	// not offer. [Provider.AddRedirectURI] adds to the list, after which
	// only listed URIs are accepted.
	// Default: empty.
	RedirectURIs []string

	// TokenAuthMethod is how the client authenticates at the token endpoint:
	// "client_secret_basic" or "client_secret_post". As at Vipps, only the
	// configured method is accepted; the other gets 401 invalid_client.
	// Default: "client_secret_basic".
	TokenAuthMethod string

	// Users are the users one can log in as, the first by default (see
	// [Provider.SetUser]). Their Sub values must be unique and non-empty.
	// Default (when nil): [DefaultUsers].
	Users []User

	// AutoApprove makes the authorize endpoint redirect straight back with a
	// code, as for a remembered user who has consented before; this suits
	// tests that drive the flow with an http.Client. When false, the
	// authorize endpoint serves an HTML consent page with Approve and Cancel
	// buttons.
	// Default: false.
	AutoApprove bool

	// IssuerParameter makes discovery advertise
	// authorization_response_iss_parameter_supported and adds the iss
	// parameter to every redirect from the authorize endpoint (RFC 9207).
	// Default: false.
	IssuerParameter bool

	// NoUserinfoEndpoint makes discovery leave out userinfo_endpoint, which
	// OpenID Connect Discovery 1.0 (section 3) only recommends, and puts the
	// claims that userinfo would send for the granted scopes in the ID
	// token instead, as providers without one do. The userinfo endpoint
	// still answers. Vipps always has one.
	// Default: false.
	NoUserinfoEndpoint bool

	// Now is the clock for token times and for the expiry of codes, consent
	// pages and access tokens.
	// Default: time.Now.
	Now func() time.Time

	// CodeTTL is how long an authorization code can be exchanged.
	// Default: 2 minutes.
	CodeTTL time.Duration

	// AccessTokenTTL is how long the userinfo endpoint accepts an access
	// token.
	// Default: 10 minutes.
	AccessTokenTTL time.Duration

	// IDTokenTTL is the time between iat and exp in ID tokens.
	// Default: 1 hour.
	IDTokenTTL time.Duration

	// PhoneLoginInterval is the polling interval that a login from phone
	// number asks for, rounded up to whole seconds. A poll that comes
	// sooner after the last one gets slow_down, and the interval of that
	// login grows by 5 seconds, as the CIBA standard says.
	// Default: 5 seconds, as at Vipps.
	PhoneLoginInterval time.Duration

	// PhoneLoginExpiry is how long a login from phone number waits for the
	// user when its request has no requested_expiry; from 1 to 15 minutes.
	// Default: 10 minutes, as at Vipps.
	PhoneLoginExpiry time.Duration

	// PhoneApproval, when set, answers each polled login from phone number
	// for the simulated user as it starts: the answer takes effect at the
	// first poll at least PhoneAnswer.After after the start, by Now. It is
	// called without the provider's lock held. Logins it answers with
	// PhonePending, and redirect logins, wait for
	// [Provider.ApprovePhoneLogin] or [Provider.DeclinePhoneLogin].
	// Default: none; every login waits.
	PhoneApproval func(PhoneLogin) PhoneAnswer

	// MerchantSerialNumber is the sales unit's number: the msn claim of
	// every ID token, and what partners name. Default: "123456".
	MerchantSerialNumber string

	// PartnerClientID and PartnerClientSecret are the keys a partner gets
	// access tokens with from the access token API (POST /accesstoken/get,
	// or POST /miami/v1/token), to log in on behalf of the sales unit.
	// Default: "vippstest-partner" and "vippstest-partner-secret".
	PartnerClientID, PartnerClientSecret string

	// PartnerSubscriptionKey is the partner's Ocp-Apim-Subscription-Key,
	// which POST /accesstoken/get requires.
	// Default: "vippstest-partner-subscription-key".
	PartnerSubscriptionKey string
}

// Endpoint names an endpoint of the provider in [Provider.Hits],
// [Provider.LastHeader] and [Provider.SetFault].
type Endpoint string

const (
	// Discovery is the OpenID configuration document.
	Discovery Endpoint = "discovery"
	// Authorize is the authorization endpoint, together with the form that
	// the consent page posts to.
	Authorize Endpoint = "authorize"
	// Token is the token endpoint.
	Token Endpoint = "token"
	// JWKS is the JSON Web Key Set.
	JWKS Endpoint = "jwks"
	// Userinfo is the userinfo endpoint.
	Userinfo Endpoint = "userinfo"
	// AccessToken is POST /accesstoken/get, the endpoint of the access
	// token API that partner keys get their access tokens from.
	AccessToken Endpoint = "accesstoken"
	// ClientCredentials is POST /miami/v1/token, the access token API's
	// OAuth 2.0 client credentials endpoint.
	ClientCredentials Endpoint = "clientcredentials"
)

// Fault makes an endpoint misbehave; see [Provider.SetFault]. The parts
// apply in this order: Delay, then Down, then Status.
type Fault struct {
	// Status, if not zero, is sent instead of the real answer, with Body as
	// the body. If Body is empty, the body is a JSON error: "server_error"
	// for a status of 500 or more, "invalid_request" below that.
	Status int

	// Body is the raw body sent with Status, for example "garbage" to test
	// parsing. Its Content-Type is application/json if Body is valid JSON,
	// text/html if it starts with "<", and text/plain otherwise. Body is
	// ignored when Status is zero.
	Body string

	// Delay is a wait before answering. The wait ends early, without an
	// answer, when the request's context is done or the provider closes.
	Delay time.Duration

	// Down closes the connection without answering, a hard network
	// failure. An HTTP client may retry an idempotent request on a new
	// connection, so one client call can count as two hits.
	Down bool
}

// Hooks change what the provider sends, to test how a client copes with bad
// answers. Hooks run without the provider's lock held, so they may call the
// provider's methods, but they may run concurrently with each other.
type Hooks struct {
	// IDToken may change the header and claims of an ID token before it is
	// signed. The header holds alg, kid and typ; changing alg has no effect,
	// since the key decides the algorithm, and deleting kid or typ does not
	// remove them (set them to other values instead). Claims are
	// JSON-like values (string, bool, []any, map[string]any) except the
	// times, which are int64 seconds. If IDToken returns a non-empty string,
	// that string is sent as id_token instead of the signed token: use
	// [UnsignedToken], [HMACToken] or [Provider.Sign] to build one.
	IDToken func(header, claims map[string]any) (replacement string)

	// Userinfo may change the userinfo claims before they are sent. The
	// address is a map[string]any and other_addresses a []any.
	Userinfo func(claims map[string]any)

	// AuthorizeError, if not empty, makes the authorize endpoint redirect a
	// valid request back with error=<AuthorizeError>, an error_description
	// and the state, instead of logging the user in. Vipps uses, among
	// others, "access_denied", "server_error" and "login_required".
	AuthorizeError string
}

// Provider is a running mock of the Vipps MobilePay Login OpenID Connect
// provider. Its methods are safe for concurrent use, also while requests are
// being served.
//
// The authorize endpoint requires a known client_id, a registered
// redirect_uri, response_type "code", a scope with "openid", a state of at
// least 8 characters and a code_challenge (method S256, or plain, the
// default). Unknown scopes are ignored. The token endpoint accepts the
// authorization_code grant only, with the configured client
// authentication; a code works once, before it expires, with the same
// redirect_uri and the matching code_verifier. Any exchange of a code, also
// a failed one, uses it up, and a second exchange revokes the access token
// of the first (RFC 6749 section 4.1.2). A request that fails client
// authentication does not touch the code.
//
// ID tokens are signed RS256 (see [Provider.RotateKeyAlg]) and carry iss,
// sub, aud (an array with the client id), exp, iat, auth_time, rat, jti,
// nonce ("" if the request had none), sid and at_hash. The userinfo
// endpoint sends sub and sid, and for each granted scope (in the ID token
// instead with [Config].NoUserinfoEndpoint):
//
//	name         name, given_name, family_name
//	email        email, email_verified
//	phoneNumber  phone_number, phone_number_verified
//	birthDate    birthdate
//	address      address, other_addresses
//	nin          nin
type Provider struct {
	srv          *httptest.Server
	clientID     string
	clientSecret string
	autoApprove  bool
	issParam     bool
	noUserinfo   bool
	now          func() time.Time
	codeTTL      time.Duration
	accessTTL    time.Duration
	idTTL        time.Duration
	users        []User             // never changed after New
	closed       context.Context    // done once Close is called
	stop         context.CancelFunc // cancels closed
	closeOnce    sync.Once

	mu           sync.Mutex
	redirectURIs []string
	authMethod   string
	sub          string
	key          *jose.SigningKey
	oldKeys      []*jose.SigningKey // oldest first
	signingAlgs  []string           // set by SetSigningAlgs
	pending      map[string]*consent
	codes        map[string]*authCode
	tokens       map[string]*accessToken
	sweepAt      int
	hits         map[Endpoint]int
	headers      map[Endpoint]http.Header
	faults       map[Endpoint]Fault
	hooks        Hooks
	phone        phoneState // logins from phone number; see ciba.go

	partner *partnerKeys
}

// grant is what an authorization request asked for.
type grant struct {
	redirectURI     string
	state           string
	scope           string
	nonce           string
	challenge       string
	challengeMethod string
	sub             string
	requestedAt     time.Time
	acr             string // from acr_values: put in the ID token
	flow            string // requested_flow
}

// consent is an authorization request waiting for the user's decision. It
// is kept after it was answered or expired, until consentMemory after its
// expiry, so that a second or late answer can be told apart from a made-up
// one.
type consent struct {
	grant
	expires  time.Time
	answered bool
}

// authCode is an issued authorization code.
type authCode struct {
	grant
	authTime    time.Time
	sid         string
	expires     time.Time
	used        bool
	replayed    bool   // used again after the first exchange
	accessToken string // the token for the code, revoked on replay
}

// accessToken is an issued access token.
type accessToken struct {
	sub     string
	sid     string
	scopes  []string
	expires time.Time
}

// New starts a provider on a random port of 127.0.0.1. Call
// [Provider.Close] when done with it. New fails if cfg is invalid or if no
// signing key can be made. The RSA keys of closed providers are used again
// by later ones in the process, under new key ids, since making one is slow;
// no two running providers share a key.
func New(cfg Config) (*Provider, error) {
	if cfg.ClientID == "" {
		cfg.ClientID = "vippstest-client"
	}
	if cfg.ClientSecret == "" {
		cfg.ClientSecret = "vippstest-secret"
	}
	switch cfg.TokenAuthMethod {
	case "":
		cfg.TokenAuthMethod = methodBasic
	case methodBasic, methodPost:
	default:
		return nil, fmt.Errorf("vippstest: unknown TokenAuthMethod %q", cfg.TokenAuthMethod)
	}
	if cfg.Users == nil {
		cfg.Users = DefaultUsers()
	}
	if len(cfg.Users) == 0 {
		return nil, errors.New("vippstest: no users")
	}
	seen := make(map[string]bool)
	for _, u := range cfg.Users {
		if u.Sub == "" {
			return nil, errors.New("vippstest: user with empty Sub")
		}
		if seen[u.Sub] {
			return nil, fmt.Errorf("vippstest: duplicate user Sub %q", u.Sub)
		}
		seen[u.Sub] = true
	}
	for _, uri := range cfg.RedirectURIs {
		if err := checkRedirectURI(uri); err != nil {
			return nil, err
		}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	for _, d := range []*time.Duration{&cfg.CodeTTL, &cfg.AccessTokenTTL, &cfg.IDTokenTTL} {
		if *d < 0 {
			return nil, errors.New("vippstest: negative TTL")
		}
	}
	if cfg.CodeTTL == 0 {
		cfg.CodeTTL = 2 * time.Minute
	}
	if cfg.AccessTokenTTL == 0 {
		cfg.AccessTokenTTL = 10 * time.Minute
	}
	if cfg.IDTokenTTL == 0 {
		cfg.IDTokenTTL = time.Hour
	}
	key, err := newRSAKey()
	if err != nil {
		return nil, fmt.Errorf("vippstest: make signing key: %w", err)
	}
	users := copyUsers(cfg.Users)
	p := &Provider{
		clientID:     cfg.ClientID,
		clientSecret: cfg.ClientSecret,
		autoApprove:  cfg.AutoApprove,
		issParam:     cfg.IssuerParameter,
		noUserinfo:   cfg.NoUserinfoEndpoint,
		now:          cfg.Now,
		codeTTL:      cfg.CodeTTL,
		accessTTL:    cfg.AccessTokenTTL,
		idTTL:        cfg.IDTokenTTL,
		users:        users,
		redirectURIs: slices.Clone(cfg.RedirectURIs),
		authMethod:   cfg.TokenAuthMethod,
		sub:          users[0].Sub,
		key:          key,
		pending:      make(map[string]*consent),
		codes:        make(map[string]*authCode),
		tokens:       make(map[string]*accessToken),
		sweepAt:      minSweep,
		hits:         make(map[Endpoint]int),
		headers:      make(map[Endpoint]http.Header),
		faults:       make(map[Endpoint]Fault),
	}
	if p.phone, err = newPhoneState(cfg); err != nil {
		return nil, err
	}
	p.partner = newPartnerKeys(cfg)
	p.closed, p.stop = context.WithCancel(context.Background())
	// Make closed's channel now: made lazily by a handler inside a
	// testing/synctest bubble (see Handler), it would belong to the bubble,
	// and Close from outside it could not close it.
	_ = p.closed.Done()
	p.srv = httptest.NewUnstartedServer(p.routes())
	p.srv.Start()
	return p, nil
}

func (p *Provider) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET "+discoveryPath, p.endpoint(Discovery, p.serveDiscovery))
	mux.Handle("GET "+jwksPath, p.endpoint(JWKS, p.serveJWKS))
	mux.Handle("GET "+authorizePath, p.endpoint(Authorize, p.serveAuthorize))
	mux.Handle("POST "+decisionPath, p.endpoint(Authorize, p.serveDecision))
	mux.Handle("POST "+tokenPath, p.endpoint(Token, p.serveToken))
	mux.Handle("GET "+userinfoPath, p.endpoint(Userinfo, p.serveUserinfo))
	mux.Handle("POST "+userinfoPath, p.endpoint(Userinfo, p.serveUserinfo))
	mux.Handle("POST "+backchannelPath, p.endpoint(Backchannel, p.serveBackchannel))
	mux.Handle("POST "+userExistsPath, p.endpoint(UserExists, p.serveUserExists))
	mux.Handle("POST "+accessTokenPath, p.endpoint(AccessToken, p.serveAccessToken))
	mux.Handle("POST "+clientCredentialsPath, p.endpoint(ClientCredentials, p.serveClientCredentials))
	return mux
}

// Close shuts the provider down. Requests waiting on a [Fault] Delay are
// cut off. Close may be called more than once.
func (p *Provider) Close() {
	p.closeOnce.Do(func() {
		p.stop()
		p.srv.Close()
		p.mu.Lock()
		keys := append(p.oldKeys, p.key)
		p.mu.Unlock()
		spareKeys(keys)
	})
}

// URL returns the base URL of the provider, without a trailing slash, for
// example "http://127.0.0.1:41234".
func (p *Provider) URL() string { return p.srv.URL }

// Handler returns the handler that serves the provider's endpoints, the one
// its server at [Provider.URL] runs, for serving them in process: an
// http.RoundTripper that calls it lets a client's test run inside a
// testing/synctest bubble, where time moves only while every goroutine
// waits, which one waiting on a network connection never does. Made
// outside the bubble, with Config.Now left at time.Now, the provider then
// reads the bubble's clock in the handler. Its documents and redirects still
// name URL, and a [Fault] with Down panics with http.ErrAbortHandler where
// no connection can be hung up.
func (p *Provider) Handler() http.Handler { return p.srv.Config.Handler }

// Issuer returns the issuer: URL followed by
// "/access-management-1.0/access/", with the trailing slash that Vipps also
// has. Discovery is at Issuer()+".well-known/openid-configuration".
func (p *Provider) Issuer() string { return p.srv.URL + issuerPath }

// ClientID returns the client id that the provider accepts.
func (p *Provider) ClientID() string { return p.clientID }

// ClientSecret returns the client secret that the provider accepts.
func (p *Provider) ClientSecret() string { return p.clientSecret }

// SetUser chooses the user that later authorizations log in as, by Sub. A
// consent page already shown keeps the user it was shown for. SetUser fails
// if no configured user has that Sub.
func (p *Provider) SetUser(sub string) error {
	if _, ok := p.user(sub); !ok {
		return fmt.Errorf("vippstest: unknown user %q", sub)
	}
	p.mu.Lock()
	p.sub = sub
	p.mu.Unlock()
	return nil
}

// AddRedirectURI registers uri as a redirect URI, for a site that learns its
// address only after the provider has started. Once a URI is registered, only
// registered URIs are accepted. Invalid URIs (not absolute, or with a
// fragment) are ignored; they could never match.
func (p *Provider) AddRedirectURI(uri string) {
	if checkRedirectURI(uri) != nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !slices.Contains(p.redirectURIs, uri) {
		p.redirectURIs = append(p.redirectURIs, uri)
	}
}

// SetTokenAuthMethod changes the client authentication method that the
// token endpoint accepts: "client_secret_basic" or "client_secret_post". An
// empty m means "client_secret_basic"; any other value makes every token
// request fail with invalid_client.
func (p *Provider) SetTokenAuthMethod(m string) {
	if m == "" {
		m = methodBasic
	}
	p.mu.Lock()
	p.authMethod = m
	p.mu.Unlock()
}

// RotateKey makes a new RSA signing key and returns its kid. Tokens are
// signed with the new key from now on, and the JWKS publishes it together
// with all earlier keys until [Provider.RetireOldKeys]. If no key can be
// made, RotateKey keeps the current key and returns "". [Provider.RotateKeyAlg]
// makes keys of other algorithms.
func (p *Provider) RotateKey() (kid string) { return p.RotateKeyAlg("RS256") }

// RetireOldKeys drops all keys but the current one from the JWKS. Tokens
// signed with the old keys no longer verify.
func (p *Provider) RetireOldKeys() {
	p.mu.Lock()
	p.oldKeys = nil
	p.mu.Unlock()
}

// CurrentKey returns the key id and the algorithm of the key that signs
// tokens now, for tests that build tokens of their own, such as one that
// names the provider's kid but is signed otherwise ([HMACToken]).
func (p *Provider) CurrentKey() (kid, alg string) {
	k := p.signingKey()
	return k.Kid, k.Alg
}

// signingKey returns the current signing key.
func (p *Provider) signingKey() *jose.SigningKey {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.key
}

// Hits returns the number of requests that e has received, faulty answers
// included.
func (p *Provider) Hits(e Endpoint) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hits[e]
}

// LastHeader returns a copy of the headers of the last request to e, or nil
// if there was none. Tests use it to check headers such as
// Vipps-System-Name.
func (p *Provider) LastHeader(e Endpoint) http.Header {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.headers[e].Clone()
}

// SetFault makes later requests to e misbehave as f says. The zero Fault
// restores normal answers.
func (p *Provider) SetFault(e Endpoint, f Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if f == (Fault{}) {
		delete(p.faults, e)
		return
	}
	p.faults[e] = f
}

// SetHooks replaces all hooks with h. The zero Hooks removes them.
func (p *Provider) SetHooks(h Hooks) {
	p.mu.Lock()
	p.hooks = h
	p.mu.Unlock()
}

// PublicKeyPEM returns the public half of the current signing key as a PEM
// "PUBLIC KEY" block (PKIX), as an attacker could download it. Pass it to
// [HMACToken] to test that a client refuses HS256 tokens keyed with the
// public key. It returns nil if the key cannot be encoded.
func (p *Provider) PublicKeyPEM() []byte {
	der, err := x509.MarshalPKIXPublicKey(p.signingKey().Public())
	if err != nil {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// Sign signs claims with the current key (RS256 unless
// [Provider.RotateKeyAlg] made another) and returns the compact
// token, so that tests can build tokens with bad claims but a valid
// signature. header may add to or override kid and typ; alg cannot be
// changed. Sign returns "" if header or claims cannot be encoded.
func (p *Provider) Sign(header, claims map[string]any) string {
	tok, err := sign(p.signingKey(), header, claims)
	if err != nil {
		return ""
	}
	return tok
}

func sign(key *jose.SigningKey, header, claims map[string]any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	tok, err := key.Sign(payload, header)
	if err != nil {
		return "", err
	}
	return string(tok), nil
}

// user returns the user with the given sub.
func (p *Provider) user(sub string) (User, bool) {
	for _, u := range p.users {
		if u.Sub == sub {
			return u, true
		}
	}
	return User{}, false
}

// sweepLocked drops expired consents, codes and access tokens once there are
// many of them, so that a long-running provider does not grow. Used codes
// stay until they expire, so that a replay is recognized as one, and
// consents until consentMemory after. The caller holds p.mu.
func (p *Provider) sweepLocked(now time.Time) {
	if len(p.pending)+len(p.codes)+len(p.tokens) < p.sweepAt {
		return
	}
	for k, c := range p.pending {
		if !now.Before(c.expires.Add(consentMemory)) {
			delete(p.pending, k)
		}
	}
	for k, c := range p.codes {
		if !now.Before(c.expires) {
			delete(p.codes, k)
		}
	}
	for k, t := range p.tokens {
		if !now.Before(t.expires) {
			delete(p.tokens, k)
		}
	}
	p.sweepAt = max(minSweep, 2*(len(p.pending)+len(p.codes)+len(p.tokens)))
}

func checkRedirectURI(uri string) error {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme == "" || strings.Contains(uri, "#") {
		return fmt.Errorf("vippstest: invalid redirect URI %q", uri)
	}
	return nil
}

// randomToken returns 32 random bytes, base64url encoded.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// newKid returns a key id shaped like those of Vipps.
func newKid() string { return "public:" + newUUID() }
