package vippslogin

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// A userinfo answer shaped like Vipps' documentation.
const vippsUserinfo = `{
  "sub": "c06c4afe-d9e1-4c5d-939a-177d752a0944",
  "sid": "7d78a726-af92-499e-b857-de263ef9a969",
  "name": "Ada Lovelace",
  "given_name": "Ada",
  "family_name": "Lovelace",
  "email": "user@example.com",
  "email_verified": true,
  "phone_number": "4712345678",
  "phone_number_verified": true,
  "birthdate": "1815-12-10",
  "nin": "10121550047",
  "auth_time": 1700000000,
  "address": {
    "street_address": "Robert Levins gate 5\n0154 Oslo",
    "postal_code": "0154", "region": "Oslo", "country": "NO",
    "formatted": "Robert Levins gate 5\n0154 Oslo\nNO", "address_type": "home"
  },
  "other_addresses": [
    {"street_address": "Karl Johans gate 1", "postal_code": "0154", "region": "Oslo", "country": "NO",
     "formatted": "Karl Johans gate 1\n0154 Oslo\nNO", "address_type": "work"}
  ],
  "delegatedConsents": {
    "language": "NO", "heading": "Samtykker", "text": "Tekst", "termsDescription": "Vilkår",
    "confirmConsentButtonText": "Bekreft", "timeOfConsent": "2023-06-01T12:00:00Z",
    "links": {"termsLinkText": "Vilkår", "termsLinkUrl": "https://example.com/terms",
      "privacyStatementLinkText": "Personvern", "privacyStatementLinkUrl": "https://example.com/privacy"},
    "consents": [{"id": "email", "accepted": true, "required": false, "textDisplayedToUser": "E-post"}]
  }
}`

func TestClaimsDecodeVippsUserinfo(t *testing.T) {
	var c Claims
	if err := json.Unmarshal([]byte(vippsUserinfo), &c); err != nil {
		t.Fatal(err)
	}
	want := Claims{
		Subject: "c06c4afe-d9e1-4c5d-939a-177d752a0944", SessionID: "7d78a726-af92-499e-b857-de263ef9a969",
		Name: "Ada Lovelace", GivenName: "Ada", FamilyName: "Lovelace",
		Email: "user@example.com", EmailVerified: true, PhoneNumber: "4712345678", PhoneNumberVerified: true,
		BirthDate: "1815-12-10", NIN: "10121550047", AuthTime: time.Unix(1700000000, 0),
		Address: Address{StreetAddress: "Robert Levins gate 5\n0154 Oslo", PostalCode: "0154", Region: "Oslo", Country: "NO",
			Formatted: "Robert Levins gate 5\n0154 Oslo\nNO", AddressType: "home"},
		OtherAddresses: []Address{{StreetAddress: "Karl Johans gate 1", PostalCode: "0154", Region: "Oslo", Country: "NO",
			Formatted: "Karl Johans gate 1\n0154 Oslo\nNO", AddressType: "work"}},
		DelegatedConsents: &DelegatedConsents{Language: "NO", Heading: "Samtykker", Text: "Tekst", TermsDescription: "Vilkår",
			ConfirmConsentButtonText: "Bekreft", TimeOfConsent: "2023-06-01T12:00:00Z",
			TermsLinkText: "Vilkår", TermsLinkURL: "https://example.com/terms",
			PrivacyStatementLinkText: "Personvern", PrivacyStatementLinkURL: "https://example.com/privacy",
			Consents: []Consent{{ID: "email", Accepted: true, TextDisplayedToUser: "E-post"}}},
	}
	got := c
	got.Raw = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded\n%+v\nwant\n%+v", got, want)
	}
	if c.Raw["nin"] != "10121550047" || len(c.Raw) != 15 {
		t.Errorf("Raw = %v", c.Raw)
	}
}

func TestClaimsDecodeLenient(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Claims
	}{
		{"only sub", `{"sub":"u"}`, Claims{Subject: "u"}},
		{"wrong types are zero", `{"sub":"u","name":7,"email_verified":"yes","address":"x","other_addresses":{},"auth_time":"soon"}`, Claims{Subject: "u"}},
		{"string booleans", `{"sub":"u","email_verified":"true","phone_number_verified":"false"}`, Claims{Subject: "u", EmailVerified: true}},
		{"fractional auth_time", `{"sub":"u","auth_time":1700000000.5}`, Claims{Subject: "u", AuthTime: time.Unix(1700000000, 5e8)}},
		{"negative auth_time", `{"sub":"u","auth_time":-5}`, Claims{Subject: "u"}},
		{"empty address", `{"sub":"u","address":{"street_address":"","postal_code":"","region":"","country":"","formatted":"","address_type":""},"other_addresses":[]}`,
			Claims{Subject: "u"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Claims
			if err := json.Unmarshal([]byte(tt.in), &c); err != nil {
				t.Fatal(err)
			}
			c.Raw, c.OtherAddresses = nil, nil
			if !reflect.DeepEqual(c, tt.want) {
				t.Errorf("got %+v, want %+v", c, tt.want)
			}
		})
	}
	for _, bad := range []string{``, `null`, `[]`, `"x"`, `{"sub":"u"} {}`, `{`} {
		var c Claims
		if err := c.UnmarshalJSON([]byte(bad)); err == nil {
			t.Errorf("UnmarshalJSON(%q) succeeded", bad)
		}
	}
}

