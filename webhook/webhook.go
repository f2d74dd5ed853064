// Package webhook handles Vipps MobilePay's consent webhook: the
// CONSENT_REVOKED event Vipps sends when a user withdraws, in the app, the
// consent to share their data with the sales unit. The event is unsigned,
// so [New]'s handler requires a shared secret and the site treats an event
// as a hint.
package webhook

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vippslogin/vippslogin"
	"github.com/vippslogin/vippslogin/internal/untrusted"
)

// ConsentRevoked is a CONSENT_REVOKED event: the user withdrew, in the Vipps
// or MobilePay app, the consent to share their profile with the sales unit.
// The event is unsigned; see [New] for what that means.
type ConsentRevoked struct {
	// Subject is the user's sub at this sales unit, as in
	// [vippslogin.Claims].Subject.
	Subject string

	// IssuedAt and ExpiresAt are the event's iat and exp. Vipps gives an
	// event five minutes.
	IssuedAt, ExpiresAt time.Time
}

// Config configures the handler that [New] returns.
type Config struct {
	// Secret is the shared secret every request must carry, in the query
	// parameter "secret" or in an "Authorization: Bearer" header. It is 32
	// to 512 characters from A-Z a-z 0-9 - . _ ~, so that it stands in a URL
	// as it is; `openssl rand -hex 32` makes a good one. Required.
	Secret vippslogin.Secret

	// OnRevoked acts on an accepted event. It gets the request's context,
	// which ends when the sender hangs up. It should be quick and
	// idempotent, since the same event may come more than once, and return
	// nil for a sub the site does not know. An error makes the handler
	// answer 500, so that the sender may try again. Required.
	OnRevoked func(ctx context.Context, e ConsentRevoked) error

	// Logger receives a record of every event and every refused request.
	// Default: slog.Default().
	Logger *slog.Logger

	// Now is the clock. Default: time.Now.
	Now func() time.Time

	// ClockSkew is how far the sender's clock may be from ours when exp,
	// iat and nbf are checked. At most 5 minutes. Default: 1 minute.
	ClockSkew time.Duration

	// MaxBodyBytes bounds the request body; a longer body is answered with
	// 413. Vipps' events are about 250 bytes. 1 KiB to 1 MiB.
	// Default: 16 KiB.
	MaxBodyBytes int64
}

// Bounds of Config.Secret.
const (
	minSecret = 32
	maxSecret = 512
)

// consentRevokedEvent is the event claim of a consent revocation.
const consentRevokedEvent = "CONSENT_REVOKED"

