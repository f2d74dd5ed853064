package vippslogin_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/vippslogin/vippslogin"
	"github.com/vippslogin/vippslogin/vippstest"
)

// The default vippstest users.
const (
	subKari = "c3a9f3e2-5d1b-4f0e-9a6c-2b7d8e4f1a05" // Kari Nordmann, 4791234567, kari.nordmann@example.com (verified)
	subOla  = "7b2e4c91-0a8d-4e3f-b6d2-95c1f0a7e368" // Ola Bjørnstad Hansen, 4798765432, ola.hansen@example.org (verified)
	subAse  = "e05d6a17-93bc-4b28-8f4e-1d2c3b4a5f69" // Åse Øvrebø, 4741234567, ase.ovrebo@example.net (not verified)
)

// accountTable is an in-memory user table, the AccountFinder a site writes
// over its database. Its phone lookup is as broad as AccountFinder allows:
// every number that ends with the last eight digits of the one asked for.
type accountTable struct {
	mu       sync.Mutex
	accounts []vippslogin.Account
	err      error    // when set, every lookup fails with it
	broad    bool     // when set, every lookup returns every account
	calls    []string // the lookups made: "subject", "phone", "email"
}

func newAccountTable(accounts ...vippslogin.Account) *accountTable {
	return &accountTable{accounts: accounts}
}

func (t *accountTable) AccountBySubject(_ context.Context, sub string) (vippslogin.Account, bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.calls = append(t.calls, "subject")
	if t.err != nil {
		return vippslogin.Account{}, false, t.err
	}
	for _, a := range t.accounts {
		if a.Subject == sub && sub != "" {
			return a, true, nil
		}
	}
	return vippslogin.Account{}, false, nil
}

func (t *accountTable) AccountsByPhone(_ context.Context, msisdn string) ([]vippslogin.Account, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.calls = append(t.calls, "phone")
	if t.err != nil {
		return nil, t.err
	}
	var out []vippslogin.Account
	for _, a := range t.accounts {
		d := phoneDigits(a.Phone)
		if t.broad || d != "" && len(msisdn) >= 8 && strings.HasSuffix(d, msisdn[len(msisdn)-8:]) {
			out = append(out, a)
		}
	}
	return out, nil
}

func (t *accountTable) AccountsByEmail(_ context.Context, email string) ([]vippslogin.Account, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.calls = append(t.calls, "email")
	if t.err != nil {
		return nil, t.err
	}
	var out []vippslogin.Account
	for _, a := range t.accounts {
		if t.broad || strings.EqualFold(a.Email, email) {
			out = append(out, a)
		}
	}
	return out, nil
}

// setSubject stores sub on the account id, as a site does on Matched.
func (t *accountTable) setSubject(id, sub string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range t.accounts {
		if t.accounts[i].ID == id {
			t.accounts[i].Subject = sub
			return nil
		}
	}
	return errors.New("no such account")
}

func (t *accountTable) subjectOf(id string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, a := range t.accounts {
		if a.ID == id {
			return a.Subject
		}
	}
	return ""
}

// takeCalls returns the lookups made since the last call and forgets them.
func (t *accountTable) takeCalls() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.calls
	t.calls = nil
	return c
}

func phoneDigits(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}

// linkingSite is a harness whose AfterLogin is the recipe of LinkAccount's
// documentation: the account in the session on Linked and Matched (storing
// the sub on Matched), and on NeedsUser no account and the reason.
type linkingSite struct {
	*harness
	table *accountTable

	mu    sync.Mutex
	links []vippslogin.Link
}

