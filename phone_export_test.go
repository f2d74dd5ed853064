package vippslogin

import (
	"context"
	"time"
)

// SetPhoneLoginSleep replaces how WaitPhoneLogin waits between the polls of
// pl, so that tests can move a fake clock instead of waiting in real time.
func SetPhoneLoginSleep(pl *PhoneLogin, sleep func(ctx context.Context, d time.Duration) error) {
	pl.st.sleep = sleep
}