// New checks cfg and returns the handler for Vipps MobilePay's
// consent webhook, which Vipps calls with a CONSENT_REVOKED event when a user
// withdraws, in the app, the consent to share their data with the sales
// unit. The errors it returns wrap [vippslogin.ErrInvalidConfig] and name
// the field to fix. The handler is safe for concurrent use.
//
// The event is unsigned. Vipps sends it as an unsecured JWT (alg "none"),
// and says it is no more trustworthy than plain JSON: nothing in it proves
// that Vipps sent it. The handler therefore requires the shared Secret, but
// whoever learns the webhook URL with its secret can send an event for any
// sub, and can send a captured event again until it expires. Treat an event
// as a hint and act on it in ways that are harmless when it is forged:
// forget the profile data that came from Vipps, or mark the link to the
// Vipps account as needing fresh consent (the next login with Vipps asks the
// user for consent again). Do not delete or lock accounts, or log users
// out everywhere, on an event alone.
//
// Vipps lets the merchant give the webhook only as a URL, so the secret goes
// into its query:
//
//	https://shop.example/webhooks/vipps-consent?secret=<Secret>
//
// That URL must be https, so that the secret travels encrypted, and must be
// kept out of access logs and proxies' logs; the handler itself never logs a
// query, a header or a body. A sender that can set headers may send
// "Authorization: Bearer <Secret>" instead. Every secret a request carries
// must be right, and it must carry at least one; they are compared in
// constant time.
//
// A request passes these checks in this order, and the first that fails
// decides the answer:
//
//   - the method is POST; else 405 method_not_allowed, with "Allow: POST";
//   - the secret is right; else 401 unauthorized;
//   - there is one Content-Type, text/plain (what Vipps sends) or
//     application/jwt, with any parameters, but a charset must be utf-8 or
//     us-ascii; and no Content-Encoding but identity; else 415
//     unsupported_media_type;
//   - the body is at most MaxBodyBytes; else 413 body_too_large (or 400
//     bad_request when it cannot be read, as when the sender hangs up);
//   - the body, without surrounding spaces and line breaks, is an unsecured
//     JWT: a header and a payload in unpadded base64url, separated by a dot
//     and followed by an empty signature ("header.payload.", RFC 7519) or
//     by nothing ("header.payload", as in Vipps' documented example); both
//     are JSON objects, valid UTF-8 without repeated member names; the
//     header has no "crit" and its "typ", if any, is "JWT"; else 400
//     malformed_token;
//   - the header's alg is exactly "none"; else 400 unsupported_alg. This
//     handler verifies no signature, so a signed token is refused rather
//     than taken on trust: should Vipps start signing the events, the
//     refusals show in the log and the handler must learn to verify them;
//   - the payload's event is "CONSENT_REVOKED"; else 400 unsupported_event;
//   - sub is a string of 1 to 255 ASCII characters from '!' to '~'; else
//     400 invalid_sub;
//   - exp and iat are present, nbf may be, all are NumericDates, and exp is
//     after iat; else 400 invalid_claims;
//   - exp has not passed; else 400 token_expired;
//   - iat and nbf are not in the future; else 400 token_not_yet_valid.
//
// exp, iat and nbf are checked with ClockSkew to spare. Other claims and
// header parameters are ignored. Then OnRevoked runs: when it returns nil
// the answer is 204 No Content, and when it fails, 500 internal_error.
//
// Every refusal is answered with JSON of the form {"error": code,
// "message": text}, and logged to Logger as "vippslogin: consent webhook
// refused" with the code as kind, the status, a short reason in the
// package's own words, the method and the path: at info for 405 and an
// unreadable body, at warn otherwise. A failed OnRevoked is logged at error
// with its error. An accepted event is logged at info with its sub, which is
// the user's pseudonymous id at the sales unit, so that an operator can
// trace what the site did with it.
func New(cfg Config) (http.Handler, error) {
	secret := string(cfg.Secret)
	switch {
	case secret == "":
		return nil, configErr("Secret", "is empty; make one with `openssl rand -hex 32` and put it in the webhook URL's secret parameter")
	case len(secret) < minSecret:
		return nil, configErr("Secret", "has %d characters; use at least %d random ones, e.g. from `openssl rand -hex 32`", len(secret), minSecret)
	case len(secret) > maxSecret:
		return nil, configErr("Secret", "has more than %d characters", maxSecret)
	case !urlUnreserved(secret):
		return nil, configErr("Secret", "may hold only A-Z a-z 0-9 - . _ ~, so that it stands in a URL as it is; use hex or unpadded base64url")
	}
	if cfg.OnRevoked == nil {
		return nil, configErr("OnRevoked", "is nil; pass the function that acts on a revoked consent")
	}
	h := &consentWebhook{
		secret:    sha256.Sum256([]byte(secret)),
		onRevoked: cfg.OnRevoked,
		logger:    cfg.Logger,
		now:       cfg.Now,
		skew:      cfg.ClockSkew,
		maxBody:   cfg.MaxBodyBytes,
	}
	if h.skew == 0 {
		h.skew = time.Minute
	} else if h.skew < 0 || h.skew > 5*time.Minute {
		return nil, configErr("ClockSkew", "%v is outside 0 to 5m", h.skew)
	}
	if h.maxBody == 0 {
		h.maxBody = 16 << 10
	} else if h.maxBody < 1<<10 || h.maxBody > 1<<20 {
		return nil, configErr("MaxBodyBytes", "%d is outside 1024 to 1048576", h.maxBody)
	}
	if h.logger == nil {
		h.logger = slog.Default()
	}
	if h.now == nil {
		h.now = time.Now
	}
	return h, nil
}

