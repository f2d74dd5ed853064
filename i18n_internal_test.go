package vippslogin

import "testing"

// checkTexts refuses a catalogue in which a language lacks a text of the
// logout link's page, as it does for every other page.
func TestCheckTextsLogout(t *testing.T) {
	blanks := map[string]func(*logoutText){
		"title":   func(lo *logoutText) { lo.title = "" },
		"message": func(lo *logoutText) { lo.message = "" },
		"logOut":  func(lo *logoutText) { lo.logOut = "" },
		"stay":    func(lo *logoutText) { lo.stay = "" },
	}
	for name, blank := range blanks {
		for l := range numLangs {
			all := msgs // a copy: texts holds no pointers
			blank(&all[l].logout)
			func() {
				defer func() {
					if recover() == nil {
						t.Errorf("checkTexts accepts %s's logout page without %s", all[l].tag, name)
					}
				}()
				checkTexts(all)
			}()
		}
	}
}
