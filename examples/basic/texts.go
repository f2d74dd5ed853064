package main

import (
	"net/http"

	"github.com/vippslogin/vippslogin"
)

// siteTexts is what the site's own pages say, in one language.
type siteTexts struct {
	Lang     string // BCP 47 tag, for <html lang> and Content-Language
	SiteName string

	// The home page, to a guest and to a logged-in user.
	HomeTitle, Welcome, Intro  string
	Hello, LoggedIn, SeeShared string
	LogOut                     string

	// The profile page and the names of the claims.
	ProfileTitle, Shared                             string
	Name, Email, Verified, Phone, BirthDate, Address string
	UserID, Home                                     string
}

var english = siteTexts{
	Lang:         "en",
	SiteName:     "vippslogin example",
	HomeTitle:    "Home",
	Welcome:      "Welcome",
	Intro:        `This example site shows "Log in with Vipps MobilePay". Log in to see what your profile shares with the site.`,
	Hello:        "Hello",
	LoggedIn:     "You are logged in with Vipps MobilePay.",
	SeeShared:    "See what Vipps MobilePay shared",
	LogOut:       "Log out",
	ProfileTitle: "Your profile",
	Shared:       "This is what Vipps MobilePay shared with this site.",
	Name:         "Name",
	Email:        "Email",
	Verified:     "verified",
	Phone:        "Phone",
	BirthDate:    "Birth date",
	Address:      "Address",
	UserID:       "User id (sub)",
	Home:         "Home",
}

var norwegian = siteTexts{
	Lang:         "nb",
	SiteName:     "vippslogin-eksempel",
	HomeTitle:    "Forsiden",
	Welcome:      "Velkommen",
	Intro:        "Dette eksempelnettstedet viser «Logg inn med Vipps MobilePay». Logg inn for å se hva profilen din deler med nettstedet.",
	Hello:        "Hei",
	LoggedIn:     "Du er logget inn med Vipps MobilePay.",
	SeeShared:    "Se hva Vipps MobilePay delte",
	LogOut:       "Logg ut",
	ProfileTitle: "Profilen din",
	Shared:       "Dette er hva Vipps MobilePay delte med nettstedet.",
	Name:         "Navn",
	Email:        "E-post",
	Verified:     "bekreftet",
	Phone:        "Telefon",
	BirthDate:    "Fødselsdato",
	Address:      "Adresse",
	UserID:       "Bruker-ID (sub)",
	Home:         "Til forsiden",
}

// textsFor returns the site's texts in the language vippslogin speaks to
// r (vippslogin.Language: from Accept-Language, unless a middleware chose
// one with vippslogin.WithLanguage), so that the site's pages, its login
// button and vippslogin's pages speak one language.
func textsFor(r *http.Request) *siteTexts {
	if vippslogin.Language(r) == "nb" {
		return &norwegian
	}
	return &english
}
