package vippslogin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/vippslogin/vippslogin/internal/gobsession"
)

// SessionStore keeps the logged-in state of the current browser session: the
// encoded, verified claims. The ctx is the request's, which carries the
// session (for scs, inside LoadAndSave).
type SessionStore interface {
	// Load returns what Save stored in this session, or nil when the session
	// is not logged in.
	Load(ctx context.Context) ([]byte, error)
	// Save stores data in this session.
	Save(ctx context.Context, data []byte) error
	// Renew gives the session a new token, keeping its data, so that a token
	// fixed before the login is worthless after it.
	Renew(ctx context.Context) error
	// Destroy ends the session and deletes its data.
	Destroy(ctx context.Context) error
}

// sessionKey is the scs key under which the claims are saved.
const sessionKey = "vippslogin.claims"

// scsSession is the default SessionStore: it keeps the claims in the
// sessions of sm, under the key "vippslogin.claims". Handlers that use it
// must run inside sm.LoadAndSave.
type scsSession struct{ sm *scs.SessionManager }

// errNoSession is returned instead of scs's panic when a handler runs
// outside LoadAndSave.
var errNoSession = fmt.Errorf("%w: no scs session in the request context; wrap the site's handler in SessionManager.LoadAndSave", ErrSessionStore)

// guard turns scs's "no session data in context" panic into an error, so a
// mis-mounted handler answers with a clear error instead of crashing.
func guard(err *error) {
	if recover() != nil {
		*err = errNoSession
	}
}

func (s scsSession) Load(ctx context.Context) (b []byte, err error) {
	defer guard(&err)
	return s.sm.GetBytes(ctx, sessionKey), nil
}

func (s scsSession) Save(ctx context.Context, data []byte) (err error) {
	defer guard(&err)
	s.sm.Put(ctx, sessionKey, data)
	return nil
}

func (s scsSession) Renew(ctx context.Context) (err error) {
	defer guard(&err)
	return s.sm.RenewToken(ctx)
}

func (s scsSession) Destroy(ctx context.Context) (err error) {
	defer guard(&err)
	return s.sm.Destroy(ctx)
}

// LoadAndSave is the scs session manager's LoadAndSave (of
// Config.Sessions) for a site that keeps serving while its session store
// is down. Use it in its place, around everything the site serves:
//
//	log.Fatal(http.ListenAndServe(":8080", auth.LoadAndSave(mux)))
//
// While the store answers, it is scs's LoadAndSave; with scs's default
// codec (scs.GobCodec), it reads and writes the same bytes in a fraction
// of the time, so that a site's own SessionManager and it read each
// other's sessions. When the session of a request cannot be loaded (Redis
// is down, say), the request is served anyway, with a new, empty session
// that is never saved and without a session cookie, so the visitor's real
// session is still there when the store is back:
//   - pages behind [Client.LoadClaims], and those that use no session, are
//     served as to a logged-out visitor;
//   - [Client.RequireLogin] and [Client.RequireStepUp] answer 503
//     (ErrSessionStore, through Config.ErrorHandler) instead of sending a
//     logged-in user to log in again;
//   - the login, callback, confirm and logout routes and
//     [Client.StartLogin] answer 503 too;
//   - whatever the site's own handlers put in the session is dropped.
//
// Each such request is logged once, as a warning, with the same bound on
// the rate of records as the package's other failures. A store that fails
// while a session is saved is still the session manager's ErrorFunc to
// answer: set it to [Client.SessionError].
func (c *Client) LoadAndSave(next http.Handler) http.Handler {
	// It is scs's own LoadAndSave, of a copy of the site's manager (the
	// same sessions, store, cookie and context key) whose ErrorFunc tells
	// a failed load, which it serves without the session, from a failed
	// save, which it leaves to the site's manager's ErrorFunc. So a
	// request costs what scs's LoadAndSave costs, and nothing more; with
	// scs's default codec, less (see fasterCodec).
	sm := c.s.Sessions
	own := *sm
	own.Codec = fasterCodec(sm.Codec)
	own.ErrorFunc = func(w http.ResponseWriter, r *http.Request, err error) {
		if hasSession(sm, r.Context()) { // loaded: the save failed
			sm.ErrorFunc(w, r, err)
			return
		}
		c.logSessionLost(r, err)
		ctx := context.WithValue(r.Context(), sessionLostKey{}, wrapStore(err))
		ctx, _ = sm.Load(ctx, "") // a new session: no store involved, no error
		next.ServeHTTP(w, r.WithContext(ctx))
	}
	return own.LoadAndSave(next)
}

