package main

import (
	"testing"

	"github.com/vippslogin/vippslogin/internal/testsvc"
	"github.com/vippslogin/vippslogin/vippstest"
)

// On a phone's screen, 360 by 640 CSS pixels, every page of the login fits
// the width, and no word breaks across lines; on a 500 px screen neither
// does the profile's "verified" tag. The words are longer in Norwegian.
func TestBrowserPhone(t *testing.T) {
	chromium := testsvc.Chromium(t)
	for _, tc := range []struct {
		acceptLanguage, lang                     string
		login, approve, logOut, cancel, tryAgain string
		profile, cancelled                       string // texts of the pages
	}{
		{"en-US,en;q=0.9", "en", "Log in with Vipps", "Approve", "Log out", "Cancel", "Try again",
			"This is what Vipps MobilePay shared with this site.", "You cancelled the login"},
		{"nb-NO,nb;q=0.9,en;q=0.8", "nb", "Logg inn med Vipps", "Godkjenn", "Logg ut", "Avbryt", "Prøv igjen",
			"Dette er hva Vipps MobilePay delte med nettstedet.", "Du avbrøt innloggingen"},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			srv, _ := startSite(t, nil)
			b := startChromium(t, chromium, srv.URL)
			b.speak(tc.acceptLanguage, tc.lang)
			b.resize(360, 640)
			want := vippstest.DefaultUsers()[0]
			logOutButton := logoutButtonNamed(tc.logOut)

			b.open("/")
			b.waitVisible(link(tc.login))
			b.checkFits(360)
			b.screenshot("home-360", tc.login)

			b.click(link(tc.login))
			b.checkConsentPage(want)
			b.checkFits(360)
			b.screenshot("consent-360", b.consentText(want))

			b.click(buttonNamed(tc.approve))
			b.waitVisible(logOutButton)
			b.checkFits(360)
			b.screenshot("profile-360", want.Name, tc.profile, want.Email, "+47 912 34 567")

			b.resize(500, 800)
			b.checkFits(500)
			b.screenshot("profile-500", want.Name, tc.profile, want.Email)

			b.resize(360, 640)
			b.open("/auth/logout")
			b.waitVisible(logOutButton)
			b.checkFits(360)
			b.screenshot("logout-link-360", tc.logOut)
			b.click(logOutButton)
			b.waitVisible(link(tc.login))

			b.click(link(tc.login))
			b.checkConsentPage(want)
			b.click(buttonNamed(tc.cancel))
			b.waitVisible(link(tc.tryAgain))
			b.checkFits(360)
			b.screenshot("cancelled-360", tc.cancelled)
		})
	}
}
