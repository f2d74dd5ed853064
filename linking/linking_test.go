package linking_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"
	"github.com/vippslogin/vippslogin"
	"github.com/vippslogin/vippslogin/linking"
	"github.com/vippslogin/vippslogin/vippstest"
)

// The default vippstest users.
const (
	subKari = "c3a9f3e2-5d1b-4f0e-9a6c-2b7d8e4f1a05" // Kari Nordmann, 4791234567, kari.nordmann@example.com (verified)
	subOla  = "7b2e4c91-0a8d-4e3f-b6d2-95c1f0a7e368" // Ola Bjørnstad Hansen, 4798765432, ola.hansen@example.org (verified)
	subAse  = "e05d6a17-93bc-4b28-8f4e-1d2c3b4a5f69" // Åse Øvrebø, 4741234567, ase.ovrebo@example.net (not verified)
)

// accountTable is an in-memory user table, the Finder a site writes
// over its database. Its phone lookup is as broad as Finder allows:
// every number that ends with the last eight digits of the one asked for.
type accountTable struct {
	mu       sync.Mutex
	accounts []linking.Account
	err      error    // when set, every lookup fails with it
	broad    bool     // when set, every lookup returns every account
	calls    []string // the lookups made: "subject", "phone", "email"
}

func newAccountTable(accounts ...linking.Account) *accountTable {
	return &accountTable{accounts: accounts}
}

func (t *accountTable) AccountBySubject(_ context.Context, sub string) (linking.Account, bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.calls = append(t.calls, "subject")
	if t.err != nil {
		return linking.Account{}, false, t.err
	}
	for _, a := range t.accounts {
		if a.Subject == sub && sub != "" {
			return a, true, nil
		}
	}
	return linking.Account{}, false, nil
}

func (t *accountTable) AccountsByPhone(_ context.Context, msisdn string) ([]linking.Account, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.calls = append(t.calls, "phone")
	if t.err != nil {
		return nil, t.err
	}
	var out []linking.Account
	for _, a := range t.accounts {
		d := phoneDigits(a.Phone)
		if t.broad || d != "" && len(msisdn) >= 8 && strings.HasSuffix(d, msisdn[len(msisdn)-8:]) {
			out = append(out, a)
		}
	}
	return out, nil
}

func (t *accountTable) AccountsByEmail(_ context.Context, email string) ([]linking.Account, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.calls = append(t.calls, "email")
	if t.err != nil {
		return nil, t.err
	}
	var out []linking.Account
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

// site is a site that logs in against a vippstest provider, with the
// AfterLogin recipe of Find's documentation: the account in the session on
// Linked and Matched (storing the sub on Matched), and on NeedsUser no
// account and the reason.
type site struct {
	t     *testing.T
	idp   *vippstest.Provider
	url   string
	table *accountTable

	mu    sync.Mutex
	links []linking.Result
	errs  []error // the errors the error handler got
}

func newSite(t *testing.T, table *accountTable, users ...vippstest.User) *site {
	t.Helper()
	idp, err := vippstest.New(vippstest.Config{AutoApprove: true, Users: users})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(idp.Close)
	srv := httptest.NewUnstartedServer(nil)
	s := &site{t: t, idp: idp, url: "http://" + srv.Listener.Addr().String(), table: table}
	sessions := scs.New()
	sessions.Store = memstore.NewWithCleanupInterval(0) // no goroutine to outlive the test
	auth, err := vippslogin.New(vippslogin.Config{
		ClientID:     idp.ClientID(),
		ClientSecret: vippslogin.Secret(idp.ClientSecret()),
		Issuer:       idp.Issuer(),
		BaseURL:      s.url,
		Sessions:     sessions,
		Scopes:       []string{"openid", "name", "email", "phoneNumber"},
		Logger:       slog.New(slog.DiscardHandler),
		AfterLogin: func(w http.ResponseWriter, r *http.Request, c *vippslogin.Claims) error {
			ctx := r.Context()
			link, err := linking.Find(ctx, table, c)
			if err != nil {
				return err
			}
			s.mu.Lock()
			s.links = append(s.links, link)
			s.mu.Unlock()
			switch link.Status {
			case linking.Matched:
				if err := table.setSubject(link.Account.ID, c.Subject); err != nil {
					return err
				}
				fallthrough
			case linking.Linked:
				sessions.Put(ctx, "account", link.Account.ID)
				sessions.Remove(ctx, "link.reason")
			default:
				sessions.Remove(ctx, "account")
				sessions.Put(ctx, "link.reason", link.Reason.String())
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			s.mu.Lock()
			s.errs = append(s.errs, err)
			s.mu.Unlock()
			vippslogin.WriteError(w, r, err)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = auth.Close() })
	idp.AddRedirectURI(auth.RedirectURI())

	mux := http.NewServeMux()
	mux.Handle("/auth/", auth.Handler())
	// whoami shows the logged-in sub and name, and the session's account
	// and link.reason.
	mux.Handle("/whoami", auth.LoadClaims(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		v := whoami{Account: sessions.GetString(ctx, "account"), Reason: sessions.GetString(ctx, "link.reason")}
		if c, ok := vippslogin.ClaimsFromContext(ctx); ok {
			v.Sub, v.Name = c.Subject, c.Name
		}
		_ = json.NewEncoder(w).Encode(v)
	})))
	srv.Config.Handler = auth.LoadAndSave(mux)
	srv.Start()
	t.Cleanup(srv.Close)
	return s
}

// whoami is what the site's /whoami page shows.
type whoami struct {
	Sub, Name, Account, Reason string
}

// browser returns a new browser: a client that keeps cookies and follows
// redirects.
func (s *site) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar}
}

