package vippslogin

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"time"
)

// Userinfo: fetched with the access token after the ID token is verified,
// checked against it, and turned into a login's claims.

// authEventClaims are the claims about the authentication event that a
// login's claims keep, from the ID token alone; tokenClaims are those about
// a token, which they do not keep.
var (
	authEventClaims = []string{"acr", "amr", "auth_time", "sid"}
	tokenClaims     = []string{"nonce", "azp", "at_hash", "c_hash", "iss", "aud", "exp", "iat", "nbf", "jti",
		"auth_req_id", "authReqId", "msn"} // the last three: of a login from phone number, and of no use after it
)

// userClaims fetches userinfo with the access token, checks that it is
// about the ID token's subject, and takes what the ID token says about how
// and when the user logged in from the ID token alone. From a provider
// without a userinfo endpoint, the claims are the ID token's: its sub, the
// profile claims it carries and those about the login, without those about
// the token itself.
func (c *Client) userClaims(ctx context.Context, meta *metadata, accessToken string, idClaims map[string]any) (*Claims, error) {
	if meta.UserinfoEndpoint == "" {
		info := maps.Clone(idClaims)
		for _, k := range tokenClaims {
			delete(info, k)
		}
		claims := claimsFromMap(info)
		return &claims, nil
	}
	info, err := c.userinfo(ctx, meta, accessToken)
	if err != nil {
		return nil, err
	}
	if sub, _ := info["sub"].(string); sub != idClaims["sub"] {
		return nil, newErr(ErrBadResponse, "subject", "")
	}
	c.s.logStep(ctx, slog.LevelDebug, recUserinfoFetched)
	// What the user proved, and when, only the signed ID token may say:
	// userinfo neither supplies nor overrides it.
	for _, k := range tokenClaims {
		delete(info, k)
	}
	for _, k := range authEventClaims {
		delete(info, k)
		if v, ok := idClaims[k]; ok {
			info[k] = v
		}
	}
	claims := claimsFromMap(info)
	return &claims, nil
}

// encodeClaims is what a session keeps of claims: their JSON, if it fits.
func encodeClaims(claims *Claims) ([]byte, error) {
	data, err := json.Marshal(claims.Raw)
	if err == nil && len(data) > maxClaimsSize {
		err = newErr(ErrBadResponse, "userinfo", "%d bytes of claims is more than a session holds", len(data))
	}
	return data, err
}

func (c *Client) userinfo(ctx context.Context, meta *metadata, accessToken string) (_ map[string]any, err error) {
	defer func(ctx context.Context, start time.Time) { c.s.providerCall(ctx, endpointUserinfo, start, err) }(ctx, time.Now())
	ctx, cancel := context.WithTimeout(ctx, c.s.HTTPTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, meta.UserinfoEndpoint, nil)
	if err != nil {
		return nil, newErr(ErrBadResponse, "userinfo", "%v", err)
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Accept", "application/json")
	resp, err := c.s.HTTPClient.Do(req)
	if err != nil {
		return nil, upstreamErr(ctx, endpointUserinfo, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, newErr(ErrBadResponse, "userinfo", "status %d", resp.StatusCode)
	}
	body, err := readJSON(resp)
	if err != nil {
		return nil, newErr(ErrBadResponse, "userinfo", "%v", err)
	}
	if len(body) > maxClaimsSize {
		return nil, newErr(ErrBadResponse, "userinfo", "response too large")
	}
	info, err := decodeObject(body)
	if err != nil {
		return nil, newErr(ErrBadResponse, "userinfo", "not a JSON object")
	}
	if str(info, "sub") == "" {
		return nil, newErr(ErrBadResponse, "userinfo", "no sub")
	}
	return info, nil
}
