// Package vippslogin adds "Log in with Vipps MobilePay" to a server-rendered
// Go web site. It is net/http middleware for the Vipps MobilePay Login
// OpenID Connect provider (authorization code flow with PKCE), and works with
// any OpenID Connect provider that follows the same rules.
//
// # Use
//
//	sessions := scs.New()
//	auth, err := vippslogin.New(vippslogin.Config{
//		ClientID:     os.Getenv("VIPPS_CLIENT_ID"),
//		ClientSecret: vippslogin.Secret(os.Getenv("VIPPS_CLIENT_SECRET")),
//		Environment:  vippslogin.Test,
//		BaseURL:      "https://shop.example",
//		Sessions:     sessions,
//		Scopes:       []string{"openid", "name", "email"},
//	})
//	if err != nil {
//		log.Fatal(err)
//	}
//	mux := http.NewServeMux()
//	mux.Handle("/auth/", auth.Handler()) // /auth/login, /auth/callback, /auth/logout
//	mux.Handle("/account", auth.RequireLogin(account))
//	log.Fatal(http.ListenAndServe(":8080", auth.LoadAndSave(mux)))
//
// In account, [ClaimsFromContext] gives the verified [Claims]. Register
// [Client.RedirectURI] (here https://shop.example/auth/callback) in the Vipps
// MobilePay portal. chi users call [Client.MountChi] instead of mounting
// Handler. A form that POSTs to /auth/logout logs out; a link to
// /auth/logout shows a page whose button does.
//
// # What is verified
//
// Every login: the callback's state names a pending login started by this
// browser, not expired and not used before (pending logins live in the
// session store, one record each under a key no session cookie can name,
// bound to the browser by an HttpOnly cookie); the iss parameter names the issuer when present (and is required
// when the provider advertises it); the code is exchanged with the PKCE
// verifier (S256) and the exact redirect URI; the ID token is signed with an
// asymmetric algorithm that discovery lists (never "none", never HMAC; Ed25519,
// the fully-specified name of EdDSA over Ed25519, only with an Ed25519 key) by
// a key in the provider's key set; its iss is the configured issuer, aud
// contains the client id, azp (when present) is the client id, exp and iat
// hold within Config.ClockSkew, nonce is the one sent, and at_hash (when
// present) matches the access token; userinfo's sub equals the ID token's.
// A provider without a userinfo endpoint, which OpenID Connect allows, is
// accepted: the claims are then the ID token's.
// Then the session token is renewed, so a session fixed before the login is
// worthless after it. Only the verified claims are saved in the session; the
// tokens are not kept.
//
// Discovery's issuer must equal the configured issuer byte for byte (Vipps'
// ends in "/"). Discovery and the key set are cached and refreshed in the
// background. A token naming an unknown key id refetches both at once, and
// one whose algorithm the cached discovery does not list refetches
// discovery before it is refused: a few times in a row and then at most once
// per 10 seconds, so key rotation and a change of algorithm are followed at
// once and a flood of forged tokens cannot hammer the provider.
//
// # Session stores and several instances
//
// Pending logins are kept in the scs store beside the sessions, one record
// each with an expiry, so every scs store works as it is (memory, Redis,
// Postgres, ...) and, with a shared store such as Redis, a login may start on
// one instance of the site and finish on another.
//
// [Client.LoadAndSave], in place of the session manager's LoadAndSave, keeps
// the site serving while the store cannot be reached. A visitor whose session
// cannot be loaded is served the pages that need no login as a guest, with
// nothing saved and no session cookie, so that the session is still there
// when the store is back; pages behind [Client.RequireLogin] and the login,
// callback, confirm and logout routes answer 503 ([ErrSessionStore]). Set the
// session manager's ErrorFunc to [Client.SessionError] as well, so that a
// store that fails while a session is saved is answered like the package's
// own errors.
//
// # Vipps extras
//
// [Client.StartLogin] starts logins with Vipps' app flows or step-up
// ([LoginOptions]), and [Client.RequireStepUp] guards pages that need a
// login confirmed in the app. A login with [FlowAutomaticReturn] that comes
// back in another browser finishes there, after asking it "Continue as
// <name>?"; the browser that started it never gets a session from it.
// Config.Partner logs in with a partner's keys ([PartnerKeys]).
// [Client.StartPhoneLogin] and [Client.WaitPhoneLogin] log a user in from
// their phone number (CIBA), for points of sale and call centres. The
// package's pages speak Norwegian or English ([WithLanguage], [Language]).
//
// Three packages beside this one need no [Client]:
//
//   - [github.com/vippslogin/vippslogin/linking] finds the site's account
//     for a Vipps user the way Vipps advises; call it from
//     Config.AfterLogin.
//   - [github.com/vippslogin/vippslogin/button] renders the login button;
//     give it the tag [Language] returns, and it speaks the language of the
//     package's pages.
//   - [github.com/vippslogin/vippslogin/webhook] handles Vipps'
//     CONSENT_REVOKED webhook; the event is unsigned, so it is a hint to act
//     on carefully.
//
// # What the site still owns
//
// The session cookie's settings and lifetime (scs's Lifetime, IdleTimeout,
// Cookie.Secure: set it when the site is on https), linking a Vipps user to
// its own accounts (Config.AfterLogin with linking.Find), CSRF protection of
// its own forms, and TLS. RequireLogin and the handlers must run inside
// [Client.LoadAndSave] (or the session manager's LoadAndSave).
//
// # Logs and metrics
//
// The Client writes its records to Config.Logger with [slog.Logger.LogAttrs]
// and the context of the request (or of the call to [Client.WaitPhoneLogin]
// and the like), so a handler that reads a site's trace and request ids
// from the context adds them. A browser login writes, in this order:
//
//	message                            level  attributes
//	"vippslogin: login started"        DEBUG  login_id flow return_to step_up
//	"vippslogin: callback received"    DEBUG  login_id flow same_browser
//	"vippslogin: code exchanged"       DEBUG  login_id flow
//	"vippslogin: id token verified"    DEBUG  login_id flow
//	"vippslogin: userinfo fetched"     DEBUG  login_id flow
//	"vippslogin: confirmation asked"   DEBUG  login_id flow
//	"vippslogin: login finished"       INFO   login_id flow sub
//
// (userinfo fetched only from a provider with a userinfo endpoint;
// confirmation asked only for a login that came back in another browser,
// which finishes when that browser confirms). Each call to the provider
// writes one record, among those of the login it serves:
//
//	"vippslogin: provider call"        DEBUG  endpoint duration [error] [login_id flow]
//
// endpoint is discovery, jwks, token, userinfo, access_token, backchannel or
// user_exists; duration is a [time.Duration]. A failed request writes one
// record "vippslogin: <kind>" with kind, status, error, method, path (never
// the query), login_id and flow once the login is known, and
// provider_error, provider_error_code and provider_error_description when
// the provider gave them. Its level is INFO when the visitor cancelled
// or went away, WARN for what a visitor's request or browser caused, and
// ERROR only for what an operator must fix: the provider down or failing,
// the session store, the site's configuration. Of each kind and level at
// most 10 records are written in 10 seconds; the next one says in
// suppressed how many were held back.
//
// login_id is 12 hex digits that name one login in all its records; they
// are a hash, and tell nothing of the state, nonce, code or PKCE verifier.
// No record holds those, nor a token or secret. flow is "default", the
// [Flow] asked for, or "phone". return_to is the path the login ends at,
// without its query. sub is only on the finished record. A login from
// phone number writes code exchanged, id token verified and userinfo
// fetched, and at INFO "vippslogin: phone login" with sub; its errors are
// returned to the caller, not logged.
//
// Config.Metrics counts logins started, finished and failed (by kind) and
// times every call to the provider, for Prometheus, OpenTelemetry or
// expvar; examples/basic serves them at /metrics with Prometheus' client
// library. Every call to the provider is made with the context of the
// request that needs it, so a tracing transport in Config.HTTPClient
// (otelhttp.NewTransport) shows the calls in the site's traces; only the
// key set's background refresh has a context of its own.
//
// # Errors
//
// Every failed request is logged through Config.Logger and answered by
// Config.ErrorHandler, by default [WriteError]: a page a person understands
// for browsers and JSON for API clients, never the error's text or any
// token, naming the provider as Config.ProviderName says. [PageFor] gives
// a custom error handler the same texts, as a [Page] for the site's own
// templates. The errors wrap a few sentinels, one for each thing a caller
// may do differently ([ErrLoginCancelled], [ErrLoginExpired],
// [ErrBadCallback], [ErrInvalidIDToken], [ErrProviderUnavailable], ...),
// for errors.Is; an [*Error] says which check failed within one (its
// Reason), and a [*ProviderError] what the provider answered, for
// errors.As.
//
// # Layout
//
// The files of the package, in the order a login meets them:
//
//	options.go       Config, its checks and defaults
//	middleware.go    Client, New, the route table, RequireLogin and LoadClaims
//	chi_adapter.go   MountChi: the route table on a chi router
//	login.go         the login route, LoginOptions and StartLogin, return_to
//	limits.go        how fast a source may start logins
//	pending.go       the pending login: create, bind to the browser, consume, forget
//	session.go       the logged-in session, its store, LoadAndSave
//	callback.go      the callback: one decision over a pending login's state
//	crossbrowser.go  a login that comes back in another browser, and its confirmation
//	token.go         the token endpoint client, for every grant and user-exists
//	verify.go        the ID token's checks
//	userinfo.go      userinfo, and the claims a login keeps
//	claims.go        Claims and the request context
//	logout.go        the logout route and page
//	provider.go      discovery and the key set, cached and refreshed
//	shared.go        one fetch for many callers, and a remembered failure
//	httpclient.go    calls to the provider: Vipps' headers, no cross-origin redirects, URL checks
//	partner.go       partner keys, and the partner's token on each call
//	accesstoken.go   the partner's access token from Vipps' access token API
//	phone.go         login from phone number: start it, user-exists
//	phone_wait.go    waiting for a login from phone number
//	phone_redirect.go  finishing one in the phone's browser
//	scopes.go        Vipps' scopes, and suggestions for a mistyped one
//	errors.go        the errors, and what each tells the user
//	pages.go         the error page, JSON for API clients, PageFor
//	i18n.go          the texts in Norwegian and English, and picking one
//	metrics.go       the log records of a login, and Metrics
//
// Beside it, in packages of their own because they do not need a Client:
//
//	linking/         find the site's account for a Vipps login
//	button/          the login button's markup
//	webhook/         Vipps' CONSENT_REVOKED webhook
//	vippstest/       a mock provider, for tests and development
//	internal/jose    the one seam to the JOSE library
//	internal/gobsession  scs's GobCodec, without describing the types again
//	internal/untrusted  checks of text and dates from the network
//	internal/testsvc the real services tests need, and the soak switch
package vippslogin
