package vippslogin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"hash/maphash"
	"sync"
	"time"

	"github.com/vippslogin/vippslogin/internal/untrusted"
)

// Claims are the verified facts about a logged-in user: the ID token's
// identifying claims and what userinfo returned for the granted scopes
// (from a provider without a userinfo endpoint, what the ID token carries).
// A claim that was not granted or not sent is the zero value.
type Claims struct {
	// Subject is the user's id at this sales unit ("sub"). It is stable and
	// the right key to link accounts on; it is not the same at another
	// sales unit.
	Subject string

	// Name, GivenName and FamilyName come with the name scope, checked by
	// Vipps against the population register.
	Name, GivenName, FamilyName string

	// Email and EmailVerified come with the email scope. Check EmailVerified
	// before linking an account by email.
	Email         string
	EmailVerified bool

	// PhoneNumber is an MSISDN: country code and number, digits only, no
	// "+" (e.g. 4712345678). It comes with the phoneNumber scope.
	PhoneNumber         string
	PhoneNumberVerified bool

	// BirthDate is YYYY-MM-DD, with the birthDate scope.
	BirthDate string

	// Address is the user's default address and OtherAddresses the rest,
	// with the address scope. Vipps sends an address of empty strings when
	// the user has none.
	Address        Address
	OtherAddresses []Address

	// NIN is the Norwegian national identity number (11 digits), with the
	// nin scope, which Vipps grants only on application.
	NIN string

	// SessionID is Vipps' sid.
	SessionID string

	// AuthTime is when the user authenticated at Vipps (auth_time).
	AuthTime time.Time

	// ACR is the authentication context class; "urn:vipps:acr:app_auth"
	// after a step-up login confirmed in the app.
	ACR string

	// DelegatedConsents holds the consents given in a login from phone
	// number with the delegatedConsents scope.
	DelegatedConsents *DelegatedConsents

	// Raw holds every claim as decoded from JSON, including those above.
	Raw map[string]any
}

// Address is a postal address as Vipps sends it.
type Address struct {
	StreetAddress string // may hold a second line after "\n"
	PostalCode    string
	Region        string // the town
	Country       string // ISO 3166-1 alpha-2, e.g. "NO"
	Formatted     string // the address lines joined with "\n"
	AddressType   string // "home", "work" or "other"
}

// DelegatedConsents is the consent screen a user saw and what they chose.
type DelegatedConsents struct {
	Language                 string
	Heading                  string
	Text                     string
	TermsDescription         string
	ConfirmConsentButtonText string
	TimeOfConsent            string
	Consents                 []Consent

	// The links shown on the consent screen (Vipps' "links" object).
	TermsLinkText            string
	TermsLinkURL             string
	PrivacyStatementLinkText string
	PrivacyStatementLinkURL  string
}

// Consent is one consent and the user's answer.
type Consent struct {
	ID                  string // e.g. "email", "sms", "digital", "personal"
	Accepted            bool
	Required            bool
	TextDisplayedToUser string
}

type ctxKey struct{}

// ctxClaims are the claims in a request's context: the session's encoded
// claims, decoded into the request's own copy the first time it asks, so
// that a handler that never reads them pays for no decoding. It is the
// context that carries them too, so that a logged-in request costs one
// allocation for both.
type ctxClaims struct {
	context.Context
	encoded []byte // the session's claims, known to decode (readableClaims)
	once    sync.Once
	own     *Claims // the request's copy
}

// Value returns cc for ctxKey, and otherwise what the parent holds.
func (cc *ctxClaims) Value(key any) any {
	if key == (ctxKey{}) {
		return cc
	}
	return cc.Context.Value(key)
}

func (cc *ctxClaims) get() *Claims {
	cc.once.Do(func() {
		if cc.own == nil && cc.encoded != nil {
			cc.own, _ = decodeClaims(cc.encoded) // nil only for claims that name nobody
		}
	})
	return cc.own
}

// ClaimsFromContext returns the claims that [Client.RequireLogin] or
// [Client.LoadClaims] put in the request's context. ok is false when the
// request is not logged in. The claims are the request's own: changing
// them changes nothing for other requests.
func ClaimsFromContext(ctx context.Context) (c *Claims, ok bool) {
	cc, _ := ctx.Value(ctxKey{}).(*ctxClaims)
	if cc == nil {
		return nil, false
	}
	c = cc.get()
	return c, c != nil
}

