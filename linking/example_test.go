package linking_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"

	"github.com/alexedwards/scs/v2"
	"github.com/vippslogin/vippslogin"
	"github.com/vippslogin/vippslogin/linking"
	"github.com/vippslogin/vippslogin/vippstest"
)

// userTable is a site's own user table, here in memory. A site implements
// the same three lookups over its database.
type userTable struct {
	mu       sync.Mutex
	accounts []linking.Account
}

func (u *userTable) AccountBySubject(_ context.Context, sub string) (linking.Account, bool, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, a := range u.accounts {
		if a.Subject == sub {
			return a, true, nil
		}
	}
	return linking.Account{}, false, nil
}

// AccountsByPhone may be broad: Find compares the numbers itself.
// In PostgreSQL, for instance:
//
//	WHERE right(regexp_replace(phone, '\D', '', 'g'), 8) = right($1, 8)
func (u *userTable) AccountsByPhone(_ context.Context, msisdn string) ([]linking.Account, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	var found []linking.Account
	for _, a := range u.accounts {
		d := strings.Map(func(r rune) rune {
			if r < '0' || r > '9' {
				return -1
			}
			return r
		}, a.Phone)
		if d != "" && strings.HasSuffix(d, msisdn[len(msisdn)-8:]) {
			found = append(found, a)
		}
	}
	return found, nil
}

func (u *userTable) AccountsByEmail(_ context.Context, email string) ([]linking.Account, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	var found []linking.Account
	for _, a := range u.accounts {
		if strings.EqualFold(a.Email, email) {
			found = append(found, a)
		}
	}
	return found, nil
}

func (u *userTable) SetSubject(_ context.Context, id, sub string) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	for i := range u.accounts {
		if u.accounts[i].ID == id {
			u.accounts[i].Subject = sub
			return nil
		}
	}
	return errors.New("no such account")
}

// A site that links Vipps users to its own accounts in AfterLogin. The
// first login of Kari finds her account by her phone number and stores her
// sub on it; her next login finds it by the sub. Ola's account is found by
// his email address, under a shorter name. Åse has no account: her login
// completes, and the site's pages that need an account send her to a page
// where she can link one or create one.
func ExampleFind() {
	idp, err := vippstest.New(vippstest.Config{AutoApprove: true})
	if err != nil {
		log.Fatal(err)
	}
	defer idp.Close()

	users := &userTable{accounts: []linking.Account{
		{ID: "1", Name: "Kari Nordmann", Phone: "+47 912 34 567", Email: "kari@example.com"},
		{ID: "2", Name: "Ola Hansen", Email: "ola.hansen@example.org"},
	}}

	site := httptest.NewUnstartedServer(nil)
	sessions := scs.New()
	auth, err := vippslogin.New(vippslogin.Config{
		ClientID:     idp.ClientID(),
		ClientSecret: vippslogin.Secret(idp.ClientSecret()),
		Issuer:       idp.Issuer(),
		BaseURL:      "http://" + site.Listener.Addr().String(),
		Sessions:     sessions,
		Scopes:       []string{"openid", "name", "phoneNumber", "email"},
		AfterLogin: func(w http.ResponseWriter, r *http.Request, c *vippslogin.Claims) error {
			ctx := r.Context()
			link, err := linking.Find(ctx, users, c)
			if err != nil {
				return err // the login fails and the claims are not saved
			}
			switch link.Status {
			case linking.Matched:
				if err := users.SetSubject(ctx, link.Account.ID, c.Subject); err != nil {
					return err
				}
				fallthrough
			case linking.Linked:
				fmt.Printf("%s: %v by %v\n", c.Name, link.Status, link.By)
				sessions.Put(ctx, "account", link.Account.ID)
			default: // NeedsUser
				fmt.Printf("%s: %v (%v)\n", c.Name, link.Status, link.Reason)
				sessions.Remove(ctx, "account") // a previous login's, in this session
				sessions.Put(ctx, "link.reason", link.Reason.String())
			}
			return nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer auth.Close()
	idp.AddRedirectURI(auth.RedirectURI())

	// needAccount sends a logged-in user without an account to /link.
	needAccount := func(next http.Handler) http.Handler {
		return auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if sessions.GetString(r.Context(), "account") == "" {
				http.Redirect(w, r, "/link", http.StatusSeeOther)
				return
			}
			next.ServeHTTP(w, r)
		}))
	}
	account := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, _ := vippslogin.ClaimsFromContext(r.Context())
		fmt.Fprintf(w, "Hello, %s (account %s)", claims.GivenName, sessions.GetString(r.Context(), "account"))
	})
	link := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, _ := vippslogin.ClaimsFromContext(r.Context())
		// A real page offers the old login (which then stores
		// claims.Subject on the account) and a sign-up form filled from
		// the claims.
		fmt.Fprintf(w, "Hei, %s! Log in with your password to link Vipps, or create an account.", claims.GivenName)
	})
	mux := http.NewServeMux()
	mux.Handle("/auth/", auth.Handler())
	mux.Handle("/account", needAccount(account))
	mux.Handle("/link", auth.RequireLogin(link))
	site.Config.Handler = sessions.LoadAndSave(mux)
	site.Start()
	defer site.Close()

	visit := func(sub string) {
		if err := idp.SetUser(sub); err != nil {
			log.Fatal(err)
		}
		jar, _ := cookiejar.New(nil)
		browser := &http.Client{Jar: jar}
		resp, err := browser.Get(site.URL + "/account")
		if err != nil {
			log.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		fmt.Println(resp.Request.URL.Path, string(body))
	}
	visit("c3a9f3e2-5d1b-4f0e-9a6c-2b7d8e4f1a05") // Kari Nordmann, +47 912 34 567
	visit("c3a9f3e2-5d1b-4f0e-9a6c-2b7d8e4f1a05") // Kari again, in another browser
	visit("7b2e4c91-0a8d-4e3f-b6d2-95c1f0a7e368") // Ola Bjørnstad Hansen, ola.hansen@example.org
	visit("e05d6a17-93bc-4b28-8f4e-1d2c3b4a5f69") // Åse Øvrebø
	// Output:
	// Kari Nordmann: matched by phone
	// /account Hello, Kari (account 1)
	// Kari Nordmann: linked by subject
	// /account Hello, Kari (account 1)
	// Ola Bjørnstad Hansen: matched by email
	// /account Hello, Ola (account 2)
	// Åse Øvrebø: needs user (no match)
	// /link Hei, Åse! Log in with your password to link Vipps, or create an account.
}
