package vippstest_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Partner access tokens from either endpoint of the access token API open
// the token endpoint until they expire, or until ExpirePartnerTokens.
func TestPartnerTokensExpire(t *testing.T) {
	clk := newClock()
	p := newPartnerProvider(t, clk)
	clientCredentials := func() string {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, p.URL()+"/miami/v1/token", strings.NewReader("grant_type=client_credentials"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(p.PartnerClientID()+":"+p.PartnerClientSecret())))
		resp, body := do(t, req)
		var answer struct {
			AccessToken string `json:"access_token"`
		}
		if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &answer) != nil {
			t.Fatalf("/miami/v1/token: %d %s", resp.StatusCode, body)
		}
		return answer.AccessToken
	}
	accepted := func(tok string) bool {
		t.Helper()
		status, _ := tokenRequest(t, p, codeForm(partnerCode(t, p)), func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+tok)
			r.Header.Set("Merchant-Serial-Number", partnerMSN)
		})
		return status == http.StatusOK
	}

	get, cc := partnerToken(t, p), clientCredentials()
	if !accepted(get) || !accepted(cc) {
		t.Fatal("fresh tokens refused")
	}
	p.ExpirePartnerTokens()
	if accepted(get) || accepted(cc) {
		t.Error("tokens accepted after ExpirePartnerTokens")
	}

	get, cc = partnerToken(t, p), clientCredentials()
	clk.Add(15*time.Minute - time.Second)
	if !accepted(get) || !accepted(cc) {
		t.Fatal("tokens refused before 15 minutes")
	}
	clk.Add(time.Second)
	if !accepted(get) || accepted(cc) {
		t.Error("after 15 minutes: want the /accesstoken/get token only")
	}
	clk.Add(24*time.Hour - 15*time.Minute)
	if accepted(get) {
		t.Error("the /accesstoken/get token is accepted after 24 hours")
	}
}
