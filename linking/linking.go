// Package linking finds a site's own account for a Vipps MobilePay login,
// following Vipps' advice on linking: by the sub stored on the account, or
// else by the verified phone number or email address, with a check of the
// name. Call [Find] from vippslogin's Config.AfterLogin.
package linking

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/vippslogin/vippslogin"
)

// Account is what [Find] needs to know of one of the site's own
// accounts.
type Account struct {
	// ID identifies the account in the site's user table. It must not be
	// empty.
	ID string
	// Subject is the Vipps sub stored on the account when it was linked
	// before, or "" when it never was.
	Subject string
	// Name is the account holder's full name as the site keeps it, in any
	// order ("Ola Hansen", "Hansen, Ola").
	Name string
	// Phone is the account's phone number as the site keeps it: with a
	// country code ("+47 912 34 567", "0047 91234567", "4791234567") or
	// without one ("912 34 567", "040 123 4567").
	Phone string
	// Email is the account's email address.
	Email string
}

// Finder looks up the site's accounts for [Find]. The ctx is
// the request's. Lookups that fail return an error; finding nothing is not
// an error.
//
// AccountsByPhone and AccountsByEmail should return only accounts whose
// phone number or email address the site has verified itself (by a code or
// link sent to it). Otherwise someone could sign up beforehand with another
// person's address and name, and have the account linked to that person's
// Vipps login while still holding its password.
type Finder interface {
	// AccountBySubject returns the account the Vipps sub was stored on, and
	// whether there is one.
	AccountBySubject(ctx context.Context, sub string) (Account, bool, error)

	// AccountsByPhone returns the accounts whose phone number may be msisdn,
	// a number as Vipps sends it: country code and number, digits only
	// (4791234567). Find compares each account's Phone with msisdn
	// itself and ignores those that differ, so the lookup may be broad: for
	// instance every account whose number, digits only, ends with the last
	// eight digits of msisdn.
	AccountsByPhone(ctx context.Context, msisdn string) ([]Account, error)

	// AccountsByEmail returns the accounts whose email address is email,
	// compared without regard to case. As with phone numbers, Find
	// checks each account's Email itself.
	AccountsByEmail(ctx context.Context, email string) ([]Account, error)
}

// Status says what the site does with a Vipps login; see [Find].
type Status int

const (
	// NeedsUser means no account could be chosen safely: the site must ask
	// the user, who logs in the old way to link the account, or creates
	// one. It is the zero value, so a Result never says more than was found.
	NeedsUser Status = iota
	// Linked means the account was found by the sub stored on it: log in as
	// the account.
	Linked
	// Matched means exactly one account was found by the verified phone
	// number or email address and its name fits: store the sub on the
	// account, so the next login is Linked, and log in as the account.
	Matched
)