func newLinkingSite(t *testing.T, table *accountTable, users ...vippstest.User) *linkingSite {
	t.Helper()
	s := &linkingSite{table: table}
	opts := options{site: func(cfg *vippslogin.Config) {
		sessions := cfg.Sessions
		cfg.AfterLogin = func(w http.ResponseWriter, r *http.Request, c *vippslogin.Claims) error {
			ctx := r.Context()
			link, err := vippslogin.LinkAccount(ctx, table, c)
			if err != nil {
				return err
			}
			s.mu.Lock()
			s.links = append(s.links, link)
			s.mu.Unlock()
			switch link.Status {
			case vippslogin.Matched:
				if err := table.setSubject(link.Account.ID, c.Subject); err != nil {
					return err
				}
				fallthrough
			case vippslogin.Linked:
				sessions.Put(ctx, "account", link.Account.ID)
				sessions.Remove(ctx, "link.reason")
			default:
				sessions.Remove(ctx, "account")
				sessions.Put(ctx, "link.reason", link.Reason.String())
			}
			return nil
		}
	}}
	if users != nil {
		opts.idp = func(c *vippstest.Config) { c.Users = users }
	}
	s.harness = newHarness(t, opts)
	return s
}

// lastLink returns the Link of the last login.
func (s *linkingSite) lastLink() vippslogin.Link {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.links) == 0 {
		s.t.Fatal("AfterLogin linked nothing")
	}
	return s.links[len(s.links)-1]
}

// loginAs logs a browser in as the vippstest user sub.
func (s *linkingSite) loginAs(b *browser, sub string) {
	s.t.Helper()
	if err := s.idp.SetUser(sub); err != nil {
		s.t.Fatal(err)
	}
	b.login("/")
	if got := b.profile(); got == nil || got["sub"] != sub {
		s.t.Fatalf("logged in as %v, want %s", got["sub"], sub)
	}
}

// sessionValues returns the values saved in the browser's session.
func (b *browser) sessionValues() map[string]any {
	b.h.t.Helper()
	token := b.cookie(b.h.sessions.Cookie.Name)
	if token == "" {
		return nil
	}
	data, found, err := b.h.sessions.Store.Find(token)
	if err != nil || !found {
		b.h.t.Fatalf("session %q: found %v, %v", token, found, err)
	}
	_, values, err := b.h.sessions.Codec.Decode(data)
	if err != nil {
		b.h.t.Fatal(err)
	}
	return values
}

// wantAccount checks the site's account in the browser's session: id, or
// none when id is "", in which case the session says why.
func (b *browser) wantAccount(id string, reason vippslogin.LinkReason) {
	b.h.t.Helper()
	v := b.sessionValues()
	got, _ := v["account"].(string)
	if got != id {
		b.h.t.Errorf("account in session = %q, want %q", got, id)
	}
	gotReason, _ := v["link.reason"].(string)
	wantReason := ""
	if id == "" {
		wantReason = reason.String()
	}
	if gotReason != wantReason {
		b.h.t.Errorf("link.reason in session = %q, want %q", gotReason, wantReason)
	}
}