// hasSession reports whether ctx carries a session of sm.
func hasSession(sm *scs.SessionManager, ctx context.Context) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	sm.Status(ctx) // panics without a session
	return true
}

// sessionLostKey is the context key under which LoadAndSave notes that it
// served a request without its session, and why.
type sessionLostKey struct{}

// sessionLost returns why LoadAndSave could not load the session of the
// request with ctx, wrapping ErrSessionStore, or nil when it could.
func sessionLost(ctx context.Context) error {
	err, _ := ctx.Value(sessionLostKey{}).(error)
	return err
}

// logSessionLost writes the one record of a request served without its
// session, bounded in rate by logGate.
func (c *Client) logSessionLost(r *http.Request, err error) {
	ok, suppressed := c.logs.allow("session_unavailable/served", c.s.Now())
	if !ok {
		return
	}
	attrs := []slog.Attr{
		attrErr(err),
		slog.String("kind", "session_unavailable"),
		slog.String("method", r.Method),
		slog.String("path", safeText(r.URL.Path)),
	}
	if suppressed > 0 {
		attrs = append(attrs, slog.Int("suppressed", suppressed))
	}
	c.s.Logger.LogAttrs(r.Context(), levelWarn, "vippslogin: session store unavailable; serving the request without its session", attrs...)
}

// refuseWithoutSession answers a request that needs its session when
// LoadAndSave served it without one, and reports whether it did. The
// outage is logged already, so err (ErrSessionStore, or wrapped by wrap)
// goes to the error handler only.
func (c *Client) refuseWithoutSession(w http.ResponseWriter, r *http.Request, wrap func(error) error) bool {
	err := sessionLost(r.Context())
	if err == nil {
		return false
	}
	if wrap != nil {
		err = wrap(err)
	}
	c.s.ErrorHandler(w, c.withProviderName(r), err)
	return true
}

// records keeps byte records of the package's own in an scs store, beside
// the sessions and not inside one. Each is encoded with the store's Codec
// as a session holding one value, so that SessionManager.Iterate can still
// decode every record in the store. Keys are chosen by the caller
// (pendingLogins).
type records struct {
	store scs.Store
	codec scs.Codec
	now   func() time.Time // Config.Now
	seed  maphash.Seed
	locks [64]sync.Mutex

	// decoded remembers what the codec made of the bytes of recent
	// records, so that a record read again as the store holds it (at the
	// callback, after its login started here, and once more when it is
	// consumed) is not decoded again. The store stays the truth: a
	// remembered record is used only when the store's bytes are the same.
	decodedMu sync.Mutex
	decoded   map[string]decodedRecord
}

// decodedRecord is a record's bytes in the store and its data.
type decodedRecord struct{ stored, data []byte }

// maxDecoded bounds how many decoded records are remembered.
const maxDecoded = 256

func (s *records) remember(key string, stored, data []byte) {
	s.decodedMu.Lock()
	defer s.decodedMu.Unlock()
	if s.decoded == nil || len(s.decoded) >= maxDecoded {
		s.decoded = make(map[string]decodedRecord, maxDecoded)
	}
	s.decoded[key] = decodedRecord{stored, data}
}

func (s *records) recall(key string, stored []byte) ([]byte, bool) {
	s.decodedMu.Lock()
	defer s.decodedMu.Unlock()
	d, ok := s.decoded[key]
	if !ok || !bytes.Equal(d.stored, stored) {
		return nil, false
	}
	return d.data, true
}

