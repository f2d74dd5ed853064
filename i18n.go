package vippslogin

import (
	"context"
	"fmt"
	"net/http"
	"strings"
)

// The package's pages speak English and Norwegian (Bokmål). A request gets
// the language its Accept-Language header prefers, unless the site chose one
// with WithLanguage; English is the default.
//
// Every text a person sees lives in msgs, one texts value per language. A
// new page adds its fields to texts and its words to both languages;
// checkTexts refuses a catalogue with a missing text, so every test run
// catches one.

// lang is a language the package has texts for.
type lang int

const (
	langEN lang = iota
	langNB
	numLangs
)

// tag is the language's BCP 47 tag, for Content-Language and <html lang>.
func (l lang) tag() string { return msgs[l].tag }

// msgID names what an error page tells a person; describe picks one.
type msgID int

const (
	msgInternal msgID = iota
	msgCancelled
	msgOutdatedApp
	msgWrongChallenge
	msgProviderLogin
	msgProviderFailed
	msgProviderOther
	msgSiteSetup
	msgBadReturnTo
	msgLoginExpired
	msgLoginReplayed
	msgBadCallback
	msgTimeout
	msgBusy
	msgSessionStore
	msgProviderDown
	msgGrantRefused
	msgUpstream
	msgAccountRefused
	msgNotLoggedIn
	msgCrossOrigin
	msgRequestCancelled
	msgStepUp
	msgBadLoginLink
	msgDeclined
	msgOtherBrowser
	msgNameless
	msgSlowDown
	numMsgs
)

// pageText is a page's heading (also its <title>) and its explanation.
// "{provider}" in either stands for Config.ProviderName.
type pageText struct {
	title, message string
}

// named returns t with the provider's name filled in.
func (t pageText) named(provider string) pageText {
	return pageText{
		title:   strings.ReplaceAll(t.title, "{provider}", provider),
		message: strings.ReplaceAll(t.message, "{provider}", provider),
	}
}

// texts is everything the package says to people, in one language.
type texts struct {
	tag string // BCP 47

	// The error page's links.
	tryAgain, backToSite string
	// problems are the error page's texts, by what went wrong.
	problems [numMsgs]pageText

	// confirm is the page that asks a browser a login came back to
	// whether to continue (FlowAutomaticReturn).
	confirm confirmText

	// logout is the page a logout link shows (GET /logout).
	logout logoutText
}