// Logins through HTTP against vippstest, with the AfterLogin recipe.
func TestLinkAccountLogin(t *testing.T) {
	kari := vippslogin.Account{ID: "kari", Name: "Kari Nordmann", Phone: "+47 912 34 567", Email: "kari@old.example"}
	tests := []struct {
		name     string
		accounts []vippslogin.Account
		sub      string // the Vipps user who logs in
		want     vippslogin.Link
		calls    []string
	}{{
		name: "stored sub",
		accounts: []vippslogin.Account{
			{ID: "k", Subject: subKari, Name: "Someone Else", Phone: "+45 11 22 33 44"},
			kari, // found by phone too, but the sub decides
		},
		sub:   subKari,
		want:  vippslogin.Link{Status: vippslogin.Linked, By: vippslogin.BySubject, Account: vippslogin.Account{ID: "k"}},
		calls: []string{"subject"},
	}, {
		name:     "one account by phone",
		accounts: []vippslogin.Account{kari, {ID: "ola", Name: "Ola Hansen", Phone: "98765432"}},
		sub:      subKari,
		want:     vippslogin.Link{Status: vippslogin.Matched, By: vippslogin.ByPhone, Account: vippslogin.Account{ID: "kari"}},
		calls:    []string{"subject", "phone", "email"},
	}, {
		name:     "one account by verified email, shorter name",
		accounts: []vippslogin.Account{kari, {ID: "ola", Name: "Hansen, Ola", Email: "Ola.Hansen@Example.ORG"}},
		sub:      subOla,
		want:     vippslogin.Link{Status: vippslogin.Matched, By: vippslogin.ByEmail, Account: vippslogin.Account{ID: "ola"}},
		calls:    []string{"subject", "phone", "email"},
	}, {
		name:     "phone and email find the same account",
		accounts: []vippslogin.Account{{ID: "kari", Name: "Kari Nordmann", Phone: "0047 91234567", Email: "kari.nordmann@example.com"}},
		sub:      subKari,
		want:     vippslogin.Link{Status: vippslogin.Matched, By: vippslogin.ByPhone | vippslogin.ByEmail, Account: vippslogin.Account{ID: "kari"}},
	}, {
		name:     "email not verified is not looked up",
		accounts: []vippslogin.Account{{ID: "ase", Name: "Åse Øvrebø", Phone: "+47 99 99 99 99", Email: "ase.ovrebo@example.net"}},
		sub:      subAse,
		want:     vippslogin.Link{Status: vippslogin.NeedsUser, Reason: vippslogin.NoMatch},
		calls:    []string{"subject", "phone"},
	}, {
		name: "two accounts by phone",
		accounts: []vippslogin.Account{
			kari,
			{ID: "kari2", Name: "Kari Nordmann", Phone: "912 34 567"},
		},
		sub:  subKari,
		want: vippslogin.Link{Status: vippslogin.NeedsUser, By: vippslogin.ByPhone, Reason: vippslogin.SeveralMatches},
	}, {
		name: "phone and email find different accounts",
		accounts: []vippslogin.Account{
			kari,
			{ID: "kari-mail", Name: "Kari Nordmann", Email: "KARI.NORDMANN@example.com"},
		},
		sub:  subKari,
		want: vippslogin.Link{Status: vippslogin.NeedsUser, By: vippslogin.ByPhone | vippslogin.ByEmail, Reason: vippslogin.SeveralMatches},
	}, {
		name:     "recycled number: another name",
		accounts: []vippslogin.Account{{ID: "per", Name: "Per Olsen", Phone: "+4791234567"}},
		sub:      subKari,
		want:     vippslogin.Link{Status: vippslogin.NeedsUser, By: vippslogin.ByPhone, Reason: vippslogin.NameMismatch},
	}, {
		name:     "same family, other person",
		accounts: []vippslogin.Account{{ID: "per", Name: "Per Bjørnstad Hansen", Email: "ola.hansen@example.org"}},
		sub:      subOla,
		want:     vippslogin.Link{Status: vippslogin.NeedsUser, By: vippslogin.ByEmail, Reason: vippslogin.NameMismatch},
	}, {
		name:     "linked to another Vipps user",
		accounts: []vippslogin.Account{{ID: "kari", Subject: "0d6c0c0e-old-sub", Name: "Kari Nordmann", Phone: "+47 912 34 567"}},
		sub:      subKari,
		want:     vippslogin.Link{Status: vippslogin.NeedsUser, By: vippslogin.ByPhone, Reason: vippslogin.AlreadyLinked},
	}, {
		name:     "no match",
		accounts: []vippslogin.Account{{ID: "ola", Name: "Ola Hansen", Phone: "+47 987 65 432", Email: "ola@example.org"}},
		sub:      subKari,
		want:     vippslogin.Link{Status: vippslogin.NeedsUser, Reason: vippslogin.NoMatch},
	}, {
		name:     "same digits, other country",
		accounts: []vippslogin.Account{{ID: "dk", Name: "Kari Nordmann", Phone: "+45 91 23 45 67"}},
		sub:      subKari,
		want:     vippslogin.Link{Status: vippslogin.NeedsUser, Reason: vippslogin.NoMatch},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table := newAccountTable(tt.accounts...)
			s := newLinkingSite(t, table)
			b := s.browser()
			s.loginAs(b, tt.sub)

			got := s.lastLink()
			if got.Status != tt.want.Status || got.By != tt.want.By || got.Reason != tt.want.Reason || got.Account.ID != tt.want.Account.ID {
				t.Errorf("link = {%v %v %v %q}, want {%v %v %v %q}",
					got.Status, got.By, got.Reason, got.Account.ID,
					tt.want.Status, tt.want.By, tt.want.Reason, tt.want.Account.ID)
			}
			if got.Status == vippslogin.NeedsUser && got.Account != (vippslogin.Account{}) {
				t.Errorf("NeedsUser hands out account %+v", got.Account)
			}
			if calls := table.takeCalls(); tt.calls != nil && !slices.Equal(calls, tt.calls) {
				t.Errorf("lookups = %q, want %q", calls, tt.calls)
			}
			b.wantAccount(tt.want.Account.ID, tt.want.Reason)

			// The sub is stored on Matched, and only then.
			for _, a := range tt.accounts {
				stored := table.subjectOf(a.ID)
				switch {
				case tt.want.Status == vippslogin.Matched && a.ID == tt.want.Account.ID:
					if stored != tt.sub {
						t.Errorf("account %s: subject %q after Matched, want %q", a.ID, stored, tt.sub)
					}
				case stored != a.Subject:
					t.Errorf("account %s: subject changed from %q to %q", a.ID, a.Subject, stored)
				}
			}
		})
	}
}

