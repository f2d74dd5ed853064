package vippslogin

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/url"
	"strings"
	"time"
)

// The redirect variant of the login from phone number
// (requested_flow=login_to_webpage): the app opens the site's redirect URI
// with a code, and the ID token names the started login by its auth_req_id.

// FinishPhoneLogin finishes a redirect login ([PhoneLoginRequest].RedirectURI)
// with the code that the app sent to the redirect URI (?code=..., without
// state), and returns the verified claims. Call it from the handler of the
// redirect URI; the request comes from the user's phone, to any instance of
// the site.
//
// It exchanges the code (grant urn:vipps:params:grant-type:ciba-redirect,
// with the client authentication of Config.TokenAuthMethod) and looks up the
// started login that the ID token's auth_req_id names (claim auth_req_id or
// authReqId: Vipps' guide uses both). The login must be one this Client's
// session store holds, not expired, and not finished before: each is used
// once. Then the ID token is verified as in a browser login, with these
// differences, all from Vipps' example ID token: it is bound to the login by
// its auth_req_id, whose hash must equal the one stored (compared in
// constant time); a nonce is checked only if the token carries one; msn
// is not required (when present and Config.MerchantSerialNumber is set, it
// must match); and ES256 is accepted even where discovery names only RS256.
// Then userinfo is fetched.
//
// A code for an unknown, finished or forgotten login, or whose ID token has
// no auth_req_id or two different ones, is refused with ErrInvalidIDToken
// (reason "auth_req_id"); one for an expired login with ErrLoginExpired.
// Token endpoint refusals are [*ProviderError].
func (c *Client) FinishPhoneLogin(ctx context.Context, code string) (*Claims, error) {
	if code == "" || len(code) > 4096 || !printableASCII(code) {
		return nil, newErr(ErrBadCallback, "malformed", "code missing or malformed")
	}
	meta, err := c.provider.metadata(ctx)
	if err != nil {
		return nil, err
	}
	tok, err := c.tokens.redeem(ctx, meta, url.Values{"grant_type": {grantCIBARedirect}, "code": {code}})
	if err != nil {
		return nil, err
	}
	// The redirect carries no state: the ID token's auth_req_id says which
	// login this is. It is read unverified only to find the login; the
	// token is verified, and its auth_req_id compared with the login's,
	// before anything is believed.
	id := unverifiedAuthReqID(tok.IDToken)
	if id == "" {
		return nil, idTokenErr("auth_req_id", "no auth_req_id")
	}
	ctx = withLogin(ctx, loginID(id), flowPhone)
	c.s.logStep(ctx, slog.LevelDebug, recCodeExchanged)
	var rec phoneRecord
	found, err := c.pending.get(ctx, spacePhone, id, &rec, true, nil)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, idTokenErr("auth_req_id", "")
	}
	if rec.Nonce == "" || rec.Hash == "" {
		return nil, wrapStore(errCorruptRecord)
	}
	if c.s.Now().After(time.Unix(rec.Expires, 0).Add(phoneExpiryGrace)) {
		return nil, newErr(ErrLoginExpired, "phone_login", "the code came after the login expired")
	}
	return c.phoneClaims(ctx, meta, tok, rec.Nonce, rec.Hash, false)
}

// phoneRecord is what the session store keeps of a started redirect login.
type phoneRecord struct {
	Nonce   string `json:"n"` // nonce sent in the request
	Hash    string `json:"h"` // authReqIDHash of the auth_req_id
	Expires int64  `json:"e"` // unix seconds
}

// unverifiedAuthReqID reads the auth_req_id of an ID token without
// verifying it, or returns "".
func unverifiedAuthReqID(raw string) string {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 || len(parts[1]) > 64<<10 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	d := json.NewDecoder(bytes.NewReader(payload))
	d.UseNumber()
	var claims map[string]any
	if d.Decode(&claims) != nil {
		return ""
	}
	id, err := authReqIDClaim(claims)
	if err != nil || !validAuthReqID(id) {
		return ""
	}
	return id
}
