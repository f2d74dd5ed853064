// Package vippstest runs a mock of the Vipps MobilePay Login OpenID Connect
// provider inside the process, on net/http/httptest. It serves discovery,
// the authorize endpoint (with a consent page, or approving straight away),
// the token endpoint, the JWKS and the userinfo endpoint on the paths that
// Vipps uses, and follows Vipps where Vipps differs from plain OpenID
// Connect: the issuer ends with a slash, userinfo lives outside the issuer,
// aud in ID tokens is an array, nonce is "" when none was sent, the PKCE
// method defaults to "plain", state must have at least 8 characters, and
// the token endpoint accepts only the one configured client authentication
// method.
//
// It serves tests of this module, tests of sites that use it, and sites
// run locally without Vipps test credentials. It is not a security boundary:
// whoever can reach it can log in as any of its users.
//
// # Usage
//
// A test of a site that logs users in with Vipps:
//
//	func TestLogin(t *testing.T) {
//		p, err := vippstest.New(vippstest.Config{AutoApprove: true})
//		if err != nil {
//			t.Fatal(err)
//		}
//		defer p.Close()
//
//		// newSite stands for the site under test, configured with
//		// the provider's issuer and client credentials.
//		site := httptest.NewServer(newSite(p.Issuer(), p.ClientID(), p.ClientSecret()))
//		defer site.Close()
//		p.AddRedirectURI(site.URL + "/auth/callback")
//
//		// Later logins are as the user without an address.
//		if err := p.SetUser(vippstest.DefaultUsers()[2].Sub); err != nil {
//			t.Fatal(err)
//		}
//
//		// Drive the login with an http.Client that has a cookie jar: the
//		// site's login handler redirects to the provider, which redirects
//		// straight back to /auth/callback with code, state and scope.
//		// The site then calls the token, JWKS and userinfo endpoints.
//	}
//
// Without AutoApprove the authorize endpoint shows a consent page whose form
// posts the decision, with buttons "approve" and "cancel"; a cancel sends
// the user back with error=access_denied, as Vipps does. The consent page
// stays valid for ten minutes; an answer after that, or a second answer,
// gets a page that says so in plain words and links back to the site (the
// origin of the redirect URI), since Vipps does not document what it does
// then. The provider's pages speak Norwegian (Bokmål) or English, as the
// browser's Accept-Language prefers.
//
// # Vipps extras
//
// The authorize endpoint checks Vipps' optional parameters (requested_flow,
// app_callback_uri, final_redirect_is_app) and, with
// acr_values=urn:vipps:acr:app_auth, puts that acr in the ID token. Every ID
// token carries the sales unit's msn claim, except that of a login from
// phone number's redirect variant, which is shaped like Vipps' example: aud
// as a string, sub, authReqId, iss, exp and iat only. Partners get access tokens from
// the access token API at POST /accesstoken/get ([Provider.AccessTokenURL])
// with [Provider.PartnerClientID], [Provider.PartnerClientSecret] and
// [Provider.PartnerSubscriptionKey] in headers, or by the client
// credentials grant at POST /miami/v1/token, and use them as Bearer tokens
// at the token endpoint together with the Merchant-Serial-Number header;
// authorize accepts msn in place of client_id.
// [Provider.SendConsentRevoked] sends a site the CONSENT_REVOKED webhook as
// Vipps does, and [ConsentRevokedToken] builds its body.
//
// # Failures and attacks
//
// [Provider.SetFault] makes an endpoint slow, answer with an error status or
// a garbage body, or drop the connection. [Provider.SetHooks] changes ID
// tokens and userinfo claims before they are sent, or makes the authorize
// endpoint answer with an error. [UnsignedToken], [HMACToken],
// [Provider.PublicKeyPEM] and [Provider.Sign] build tokens that a client must
// refuse, and [Provider.RotateKey] and [Provider.RetireOldKeys] exercise key
// rotation. [Provider.RotateKeyAlg] signs with ES256, EdDSA or Ed25519
// instead of RS256, and [Provider.SetSigningAlgs] changes the algorithms
// discovery lists. [Provider.Hits] and [Provider.LastHeader] show what a client
// sent.
package vippstest