// An account matched by phone gets the sub, and the next login, in another
// browser, is linked by it without looking at phone or email.
func TestLinkAccountNextLoginBySubject(t *testing.T) {
	table := newAccountTable(vippslogin.Account{ID: "42", Name: "Kari Nordmann", Phone: "912 34 567"})
	s := newLinkingSite(t, table)

	first := s.browser()
	s.loginAs(first, subKari)
	if got := s.lastLink(); got.Status != vippslogin.Matched || got.By != vippslogin.ByPhone {
		t.Fatalf("first login: %v by %v (%v), want matched by phone", got.Status, got.By, got.Reason)
	}
	first.wantAccount("42", 0)
	if got := table.subjectOf("42"); got != subKari {
		t.Fatalf("stored subject = %q, want %q", got, subKari)
	}
	table.takeCalls()

	// The account's number changes at the site; the sub still finds it.
	table.mu.Lock()
	table.accounts[0].Phone = "+47 400 00 000"
	table.mu.Unlock()

	second := s.browser()
	s.loginAs(second, subKari)
	if got := s.lastLink(); got.Status != vippslogin.Linked || got.By != vippslogin.BySubject || got.Account.ID != "42" {
		t.Fatalf("second login: %v by %v account %q, want linked by subject to 42", got.Status, got.By, got.Account.ID)
	}
	if calls := table.takeCalls(); !slices.Equal(calls, []string{"subject"}) {
		t.Errorf("lookups = %q, want only by subject", calls)
	}
	second.wantAccount("42", 0)
}

// A second login in the same browser as another Vipps user must not keep
// the first user's account: the session is renewed with its data, so the
// recipe removes the account on NeedsUser.
func TestLinkAccountReloginAsAnotherUser(t *testing.T) {
	table := newAccountTable(vippslogin.Account{ID: "kari", Subject: subKari, Name: "Kari Nordmann"})
	s := newLinkingSite(t, table)
	b := s.browser()

	s.loginAs(b, subKari)
	b.wantAccount("kari", 0)

	s.loginAs(b, subAse)
	if got := s.lastLink(); got.Status != vippslogin.NeedsUser || got.Reason != vippslogin.NoMatch {
		t.Fatalf("link = %v (%v), want needs user (no match)", got.Status, got.Reason)
	}
	b.wantAccount("", vippslogin.NoMatch)
	if got := b.profile(); got["name"] != "Åse Øvrebø" {
		t.Errorf("session claims name %v, want Åse Øvrebø's", got["name"])
	}
}

