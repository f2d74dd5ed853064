package vippslogin

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"
)

// pendingLogins owns every login under way, from start to end: it creates
// the record, binds it to the browser, looks it up, consumes it once,
// remembers it as used, and forgets it. Nothing else knows how a record is
// keyed, encoded or bound. Records live in the site's scs store ([records])
// in a keyspace of their own: every key has 43 characters, like an scs
// token, and starts with ';', which no cookie value can hold, so no session
// cookie names a record. A browser is bound by a cookie with a secret and
// the states of its logins; a record keeps a hash of the secret. The cookie
// outlives the records, so a browser recognises its own expired login.
type pendingLogins struct {
	records    *records
	ttl        time.Duration
	now        func() time.Time
	perBrowser int
	secure     bool
}

// loginStatus is what a callback's state names.
type loginStatus int

const (
	loginUnknown loginStatus = iota // no login of this browser has it
	loginExpired                    // ran past PendingLoginTTL
	loginPending                    // waits for its callback
	loginUsed                       // its callback has been taken
)

// pendingLogin is the record of a started login.
type pendingLogin struct {
	Verifier string `json:"v,omitempty"` // PKCE code_verifier
	Nonce    string `json:"n,omitempty"` // nonce sent, in records older than nonceOf
	ReturnTo string `json:"r"`           // checked same-site path
	Created  int64  `json:"c"`           // unix seconds
	Binding  string `json:"b"`           // hash of the browser's secret
	ACR      string `json:"a,omitempty"` // the acr the ID token must carry
	Flow     Flow   `json:"f,omitempty"` // the requested_flow
	Used     bool   `json:"u,omitempty"` // its callback has been taken

	stored []byte // the JSON it was read from
}

// handoff is a verified login that came back in another browser, waiting for it to confirm.
type handoff struct {
	ID       string          `json:"id"`          // names it on the page that asks
	Login    string          `json:"l,omitempty"` // the login_id of its records
	Claims   json.RawMessage `json:"cl"`
	ReturnTo string          `json:"r"`
	Created  int64           `json:"c"` // unix seconds
}

// Keyspaces: logins by state, hand-offs by secret, phone logins by auth_req_id.
const spaceLogin, spaceHandoff, spacePhone = 'l', 'h', 'p'

// recordKey is the store key of the record that id names in space.
func recordKey(space byte, id string) string {
	sum := sha256.Sum256(append([]byte{'v', 'l', space, 0}, id...))
	return ";" + string(space) + base64.RawURLEncoding.EncodeToString(sum[:])[:41]
}

// start stores rec as a new login bound to the browser of r and returns its
// state. A browser keeps perBrowser logins: one more forgets the oldest.
func (p *pendingLogins) start(ctx context.Context, w http.ResponseWriter, r *http.Request, rec *pendingLogin) (string, error) {
	secret, states := p.readBinding(r)
	secret, state := cmp.Or(secret, randomString()), randomString()
	rec.Binding = bindingHash(secret)
	if err := p.put(ctx, spaceLogin, state, rec, time.Unix(rec.Created, 0).Add(p.ttl)); err != nil {
		return "", err
	}
	if states = append(states, state); len(states) > p.perBrowser {
		states = states[len(states)-p.perBrowser:] // the oldest are forgotten; their records expire
	}
	p.setBinding(w, secret, states)
	return state, nil
}

// lookup finds the login of state, and whether the browser of r started it.
func (p *pendingLogins) lookup(ctx context.Context, r *http.Request, state string) (*pendingLogin, loginStatus, bool, error) {
	if !validToken(state) {
		return nil, loginUnknown, false, nil
	}
	var rec pendingLogin
	found, err := p.get(ctx, spaceLogin, state, &rec, false, nil)
	secret, states := p.readBinding(r)
	switch {
	case err != nil:
		return nil, loginUnknown, false, err
	case !found && slices.Contains(states, state):
		return nil, loginExpired, false, nil // the browser knows it; the store has let it go
	case !found:
		return nil, loginUnknown, false, nil
	}
	bound := rec.sameBinding(secret)
	switch {
	case rec.Used:
		return &rec, loginUsed, bound, nil
	case p.now().Sub(time.Unix(rec.Created, 0)) > p.ttl:
		return &rec, loginExpired, bound, nil
	}
	return &rec, loginPending, bound, nil
}