var msgs = checkTexts([numLangs]texts{
	langEN: {
		tag:        "en",
		tryAgain:   "Try again",
		backToSite: "Back to the site",
		problems: [numMsgs]pageText{
			msgInternal: {"Something went wrong",
				"Something went wrong on our side. Please try again."},
			msgCancelled: {"You cancelled the login",
				"No problem: nothing was shared. You can log in again whenever you like."},
			msgOutdatedApp: {"Update your app",
				"Your Vipps or MobilePay app is too old to log in. Update it from the app store and try again."},
			msgWrongChallenge: {"The login was not confirmed",
				"The code you picked in the app did not match the one shown in your browser. Please try again and pick the same one."},
			msgProviderLogin: {"Please log in again",
				"{provider} needs you to log in again."},
			msgProviderFailed: {"We couldn't finish your login",
				"{provider} had a problem. Please try again in a moment."},
			msgProviderOther: {"We couldn't finish your login",
				"{provider} could not complete the login. Please try again."},
			msgSiteSetup: {"We couldn't finish your login",
				"This site's login is not set up correctly. Please tell the site."},
			msgBadReturnTo: {"That link can't be used",
				"The address to return to after logging in is not a page on this site."},
			msgLoginExpired: {"Your login took too long",
				"The login was not finished in time. Please start again."},
			msgLoginReplayed: {"This login has already been used",
				"Each login can be used once, and this one already has been. If you are not logged in, please log in again."},
			msgBadCallback: {"The login link is incomplete",
				"The address you came back with from {provider} is incomplete or has been changed. Please log in again."},
			msgOtherBrowser: {"This login was started in another browser",
				"Finish the login in the browser where you started it, or log in again here."},
			msgNameless: {"We can't show who is logging in",
				"This login came back in another browser than the one it started in, and without a name we can't ask you to confirm it. Go back to the browser where you started, or log in again here."},
			msgSlowDown: {"Please wait a moment",
				"Many logins have been started from your network in a short time. Please wait a minute and try again."},
			msgTimeout: {"{provider} is slow to answer",
				"Logging in took too long because {provider} did not answer in time. Please try again in a moment."},
			msgBusy: {"Too many logins right now",
				"Too many logins are under way at the moment. Please try again in a minute."},
			msgSessionStore: {"We can't log you in right now",
				"This site can't reach its session storage at the moment. Please try again in a minute."},
			msgProviderDown: {"{provider} can't be reached",
				"Logging in with {provider} is not possible right now. Please try again in a few minutes."},
			msgGrantRefused: {"We couldn't finish your login",
				"The login could not be completed, perhaps because it was already used or took too long. Please log in again."},
			msgUpstream: {"We couldn't finish your login",
				"Something went wrong between this site and {provider}. Please try again."},
			msgAccountRefused: {"This account can't be used here",
				"You logged in with {provider}, but this site does not accept the account. Contact the site if you think this is wrong."},
			msgNotLoggedIn: {"Please log in",
				"You need to log in to see this page."},
			msgCrossOrigin: {"Request refused",
				"This request came from another site and was refused."},
			msgRequestCancelled: {"Request cancelled",
				"The request was cancelled."},
			msgStepUp: {"Confirm in the app",
				"This page needs a login confirmed in the Vipps or MobilePay app. Please try again and confirm in the app."},
			msgBadLoginLink: {"That link can't be used",
				"This login link asks for something this site does not offer."},
			msgDeclined: {"You chose not to continue",
				"Nothing was saved in this browser. You can log in again whenever you like."},
		},
		confirm: confirmText{
			title:   "Continue as {name}?",
			message: "You logged in with {provider} as {name}, and came back here in another browser. Continue only if you started this login yourself, just now. If you did not, choose Cancel and nothing happens.",
			cont:    "Continue",
			cancel:  "Cancel",
		},
		logout: logoutText{
			title:   "Log out",
			message: "Do you want to log out of this site in this browser?",
			logOut:  "Log out",
			stay:    "Stay logged in",
		},
	},
	langNB: {
		tag:        "nb",
		tryAgain:   "Prøv igjen",
		backToSite: "Tilbake til nettstedet",
		problems: [numMsgs]pageText{
			msgInternal: {"Noe gikk galt",
				"Noe gikk galt hos oss. Prøv igjen."},
			msgCancelled: {"Du avbrøt innloggingen",
				"Helt i orden – ingenting ble delt. Du kan logge inn igjen når du vil."},
			msgOutdatedApp: {"Oppdater appen",
				"Vipps- eller MobilePay-appen din må oppdateres før du kan logge inn. Oppdater den i App Store eller Google Play, og prøv igjen."},
			msgWrongChallenge: {"Innloggingen ble ikke bekreftet",
				"Koden du valgte i appen, stemte ikke med den som ble vist i nettleseren. Prøv igjen, og velg den samme koden."},
			msgProviderLogin: {"Logg inn på nytt",
				"Du må logge inn på nytt hos {provider}."},
			msgProviderFailed: {"Vi fikk ikke fullført innloggingen",
				"Noe gikk galt hos {provider}. Prøv igjen om litt."},
			msgProviderOther: {"Vi fikk ikke fullført innloggingen",
				"{provider} fikk ikke fullført innloggingen. Prøv igjen."},
			msgSiteSetup: {"Vi fikk ikke fullført innloggingen",
				"Innloggingen på dette nettstedet er ikke riktig satt opp. Si gjerne fra til dem som driver nettstedet."},
			msgBadReturnTo: {"Lenken kan ikke brukes",
				"Adressen du skal tilbake til etter innloggingen, er ikke en side på dette nettstedet."},
			msgLoginExpired: {"Innloggingen tok for lang tid",
				"Innloggingen ble ikke fullført i tide. Start på nytt."},
			msgLoginReplayed: {"Denne innloggingen er allerede brukt",
				"En innlogging kan bare brukes én gang, og denne er allerede brukt. Hvis du ikke er logget inn, logg inn på nytt."},
			msgBadCallback: {"Innloggingslenken er ufullstendig",
				"Adressen du kom tilbake med fra {provider}, er ufullstendig eller endret. Logg inn på nytt."},
			msgOtherBrowser: {"Innloggingen ble startet i en annen nettleser",
				"Fullfør innloggingen i nettleseren der du startet den, eller logg inn på nytt her."},
			msgNameless: {"Vi kan ikke vise hvem som logger inn",
				"Innloggingen kom tilbake i en annen nettleser enn den den ble startet i, og uten et navn kan vi ikke be deg bekrefte den. Gå tilbake til nettleseren der du startet, eller logg inn på nytt her."},
			msgSlowDown: {"Vent litt",
				"Det er startet mange innlogginger fra nettverket ditt på kort tid. Vent et minutt, og prøv igjen."},
			msgTimeout: {"{provider} svarer tregt",
				"Innloggingen tok for lang tid fordi {provider} ikke svarte i tide. Prøv igjen om litt."},
			msgBusy: {"For mange innlogginger akkurat nå",
				"Det pågår for mange innlogginger akkurat nå. Prøv igjen om et minutt."},
			msgSessionStore: {"Vi får ikke logget deg inn akkurat nå",
				"Nettstedet får ikke kontakt med lagringen av innlogginger akkurat nå. Prøv igjen om et minutt."},
			msgProviderDown: {"Vi får ikke kontakt med {provider}",
				"Det er ikke mulig å logge inn med {provider} akkurat nå. Prøv igjen om noen minutter."},
			msgGrantRefused: {"Vi fikk ikke fullført innloggingen",
				"Innloggingen kunne ikke fullføres, kanskje fordi den allerede var brukt eller tok for lang tid. Logg inn på nytt."},
			msgUpstream: {"Vi fikk ikke fullført innloggingen",
				"Noe gikk galt mellom dette nettstedet og {provider}. Prøv igjen."},
			msgAccountRefused: {"Denne kontoen kan ikke brukes her",
				"Du logget inn med {provider}, men nettstedet godtar ikke denne kontoen. Ta kontakt med nettstedet hvis du mener dette er feil."},
			msgNotLoggedIn: {"Logg inn",
				"Du må logge inn for å se denne siden."},
			msgCrossOrigin: {"Forespørselen ble avvist",
				"Forespørselen kom fra et annet nettsted og ble avvist."},
			msgRequestCancelled: {"Forespørselen ble avbrutt",
				"Forespørselen ble avbrutt før den var ferdig."},
			msgStepUp: {"Bekreft i appen",
				"Denne siden krever en innlogging som er bekreftet i Vipps- eller MobilePay-appen. Prøv igjen, og bekreft i appen."},
			msgBadLoginLink: {"Lenken kan ikke brukes",
				"Denne innloggingslenken ber om noe nettstedet ikke tilbyr."},
			msgDeclined: {"Du valgte å ikke fortsette",
				"Ingenting ble lagret i denne nettleseren. Du kan logge inn igjen når du vil."},
		},
		confirm: confirmText{
			title:   "Fortsette som {name}?",
			message: "Du logget inn med {provider} som {name} og kom tilbake hit i en annen nettleser. Fortsett bare hvis du selv startet denne innloggingen akkurat nå. Hvis ikke, velg Avbryt, så skjer det ingenting.",
			cont:    "Fortsett",
			cancel:  "Avbryt",
		},
		logout: logoutText{
			title:   "Logg ut",
			message: "Vil du logge ut av dette nettstedet i denne nettleseren?",
			logOut:  "Logg ut",
			stay:    "Forbli innlogget",
		},
	},
})