// A phone number the provider says is not verified is not looked up.
func TestLinkAccountPhoneNotVerified(t *testing.T) {
	users := vippstest.DefaultUsers()[:1]
	users[0].PhoneNumberVerified = false
	users[0].EmailVerified = false
	table := newAccountTable(vippslogin.Account{ID: "kari", Name: "Kari Nordmann", Phone: "+47 912 34 567", Email: users[0].Email})
	s := newLinkingSite(t, table, users...)
	b := s.browser()
	s.loginAs(b, subKari)
	if got := s.lastLink(); got.Status != vippslogin.NeedsUser || got.Reason != vippslogin.NoMatch {
		t.Errorf("link = %v (%v), want needs user (no match)", got.Status, got.Reason)
	}
	if calls := table.takeCalls(); !slices.Equal(calls, []string{"subject"}) {
		t.Errorf("lookups = %q, want only by subject", calls)
	}
	b.wantAccount("", vippslogin.NoMatch)
}

// A failed lookup fails the login: an error page that does not show the
// cause, and no login.
func TestLinkAccountLookupFails(t *testing.T) {
	errDown := errors.New("dial users-db-7: connection refused")
	table := newAccountTable(vippslogin.Account{ID: "kari", Subject: subKari, Name: "Kari Nordmann"})
	table.err = errDown
	s := newLinkingSite(t, table)

	for _, accept := range []string{"text/html", "application/json"} {
		t.Run(accept, func(t *testing.T) {
			b := s.browser()
			resp, body := b.get(b.startLogin("/"), "Accept", accept)
			b.wantRefused(resp, vippslogin.ErrAccountLookup, errDown)
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, accept) {
				t.Errorf("Content-Type = %q, want %s", ct, accept)
			}
			if strings.Contains(body, "users-db") || strings.Contains(body, "connection") {
				t.Errorf("error page shows the cause: %s", body)
			}
			if _, ok := b.sessionValues()["account"]; ok {
				t.Error("session has an account after a failed login")
			}
		})
	}
}

// linkClaims returns verified claims of a Vipps user with the given name and
// phone number.
func linkClaims(given, family, phone string) *vippslogin.Claims {
	return &vippslogin.Claims{
		Subject:             "sub-1",
		Name:                given + " " + family,
		GivenName:           given,
		FamilyName:          family,
		PhoneNumber:         phone,
		PhoneNumberVerified: true,
	}
}

func TestLinkAccountPhoneFormats(t *testing.T) {
	tests := []struct {
		stored, msisdn string
		want           bool
	}{
		{"+47 912 34 567", "4791234567", true},
		{"+4791234567", "4791234567", true},
		{"4791234567", "4791234567", true},
		{"0047 91 23 45 67", "4791234567", true},
		{"(+47) 912-34-567", "4791234567", true},
		{"+47.912.34.567", "4791234567", true},
		{" 912 34 567 ", "4791234567", true},
		{"91234567", "4791234567", true},
		{"+47 912 34 568", "4791234567", false},
		{"+45 91 23 45 67", "4791234567", false},
		{"0045 91234567", "4791234567", false},
		{"+91 234 567", "4791234567", false}, // India: a country code is never guessed after "+"
		{"0091234567", "4791234567", false},
		{"+47 912 34 567 ext. 2", "4791234567", false},
		{"1234567", "4791234567", false},
		{"", "4791234567", false},
		{"+", "4791234567", false},
		{"+45 20 12 34 56", "4520123456", true},
		{"20123456", "4520123456", true},
		{"040 123 4567", "358401234567", true},
		{"+358 (0)40 123 4567", "358401234567", true},
		{"+358 40 123 4567", "358401234567", true},
		{"040 123 4567", "4740123456", false},
		{"070-123 45 67", "46701234567", true},
		{"555 1234", "15555551234", false}, // not a Nordic number: only in full
		{"+1 555 555 1234", "15555551234", true},
	}
	for _, tt := range tests {
		table := newAccountTable(vippslogin.Account{ID: "1", Name: "Kari Nordmann", Phone: tt.stored})
		table.broad = true
		link, err := vippslogin.LinkAccount(context.Background(), table, linkClaims("Kari", "Nordmann", tt.msisdn))
		if err != nil {
			t.Fatal(err)
		}
		if got := link.Status == vippslogin.Matched; got != tt.want {
			t.Errorf("%q vs %s: matched %v (%v, %v), want %v", tt.stored, tt.msisdn, got, link.Status, link.Reason, tt.want)
		}
	}
}