// get fetches path on the site with b, as a browser that accepts accept,
// and returns the answer with its body read.
func (s *site) get(b *http.Client, path, accept string) (*http.Response, string) {
	s.t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.url+path, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Accept", accept)
	resp, err := b.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return resp, string(body)
}

// whoami fetches the site's /whoami with b.
func (s *site) whoami(b *http.Client) whoami {
	s.t.Helper()
	resp, body := s.get(b, "/whoami", "application/json")
	var v whoami
	if err := json.Unmarshal([]byte(body), &v); resp.StatusCode != http.StatusOK || err != nil {
		s.t.Fatalf("whoami: %d %s", resp.StatusCode, body)
	}
	return v
}

// lastLink returns the Result of the last login.
func (s *site) lastLink() linking.Result {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.links) == 0 {
		s.t.Fatal("AfterLogin linked nothing")
	}
	return s.links[len(s.links)-1]
}

// loginAs logs a browser in as the vippstest user sub.
func (s *site) loginAs(b *http.Client, sub string) {
	s.t.Helper()
	if err := s.idp.SetUser(sub); err != nil {
		s.t.Fatal(err)
	}
	resp, body := s.get(b, "/auth/login?return_to=%2Fwhoami", "text/html")
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/whoami" {
		s.t.Fatalf("login: %d at %s: %s", resp.StatusCode, resp.Request.URL, body)
	}
	if got := s.whoami(b).Sub; got != sub {
		s.t.Fatalf("logged in as %q, want %s", got, sub)
	}
}

// wantAccount checks the site's account in the browser's session: id, or
// none when id is "", in which case the session says why.
func (s *site) wantAccount(b *http.Client, id string, reason linking.Reason) {
	s.t.Helper()
	v := s.whoami(b)
	if v.Account != id {
		s.t.Errorf("account in session = %q, want %q", v.Account, id)
	}
	wantReason := ""
	if id == "" {
		wantReason = reason.String()
	}
	if v.Reason != wantReason {
		s.t.Errorf("link.reason in session = %q, want %q", v.Reason, wantReason)
	}
}

