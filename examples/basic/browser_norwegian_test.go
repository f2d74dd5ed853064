package main

import (
	"testing"

	"github.com/vippslogin/vippslogin/internal/testsvc"
	"github.com/vippslogin/vippslogin/vippstest"
)

// englishWords must not show on a page in Norwegian.
var englishWords = []string{
	"Log in", "Log out", "Welcome", "Hello", "Your profile", "Name", "Email", "verified", "Phone",
	"Approve", "Cancel", "Try again", "Back to", "Stay logged in", "vippslogin example",
}

// A browser set to Norwegian gets the whole login in Norwegian: the site's
// pages, its login button, the provider's consent page, vippslogin's
// logout link page and vippslogin's texts on the site's error page.
func TestBrowserNorwegian(t *testing.T) {
	chromium := testsvc.Chromium(t)
	srv, _ := startSite(t, nil)
	b := startChromium(t, chromium, srv.URL)
	b.speak("nb-NO,nb;q=0.9,en;q=0.8", "nb")
	want := vippstest.DefaultUsers()[0]
	logIn := link("Logg inn med Vipps")
	logOut := logoutButtonNamed("Logg ut")

	// The home page and its button.
	resp := b.open("/")
	b.waitVisible(logIn)
	b.checkLanguage(resp, "nb")
	if lang := b.attr(logIn, "lang"); lang != "nb" {
		t.Errorf("login button: lang %q, want nb", lang)
	}
	b.textHas("header", "vippslogin-eksempel")
	b.textLacks("body", englishWords...)
	b.screenshot("home", "Velkommen", "Logg inn for å se hva profilen din deler")

	// The provider's consent page.
	b.click(logIn)
	b.checkConsentPage(want)
	b.textLacks("body", englishWords...)
	b.screenshot("consent", b.consentText(want))

	// The profile page.
	resp = b.click(buttonNamed("Godkjenn"))
	b.waitVisible(logOut)
	if path := b.path(); resp.Status != 200 || path != "/profile" {
		t.Fatalf("after approving: got %d at %s, want 200 at /profile", resp.Status, b.location())
	}
	b.checkLanguage(resp, "nb")
	if title := b.eval(`document.title`); title != "Profilen din · vippslogin-eksempel" {
		t.Errorf("profile: title %q", title)
	}
	b.textHas("body", "Navn", "E-post", want.Email, "bekreftet", "Telefon", "+47 912 34 567", "Bruker-ID (sub)", want.Sub,
		"Logg ut", "Til forsiden")
	b.textLacks("body", englishWords...)
	b.checkSawCode()
	b.checkNoSecrets()
	b.screenshot("profile", want.Name, "Dette er hva Vipps MobilePay delte med nettstedet.")

	// A logout link shows vippslogin's page, whose button logs out.
	// Staying leaves the user logged in.
	resp = b.open("/auth/logout")
	b.waitVisible(logOut)
	b.checkLanguage(resp, "nb")
	b.textLacks("body", englishWords...)
	b.screenshot("logout-link", "Vil du logge ut av dette nettstedet i denne nettleseren?", "Forbli innlogget")
	b.click(link("Forbli innlogget"))
	b.waitVisible(logOut)
	if path := b.path(); path != "/" {
		t.Errorf("after staying logged in: at %s, want /", b.location())
	}
	b.textHas("body", "Hei, "+want.Name, "Du er logget inn med Vipps MobilePay.")

	b.open("/auth/logout")
	b.waitVisible(logOut)
	resp = b.click(logOut)
	b.waitVisible(logIn)
	if path := b.path(); resp.Status != 200 || path != "/" {
		t.Errorf("after logging out: got %d at %s, want 200 at /", resp.Status, b.location())
	}
	b.textLacks("body", want.Name, "Logg ut")
	b.screenshot("logged-out", "Velkommen")

	// A cancelled login: vippslogin's texts in the site's layout.
	b.click(logIn)
	b.checkConsentPage(want)
	resp = b.click(buttonNamed("Avbryt"))
	b.waitVisible(link("Prøv igjen"))
	if resp.Status != 400 {
		t.Errorf("after cancelling: status %d, want 400", resp.Status)
	}
	b.checkLanguage(resp, "nb")
	if title := b.eval(`document.title`); title != "Du avbrøt innloggingen · vippslogin-eksempel" {
		t.Errorf("after cancelling: title %q", title)
	}
	b.textHas("header", "vippslogin-eksempel")
	b.textLacks("body", englishWords...)
	b.textLacks("body", "access_denied")
	b.screenshot("cancelled", "Du avbrøt innloggingen", "ingenting ble delt", "Tilbake til nettstedet")
}