// How the claims' phone number is used.
func TestLinkAccountPhoneClaim(t *testing.T) {
	account := vippslogin.Account{ID: "1", Name: "Kari Nordmann", Phone: "+47 912 34 567"}
	tests := []struct {
		name string
		edit func(c *vippslogin.Claims)
		want vippslogin.LinkStatus
	}{
		{"verified", func(c *vippslogin.Claims) {}, vippslogin.Matched},
		{"E.164 with plus", func(c *vippslogin.Claims) { c.PhoneNumber = "+4791234567" }, vippslogin.Matched},
		{"verified flag absent", func(c *vippslogin.Claims) {
			c.PhoneNumberVerified = false
			c.Raw = map[string]any{"sub": c.Subject, "phone_number": c.PhoneNumber}
		}, vippslogin.Matched},
		{"said not verified", func(c *vippslogin.Claims) {
			c.PhoneNumberVerified = false
			c.Raw = map[string]any{"sub": c.Subject, "phone_number": c.PhoneNumber, "phone_number_verified": false}
		}, vippslogin.NeedsUser},
		{"not a number", func(c *vippslogin.Claims) { c.PhoneNumber = "47 912 34 567" }, vippslogin.NeedsUser},
		{"too short", func(c *vippslogin.Claims) { c.PhoneNumber = "4791234" }, vippslogin.NeedsUser},
		{"national", func(c *vippslogin.Claims) { c.PhoneNumber = "091234567" }, vippslogin.NeedsUser},
		{"none", func(c *vippslogin.Claims) { c.PhoneNumber = "" }, vippslogin.NeedsUser},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table := newAccountTable(account)
			table.broad = true
			c := linkClaims("Kari", "Nordmann", "4791234567")
			tt.edit(c)
			link, err := vippslogin.LinkAccount(context.Background(), table, c)
			if err != nil {
				t.Fatal(err)
			}
			if link.Status != tt.want {
				t.Errorf("status = %v (%v), want %v", link.Status, link.Reason, tt.want)
			}
		})
	}
}