func configErr(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", vippslogin.ErrInvalidConfig, field, fmt.Sprintf(format, args...))
}

// urlUnreserved reports whether s holds only the characters that RFC 3986
// leaves unescaped in a URL.
func urlUnreserved(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

type consentWebhook struct {
	secret    [sha256.Size]byte // the hash of Secret, so that lengths do not leak
	onRevoked func(context.Context, ConsentRevoked) error
	logger    *slog.Logger
	now       func() time.Time
	skew      time.Duration
	maxBody   int64
}

// refusal is why the consent webhook refused a request.
type refusal struct {
	status int
	code   string // the JSON error code
	reason string // for the log, in our own words: never the request's bytes
}

func newRefusal(status int, code, reason string) *refusal {
	return &refusal{status: status, code: code, reason: reason}
}

// webhookMessages are the messages of the JSON errors, by code.
var webhookMessages = map[string]string{
	"method_not_allowed":     "Only POST is allowed.",
	"unauthorized":           "The webhook secret is missing or wrong.",
	"unsupported_media_type": "The body must be text/plain and hold a JWT.",
	"body_too_large":         "The body is too large.",
	"bad_request":            "The body could not be read.",
	"malformed_token":        "The body is not an unsecured JWT.",
	"unsupported_alg":        `The token's alg must be "none".`,
	"unsupported_event":      "The token's event is not CONSENT_REVOKED.",
	"invalid_sub":            "The token's sub is missing or invalid.",
	"invalid_claims":         "The token's exp, iat or nbf is missing or invalid.",
	"token_expired":          "The token has expired.",
	"token_not_yet_valid":    "The token is not valid yet.",
	"internal_error":         "The event could not be handled. Please try again later.",
}

func (h *consentWebhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.refuse(w, r, newRefusal(http.StatusMethodNotAllowed, "method_not_allowed", "method "+logWord(r.Method)))
		return
	}
	if ref := h.authorize(r); ref != nil {
		w.Header().Set("WWW-Authenticate", "Bearer")
		h.refuse(w, r, ref)
		return
	}
	if ref := checkContentType(r.Header); ref != nil {
		h.refuse(w, r, ref)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			h.refuse(w, r, newRefusal(http.StatusRequestEntityTooLarge, "body_too_large",
				"body is longer than "+strconv.FormatInt(h.maxBody, 10)+" bytes"))
			return
		}
		h.refuse(w, r, newRefusal(http.StatusBadRequest, "bad_request", "body could not be read"))
		return
	}
	e, ref := parseConsentRevoked(body, h.now(), h.skew)
	if ref != nil {
		h.refuse(w, r, ref)
		return
	}
	ctx := r.Context()
	if err := h.onRevoked(ctx, e); err != nil {
		h.logger.LogAttrs(ctx, slog.LevelError, "vippslogin: consent webhook failed",
			slog.String("error", err.Error()),
			slog.String("sub", e.Subject),
			slog.Int("status", http.StatusInternalServerError),
			slog.String("method", untrusted.LogText(r.Method)),
			slog.String("path", untrusted.LogText(r.URL.Path)))
		writeWebhookError(w, http.StatusInternalServerError, "internal_error")
		return
	}
	h.logger.LogAttrs(ctx, slog.LevelInfo, "vippslogin: consent revoked",
		slog.String("sub", e.Subject),
		slog.Time("iat", e.IssuedAt))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// authorize requires at least one secret, in the query parameter "secret"
// or an Authorization header of the Bearer scheme, and every such secret to
// be right. Authorization headers of other schemes are left to whatever
// else may use them.
func (h *consentWebhook) authorize(r *http.Request) *refusal {
	n := 0
	for _, v := range r.Header.Values("Authorization") {
		scheme, token, _ := strings.Cut(v, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			continue
		}
		n++
		if !h.secretOK(strings.TrimLeft(token, " ")) {
			return newRefusal(http.StatusUnauthorized, "unauthorized", "wrong secret in the Authorization header")
		}
	}
	for _, v := range r.URL.Query()["secret"] {
		n++
		if !h.secretOK(v) {
			return newRefusal(http.StatusUnauthorized, "unauthorized", "wrong secret in the query")
		}
	}
	if n == 0 {
		return newRefusal(http.StatusUnauthorized, "unauthorized", "no secret")
	}
	return nil
}