// String returns "needs user", "linked" or "matched".
func (s Status) String() string {
	switch s {
	case NeedsUser:
		return "needs user"
	case Linked:
		return "linked"
	case Matched:
		return "matched"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// Method names the claims that found accounts: one of them, or ByPhone
// and ByEmail together.
type Method int

const (
	// BySubject: the sub stored on the account.
	BySubject Method = 1 << iota
	// ByPhone: the verified phone number.
	ByPhone
	// ByEmail: the verified email address.
	ByEmail
)

// String returns "subject", "phone", "email", "phone+email" or "none".
func (m Method) String() string {
	var parts []string
	for _, b := range []struct {
		m    Method
		name string
	}{{BySubject, "subject"}, {ByPhone, "phone"}, {ByEmail, "email"}} {
		if m&b.m != 0 {
			parts = append(parts, b.name)
			m &^= b.m
		}
	}
	if m != 0 {
		parts = append(parts, fmt.Sprintf("Method(%d)", int(m)))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "+")
}

// Reason says why a Result's status is NeedsUser.
type Reason int

const (
	// NoMatch: no account has the sub, the verified phone number or the
	// verified email address. Offer to create an account, or to log in the
	// old way for an account kept under other contact details.
	NoMatch Reason = iota + 1
	// SeveralMatches: more than one account has the phone number or email
	// address, or the phone number leads to one account and the email
	// address to another. Ask the user to log in the old way to the account
	// they mean.
	SeveralMatches
	// NameMismatch: one account has the phone number or email address, but
	// its name is not the Vipps user's: the number or address may have
	// passed to someone else. Ask the user to log in the old way.
	NameMismatch
	// AlreadyLinked: one account has the phone number or email address, but
	// it is linked to another Vipps user (another sub), which happens when
	// the number passed to someone else, or when the owner got a new Vipps
	// profile. Ask the user to log in the old way.
	AlreadyLinked
)

// String returns "no match", "several matches", "name mismatch" or
// "already linked".
func (r Reason) String() string {
	switch r {
	case NoMatch:
		return "no match"
	case SeveralMatches:
		return "several matches"
	case NameMismatch:
		return "name mismatch"
	case AlreadyLinked:
		return "already linked"
	case 0:
		return "none"
	}
	return fmt.Sprintf("Reason(%d)", int(r))
}

// Result is what [Find] found.
type Result struct {
	// Status says what the site does next.
	Status Status
	// Account is the account the Vipps user is when Status is Linked or
	// Matched, and the zero Account otherwise: an account that was found
	// but not chosen is not handed out, so a page cannot show it to whoever
	// now holds its phone number or email address.
	Account Account
	// By names the claims that found accounts: BySubject when Linked, and
	// otherwise the contact claims that found at least one account (none
	// for NoMatch).
	By Method
	// Reason says why Status is NeedsUser; it is 0 otherwise.
	Reason Reason
}

// ErrLookup wraps the error of a failed [Finder] lookup, and the errors of
// a finder that breaks its contract, in what [Find] returns. It is a
// failure of the site, not of the user: answer it with "try again later",
// not with a refusal. It wraps [vippslogin.ErrSessionStore], so that
// returned from Config.AfterLogin it gets the default error page's 503
// "try again in a minute" (kind session_unavailable).
var ErrLookup error = lookupError{}

// lookupError is ErrLookup's type. It unwraps to vippslogin.ErrSessionStore
// without taking that error's message, which speaks of the session store.
type lookupError struct{}

func (lookupError) Error() string { return "vippslogin: account lookup failed" }
func (lookupError) Unwrap() error { return vippslogin.ErrSessionStore }

// Find finds the site's account for a verified Vipps login, following
// Vipps' advice on linking (see "Recommendations on linking to user
// accounts" in the Vipps MobilePay Login documentation):
//
//  1. The account the sub was stored on is the user's: Linked, BySubject.
//     The sub is stable for a user at a sales unit, and no other check is
//     made.
//  2. Otherwise the accounts with the verified phone number and the
//     verified email address are looked up (ask for the phoneNumber, email
//     and name scopes). The email address is used only when
//     [vippslogin.Claims].EmailVerified is true. The phone number is used unless the
//     provider says it is not verified (phone_number_verified false): a
//     Vipps profile belongs to one phone number, which Vipps verified (a new
//     number is a new profile with a new sub), and older userinfo responses
//     do not send the flag.
//  3. Exactly one account may be found, by either claim or both. Several
//     accounts, or one by phone and another by email, are SeveralMatches.
//  4. The one account must not be linked to another sub (AlreadyLinked), and
//     its name must fit the Vipps user's (NameMismatch), so that a phone
//     number or email address that passed to someone else does not hand
//     over the account. Then the result is Matched, ByPhone and/or ByEmail.
//  5. Anything else is NeedsUser with a [Reason]; nothing found is
//     NoMatch.
//
// Phone numbers are compared as numbers: spaces, dashes, dots, brackets, a
// leading "+" or "00" and "(0)" do not matter. A number stored without a
// country code is compared with the national part of msisdn for the Nordic
// country codes (45, 46, 47, 298, 299, 354, 358), after dropping a trunk
// "0" (Finnish "040 123 4567"); store numbers with their country code where
// you can, since "91234567" could be Norwegian or Danish. Email addresses
// are compared without regard to case. An account whose Phone or Email does
// not compare equal is ignored, so a broad finder is safe.
//
// The name check splits both names into words, ignoring case, accents and
// punctuation, and the ways Nordic letters are spelt without them ("Åse",
// "Aase" and "Ase" are the same word, as are "Søren", "Soeren" and
// "Soren", and "Mäkinen" and "Makinen"), and passes when one word of the account's name is
// one of the user's given names and another is one of the family names:
// "Ola Hansen" and "Hansen, Ola" fit "Ola Bjørnstad Hansen"; "Kari Hansen",
// "Ola" and "O. Hansen" do not. It needs the name scope: without a name, no
// account is Matched. It is a sanity check against a number in new hands,
// not proof of identity; a person with the same name, or the account's
// owner, can still be told apart only by asking.
//
// Find changes nothing. On Matched the site stores c.Subject on the
// account; on NeedsUser it asks the user. An error (which wraps
// [ErrLookup]) means a lookup failed or the finder returned an
// account without an ID; c without a Subject is an error too.
//
// Call it from vippslogin's Config.AfterLogin, which runs in the renewed
// session before the claims are saved, and keep the outcome in the session:
//
//	AfterLogin: func(w http.ResponseWriter, r *http.Request, c *vippslogin.Claims) error {
//		ctx := r.Context()
//		link, err := linking.Find(ctx, users, c)
//		if err != nil {
//			return err // a 503 page; the login fails and the claims are not saved
//		}
//		switch link.Status {
//		case linking.Matched:
//			if err := users.SetSubject(ctx, link.Account.ID, c.Subject); err != nil {
//				return err
//			}
//			fallthrough
//		case linking.Linked:
//			sessions.Put(ctx, "account", link.Account.ID)
//		default: // NeedsUser
//			sessions.Remove(ctx, "account") // a previous login's, in this session
//			sessions.Put(ctx, "link.reason", link.Reason.String())
//		}
//		return nil
//	}
//
// The login completes either way, so the session holds the verified claims.
// The site's pages that need an account send a logged-in user without one
// to a "link your account" page, where the user logs in the old way (the
// site then stores the claims' Subject on that account, and puts the account
// in the session) or creates an account from the claims. Remove the account
// on NeedsUser: the renewed session keeps the values of a login before, and
// another Vipps user may be logging in in the same browser.
func Find(ctx context.Context, f Finder, c *vippslogin.Claims) (Result, error) {
	if c == nil || c.Subject == "" {
		return Result{}, errors.New("vippslogin: linking.Find needs claims with a subject")
	}
	if f == nil {
		return Result{}, errors.New("vippslogin: linking.Find needs a Finder")
	}
	a, ok, err := f.AccountBySubject(ctx, c.Subject)
	if err != nil {
		return Result{}, fmt.Errorf("%w: by subject: %w", ErrLookup, err)
	}
	if ok {
		if a.ID == "" {
			return Result{}, fmt.Errorf("%w: by subject: account without an ID", ErrLookup)
		}
		return Result{Status: Linked, Account: a, By: BySubject}, nil
	}

	found := map[string]Account{}
	var by Method
	if msisdn, ok := verifiedPhone(c); ok {
		list, err := f.AccountsByPhone(ctx, msisdn)
		if err != nil {
			return Result{}, fmt.Errorf("%w: by phone: %w", ErrLookup, err)
		}
		for _, a := range list {
			if phoneMatches(a.Phone, msisdn) {
				if a.ID == "" {
					return Result{}, fmt.Errorf("%w: by phone: account without an ID", ErrLookup)
				}
				found[a.ID], by = a, by|ByPhone
			}
		}
	}
	if email := strings.TrimSpace(c.Email); email != "" && c.EmailVerified {
		list, err := f.AccountsByEmail(ctx, email)
		if err != nil {
			return Result{}, fmt.Errorf("%w: by email: %w", ErrLookup, err)
		}
		for _, a := range list {
			if strings.EqualFold(strings.TrimSpace(a.Email), email) {
				if a.ID == "" {
					return Result{}, fmt.Errorf("%w: by email: account without an ID", ErrLookup)
				}
				found[a.ID], by = a, by|ByEmail
			}
		}
	}

	switch len(found) {
	case 0:
		return Result{Status: NeedsUser, Reason: NoMatch}, nil
	case 1:
	default:
		return Result{Status: NeedsUser, By: by, Reason: SeveralMatches}, nil
	}
	for _, one := range found {
		a = one
	}
	if a.Subject != "" && a.Subject != c.Subject {
		return Result{Status: NeedsUser, By: by, Reason: AlreadyLinked}, nil
	}
	if !namesFit(a.Name, c) {
		return Result{Status: NeedsUser, By: by, Reason: NameMismatch}, nil
	}
	return Result{Status: Matched, Account: a, By: by}, nil
}

// verifiedPhone returns the claims' phone number as digits with the country
// code, unless it is missing, malformed or said not to be verified.
func verifiedPhone(c *vippslogin.Claims) (string, bool) {
	if c.PhoneNumber == "" {
		return "", false
	}
	if !c.PhoneNumberVerified {
		if _, said := c.Raw["phone_number_verified"]; said {
			return "", false
		}
	}
	n := strings.TrimPrefix(strings.TrimSpace(c.PhoneNumber), "+")
	if len(n) < 8 || len(n) > 15 || strings.Trim(n, "0123456789") != "" || n[0] == '0' {
		return "", false
	}
	return n, true
}

// nordicCodes are the country codes under which a number stored without one
// is looked for.
var nordicCodes = []string{"45", "46", "47", "298", "299", "354", "358"}

// phoneMatches reports whether stored, a phone number as a site keeps it, is
// msisdn, which is digits with the country code.
func phoneMatches(stored, msisdn string) bool {
	s := strings.TrimSpace(stored)
	s = strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\u00a0', '-', '.', '/', '\t':
			return -1
		}
		return r
	}, s)
	intl := false
	switch {
	case strings.HasPrefix(s, "+"), strings.HasPrefix(s, "(+"):
		intl = true
		s = strings.Replace(s, "+", "", 1)
	case strings.HasPrefix(s, "00"), strings.HasPrefix(s, "(00"):
		intl = true
		s = strings.Replace(s, "00", "", 1)
	}
	s = strings.Replace(s, "(0)", "", 1) // +358 (0)40 ...: a trunk prefix not dialled from abroad
	s = strings.NewReplacer("(", "", ")", "").Replace(s)
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return false
	}
	if s == msisdn {
		return true
	}
	if intl {
		return false
	}
	national := strings.TrimPrefix(s, "0")
	if len(national) < 6 {
		return false
	}
	for _, cc := range nordicCodes {
		if msisdn == cc+national {
			return true
		}
	}
	return false
}