func TestLinkAccountNames(t *testing.T) {
	tests := []struct {
		account        string
		given, family  string
		want           bool
		nameClaimsOnly bool // only the claim name, as from a provider without given_name and family_name
	}{
		// Norwegian
		{"Ola Hansen", "Ola", "Bjørnstad Hansen", true, false},
		{"Ola Bjørnstad Hansen", "Ola", "Bjørnstad Hansen", true, false},
		{"Hansen, Ola", "Ola", "Bjørnstad Hansen", true, false},
		{"OLA BJORNSTAD", "Ola", "Bjørnstad Hansen", true, false},
		{"ola bjoernstad", "Ola", "Bjørnstad Hansen", true, false},
		{"Ola", "Ola", "Bjørnstad Hansen", false, false},
		{"Hansen", "Ola", "Bjørnstad Hansen", false, false},
		{"O. Hansen", "Ola", "Bjørnstad Hansen", false, false},
		{"Kari Hansen", "Ola", "Bjørnstad Hansen", false, false},
		{"Per Olsen", "Kari", "Nordmann", false, false},
		{"Åse Øvrebø", "Åse", "Øvrebø", true, false},
		{"Aase Oevreboe", "Åse", "Øvrebø", true, false},
		{"Ase Ovrebo", "Åse", "Øvrebø", true, false},
		{"A\u030Ase O\u0338vrebø", "Åse", "Øvrebø", true, false}, // decomposed (NFD) input
		{"Anne-Marie Ødegård", "Anne-Marie", "Ødegård", true, false},
		{"Marie Odegaard", "Anne-Marie", "Ødegård", true, false},
		{"Ole Kristian Solberg", "Ole Kristian", "Solberg", true, false},
		{"Kari Nordmann", "", "", true, true},
		{"Nordmann, Kari", "", "", true, true},
		{"Kari Hansen", "", "", false, true},
		// Danish
		{"Søren Kierkegaard", "Søren", "Kierkegaard", true, false},
		{"Soeren Kierkegaard", "Søren", "Kierkegaard", true, false},
		{"Mette Frederiksen", "Søren", "Kierkegaard", false, false},
		{"Æbbe Lærkesen", "Æbbe", "Lærkesen", true, false},
		{"Aebbe Laerkesen", "Æbbe", "Lærkesen", true, false},
		// Finnish and Swedish
		{"Väinö Häkkinen", "Väinö", "Häkkinen", true, false},
		{"Vaino Hakkinen", "Väinö", "Häkkinen", true, false},
		{"Väinö Mäkinen", "Väinö", "Häkkinen", false, false},
		{"Åsa Öberg", "Åsa", "Öberg", true, false},
		// Sami, Icelandic, others
		{"Máret Sárá", "Máret", "Sárá", true, false},
		{"Maret Sara", "Máret", "Sárá", true, false},
		{"Þórunn Guðmundsdóttir", "Þórunn", "Guðmundsdóttir", true, false},
		{"Thorunn Gudmundsdottir", "Þórunn", "Guðmundsdóttir", true, false},
		{"Seán O'Brien", "Seán", "O’Brien", true, false},
		{"", "Kari", "Nordmann", false, false},
		{"Kari Nordmann", "", "", false, false}, // no name claims at all
	}
	for _, tt := range tests {
		c := linkClaims(tt.given, tt.family, "4791234567")
		c.Name = ""
		if tt.nameClaimsOnly {
			c.Name = "Kari Nordmann"
		}
		table := newAccountTable(vippslogin.Account{ID: "1", Name: tt.account, Phone: "91234567"})
		link, err := vippslogin.LinkAccount(context.Background(), table, c)
		if err != nil {
			t.Fatal(err)
		}
		got := link.Status == vippslogin.Matched
		if got != tt.want {
			t.Errorf("%q vs given %q family %q name %q: matched %v (%v), want %v",
				tt.account, tt.given, tt.family, c.Name, got, link.Reason, tt.want)
		}
		if !got && link.Reason != vippslogin.NameMismatch {
			t.Errorf("%q: reason %v, want name mismatch", tt.account, link.Reason)
		}
	}
}

// LinkAccount checks what a broad finder returns.
func TestLinkAccountChecksFinder(t *testing.T) {
	c := &vippslogin.Claims{Subject: "s", GivenName: "Kari", FamilyName: "Nordmann", Email: "Kari.Nordmann@Example.com", EmailVerified: true}
	table := newAccountTable(
		vippslogin.Account{ID: "1", Name: "Kari Nordmann", Email: " kari.nordmann@example.COM "},
		vippslogin.Account{ID: "2", Name: "Kari Nordmann", Email: "kari.nordmann@example.org"},
		vippslogin.Account{ID: "3", Name: "Kari Nordmann", Phone: "+47 912 34 567"},
	)
	table.broad = true
	link, err := vippslogin.LinkAccount(context.Background(), table, c)
	if err != nil {
		t.Fatal(err)
	}
	if link.Status != vippslogin.Matched || link.Account.ID != "1" || link.By != vippslogin.ByEmail {
		t.Errorf("link = %v %q by %v, want matched 1 by email", link.Status, link.Account.ID, link.By)
	}
}