func TestClaimsMarshalRoundTrip(t *testing.T) {
	in := &Claims{Subject: "u", Name: "Kari", Email: "k@example.no", EmailVerified: true,
		AuthTime: time.Unix(1700000000, 0), Address: Address{Region: "Oslo", Country: "NO"},
		OtherAddresses: []Address{}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out Claims
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	out.Raw = nil
	if !reflect.DeepEqual(&out, in) {
		t.Errorf("round trip: got %+v, want %+v (json %s)", out, in, b)
	}
}

// Only whitespace may follow the object: a userinfo answer or ID token
// with anything after it is refused, as json.Unmarshal refuses it.
func TestDecodeObjectRefusesTrailingData(t *testing.T) {
	for _, b := range []string{`{"sub":"u"}}`, `{"sub":"u"}]`, `{"sub":"u"} {"sub":"v"}`, `{"sub":"u"}}x{"sub":"v"}`, `{"sub":"u"} x`} {
		if m, err := decodeObject([]byte(b)); err == nil {
			t.Errorf("decodeObject(%q) = %v", b, m)
		}
	}
	for _, b := range []string{`{"sub":"u"}`, " {\"sub\":\"u\"} \n\t", `{"sub":"u","n":1.5}`} {
		if m, err := decodeObject([]byte(b)); err != nil || m["sub"] != "u" {
			t.Errorf("decodeObject(%q) = %v, %v", b, m, err)
		}
	}
}

func TestReadableClaims(t *testing.T) {
	rc := newReadableClaims()
	for _, bad := range []string{`{"sub":`, `{"name":"Kari"}`, `{"sub":""}`, `null`, `[]`, `{"sub":"u"} {}`} {
		for range 2 { // and not remembered as readable
			if rc.check([]byte(bad)) {
				t.Errorf("check(%s) = true", bad)
			}
		}
	}
	good := []byte(vippsUserinfo)
	if !rc.check(good) {
		t.Fatal("check(userinfo) = false")
	}
	if allocs := testing.AllocsPerRun(100, func() { rc.check(good) }); allocs != 0 {
		t.Errorf("checking known claims again takes %v allocations, want 0: they are decoded again", allocs)
	}
	// Claims that differ by one byte are not known by the other's hash.
	if rc.check([]byte(strings.Replace(vippsUserinfo, `"sub"`, `"suc"`, 1))) {
		t.Error("claims without a sub checked as readable")
	}
	for i := range maxReadableClaims + 10 {
		rc.remember([]byte(fmt.Sprint(i)))
	}
	if n := len(rc.known); n > maxReadableClaims {
		t.Errorf("%d hashes known, want at most %d", n, maxReadableClaims)
	}
}

func FuzzClaimsDecode(f *testing.F) {
	f.Add([]byte(`{"sub":"u","name":"Kari","email_verified":true,"auth_time":1700000000}`))
	f.Add([]byte(`{"sub":"u","address":{"street_address":"a\nb"},"other_addresses":[{"region":"Oslo"},7]}`))
	f.Add([]byte(`{"sub":"u","delegatedConsents":{"consents":[{"id":"email","accepted":"true"}],"links":{}}}`))
	f.Add([]byte(`{"auth_time":1e400}`))
	f.Add([]byte(`{"auth_time":-1.5}`))
	f.Add([]byte(`[1,2]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var c Claims
		if err := c.UnmarshalJSON(b); err != nil {
			return
		}
		out, err := json.Marshal(&c)
		if err != nil {
			t.Fatalf("decoded %q but cannot encode it: %v", b, err)
		}
		var again Claims
		if err := json.Unmarshal(out, &again); err != nil {
			t.Fatalf("cannot decode own encoding %q: %v", out, err)
		}
		if again.Subject != c.Subject || again.Email != c.Email || again.EmailVerified != c.EmailVerified || !again.AuthTime.Equal(c.AuthTime) {
			t.Fatalf("round trip changed claims: %+v -> %+v", c, again)
		}
	})
}