// ContextWithClaims returns a copy of ctx that carries c, as a logged-in
// request's context does. Sites use it to unit-test their handlers:
//
//	r = r.WithContext(vippslogin.ContextWithClaims(r.Context(), &vippslogin.Claims{Subject: "u1"}))
func ContextWithClaims(ctx context.Context, c *Claims) context.Context {
	return &ctxClaims{Context: ctx, own: c}
}

// maxClaimsSize bounds the claims JSON we accept, from the provider or the
// session store.
const maxClaimsSize = 64 << 10

// UnmarshalJSON decodes claims from a JSON object, such as a userinfo
// response. Raw gets every member; a member of an unexpected type leaves the
// typed field at its zero value.
func (c *Claims) UnmarshalJSON(b []byte) error {
	if len(b) > maxClaimsSize {
		return errors.New("vippslogin: claims too large")
	}
	raw, err := decodeObject(b)
	if err != nil {
		return err
	}
	*c = claimsFromMap(raw)
	return nil
}

// decodeObject decodes a JSON object, with its numbers as json.Number.
func decodeObject(b []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("vippslogin: not a JSON object")
	}
	if len(bytes.TrimLeft(b[d.InputOffset():], " \t\r\n")) > 0 {
		return nil, errors.New("vippslogin: trailing data after a JSON object")
	}
	return m, nil
}

// MarshalJSON encodes Raw when it is set, and otherwise the typed fields
// under their claim names.
func (c *Claims) MarshalJSON() ([]byte, error) {
	if c.Raw != nil {
		return json.Marshal(c.Raw)
	}
	return json.Marshal(c.toMap())
}

func claimsFromMap(m map[string]any) Claims {
	c := Claims{
		Subject:             str(m, "sub"),
		Name:                str(m, "name"),
		GivenName:           str(m, "given_name"),
		FamilyName:          str(m, "family_name"),
		Email:               str(m, "email"),
		EmailVerified:       boolean(m, "email_verified"),
		PhoneNumber:         str(m, "phone_number"),
		PhoneNumberVerified: boolean(m, "phone_number_verified"),
		BirthDate:           str(m, "birthdate"),
		NIN:                 str(m, "nin"),
		SessionID:           str(m, "sid"),
		ACR:                 str(m, "acr"),
		Raw:                 m,
	}
	if a, ok := m["address"].(map[string]any); ok {
		c.Address = addressFromMap(a)
	}
	if list, ok := m["other_addresses"].([]any); ok {
		c.OtherAddresses = make([]Address, 0, len(list))
		for _, v := range list {
			if a, ok := v.(map[string]any); ok {
				c.OtherAddresses = append(c.OtherAddresses, addressFromMap(a))
			}
		}
	}
	if t, ok := untrusted.NumericDate(m["auth_time"]); ok {
		c.AuthTime = t
	}
	if d, ok := m["delegatedConsents"].(map[string]any); ok {
		dc := &DelegatedConsents{
			Language:                 str(d, "language"),
			Heading:                  str(d, "heading"),
			Text:                     str(d, "text"),
			TermsDescription:         str(d, "termsDescription"),
			ConfirmConsentButtonText: str(d, "confirmConsentButtonText"),
			TimeOfConsent:            scalar(d["timeOfConsent"]),
		}
		if l, ok := d["links"].(map[string]any); ok {
			dc.TermsLinkText, dc.TermsLinkURL = str(l, "termsLinkText"), str(l, "termsLinkUrl")
			dc.PrivacyStatementLinkText, dc.PrivacyStatementLinkURL = str(l, "privacyStatementLinkText"), str(l, "privacyStatementLinkUrl")
		}
		if list, ok := d["consents"].([]any); ok {
			for _, v := range list {
				if cm, ok := v.(map[string]any); ok {
					dc.Consents = append(dc.Consents, Consent{
						ID:                  str(cm, "id"),
						Accepted:            boolean(cm, "accepted"),
						Required:            boolean(cm, "required"),
						TextDisplayedToUser: str(cm, "textDisplayedToUser"),
					})
				}
			}
		}
		c.DelegatedConsents = dc
	}
	return c
}

func addressFromMap(m map[string]any) Address {
	return Address{
		StreetAddress: str(m, "street_address"),
		PostalCode:    str(m, "postal_code"),
		Region:        str(m, "region"),
		Country:       str(m, "country"),
		Formatted:     str(m, "formatted"),
		AddressType:   str(m, "address_type"),
	}
}

func (a Address) toMap() map[string]any {
	return map[string]any{
		"street_address": a.StreetAddress, "postal_code": a.PostalCode, "region": a.Region,
		"country": a.Country, "formatted": a.Formatted, "address_type": a.AddressType,
	}
}

