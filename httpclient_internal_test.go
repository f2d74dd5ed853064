package vippslogin

import (
	"net/http"
	"testing"
	"time"
)

// The client the provider is called with has no Timeout of its own (each
// call's context ends after HTTPTimeout): over the header-adding
// transport, which net/http does not know, a Client.Timeout would cost
// two goroutines and a timer per call. A site's own Timeout is kept.
func TestHTTPClientHasNoTimeoutOfItsOwn(t *testing.T) {
	if hc := newHTTPClient(nil, http.Header{}); hc.Timeout != 0 {
		t.Errorf("Timeout = %v, want none", hc.Timeout)
	}
	site := &http.Client{Timeout: 3 * time.Second}
	hc := newHTTPClient(site, http.Header{"Vipps-System-Name": {"x"}})
	if hc.Timeout != 3*time.Second || hc == site || site.Transport != nil {
		t.Errorf("the site's client: Timeout %v, same client %v, its transport changed %v", hc.Timeout, hc == site, site.Transport != nil)
	}
	if _, ok := hc.Transport.(*headerTransport); !ok {
		t.Errorf("Transport = %T, want the header-adding one", hc.Transport)
	}
}
