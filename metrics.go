package vippslogin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"time"
)

// What the Client tells operators: the records of a login's steps, the
// calls to the provider, and the hooks a site counts them with. The records
// and their attributes are listed in the package documentation, "Logs and
// metrics".

// Metrics are functions the Client calls as browser logins go and as it
// calls the provider, for a site's counters and histograms (Prometheus,
// OpenTelemetry, expvar: the package depends on none). Any of them may be
// nil. Each gets the context of the request or call it reports on, with the
// site's trace and request ids in it, for exemplars.
//
// They run on the request's goroutine, in the middle of a login, and are
// called concurrently: they must be safe for concurrent use and fast
// (increment a counter, observe a histogram; never block on I/O).
//
// It is a struct of functions, like net/http/httptrace's ClientTrace, so
// that a site sets only those it wants, and a later version can add more
// without breaking any site's code.
type Metrics struct {
	// LoginStarted is called when a login has been started: its pending
	// login stored and the browser sent to the provider.
	LoginStarted func(ctx context.Context)

	// LoginFinished is called when a login has logged a browser in.
	LoginFinished func(ctx context.Context)

	// LoginFailed is called once for every login that fails, and for every
	// login refused at its start (LoginStarted was not called for those),
	// with kind, the failure's kind: the kind attribute of its log record
	// and the error code of the JSON answer, one of a fixed set
	// ("access_denied", "other_browser", "provider_unavailable", ...), fit
	// for a metric's label. It is called for every failure, also those
	// whose records the log holds back.
	LoginFailed func(ctx context.Context, kind string)

	// ProviderCall is called after every call to the provider, with the
	// endpoint ("discovery", "jwks", "token", "userinfo", "access_token",
	// "backchannel" or "user_exists"), how long the call took, and its
	// error: nil when the provider answered as asked, else what went wrong
	// (no answer, an error status, an answer that does not parse). A
	// pending answer to a login from phone number that is being waited
	// for (authorization_pending, slow_down) is not an error.
	ProviderCall func(ctx context.Context, endpoint string, d time.Duration, err error)
}

// The messages of the records of a login's steps and of the calls to the
// provider.
const (
	recLoginStarted     = "vippslogin: login started"
	recCallbackReceived = "vippslogin: callback received"
	recCodeExchanged    = "vippslogin: code exchanged"
	recIDTokenVerified  = "vippslogin: id token verified"
	recUserinfoFetched  = "vippslogin: userinfo fetched"
	recConfirmAsked     = "vippslogin: confirmation asked"
	recLoginFinished    = "vippslogin: login finished"
	recPhoneLogin       = "vippslogin: phone login"
	recProviderCall     = "vippslogin: provider call"
)

// The endpoints that Metrics.ProviderCall and the records of provider calls
// name.
const (
	endpointDiscovery   = "discovery"
	endpointJWKS        = "jwks"
	endpointToken       = "token"
	endpointUserinfo    = "userinfo"
	endpointAccessToken = "access_token"
	endpointBackchannel = "backchannel"
	endpointUserExists  = "user_exists"
)

// flowPhone is the flow the records of a login from phone number name.
const flowPhone = "phone"

// loginKey is the context key of the login a request or call serves.
type loginKey struct{}

// loginLog names a login in log records.
type loginLog struct {
	id   string // login_id
	flow string
}

// withLogin returns ctx naming the login id (see loginID) of flow, so that
// every record written with it carries login_id and flow.
func withLogin(ctx context.Context, id, flow string) context.Context {
	return context.WithValue(ctx, loginKey{}, &loginLog{id: id, flow: flow})
}

// loginOf returns the login ctx names, or nil.
func loginOf(ctx context.Context) *loginLog {
	l, _ := ctx.Value(loginKey{}).(*loginLog)
	return l
}

// detached returns a context with the values of ctx (a site's trace and
// request ids), but not its cancellation nor the login it names: for a
// fetch that serves other requests too.
func detached(ctx context.Context) context.Context {
	ctx = context.WithoutCancel(ctx)
	if loginOf(ctx) != nil {
		ctx = context.WithValue(ctx, loginKey{}, (*loginLog)(nil))
	}
	return ctx
}

// loginID is the login_id of the login that secret (its state, or its
// auth_req_id) names: 12 hex digits of a hash, enough to tell the logins
// of a log apart. It tells nothing of secret, which no record holds.
func loginID(secret string) string {
	sum := sha256.Sum256([]byte("vippslogin login_id\x00" + secret))
	return hex.EncodeToString(sum[:6])
}

// validLoginID reports whether s looks like a loginID.
func validLoginID(s string) bool {
	_, err := hex.DecodeString(s)
	return len(s) == 12 && err == nil
}

// flowName is the flow attribute of a browser login with f.
func flowName(f Flow) string {
	switch f {
	case "":
		return "default"
	case FlowAutomaticReturn, FlowAppToApp, FlowAppToAppV2:
		return string(f)
	}
	return "unknown"
}

// logStep writes the record msg of a step of a login, adding the login_id
// and flow of the login ctx names.
func (s *settings) logStep(ctx context.Context, level slog.Level, msg string, attrs ...slog.Attr) {
	if !s.Logger.Enabled(ctx, level) {
		return
	}
	if l := loginOf(ctx); l != nil {
		attrs = append([]slog.Attr{slog.String("login_id", l.id), slog.String("flow", l.flow)}, attrs...)
	}
	s.Logger.LogAttrs(ctx, level, msg, attrs...)
}

// providerCall reports a call to endpoint that began at start and ended
// with err, to Metrics.ProviderCall and in a DEBUG record. Durations are
// measured on the monotonic clock: Config.Now is the clock the package
// judges times by, and may stand still in tests.
func (s *settings) providerCall(ctx context.Context, endpoint string, start time.Time, err error) {
	d := time.Since(start)
	if f := s.Metrics.ProviderCall; f != nil {
		f(ctx, endpoint, d, err)
	}
	if !s.Logger.Enabled(ctx, slog.LevelDebug) {
		return
	}
	attrs := []slog.Attr{slog.String("endpoint", endpoint), slog.Duration("duration", d)}
	if err != nil {
		attrs = append(attrs, attrErr(err))
	}
	s.logStep(ctx, slog.LevelDebug, recProviderCall, attrs...)
}