// toMap renders the typed fields under their claim names, leaving out empty
// ones.
func (c *Claims) toMap() map[string]any {
	m := map[string]any{}
	put := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	put("sub", c.Subject)
	put("name", c.Name)
	put("given_name", c.GivenName)
	put("family_name", c.FamilyName)
	put("email", c.Email)
	if c.Email != "" || c.EmailVerified {
		m["email_verified"] = c.EmailVerified
	}
	put("phone_number", c.PhoneNumber)
	if c.PhoneNumber != "" || c.PhoneNumberVerified {
		m["phone_number_verified"] = c.PhoneNumberVerified
	}
	put("birthdate", c.BirthDate)
	put("nin", c.NIN)
	put("sid", c.SessionID)
	put("acr", c.ACR)
	if !c.AuthTime.IsZero() {
		m["auth_time"] = c.AuthTime.Unix()
	}
	if c.Address != (Address{}) {
		m["address"] = c.Address.toMap()
	}
	if c.OtherAddresses != nil {
		list := make([]any, len(c.OtherAddresses))
		for i, a := range c.OtherAddresses {
			list[i] = a.toMap()
		}
		m["other_addresses"] = list
	}
	if d := c.DelegatedConsents; d != nil {
		consents := make([]any, len(d.Consents))
		for i, k := range d.Consents {
			consents[i] = map[string]any{"id": k.ID, "accepted": k.Accepted, "required": k.Required, "textDisplayedToUser": k.TextDisplayedToUser}
		}
		m["delegatedConsents"] = map[string]any{
			"language": d.Language, "heading": d.Heading, "text": d.Text, "termsDescription": d.TermsDescription,
			"confirmConsentButtonText": d.ConfirmConsentButtonText, "timeOfConsent": d.TimeOfConsent,
			"links": map[string]any{
				"termsLinkText": d.TermsLinkText, "termsLinkUrl": d.TermsLinkURL,
				"privacyStatementLinkText": d.PrivacyStatementLinkText, "privacyStatementLinkUrl": d.PrivacyStatementLinkURL,
			},
			"consents": consents,
		}
	}
	return m
}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

// boolean accepts JSON true/false and the strings "true"/"false", which some
// OpenID providers send.
func boolean(m map[string]any, k string) bool {
	switch v := m[k].(type) {
	case bool:
		return v
	case string:
		return v == "true"
	}
	return false
}

// scalar renders a string or number member as a string.
func scalar(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	}
	return ""
}

// decodeClaims decodes the claims a session keeps (encodeClaims), which
// must name somebody.
func decodeClaims(b []byte) (*Claims, error) {
	c := new(Claims)
	if err := c.UnmarshalJSON(b); err != nil {
		return nil, err
	}
	if c.Subject == "" {
		return nil, errors.New("vippslogin: claims without a subject")
	}
	return c, nil
}

// readableClaims remembers which encoded claims decode: a logged-in request
// checks its session's claims without decoding them (ctxClaims decodes
// them if the handler asks). It knows them by a 128-bit hash with a seed of
// its own, and holds at most maxReadableClaims hashes, starting over when
// full.
type readableClaims struct {
	seeds [2]maphash.Seed
	mu    sync.RWMutex
	known map[[2]uint64]struct{}
}

// maxReadableClaims bounds readableClaims to about 2 MB.
const maxReadableClaims = 1 << 16

func newReadableClaims() *readableClaims {
	return &readableClaims{seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}}
}

func (rc *readableClaims) hash(b []byte) [2]uint64 {
	return [2]uint64{maphash.Bytes(rc.seeds[0], b), maphash.Bytes(rc.seeds[1], b)}
}

// check reports whether b decodes (decodeClaims), decoding it only the
// first time it sees it.
func (rc *readableClaims) check(b []byte) bool {
	h := rc.hash(b)
	rc.mu.RLock()
	_, ok := rc.known[h]
	rc.mu.RUnlock()
	if ok {
		return true
	}
	if _, err := decodeClaims(b); err != nil {
		return false
	}
	rc.add(h)
	return true
}

// remember notes that b, which encodeClaims made, decodes.
func (rc *readableClaims) remember(b []byte) { rc.add(rc.hash(b)) }

func (rc *readableClaims) add(h [2]uint64) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.known == nil || len(rc.known) >= maxReadableClaims {
		rc.known = make(map[[2]uint64]struct{})
	}
	rc.known[h] = struct{}{}
}