// consume takes the login of state for its callback, leaving a record that
// says it is used (nil: no longer pending). One concurrent call in a process
// gets it; across processes the provider redeems each code once. seen, when
// not nil, is the record as lookup read it: if the store still holds the
// same bytes, it is not decoded again.
func (p *pendingLogins) consume(ctx context.Context, w http.ResponseWriter, r *http.Request, state string, seen *pendingLogin) (*pendingLogin, error) {
	mu := p.records.lock(recordKey(spaceLogin, state))
	mu.Lock()
	defer mu.Unlock()
	p.forget(w, r, state)
	var rec pendingLogin
	if found, err := p.get(ctx, spaceLogin, state, &rec, false, seen); err != nil || !found || rec.Used {
		return nil, err
	}
	used := &pendingLogin{ReturnTo: rec.ReturnTo, Created: rec.Created, Binding: rec.Binding, Used: true, Flow: rec.Flow}
	if err := p.put(ctx, spaceLogin, state, used, time.Unix(rec.Created, 0).Add(p.ttl)); err != nil {
		return nil, err
	}
	return &rec, nil
}

// forget drops state from the browser's list of its logins.
func (p *pendingLogins) forget(w http.ResponseWriter, r *http.Request, state string) {
	secret, states := p.readBinding(r)
	if kept := slices.DeleteFunc(slices.Clone(states), func(s string) bool { return s == state }); len(kept) != len(states) {
		p.setBinding(w, secret, kept)
	}
}

// bind binds the browser of r now, so that tabs sent to log in share one secret.
func (p *pendingLogins) bind(w http.ResponseWriter, r *http.Request) {
	if secret, _ := p.readBinding(r); secret == "" {
		p.setBinding(w, randomString(), nil)
	}
}

// handOff keeps h until the browser confirms it, with the secret in a cookie.
func (p *pendingLogins) handOff(ctx context.Context, w http.ResponseWriter, h *handoff) error {
	secret := randomString()
	h.ID = randomString()
	if err := p.put(ctx, spaceHandoff, secret, h, time.Unix(h.Created, 0).Add(p.ttl)); err != nil {
		return err
	}
	p.setCookie(w, "-confirm", secret, int(p.ttl/time.Second))
	return nil
}

// handoff finds the hand-off the browser of r may confirm. With an id, it
// takes it (once), if it is the one id names, and clears the secret.
func (p *pendingLogins) handoff(ctx context.Context, w http.ResponseWriter, r *http.Request, id string) (*handoff, loginStatus, error) {
	ck, err := r.Cookie(p.cookieName("-confirm"))
	if err != nil || !validToken(ck.Value) {
		return nil, loginUnknown, nil
	}
	if id != "" {
		p.setCookie(w, "-confirm", "", -1)
	}
	var h handoff
	switch found, err := p.get(ctx, spaceHandoff, ck.Value, &h, id != "", nil); {
	case err != nil:
		return nil, loginUnknown, err
	case !found, p.now().Sub(time.Unix(h.Created, 0)) > p.ttl:
		return nil, loginExpired, nil // the browser holds a secret the store has let go
	case id != "" && subtle.ConstantTimeCompare([]byte(h.ID), []byte(id)) != 1:
		// Not the login the page asked about: a callback opened since swapped the cookie.
		return nil, loginUnknown, nil
	}
	return &h, loginPending, nil
}