// Logins through HTTP against vippstest, with the AfterLogin recipe.
func TestFindLogin(t *testing.T) {
	kari := linking.Account{ID: "kari", Name: "Kari Nordmann", Phone: "+47 912 34 567", Email: "kari@old.example"}
	tests := []struct {
		name     string
		accounts []linking.Account
		sub      string // the Vipps user who logs in
		want     linking.Result
		calls    []string
	}{{
		name: "stored sub",
		accounts: []linking.Account{
			{ID: "k", Subject: subKari, Name: "Someone Else", Phone: "+45 11 22 33 44"},
			kari, // found by phone too, but the sub decides
		},
		sub:   subKari,
		want:  linking.Result{Status: linking.Linked, By: linking.BySubject, Account: linking.Account{ID: "k"}},
		calls: []string{"subject"},
	}, {
		name:     "one account by phone",
		accounts: []linking.Account{kari, {ID: "ola", Name: "Ola Hansen", Phone: "98765432"}},
		sub:      subKari,
		want:     linking.Result{Status: linking.Matched, By: linking.ByPhone, Account: linking.Account{ID: "kari"}},
		calls:    []string{"subject", "phone", "email"},
	}, {
		name:     "one account by verified email, shorter name",
		accounts: []linking.Account{kari, {ID: "ola", Name: "Hansen, Ola", Email: "Ola.Hansen@Example.ORG"}},
		sub:      subOla,
		want:     linking.Result{Status: linking.Matched, By: linking.ByEmail, Account: linking.Account{ID: "ola"}},
		calls:    []string{"subject", "phone", "email"},
	}, {
		name:     "phone and email find the same account",
		accounts: []linking.Account{{ID: "kari", Name: "Kari Nordmann", Phone: "0047 91234567", Email: "kari.nordmann@example.com"}},
		sub:      subKari,
		want:     linking.Result{Status: linking.Matched, By: linking.ByPhone | linking.ByEmail, Account: linking.Account{ID: "kari"}},
	}, {
		name:     "email not verified is not looked up",
		accounts: []linking.Account{{ID: "ase", Name: "Åse Øvrebø", Phone: "+47 99 99 99 99", Email: "ase.ovrebo@example.net"}},
		sub:      subAse,
		want:     linking.Result{Status: linking.NeedsUser, Reason: linking.NoMatch},
		calls:    []string{"subject", "phone"},
	}, {
		name: "two accounts by phone",
		accounts: []linking.Account{
			kari,
			{ID: "kari2", Name: "Kari Nordmann", Phone: "912 34 567"},
		},
		sub:  subKari,
		want: linking.Result{Status: linking.NeedsUser, By: linking.ByPhone, Reason: linking.SeveralMatches},
	}, {
		name: "phone and email find different accounts",
		accounts: []linking.Account{
			kari,
			{ID: "kari-mail", Name: "Kari Nordmann", Email: "KARI.NORDMANN@example.com"},
		},
		sub:  subKari,
		want: linking.Result{Status: linking.NeedsUser, By: linking.ByPhone | linking.ByEmail, Reason: linking.SeveralMatches},
	}, {
		name:     "recycled number: another name",
		accounts: []linking.Account{{ID: "per", Name: "Per Olsen", Phone: "+4791234567"}},
		sub:      subKari,
		want:     linking.Result{Status: linking.NeedsUser, By: linking.ByPhone, Reason: linking.NameMismatch},
	}, {
		name:     "same family, other person",
		accounts: []linking.Account{{ID: "per", Name: "Per Bjørnstad Hansen", Email: "ola.hansen@example.org"}},
		sub:      subOla,
		want:     linking.Result{Status: linking.NeedsUser, By: linking.ByEmail, Reason: linking.NameMismatch},
	}, {
		name:     "linked to another Vipps user",
		accounts: []linking.Account{{ID: "kari", Subject: "0d6c0c0e-old-sub", Name: "Kari Nordmann", Phone: "+47 912 34 567"}},
		sub:      subKari,
		want:     linking.Result{Status: linking.NeedsUser, By: linking.ByPhone, Reason: linking.AlreadyLinked},
	}, {
		name:     "no match",
		accounts: []linking.Account{{ID: "ola", Name: "Ola Hansen", Phone: "+47 987 65 432", Email: "ola@example.org"}},
		sub:      subKari,
		want:     linking.Result{Status: linking.NeedsUser, Reason: linking.NoMatch},
	}, {
		name:     "same digits, other country",
		accounts: []linking.Account{{ID: "dk", Name: "Kari Nordmann", Phone: "+45 91 23 45 67"}},
		sub:      subKari,
		want:     linking.Result{Status: linking.NeedsUser, Reason: linking.NoMatch},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table := newAccountTable(tt.accounts...)
			s := newSite(t, table)
			b := s.browser()
			s.loginAs(b, tt.sub)

			got := s.lastLink()
			if got.Status != tt.want.Status || got.By != tt.want.By || got.Reason != tt.want.Reason || got.Account.ID != tt.want.Account.ID {
				t.Errorf("link = {%v %v %v %q}, want {%v %v %v %q}",
					got.Status, got.By, got.Reason, got.Account.ID,
					tt.want.Status, tt.want.By, tt.want.Reason, tt.want.Account.ID)
			}
			if got.Status == linking.NeedsUser && got.Account != (linking.Account{}) {
				t.Errorf("NeedsUser hands out account %+v", got.Account)
			}
			if calls := table.takeCalls(); tt.calls != nil && !slices.Equal(calls, tt.calls) {
				t.Errorf("lookups = %q, want %q", calls, tt.calls)
			}
			s.wantAccount(b, tt.want.Account.ID, tt.want.Reason)

			// The sub is stored on Matched, and only then.
			for _, a := range tt.accounts {
				stored := table.subjectOf(a.ID)
				switch {
				case tt.want.Status == linking.Matched && a.ID == tt.want.Account.ID:
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
func TestFindNextLoginBySubject(t *testing.T) {
	table := newAccountTable(linking.Account{ID: "42", Name: "Kari Nordmann", Phone: "912 34 567"})
	s := newSite(t, table)

	first := s.browser()
	s.loginAs(first, subKari)
	if got := s.lastLink(); got.Status != linking.Matched || got.By != linking.ByPhone {
		t.Fatalf("first login: %v by %v (%v), want matched by phone", got.Status, got.By, got.Reason)
	}
	s.wantAccount(first, "42", 0)
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
	if got := s.lastLink(); got.Status != linking.Linked || got.By != linking.BySubject || got.Account.ID != "42" {
		t.Fatalf("second login: %v by %v account %q, want linked by subject to 42", got.Status, got.By, got.Account.ID)
	}
	if calls := table.takeCalls(); !slices.Equal(calls, []string{"subject"}) {
		t.Errorf("lookups = %q, want only by subject", calls)
	}
	s.wantAccount(second, "42", 0)
}

// A second login in the same browser as another Vipps user must not keep
// the first user's account: the session is renewed with its data, so the
// recipe removes the account on NeedsUser.
func TestFindReloginAsAnotherUser(t *testing.T) {
	table := newAccountTable(linking.Account{ID: "kari", Subject: subKari, Name: "Kari Nordmann"})
	s := newSite(t, table)
	b := s.browser()

	s.loginAs(b, subKari)
	s.wantAccount(b, "kari", 0)

	s.loginAs(b, subAse)
	if got := s.lastLink(); got.Status != linking.NeedsUser || got.Reason != linking.NoMatch {
		t.Fatalf("link = %v (%v), want needs user (no match)", got.Status, got.Reason)
	}
	s.wantAccount(b, "", linking.NoMatch)
	if got := s.whoami(b); got.Name != "Åse Øvrebø" {
		t.Errorf("session claims name %q, want Åse Øvrebø's", got.Name)
	}
}

// A phone number the provider says is not verified is not looked up.
func TestFindPhoneNotVerified(t *testing.T) {
	users := vippstest.DefaultUsers()[:1]
	users[0].PhoneNumberVerified = false
	users[0].EmailVerified = false
	table := newAccountTable(linking.Account{ID: "kari", Name: "Kari Nordmann", Phone: "+47 912 34 567", Email: users[0].Email})
	s := newSite(t, table, users...)
	b := s.browser()
	s.loginAs(b, subKari)
	if got := s.lastLink(); got.Status != linking.NeedsUser || got.Reason != linking.NoMatch {
		t.Errorf("link = %v (%v), want needs user (no match)", got.Status, got.Reason)
	}
	if calls := table.takeCalls(); !slices.Equal(calls, []string{"subject"}) {
		t.Errorf("lookups = %q, want only by subject", calls)
	}
	s.wantAccount(b, "", linking.NoMatch)
}

// A failed lookup fails the login: the default error page's 503 "try
// again", which does not show the cause, and no login.
func TestFindLookupFails(t *testing.T) {
	errDown := errors.New("dial users-db-7: connection refused")
	table := newAccountTable(linking.Account{ID: "kari", Subject: subKari, Name: "Kari Nordmann"})
	table.err = errDown
	s := newSite(t, table)

	for _, accept := range []string{"text/html", "application/json"} {
		t.Run(accept, func(t *testing.T) {
			b := s.browser()
			resp, body := s.get(b, "/auth/login", accept)
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("status = %d, want 503", resp.StatusCode)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, accept) {
				t.Errorf("Content-Type = %q, want %s", ct, accept)
			}
			if accept == "application/json" && !strings.Contains(body, `"error":"session_unavailable"`) {
				t.Errorf("body = %s, want the error session_unavailable", body)
			}
			if strings.Contains(body, "users-db") || strings.Contains(body, "connection") {
				t.Errorf("error page shows the cause: %s", body)
			}
			s.mu.Lock()
			err := s.errs[len(s.errs)-1]
			s.mu.Unlock()
			for _, target := range []error{linking.ErrLookup, vippslogin.ErrSessionStore, errDown} {
				if !errors.Is(err, target) {
					t.Errorf("error %v does not wrap %v", err, target)
				}
			}
			if v := s.whoami(b); v != (whoami{}) {
				t.Errorf("logged in after a failed lookup: %+v", v)
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

func TestFindPhoneFormats(t *testing.T) {
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
		table := newAccountTable(linking.Account{ID: "1", Name: "Kari Nordmann", Phone: tt.stored})
		table.broad = true
		link, err := linking.Find(context.Background(), table, linkClaims("Kari", "Nordmann", tt.msisdn))
		if err != nil {
			t.Fatal(err)
		}
		if got := link.Status == linking.Matched; got != tt.want {
			t.Errorf("%q vs %s: matched %v (%v, %v), want %v", tt.stored, tt.msisdn, got, link.Status, link.Reason, tt.want)
		}
	}
}

// How the claims' phone number is used.
func TestFindPhoneClaim(t *testing.T) {
	account := linking.Account{ID: "1", Name: "Kari Nordmann", Phone: "+47 912 34 567"}
	tests := []struct {
		name string
		edit func(c *vippslogin.Claims)
		want linking.Status
	}{
		{"verified", func(c *vippslogin.Claims) {}, linking.Matched},
		{"E.164 with plus", func(c *vippslogin.Claims) { c.PhoneNumber = "+4791234567" }, linking.Matched},
		{"verified flag absent", func(c *vippslogin.Claims) {
			c.PhoneNumberVerified = false
			c.Raw = map[string]any{"sub": c.Subject, "phone_number": c.PhoneNumber}
		}, linking.Matched},
		{"said not verified", func(c *vippslogin.Claims) {
			c.PhoneNumberVerified = false
			c.Raw = map[string]any{"sub": c.Subject, "phone_number": c.PhoneNumber, "phone_number_verified": false}
		}, linking.NeedsUser},
		{"not a number", func(c *vippslogin.Claims) { c.PhoneNumber = "47 912 34 567" }, linking.NeedsUser},
		{"too short", func(c *vippslogin.Claims) { c.PhoneNumber = "4791234" }, linking.NeedsUser},
		{"national", func(c *vippslogin.Claims) { c.PhoneNumber = "091234567" }, linking.NeedsUser},
		{"none", func(c *vippslogin.Claims) { c.PhoneNumber = "" }, linking.NeedsUser},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table := newAccountTable(account)
			table.broad = true
			c := linkClaims("Kari", "Nordmann", "4791234567")
			tt.edit(c)
			link, err := linking.Find(context.Background(), table, c)
			if err != nil {
				t.Fatal(err)
			}
			if link.Status != tt.want {
				t.Errorf("status = %v (%v), want %v", link.Status, link.Reason, tt.want)
			}
		})
	}
}

func TestFindNames(t *testing.T) {
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
		table := newAccountTable(linking.Account{ID: "1", Name: tt.account, Phone: "91234567"})
		link, err := linking.Find(context.Background(), table, c)
		if err != nil {
			t.Fatal(err)
		}
		got := link.Status == linking.Matched
		if got != tt.want {
			t.Errorf("%q vs given %q family %q name %q: matched %v (%v), want %v",
				tt.account, tt.given, tt.family, c.Name, got, link.Reason, tt.want)
		}
		if !got && link.Reason != linking.NameMismatch {
			t.Errorf("%q: reason %v, want name mismatch", tt.account, link.Reason)
		}
	}
}

// Find checks what a broad finder returns.
func TestFindChecksFinder(t *testing.T) {
	c := &vippslogin.Claims{Subject: "s", GivenName: "Kari", FamilyName: "Nordmann", Email: "Kari.Nordmann@Example.com", EmailVerified: true}
	table := newAccountTable(
		linking.Account{ID: "1", Name: "Kari Nordmann", Email: " kari.nordmann@example.COM "},
		linking.Account{ID: "2", Name: "Kari Nordmann", Email: "kari.nordmann@example.org"},
		linking.Account{ID: "3", Name: "Kari Nordmann", Phone: "+47 912 34 567"},
	)
	table.broad = true
	link, err := linking.Find(context.Background(), table, c)
	if err != nil {
		t.Fatal(err)
	}
	if link.Status != linking.Matched || link.Account.ID != "1" || link.By != linking.ByEmail {
		t.Errorf("link = %v %q by %v, want matched 1 by email", link.Status, link.Account.ID, link.By)
	}
}

type failingFinder struct {
	accountTable
	fail string // the lookup that fails
	err  error
}

func (f *failingFinder) AccountBySubject(ctx context.Context, sub string) (linking.Account, bool, error) {
	if f.fail == "subject" {
		return linking.Account{}, false, f.err
	}
	return f.accountTable.AccountBySubject(ctx, sub)
}

func (f *failingFinder) AccountsByPhone(ctx context.Context, msisdn string) ([]linking.Account, error) {
	if f.fail == "phone" {
		return nil, f.err
	}
	return f.accountTable.AccountsByPhone(ctx, msisdn)
}

func (f *failingFinder) AccountsByEmail(ctx context.Context, email string) ([]linking.Account, error) {
	if f.fail == "email" {
		return nil, f.err
	}
	return f.accountTable.AccountsByEmail(ctx, email)
}

func TestFindErrors(t *testing.T) {
	ctx := context.Background()
	kari := func() *vippslogin.Claims {
		c := linkClaims("Kari", "Nordmann", "4791234567")
		c.Email, c.EmailVerified = "kari.nordmann@example.com", true
		return c
	}
	errDown := errors.New("down")
	for _, lookup := range []string{"subject", "phone", "email"} {
		f := &failingFinder{fail: lookup, err: errDown}
		link, err := linking.Find(ctx, f, kari())
		if !errors.Is(err, linking.ErrLookup) || !errors.Is(err, vippslogin.ErrSessionStore) || !errors.Is(err, errDown) {
			t.Errorf("%s lookup fails: err = %v, want ErrLookup and ErrSessionStore wrapping the cause", lookup, err)
		}
		if msg := err.Error(); msg != "vippslogin: account lookup failed: by "+lookup+": down" {
			t.Errorf("%s lookup fails: message %q", lookup, msg)
		}
		if link != (linking.Result{}) {
			t.Errorf("%s lookup fails: result = %+v, want the zero Result", lookup, link)
		}
	}
	if _, err := linking.Find(ctx, newAccountTable(), nil); err == nil {
		t.Error("nil claims: no error")
	}
	if _, err := linking.Find(ctx, newAccountTable(), &vippslogin.Claims{Name: "Kari Nordmann"}); err == nil {
		t.Error("claims without subject: no error")
	}
	if _, err := linking.Find(ctx, nil, kari()); err == nil {
		t.Error("nil finder: no error")
	}
	for _, a := range []linking.Account{
		{Subject: "sub-1"},
		{Name: "Kari Nordmann", Phone: "91234567"},
		{Name: "Kari Nordmann", Email: "kari.nordmann@example.com"},
	} {
		if _, err := linking.Find(ctx, newAccountTable(a), kari()); !errors.Is(err, linking.ErrLookup) {
			t.Errorf("account %+v without an ID: err = %v, want ErrLookup", a, err)
		}
	}
}

func TestStrings(t *testing.T) {
	for _, tt := range []struct {
		got  interface{ String() string }
		want string
	}{
		{linking.NeedsUser, "needs user"},
		{linking.Linked, "linked"},
		{linking.Matched, "matched"},
		{linking.Status(9), "Status(9)"},
		{linking.BySubject, "subject"},
		{linking.ByPhone | linking.ByEmail, "phone+email"},
		{linking.Method(0), "none"},
		{linking.ByEmail | 16, "email+Method(16)"},
		{linking.NoMatch, "no match"},
		{linking.SeveralMatches, "several matches"},
		{linking.NameMismatch, "name mismatch"},
		{linking.AlreadyLinked, "already linked"},
		{linking.Reason(0), "none"},
		{linking.Reason(9), "Reason(9)"},
	} {
		if s := tt.got.String(); s != tt.want {
			t.Errorf("String() = %q, want %q", s, tt.want)
		}
	}
}