// namesFit reports whether account, a name the site keeps, is the Vipps
// user's: one of its words is a given name of c and another a family name.
func namesFit(account string, c *vippslogin.Claims) bool {
	given, family := nameWords(c.GivenName), nameWords(c.FamilyName)
	if len(given) == 0 && len(family) == 0 {
		all := nameWords(c.Name)
		if len(all) < 2 {
			return false
		}
		given, family = all[:1], all[1:]
	}
	if len(given) == 0 || len(family) == 0 {
		return false
	}
	words := nameWords(account)
	for i, w := range words {
		if !slices.Contains(given, w) {
			continue
		}
		for j, v := range words {
			if j != i && slices.Contains(family, v) {
				return true
			}
		}
	}
	return false
}

// nameWords splits a name into its words, each folded to a skeleton: lower
// case, without accents, apostrophes or combining marks, and with the
// Nordic and German letters and their two-letter spellings made one letter
// ("å", "aa" → "a"; "ø", "oe" → "o"; "æ", "ae", "ä" → "a"; "ü", "ue" → "u"),
// so that "Ødegård", "Odegaard" and "Oedegard" are the same word. Anything
// else that is not a letter or digit separates words.
func nameWords(name string) []string {
	var words []string
	var w strings.Builder
	flush := func() {
		if w.Len() > 0 {
			words = append(words, spellings.Replace(w.String()))
		}
		w.Reset()
	}
	for _, r := range name {
		r = unicode.ToLower(r)
		switch {
		case unicode.Is(unicode.Mn, r), r == '\'', r == '’', r == 'ʼ', r == '`', r == '´':
			// accents of decomposed letters (NFD), and O'Brien's apostrophe
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			if d, ok := digraphs[r]; ok {
				w.WriteString(d)
				continue
			}
			if b, ok := unaccented[r]; ok {
				r = b
			}
			w.WriteRune(r)
		default:
			flush()
		}
	}
	flush()
	return words
}