// put stores v, as JSON, under the key of id in space until expiry.
func (p *pendingLogins) put(ctx context.Context, space byte, id string, v any, expiry time.Time) error {
	data, _ := json.Marshal(v) // records are plain structs: Marshal cannot fail
	return p.records.put(ctx, recordKey(space, id), data, expiry)
}

// get (with take: takes) the record of id in space into v, and reports
// whether there was one. A login's record that holds the bytes seen was
// read from is seen.
func (p *pendingLogins) get(ctx context.Context, space byte, id string, v any, take bool, seen *pendingLogin) (bool, error) {
	read := p.records.get
	if take {
		read = p.records.take
	}
	data, err := read(ctx, recordKey(space, id))
	if err != nil || data == nil {
		return false, err
	}
	rec, isLogin := v.(*pendingLogin)
	if isLogin && seen != nil && seen.stored != nil && bytes.Equal(seen.stored, data) {
		*rec = *seen
		return true, nil
	}
	if json.Unmarshal(data, v) != nil || isLogin && !rec.wellFormed() {
		return false, wrapStore(errCorruptRecord)
	}
	if isLogin {
		rec.stored = data
	}
	return true, nil
}

// bindingHash is what a record keeps of the browser's binding secret.
//
// It is 132 bits of a hash of the secret (a record of an older version
// holds more of the same hash).
func bindingHash(secret string) string { return recordKey('b', secret)[:bindingLen] }

// bindingLen is the length of a bindingHash.
const bindingLen = 24

// sameBinding reports, in constant time, whether the record's binding is
// that of secret.
func (rec *pendingLogin) sameBinding(secret string) bool {
	if secret == "" || len(rec.Binding) < bindingLen {
		return false
	}
	h := recordKey('b', secret)
	return subtle.ConstantTimeCompare([]byte(h[:min(len(rec.Binding), len(h))]), []byte(rec.Binding)) == 1
}

// nonce is the nonce of the login's authorization request and ID token:
// made from the PKCE verifier, which only the record holds, so that the
// record need not keep both. Knowing the nonce, which travels in URLs and
// tokens, tells nothing of the verifier.
func (rec *pendingLogin) nonce() string {
	if rec.Nonce != "" {
		return rec.Nonce
	}
	sum := sha256.Sum256([]byte("vippslogin nonce\x00" + rec.Verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// wellFormed reports whether rec is a record that start or consume wrote.
func (rec *pendingLogin) wellFormed() bool {
	rt, err := cleanReturnTo(rec.ReturnTo)
	return err == nil && rt != "" && len(rec.Binding) >= bindingLen && (rec.Used || rec.Verifier != "")
}

// A binding cookie outlives any login and is read with 20 states at most.
const bindingLifetime, maxCookieStates = 24 * time.Hour, 20

// cookieName is "vippslogin" + suffix, with the __Host- prefix on https.
func (p *pendingLogins) cookieName(suffix string) string {
	if p.secure {
		return "__Host-vippslogin" + suffix
	}
	return "vippslogin" + suffix
}

// readBinding returns the browser's secret and its logins' states, oldest first.
func (p *pendingLogins) readBinding(r *http.Request) (secret string, states []string) {
	ck, err := r.Cookie(p.cookieName(""))
	if err != nil {
		return "", nil
	}
	parts := strings.Split(ck.Value, ".")
	if len(parts) > 1+maxCookieStates || !validToken(parts[0]) {
		return "", nil
	}
	return parts[0], slices.DeleteFunc(parts[1:], func(s string) bool { return !validToken(s) })
}

func (p *pendingLogins) setBinding(w http.ResponseWriter, secret string, states []string) {
	if secret != "" {
		p.setCookie(w, "", strings.Join(append([]string{secret}, states...), "."), int(bindingLifetime/time.Second))
	}
}

func (p *pendingLogins) setCookie(w http.ResponseWriter, suffix, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: p.cookieName(suffix), Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: p.secure, SameSite: http.SameSiteLaxMode})
}