type failingFinder struct {
	accountTable
	fail string // the lookup that fails
	err  error
}

func (f *failingFinder) AccountBySubject(ctx context.Context, sub string) (vippslogin.Account, bool, error) {
	if f.fail == "subject" {
		return vippslogin.Account{}, false, f.err
	}
	return f.accountTable.AccountBySubject(ctx, sub)
}

func (f *failingFinder) AccountsByPhone(ctx context.Context, msisdn string) ([]vippslogin.Account, error) {
	if f.fail == "phone" {
		return nil, f.err
	}
	return f.accountTable.AccountsByPhone(ctx, msisdn)
}

func (f *failingFinder) AccountsByEmail(ctx context.Context, email string) ([]vippslogin.Account, error) {
	if f.fail == "email" {
		return nil, f.err
	}
	return f.accountTable.AccountsByEmail(ctx, email)
}

func TestLinkAccountErrors(t *testing.T) {
	ctx := context.Background()
	kari := func() *vippslogin.Claims {
		c := linkClaims("Kari", "Nordmann", "4791234567")
		c.Email, c.EmailVerified = "kari.nordmann@example.com", true
		return c
	}
	errDown := errors.New("down")
	for _, lookup := range []string{"subject", "phone", "email"} {
		f := &failingFinder{fail: lookup, err: errDown}
		link, err := vippslogin.LinkAccount(ctx, f, kari())
		if !errors.Is(err, vippslogin.ErrAccountLookup) || !errors.Is(err, errDown) {
			t.Errorf("%s lookup fails: err = %v, want ErrAccountLookup wrapping the cause", lookup, err)
		}
		if link != (vippslogin.Link{}) {
			t.Errorf("%s lookup fails: link = %+v, want the zero Link", lookup, link)
		}
	}
	if _, err := vippslogin.LinkAccount(ctx, newAccountTable(), nil); err == nil {
		t.Error("nil claims: no error")
	}
	if _, err := vippslogin.LinkAccount(ctx, newAccountTable(), &vippslogin.Claims{Name: "Kari Nordmann"}); err == nil {
		t.Error("claims without subject: no error")
	}
	if _, err := vippslogin.LinkAccount(ctx, nil, kari()); err == nil {
		t.Error("nil finder: no error")
	}
	for _, a := range []vippslogin.Account{
		{Subject: "sub-1"},
		{Name: "Kari Nordmann", Phone: "91234567"},
		{Name: "Kari Nordmann", Email: "kari.nordmann@example.com"},
	} {
		if _, err := vippslogin.LinkAccount(ctx, newAccountTable(a), kari()); !errors.Is(err, vippslogin.ErrAccountLookup) {
			t.Errorf("account %+v without an ID: err = %v, want ErrAccountLookup", a, err)
		}
	}
}

func TestLinkStrings(t *testing.T) {
	for _, tt := range []struct {
		got  interface{ String() string }
		want string
	}{
		{vippslogin.NeedsUser, "needs user"},
		{vippslogin.Linked, "linked"},
		{vippslogin.Matched, "matched"},
		{vippslogin.LinkStatus(9), "LinkStatus(9)"},
		{vippslogin.BySubject, "subject"},
		{vippslogin.ByPhone | vippslogin.ByEmail, "phone+email"},
		{vippslogin.LinkMethod(0), "none"},
		{vippslogin.ByEmail | 16, "email+LinkMethod(16)"},
		{vippslogin.NoMatch, "no match"},
		{vippslogin.SeveralMatches, "several matches"},
		{vippslogin.NameMismatch, "name mismatch"},
		{vippslogin.AlreadyLinked, "already linked"},
		{vippslogin.LinkReason(0), "none"},
		{vippslogin.LinkReason(9), "LinkReason(9)"},
	} {
		if s := tt.got.String(); s != tt.want {
			t.Errorf("String() = %q, want %q", s, tt.want)
		}
	}
}
