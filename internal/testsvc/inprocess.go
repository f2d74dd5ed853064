package testsvc

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"net/url"
)

// errHungUp is what a client gets from InProcess when the handler aborts
// with http.ErrAbortHandler, as a server hangs up the connection then.
var errHungUp = errors.New("testsvc: the handler hung up without an answer")

// InProcess is an http.RoundTripper that serves every request with Handler
// in the goroutine that sends it, with no network between: inside a
// testing/synctest bubble, where time moves only while every goroutine
// waits and one waiting on a network connection never does, a client
// reaches a server this way, and the handler reads the bubble's clock.
type InProcess struct {
	Handler http.Handler
}

// RoundTrip serves req with t.Handler and returns the recorded answer. A
// handler that panics with http.ErrAbortHandler ends the request with an
// error instead, as a dropped connection would.
func (t InProcess) RoundTrip(req *http.Request) (resp *http.Response, err error) {
	if req.Body != nil {
		defer req.Body.Close()
	}
	// The request as a server would see it.
	r := req.Clone(req.Context())
	r.URL = &url.URL{Path: req.URL.Path, RawPath: req.URL.RawPath, RawQuery: req.URL.RawQuery}
	r.RequestURI = req.URL.RequestURI()
	r.Host = req.URL.Host
	r.RemoteAddr = "127.0.0.1:1"
	// A server reads header names in canonical form, whatever the client
	// wrote (Vipps' client_id header, say).
	r.Header = make(http.Header, len(req.Header))
	for name, values := range req.Header {
		name = textproto.CanonicalMIMEHeaderKey(name)
		r.Header[name] = append(r.Header[name], values...)
	}
	if r.Body == nil {
		r.Body = http.NoBody
	}
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				panic(v)
			}
			resp, err = nil, errHungUp
		}
	}()
	rec := httptest.NewRecorder()
	t.Handler.ServeHTTP(rec, r)
	resp = rec.Result()
	resp.Request = req
	return resp, nil
}