// checkTexts panics if a language lacks a text, so that a text added to
// one language only fails every test run instead of showing an empty page.
func checkTexts(all [numLangs]texts) [numLangs]texts {
	for l, t := range all {
		c, lo := t.confirm, t.logout
		ok := t.tag != "" && t.tryAgain != "" && t.backToSite != "" &&
			c.title != "" && c.message != "" && c.cont != "" && c.cancel != "" &&
			lo.title != "" && lo.message != "" && lo.logOut != "" && lo.stay != ""
		for _, p := range t.problems {
			ok = ok && p.title != "" && p.message != ""
		}
		if !ok {
			panic(fmt.Sprintf("vippslogin: language %d (%q) lacks a text", l, t.tag))
		}
	}
	return all
}

type langKey struct{}

// WithLanguage returns a copy of ctx that makes the package's pages (the
// default error pages of [WriteError], and the JSON messages) speak the
// language tag names, whatever the request's Accept-Language says. Use it
// in a middleware in front of the package's handlers when the site knows
// better than the browser, from a setting of the user or a /no/ prefix in
// the path:
//
//	next.ServeHTTP(w, r.WithContext(vippslogin.WithLanguage(r.Context(), "nb")))
//
// The package has English and Norwegian Bokmål texts. tag is a BCP 47 tag:
// "nb", "nn" and "no" (with any subtags, as in "nb-NO") give Bokmål; every
// other tag, also "", gives English.
func WithLanguage(ctx context.Context, tag string) context.Context {
	l, ok := matchLanguage(tag)
	if !ok {
		l = langEN
	}
	return context.WithValue(ctx, langKey{}, l)
}

// Language returns the BCP 47 tag of the language the package's pages use
// for r: "nb" (Norwegian Bokmål) or "en". It is the language set with
// [WithLanguage] on r's context, if any, and otherwise the one r's
// Accept-Language header prefers among those the package speaks: Bokmål
// for nb, nn and no, English for en and *. Higher q-values win; of equal
// ones, the first in the header wins; without a usable preference the
// answer is English. Malformed entries are ignored, and so is anything
// after the first 32 entries.
//
// Pass it to the login button of package
// [github.com/vippslogin/vippslogin/button] so that the button speaks the
// language of the error pages.
func Language(r *http.Request) string { return pickLanguage(r).tag() }

