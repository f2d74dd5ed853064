package vippslogin

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"time"
)

// Waiting for a login from phone number: polling the token endpoint with
// the CIBA grant until the user answers in the app.

// WaitPhoneLogin polls the token endpoint until the user has confirmed the
// login in the app, and returns the verified claims: the ID token is
// verified as in a browser login, then userinfo is fetched, as
// [Client.CallbackHandler] does. Vipps documents no claims of this ID token,
// so, as in the redirect variant, a nonce is checked only if the token
// carries one, msn is not required (when present and
// Config.MerchantSerialNumber is set, it must match), and an auth_req_id,
// if present, must be this login's. With the delegatedConsents scope,
// Claims.DelegatedConsents holds what the user chose.
//
// It polls no faster than the provider's interval (5 seconds by default),
// adds 5 seconds to it on each slow_down, and after a 429 waits as long as
// Retry-After says (at most a minute) before it polls again. A network
// failure or a 5xx answer is retried at the next interval, up to three times
// in a row. It returns, wrapped:
//
//   - ErrLoginCancelled when the user declined (a [*ProviderError] with
//     access_denied);
//   - ErrLoginExpired when the provider answered expired_token, or
//     PhoneLogin.ExpiresAt (plus a few seconds) passed;
//   - ctx.Err() as soon as ctx is done, also in the middle of a wait; the
//     login goes on at the provider, so a later WaitPhoneLogin may pick it
//     up again;
//   - a [*ProviderError] for any other refusal of the token endpoint, and
//     the ID token and userinfo errors of a browser login.
//
// A login may be waited for by one goroutine at a time, and not again once
// WaitPhoneLogin has returned anything but ctx's error. Redirect logins
// cannot be waited for.
func (c *Client) WaitPhoneLogin(ctx context.Context, pl *PhoneLogin) (*Claims, error) {
	if pl == nil || pl.st == nil {
		return nil, newErr(ErrInvalidRequest, "phone_login", "not a started phone login")
	}
	st := pl.st
	switch {
	case st.redirect:
		return nil, newErr(ErrInvalidRequest, "phone_login", "a redirect login is finished with FinishPhoneLogin")
	case !st.busy.CompareAndSwap(false, true):
		return nil, newErr(ErrInvalidRequest, "phone_login", "the login is already being waited for")
	}
	defer st.busy.Store(false)
	if st.done.Load() {
		return nil, newErr(ErrInvalidRequest, "phone_login", "the login has ended")
	}
	claims, err := c.poll(withLogin(ctx, loginID(st.authReqID), flowPhone), st)
	if err == nil || !(errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		st.done.Store(true)
	}
	return claims, err
}

// poll waits between polls with timers, and judges the login's expiry by
// Config.Now.
func (c *Client) poll(ctx context.Context, pl *phoneLoginState) (*Claims, error) {
	deadline := pl.expiresAt.Add(phoneExpiryGrace)
	wait := pl.interval
	failures := 0
	for {
		left := deadline.Sub(c.s.Now())
		if left <= 0 {
			return nil, newErr(ErrLoginExpired, "phone_login", "no answer before the login expired")
		}
		if err := sleepCtx(ctx, min(wait, left)); err != nil {
			return nil, err
		}
		meta, err := c.provider.metadata(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, err
		}
		tok, err := c.tokens.redeem(ctx, meta, url.Values{"grant_type": {grantCIBA}, "auth_req_id": {pl.authReqID}})
		if err != nil && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		wait = pl.interval
		if err == nil {
			// The tokens are redeemed, and the auth_req_id with them: finish
			// even if the caller has just gone, rather than lose the login.
			vctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*c.s.HTTPTimeout)
			defer cancel()
			ctx = vctx
			c.s.logStep(ctx, slog.LevelDebug, recCodeExchanged)
			// Vipps' guide shows no claims of a polled ID token (its example
			// is a placeholder), so an auth_req_id is not required; when
			// the token carries one, it must be this login's.
			return c.phoneClaims(ctx, meta, tok, pl.nonce, authReqIDHash(pl.authReqID), true)
		}
		var pe *ProviderError
		isPE := errors.As(err, &pe)
		switch {
		case isPE && pe.StatusCode == http.StatusTooManyRequests:
			failures = 0
			wait = max(pe.RetryAfter, pl.interval)
		case isPE && pe.Code == "authorization_pending":
			failures = 0
		case isPE && pe.Code == "slow_down":
			failures = 0
			pl.interval = min(pl.interval+slowDownStep, maxPollEvery)
			wait = pl.interval
		case retryable(err):
			failures++
			if failures > maxPollFailures {
				return nil, err
			}
		default:
			return nil, err
		}
	}
}

// sleepCtx waits for d, or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
