package vippslogin

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"time"

	"github.com/alexedwards/scs/v2"
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

// PendingStore keeps pending logins, each as its own record, so that
// requests that save the browser's session while a login is under way cannot
// overwrite it. Keys are made by this package and are safe in any store.
type PendingStore interface {
	// Put stores data under key until expiry.
	Put(ctx context.Context, key string, data []byte, expiry time.Time) error
	// Take returns the data under key and deletes it. It returns nil, nil
	// when there is no such record or it has expired. Of several Take calls
	// for the same key at the same time at most one should get the data;
	// stores that cannot promise that across processes still get single use
	// from the provider, which redeems each code once.
	Take(ctx context.Context, key string) ([]byte, error)
}

// sessionKey is the scs key under which the claims are saved.
const sessionKey = "vippslogin.claims"

// NewSCSSessionStore returns a SessionStore that keeps the claims in the
// sessions of sm, under the key "vippslogin.claims". Handlers that use it
// must run inside sm.LoadAndSave.
func NewSCSSessionStore(sm *scs.SessionManager) SessionStore { return scsSession{sm} }

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

// pendingPrefix starts every key this package writes to an scs store. scs's
// own tokens are base64url and never contain ':'.
const pendingPrefix = "vippslogin:pending:"

// pendingValue is the key under which a pending login's data sits in the
// session-shaped record it is stored as.
const pendingValue = "vippslogin.pending"

// NewSCSPendingStore returns a PendingStore that keeps each pending login as
// a record of its own in sm's store (memstore, redisstore, postgresstore,
// ...), beside the sessions and not inside one. Each record is encoded with
// sm's Codec as a session holding one value, "vippslogin.pending", so that
// SessionManager.Iterate can still decode every record in the store. Take is
// single-use within this process; across processes it is a find followed by
// a delete.
func NewSCSPendingStore(sm *scs.SessionManager) PendingStore {
	return &scsPending{sm: sm, seed: maphash.MakeSeed()}
}

type scsPending struct {
	sm    *scs.SessionManager
	seed  maphash.Seed
	locks [64]sync.Mutex
}

func (s *scsPending) Put(ctx context.Context, key string, data []byte, expiry time.Time) error {
	// Stores expire records by the real clock, and some (scs's Redis
	// stores) keep a record with no time left for ever: give every record
	// a little time, so that it always expires. The Client checks a login's
	// age by its own clock anyway.
	if soonest := time.Now().Add(time.Second); expiry.Before(soonest) {
		expiry = soonest
	}
	b, err := s.sm.Codec.Encode(expiry, map[string]any{pendingValue: data})
	if err != nil {
		return err
	}
	if cs, ok := s.sm.Store.(scs.CtxStore); ok {
		return cs.CommitCtx(ctx, pendingPrefix+key, b, expiry)
	}
	return s.sm.Store.Commit(pendingPrefix+key, b, expiry)
}

func (s *scsPending) Take(ctx context.Context, key string) ([]byte, error) {
	mu := &s.locks[maphash.String(s.seed, key)%uint64(len(s.locks))]
	mu.Lock()
	defer mu.Unlock()
	k := pendingPrefix + key
	var (
		b     []byte
		found bool
		err   error
	)
	cs, isCtx := s.sm.Store.(scs.CtxStore)
	if isCtx {
		b, found, err = cs.FindCtx(ctx, k)
	} else {
		b, found, err = s.sm.Store.Find(k)
	}
	if err != nil || !found {
		return nil, err
	}
	if isCtx {
		err = cs.DeleteCtx(ctx, k)
	} else {
		err = s.sm.Store.Delete(k)
	}
	if err != nil {
		return nil, err
	}
	_, values, err := s.sm.Codec.Decode(b)
	if err != nil {
		return nil, err
	}
	data, ok := values[pendingValue].([]byte)
	if !ok {
		return nil, errCorruptRecord
	}
	return data, nil
}

// pendingLogin is the record of a started login, stored under the hash of
// its state.
type pendingLogin struct {
	Verifier string `json:"v"`           // PKCE code_verifier
	Nonce    string `json:"n"`           // nonce sent in the request
	ReturnTo string `json:"r"`           // checked same-site path
	Created  int64  `json:"c"`           // unix seconds
	Binding  string `json:"b"`           // hash of the browser's binding secret
	ACR      string `json:"a,omitempty"` // the acr the ID token must carry
	Flow     Flow   `json:"f,omitempty"` // the requested_flow

	// A login that came back in another browser (Config.CrossBrowserReturn)
	// waits for that browser to confirm it, or for this one to pick it up.
	Handoff bool            `json:"h,omitempty"`
	Claims  json.RawMessage `json:"cl,omitempty"` // the verified claims
	Confirm string          `json:"k,omitempty"`  // hash of the other browser's confirm secret
	Done    bool            `json:"d,omitempty"`  // the login was completed: a tombstone
}

// tombstone is what is left of rec once its callback has been taken.
func (rec *pendingLogin) tombstone() *pendingLogin {
	return &pendingLogin{ReturnTo: rec.ReturnTo, Created: rec.Created, Binding: rec.Binding, Done: true}
}

// pendingKey is the store key of the login with the given state.
func pendingKey(state string) string {
	sum := sha256.Sum256([]byte(state))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// bindingHash is what a pending login keeps of the browser's binding secret.
func bindingHash(secret string) string {
	sum := sha256.Sum256([]byte("vippslogin binding\x00" + secret))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

var errCorruptRecord = errors.New("vippslogin: corrupt pending-login record")

// startWindow counts the logins started in the last PendingLoginTTL, in
// startSlots slots, to bound how many pending logins can exist at once. It
// also counts the logins it refuses, so that a flood is logged now and then
// rather than once per request.
type startWindow struct {
	mu     sync.Mutex
	slot   time.Duration
	max    int
	counts [startSlots]int
	ids    [startSlots]int64 // which slot of time each count is for

	refused int       // refusals since the last record of them
	logged  time.Time // when refusals were last logged
}

// startSlots: sixty slots cover the TTL, and one more the slot under way,
// so a login is counted for at most a sixtieth of the TTL after its record
// expires.
const startSlots = 61

// refusalLogEvery is how often a flood of refused logins is logged.
const refusalLogEvery = 10 * time.Second

func newStartWindow(ttl time.Duration, max int) *startWindow {
	return &startWindow{slot: ttl / (startSlots - 1), max: max}
}

// allow counts a login started at now, unless the window is full.
func (w *startWindow) allow(now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	id := now.UnixNano() / int64(w.slot)
	total := 0
	for i := range w.counts {
		if d := id - w.ids[i]; d >= 0 && d < startSlots {
			total += w.counts[i]
		}
	}
	if total >= w.max {
		w.refused++
		return false
	}
	j := id % startSlots
	if w.ids[j] != id {
		w.ids[j], w.counts[j] = id, 0
	}
	w.counts[j]++
	return true
}

// refusalsToLog returns how many logins were refused since the last record
// of them, when it is time for another record, and 0 otherwise.
func (w *startWindow) refusalsToLog(now time.Time) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.refused == 0 || !w.logged.IsZero() && now.Sub(w.logged) < refusalLogEvery {
		return 0
	}
	n := w.refused
	w.refused, w.logged = 0, now
	return n
}