// spellings folds the two-letter spellings of "å", "æ", "ø" and "ü".
var spellings = strings.NewReplacer("aa", "a", "ae", "a", "oe", "o", "ue", "u")

// digraphs are letters written as two in Latin script; spellings then
// folds most of them to one.
var digraphs = map[rune]string{
	'æ': "ae", 'ø': "oe", 'å': "aa", 'ä': "ae", 'ö': "oe", 'ü': "ue",
	'œ': "oe", 'ß': "ss", 'þ': "th",
}

// unaccented maps accented letters of the Latin-1 Supplement and Latin
// Extended-A blocks, as they appear in Nordic (Sami, Icelandic, Faroese) and
// other European names, to their base letter.
var unaccented = func() map[rune]rune {
	m := map[rune]rune{}
	for base, accented := range map[rune]string{
		'a': "àáâãāăą",
		'c': "çćĉċč",
		'd': "ďđð",
		'e': "èéêëēĕėęě",
		'g': "ĝğġģ",
		'h': "ĥħ",
		'i': "ìíîïĩīĭįı",
		'j': "ĵ",
		'k': "ķ",
		'l': "ĺļľŀł",
		'n': "ñńņňŋ",
		'o': "òóôõōŏő",
		'r': "ŕŗř",
		's': "śŝşš",
		't': "ţťŧ",
		'u': "ùúûũūŭůűų",
		'w': "ŵ",
		'y': "ýÿŷ",
		'z': "źżž",
	} {
		for _, r := range accented {
			m[r] = base
		}
	}
	return m
}()