// secretOK compares hashes in constant time, so that neither the secret
// nor its length can be learnt from how long a refusal takes.
func (h *consentWebhook) secretOK(s string) bool {
	sum := sha256.Sum256([]byte(s))
	return subtle.ConstantTimeCompare(sum[:], h.secret[:]) == 1
}

// checkContentType accepts text/plain and application/jwt, with a charset
// of utf-8 or us-ascii if any, and no content coding.
func checkContentType(hdr http.Header) *refusal {
	cts := hdr.Values("Content-Type")
	if len(cts) != 1 {
		return newRefusal(http.StatusUnsupportedMediaType, "unsupported_media_type", "no Content-Type, or several")
	}
	mt, params, err := mime.ParseMediaType(cts[0])
	if err != nil || mt != "text/plain" && mt != "application/jwt" {
		return newRefusal(http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type is not text/plain or application/jwt")
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "us-ascii") {
		return newRefusal(http.StatusUnsupportedMediaType, "unsupported_media_type", "charset is not utf-8")
	}
	for _, ce := range hdr.Values("Content-Encoding") {
		if !strings.EqualFold(strings.TrimSpace(ce), "identity") {
			return newRefusal(http.StatusUnsupportedMediaType, "unsupported_media_type", "body has a Content-Encoding")
		}
	}
	return nil
}

// parseConsentRevoked reads a CONSENT_REVOKED event from a webhook's body,
// with the checks that New lists.
func parseConsentRevoked(body []byte, now time.Time, skew time.Duration) (ConsentRevoked, *refusal) {
	malformed := func(reason string) (ConsentRevoked, *refusal) {
		return ConsentRevoked{}, newRefusal(http.StatusBadRequest, "malformed_token", reason)
	}
	token := bytes.Trim(body, " \t\r\n")
	for _, c := range token {
		// base64.Encoding skips line breaks: refuse them, and all else
		// that is not base64url, before decoding.
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return malformed("a character outside base64url")
		}
	}
	parts := bytes.Split(token, []byte("."))
	if len(parts) != 2 && len(parts) != 3 {
		return malformed("not two or three dot-separated parts")
	}
	header, ok := decodeJSONObject(parts[0])
	if !ok {
		return malformed("header is not a base64url JSON object")
	}
	if alg, _ := jsonString(header["alg"]); alg != "none" {
		if header["alg"] == nil {
			return ConsentRevoked{}, newRefusal(http.StatusBadRequest, "unsupported_alg", "alg missing")
		}
		return ConsentRevoked{}, newRefusal(http.StatusBadRequest, "unsupported_alg", "alg "+logWord(alg)+", not \"none\"")
	}
	if raw, present := header["typ"]; present {
		if typ, _ := jsonString(raw); !strings.EqualFold(typ, "JWT") {
			return malformed("typ is not JWT")
		}
	}
	if _, present := header["crit"]; present {
		return malformed("header has crit")
	}
	if len(parts) == 3 && len(parts[2]) != 0 {
		return malformed("signature part is not empty")
	}
	claims, ok := decodeJSONObject(parts[1])
	if !ok {
		return malformed("payload is not a base64url JSON object")
	}

	if event, _ := jsonString(claims["event"]); event != consentRevokedEvent {
		reason := "event missing or not a string"
		if event != "" {
			reason = "event " + logWord(event)
		}
		return ConsentRevoked{}, newRefusal(http.StatusBadRequest, "unsupported_event", reason)
	}
	sub, _ := jsonString(claims["sub"])
	if !untrusted.ValidSubject(sub) {
		return ConsentRevoked{}, newRefusal(http.StatusBadRequest, "invalid_sub", "sub missing, not a string, empty, too long or not printable ASCII")
	}
	invalid := func(reason string) (ConsentRevoked, *refusal) {
		return ConsentRevoked{}, newRefusal(http.StatusBadRequest, "invalid_claims", reason)
	}
	exp, ok := numericDate(claims["exp"])
	if !ok {
		return invalid("exp missing or not a NumericDate")
	}
	iat, ok := numericDate(claims["iat"])
	if !ok {
		return invalid("iat missing or not a NumericDate")
	}
	var nbf time.Time
	if raw, present := claims["nbf"]; present {
		if nbf, ok = numericDate(raw); !ok {
			return invalid("nbf not a NumericDate")
		}
	}
	if !exp.After(iat) {
		return invalid("exp is not after iat")
	}
	if !now.Before(exp.Add(skew)) {
		return ConsentRevoked{}, newRefusal(http.StatusBadRequest, "token_expired", "exp has passed")
	}
	if iat.After(now.Add(skew)) {
		return ConsentRevoked{}, newRefusal(http.StatusBadRequest, "token_not_yet_valid", "iat is in the future")
	}
	if nbf.After(now.Add(skew)) {
		return ConsentRevoked{}, newRefusal(http.StatusBadRequest, "token_not_yet_valid", "nbf is in the future")
	}
	return ConsentRevoked{Subject: sub, IssuedAt: iat, ExpiresAt: exp}, nil
}