func newRecords(sm *scs.SessionManager, now func() time.Time) *records {
	return &records{store: sm.Store, codec: fasterCodec(sm.Codec), now: now, seed: maphash.MakeSeed()}
}

// gobCodec decodes the sessions that Client.LoadAndSave loads, and the
// records, of every Client of the process.
var gobCodec = new(gobsession.Codec)

// fasterCodec returns a codec that reads and writes what codec does: for
// scs's default, scs.GobCodec, one that decodes in a tenth of its time and
// allocations, and otherwise codec.
func fasterCodec(codec scs.Codec) scs.Codec {
	if _, ok := codec.(scs.GobCodec); ok {
		return gobCodec
	}
	return codec
}

// recordValue is the one value of the session a record is stored as;
// oldRecordValue was its name in older versions, still read.
const recordValue, oldRecordValue = "vl", "vippslogin.pending"

// put stores data under key until expiry. Some stores (scs's Redis
// stores) keep a record with no time left for ever: every record gets at
// least a second.
func (s *records) put(ctx context.Context, key string, data []byte, expiry time.Time) error {
	if soonest := s.now().Add(time.Second); expiry.Before(soonest) {
		expiry = soonest
	}
	// The store expires the record by the machine's clock, the one place
	// where the package's own clock does not rule: a Config.Now behind it
	// must not hand Redis an expiry already past.
	if soonest := time.Now().Add(time.Second); expiry.Before(soonest) {
		expiry = soonest
	}
	b, err := s.codec.Encode(expiry, map[string]any{recordValue: data})
	if err == nil {
		if cs, ok := s.store.(scs.CtxStore); ok {
			err = cs.CommitCtx(ctx, key, b, expiry)
		} else {
			err = s.store.Commit(key, b, expiry)
		}
	}
	if err == nil {
		s.remember(key, b, data)
	}
	return wrapStoreErr(err)
}

// get returns the data under key, or nil when there is none.
func (s *records) get(ctx context.Context, key string) ([]byte, error) {
	var (
		b     []byte
		found bool
		err   error
	)
	if cs, ok := s.store.(scs.CtxStore); ok {
		b, found, err = cs.FindCtx(ctx, key)
	} else {
		b, found, err = s.store.Find(key)
	}
	if err != nil || !found {
		return nil, wrapStoreErr(err)
	}
	if data, ok := s.recall(key, b); ok {
		return data, nil
	}
	_, values, err := s.codec.Decode(b)
	data, ok := values[recordValue].([]byte)
	if !ok {
		data, ok = values[oldRecordValue].([]byte)
	}
	if err != nil || !ok {
		return nil, wrapStore(errCorruptRecord)
	}
	s.remember(key, b, data)
	return data, nil
}

// take is get, then delete, under a lock: single use within this process.
// Across processes it is a find followed by a delete.
func (s *records) take(ctx context.Context, key string) ([]byte, error) {
	mu := s.lock(key)
	mu.Lock()
	defer mu.Unlock()
	data, err := s.get(ctx, key)
	if err != nil || data == nil {
		return nil, err
	}
	return data, s.delete(ctx, key)
}

func (s *records) delete(ctx context.Context, key string) error {
	s.decodedMu.Lock()
	delete(s.decoded, key)
	s.decodedMu.Unlock()
	if cs, ok := s.store.(scs.CtxStore); ok {
		return wrapStoreErr(cs.DeleteCtx(ctx, key))
	}
	return wrapStoreErr(s.store.Delete(key))
}

// lock returns the lock of key, one of a few shared by all keys.
func (s *records) lock(key string) *sync.Mutex {
	return &s.locks[maphash.String(s.seed, key)%uint64(len(s.locks))]
}

var errCorruptRecord = errors.New("vippslogin: corrupt pending-login record")

// wrapStoreErr is wrapStore, with nil for nil.
func wrapStoreErr(err error) error {
	if err == nil {
		return nil
	}
	return wrapStore(err)
}