// pickLanguage is the language of the package's pages for r.
func pickLanguage(r *http.Request) lang {
	if l, ok := r.Context().Value(langKey{}).(lang); ok {
		return l
	}
	return negotiate(r.Header.Values("Accept-Language"))
}

// maxLanguageRanges bounds the work on Accept-Language headers: entries
// after the first maxLanguageRanges are ignored.
const maxLanguageRanges = 32

// negotiate picks the language of the Accept-Language field lines, parsed
// strictly by RFC 9110 (section 12.5.4): a language range, then an optional
// ";q=" weight of at most three decimals. "*" stands for each language no
// other range names.
func negotiate(fields []string) lang {
	const none = -1
	type pref struct{ q, pos int } // q in thousandths; pos in the header
	var explicit [numLangs]pref
	for i := range explicit {
		explicit[i] = pref{none, 0}
	}
	wildcard := pref{none, 0}

	pos := 0
	for _, field := range fields {
		for rest := field; rest != "" && pos < maxLanguageRanges; {
			var elem string
			elem, rest, _ = strings.Cut(rest, ",")
			elem = strings.Trim(elem, " \t")
			if elem == "" {
				continue // empty list elements are allowed
			}
			pos++
			rng, q, ok := parseLanguageRange(elem)
			if !ok {
				continue
			}
			if rng == "*" {
				if wildcard.q == none {
					wildcard = pref{q, pos}
				}
				continue
			}
			l, ok := matchLanguage(rng)
			if !ok {
				continue
			}
			// Several ranges may name one language ("nb-NO, nb"): the
			// highest weight counts, the first one on a tie.
			if q > explicit[l].q {
				explicit[l] = pref{q, pos}
			}
		}
	}

	best, bestPref := langEN, pref{0, 0}
	for l := range numLangs {
		p := explicit[l]
		if p.q == none {
			p = wildcard
		}
		if p.q <= 0 { // not named, or q=0: not acceptable
			continue
		}
		// On equal weights the earlier range wins; a tie between two
		// languages that only "*" names keeps English.
		if p.q > bestPref.q || p.q == bestPref.q && p.pos < bestPref.pos {
			best, bestPref = l, p
		}
	}
	return best
}

// parseLanguageRange parses one element of Accept-Language, such as
// "nb-NO;q=0.9", and returns the range and its weight in thousandths.
func parseLanguageRange(elem string) (rng string, q int, ok bool) {
	rng, params, hasParams := strings.Cut(elem, ";")
	rng = strings.TrimRight(rng, " \t")
	if !validLanguageRange(rng) {
		return "", 0, false
	}
	q = 1000
	if hasParams {
		// Accept-Language has one parameter, the weight: OWS ";" OWS
		// "q=" qvalue.
		params = strings.TrimLeft(params, " \t")
		if len(params) < 2 || params[0]|0x20 != 'q' || params[1] != '=' {
			return "", 0, false
		}
		if q, ok = parseQValue(params[2:]); !ok {
			return "", 0, false
		}
	}
	return rng, q, true
}

// validLanguageRange reports whether s is "*" or 1*8ALPHA *("-" 1*8alphanum)
// (RFC 4647, section 2.1).
func validLanguageRange(s string) bool {
	if s == "*" {
		return true
	}
	n := 0 // length of the subtag so far
	primary := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '-':
			if n == 0 {
				return false
			}
			n, primary = 0, false
			continue
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9' && !primary:
		default:
			return false
		}
		if n++; n > 8 {
			return false
		}
	}
	return n > 0
}

// parseQValue parses "0" ["." 0*3DIGIT] / "1" ["." 0*3"0"] into thousandths.
func parseQValue(s string) (int, bool) {
	if s == "" || len(s) > 5 || s[0] != '0' && s[0] != '1' {
		return 0, false
	}
	q := int(s[0]-'0') * 1000
	if len(s) == 1 {
		return q, true
	}
	if s[1] != '.' {
		return 0, false
	}
	scale := 100
	for i := 2; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' || s[0] == '1' && c != '0' {
			return 0, false
		}
		q += int(c-'0') * scale
		scale /= 10
	}
	return q, true
}

// matchLanguage returns the language of a BCP 47 tag by its primary
// subtag: nb, nn and no are Norwegian, for which the package has Bokmål
// texts, and en is English.
func matchLanguage(tag string) (lang, bool) {
	primary, _, _ := strings.Cut(tag, "-")
	switch strings.ToLower(primary) {
	case "en":
		return langEN, true
	case "nb", "no", "nn":
		return langNB, true
	}
	return langEN, false
}
