package vippstest_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vippslogin/vippslogin/internal/testsvc"
	"github.com/vippslogin/vippslogin/vippstest"
)

// The provider's handler serves a client in process inside a
// testing/synctest bubble: the provider, made outside it, reads the
// bubble's clock, and a Fault's Delay passes in no real time.
func TestHandlerInSynctestBubble(t *testing.T) {
	p := newProvider(t, vippstest.Config{}) // its server listens outside the bubble
	synctest.Test(t, func(t *testing.T) {
		client := &http.Client{Transport: testsvc.InProcess{Handler: p.Handler()}}
		start := time.Now()
		p.SetFault(vippstest.Discovery, vippstest.Fault{Delay: time.Hour})
		resp, err := client.Get(p.URL() + discoveryPath)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || time.Since(start) != time.Hour {
			t.Errorf("discovery with a Delay of an hour: %d after %v, want 200 after 1h", resp.StatusCode, time.Since(start))
		}

		p.SetFault(vippstest.Discovery, vippstest.Fault{Down: true})
		if _, err := client.Get(p.URL() + discoveryPath); err == nil {
			t.Error("discovery with Down answered")
		}
		p.SetFault(vippstest.Discovery, vippstest.Fault{})

		req, err := http.NewRequest(http.MethodPost, p.URL()+backchannelPath, strings.NewReader(phoneForm().Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape(p.ClientID()), url.QueryEscape(p.ClientSecret()))
		resp, err = client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		logins := p.PhoneLogins()
		if resp.StatusCode != http.StatusOK || len(logins) != 1 {
			t.Fatalf("backchannel: %d, %d logins", resp.StatusCode, len(logins))
		}
		if !logins[0].Started.Equal(start.Add(time.Hour)) {
			t.Errorf("the login started at %v by the provider's clock, want the bubble's %v", logins[0].Started, start.Add(time.Hour))
		}
	})
}