// decodeJSONObject decodes a base64url JSON object without padding, and
// refuses invalid UTF-8 and members named twice, which parsers could read
// in different ways.
func decodeJSONObject(part []byte) (map[string]json.RawMessage, bool) {
	b := make([]byte, base64.RawURLEncoding.DecodedLen(len(part)))
	n, err := base64.RawURLEncoding.Strict().Decode(b, part)
	if err != nil || n == 0 || !utf8.Valid(b[:n]) {
		return nil, false
	}
	d := json.NewDecoder(bytes.NewReader(b[:n]))
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return nil, false
	}
	m := make(map[string]json.RawMessage)
	for d.More() {
		t, err := d.Token()
		name, ok := t.(string)
		if err != nil || !ok {
			return nil, false
		}
		if _, dup := m[name]; dup {
			return nil, false
		}
		var v json.RawMessage
		if err := d.Decode(&v); err != nil {
			return nil, false
		}
		m[name] = v
	}
	if t, err := d.Token(); err != nil || t != json.Delim('}') {
		return nil, false
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, false
	}
	return m, true
}

// jsonString decodes raw when it is a JSON string.
func jsonString(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// numericDate decodes raw when it is a JSON number of seconds since the
// epoch, as untrusted.NumericDate reads it.
func numericDate(raw json.RawMessage) (time.Time, bool) {
	if len(raw) == 0 {
		return time.Time{}, false
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if d.Decode(&v) != nil {
		return time.Time{}, false
	}
	return untrusted.NumericDate(v)
}

// logWord quotes a word from a request for a log record when it is short
// printable ASCII, and stands in for it otherwise, so that a record never
// carries more than a short word of what was sent.
func logWord(s string) string {
	if len(s) > 32 || strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r > '~' }) {
		return "(long or unprintable)"
	}
	return strconv.Quote(s)
}

// refuse logs a refused request and answers it.
func (h *consentWebhook) refuse(w http.ResponseWriter, r *http.Request, ref *refusal) {
	level := slog.LevelWarn
	if ref.status == http.StatusMethodNotAllowed || ref.code == "bad_request" {
		level = slog.LevelInfo
	}
	h.logger.LogAttrs(r.Context(), level, "vippslogin: consent webhook refused",
		slog.String("kind", ref.code),
		slog.Int("status", ref.status),
		slog.String("reason", ref.reason),
		slog.String("method", untrusted.LogText(r.Method)),
		slog.String("path", untrusted.LogText(r.URL.Path)))
	writeWebhookError(w, ref.status, ref.code)
}

// writeWebhookError answers with {"error": code, "message": text}.
func writeWebhookError(w http.ResponseWriter, status int, code string) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}{code, webhookMessages[code]})
}
