package vippstest

import "strings"

// Address is a postal address as the Vipps userinfo endpoint returns it.
// Formatted joins the lines with "\n": street address, postal code, region
// and country.
type Address struct {
	StreetAddress string `json:"street_address"`
	PostalCode    string `json:"postal_code"`
	Region        string `json:"region"`
	Country       string `json:"country"` // two letters, e.g. "NO"
	Formatted     string `json:"formatted"`
	AddressType   string `json:"address_type"` // "home", "work" or "other"
}

// User is a test user of the mock provider. Each field is sent from the
// userinfo endpoint when the matching scope was granted; see [Provider] for
// the mapping.
type User struct {
	Sub                 string    `json:"sub"` // stable user id, a UUID at Vipps
	Name                string    `json:"name"`
	GivenName           string    `json:"given_name"`
	FamilyName          string    `json:"family_name"`
	Email               string    `json:"email"`
	EmailVerified       bool      `json:"email_verified"`
	PhoneNumber         string    `json:"phone_number"` // MSISDN digits with country code, no "+", e.g. "4791234567"
	PhoneNumberVerified bool      `json:"phone_number_verified"`
	BirthDate           string    `json:"birthdate"` // YYYY-MM-DD
	NIN                 string    `json:"nin"`       // national identity number, 11 digits
	Address             Address   `json:"address"`   // the default address; the zero Address if the user has none
	OtherAddresses      []Address `json:"other_addresses"`
}

// DefaultUsers returns three Norwegian test users shaped like Vipps users.
// Their national identity numbers are synthetic (month plus 80, as in the
// Norwegian test data registry) and pass the checksum. The first user has a
// home and a work address, the second a home address only, and the third no
// address at all and an unverified email address. Each call returns fresh
// slices that the caller may change.
func DefaultUsers() []User {
	return []User{
		{
			Sub:                 "c3a9f3e2-5d1b-4f0e-9a6c-2b7d8e4f1a05",
			Name:                "Kari Nordmann",
			GivenName:           "Kari",
			FamilyName:          "Nordmann",
			Email:               "kari.nordmann@example.com",
			EmailVerified:       true,
			PhoneNumber:         "4791234567",
			PhoneNumberVerified: true,
			BirthDate:           "1985-03-14",
			NIN:                 "14838512047",
			Address: Address{
				StreetAddress: "Storgata 12",
				PostalCode:    "0155",
				Region:        "Oslo",
				Country:       "NO",
				Formatted:     "Storgata 12\n0155\nOslo\nNO",
				AddressType:   "home",
			},
			OtherAddresses: []Address{{
				StreetAddress: "Dronning Eufemias gate 42",
				PostalCode:    "0191",
				Region:        "Oslo",
				Country:       "NO",
				Formatted:     "Dronning Eufemias gate 42\n0191\nOslo\nNO",
				AddressType:   "work",
			}},
		},
		{
			Sub:                 "7b2e4c91-0a8d-4e3f-b6d2-95c1f0a7e368",
			Name:                "Ola Bjørnstad Hansen",
			GivenName:           "Ola",
			FamilyName:          "Bjørnstad Hansen",
			Email:               "ola.hansen@example.org",
			EmailVerified:       true,
			PhoneNumber:         "4798765432",
			PhoneNumberVerified: true,
			BirthDate:           "1972-11-02",
			NIN:                 "02917212166",
			Address: Address{
				StreetAddress: "Kong Oscars gate 7\nH0201",
				PostalCode:    "5017",
				Region:        "Bergen",
				Country:       "NO",
				Formatted:     "Kong Oscars gate 7\nH0201\n5017\nBergen\nNO",
				AddressType:   "home",
			},
			OtherAddresses: []Address{},
		},
		{
			Sub:                 "e05d6a17-93bc-4b28-8f4e-1d2c3b4a5f69",
			Name:                "Åse Øvrebø",
			GivenName:           "Åse",
			FamilyName:          "Øvrebø",
			Email:               "ase.ovrebo@example.net",
			EmailVerified:       false,
			PhoneNumber:         "4741234567",
			PhoneNumberVerified: true,
			BirthDate:           "1998-06-23",
			NIN:                 "23869812463",
			OtherAddresses:      []Address{},
		},
	}
}

// copyUsers returns a deep copy of users.
func copyUsers(users []User) []User {
	out := make([]User, len(users))
	for i, u := range users {
		u.OtherAddresses = append([]Address(nil), u.OtherAddresses...)
		out[i] = u
	}
	return out
}

func addressClaim(a Address) map[string]any {
	return map[string]any{
		"street_address": a.StreetAddress,
		"postal_code":    a.PostalCode,
		"region":         a.Region,
		"country":        a.Country,
		"formatted":      a.Formatted,
		"address_type":   a.AddressType,
	}
}

// userinfoClaims returns the claims that the userinfo endpoint sends for u
// when scopes were granted.
func userinfoClaims(u User, sid string, scopes []string) map[string]any {
	c := map[string]any{"sub": u.Sub, "sid": sid}
	for _, s := range scopes {
		switch s {
		case "name":
			c["name"] = u.Name
			c["given_name"] = u.GivenName
			c["family_name"] = u.FamilyName
		case "email":
			c["email"] = u.Email
			c["email_verified"] = u.EmailVerified
		case "phoneNumber":
			c["phone_number"] = u.PhoneNumber
			c["phone_number_verified"] = u.PhoneNumberVerified
		case "birthDate":
			c["birthdate"] = u.BirthDate
		case "address":
			c["address"] = addressClaim(u.Address)
			others := make([]any, 0, len(u.OtherAddresses))
			for _, a := range u.OtherAddresses {
				others = append(others, addressClaim(a))
			}
			c["other_addresses"] = others
		case "nin":
			c["nin"] = u.NIN
		case "delegatedConsents":
			c["delegatedConsents"] = delegatedConsentsClaim() // login from phone number
		}
	}
	return c
}

// addProfileClaims adds to the claims of an ID token the claims that
// userinfo sends for scope, when discovery names no userinfo endpoint
// (Config.NoUserinfoEndpoint). Claims the token has already stay.
func (p *Provider) addProfileClaims(claims map[string]any, sub, sid, scope string) {
	if !p.noUserinfo {
		return
	}
	u, _ := p.user(sub)
	for k, v := range userinfoClaims(u, sid, strings.Fields(scope)) {
		if _, taken := claims[k]; !taken {
			claims[k] = v
		}
	}
}
