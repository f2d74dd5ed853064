package vippstest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// consentRevokedTTL is the time from iat to exp of a CONSENT_REVOKED event,
// as in Vipps' example.
const consentRevokedTTL = 5 * time.Minute

// webhookClient sends webhooks. Like a webhook sender, it does not follow
// redirects.
var webhookClient = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// ConsentRevokedToken returns the body of a CONSENT_REVOKED webhook for sub,
// issued at now, shaped like Vipps' documented example: an unsecured JWT
// with the header {"alg":"none","typ":"JWT"} and a payload of exp (now plus
// 5 minutes), iat and nbf (now, in whole seconds), sub and event
// "CONSENT_REVOKED", written as "header.payload", without the empty
// signature part that RFC 7519 puts after a second dot. Use [UnsignedToken]
// for events with other claims, or in the RFC 7519 form.
func ConsentRevokedToken(sub string, now time.Time) string {
	iat := now.Unix()
	payload, _ := json.Marshal(struct { // cannot fail: only strings and numbers
		Exp   int64  `json:"exp"`
		Iat   int64  `json:"iat"`
		Nbf   int64  `json:"nbf"`
		Sub   string `json:"sub"`
		Event string `json:"event"`
	}{iat + int64(consentRevokedTTL/time.Second), iat, iat, sub, "CONSENT_REVOKED"})
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc.EncodeToString(payload)
}

// SendConsentRevoked does what Vipps does when a user withdraws consent in
// the app: it POSTs a CONSENT_REVOKED event for sub to webhookURL, with
// Content-Type text/plain and the body that [ConsentRevokedToken] makes with
// the provider's clock (Config.Now). Vipps knows a merchant's webhook only
// by its URL, so webhookURL is used as given, shared secret in its query and
// all, and no Authorization header is sent. sub is sent as given, whether
// or not a configured user has it.
//
// Errors do not show webhookURL's query. Redirects are not followed. The request goes through
// http.DefaultTransport, which does not trust the certificate of an
// httptest TLS server: for one, send ConsentRevokedToken with the server's
// Client. As with http.Client.Do, the caller must close the response's
// body.
func (p *Provider) SendConsentRevoked(ctx context.Context, webhookURL, sub string) (*http.Response, error) {
	body := ConsentRevokedToken(sub, p.now())
	u, err := url.Parse(webhookURL)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, errors.New("vippstest: consent webhook: the URL is not an absolute http or https URL")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, webhookURL, strings.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("vippstest: consent webhook: %w", err)
	}
	req.Header.Set("Content-Type", "text/plain")
	resp, err := webhookClient.Do(req)
	if err != nil {
		// Keep the secret in the URL's query out of the error.
		var ue *url.Error
		if errors.As(err, &ue) {
			u.RawQuery, u.Fragment = "", ""
			ue.URL = u.String()
		}
		return nil, fmt.Errorf("vippstest: consent webhook: %w", err)
	}
	return resp, nil
}
