package vippslogin

import (
	"context"
	"time"
)

// What the provider's cache (provider.go) and the partner's access token
// (accesstoken.go) share: one fetch for every caller that needs it while
// it runs, and a failure remembered for a while.

// sharedFetch is a fetch that one caller starts and every caller that
// comes while it runs waits for. It runs on its own, so a caller that goes
// away stops waiting without failing the fetch for the others.
type sharedFetch[T any] struct {
	done chan struct{}
	val  T
	err  error
}

// startFetch runs fetch with ctx, which the caller has detached from the
// request that asked (see detached), in a goroutine of its own. When fetch
// returns, finish gets its result, before any waiter does; it is where the
// owner stores the result and forgets the fetch.
func startFetch[T any](ctx context.Context, fetch func(context.Context) (T, error), finish func(T, error)) *sharedFetch[T] {
	f := &sharedFetch[T]{done: make(chan struct{})}
	go func() {
		f.val, f.err = fetch(ctx)
		finish(f.val, f.err)
		close(f.done)
	}()
	return f
}

// wait returns the fetch's result, or ctx's error when ctx is done first.
func (f *sharedFetch[T]) wait(ctx context.Context) (T, error) {
	select {
	case <-f.done:
		return f.val, f.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

// failure is the last failed fetch, which is the answer to every caller
// for a while after it, so that an outage costs one fetch, not one per
// request.
type failure struct {
	at  time.Time
	err error
}

// recent returns the failure's error if it happened less than backoff
// before now, and nil otherwise.
func (f *failure) recent(now time.Time, backoff time.Duration) error {
	if d := now.Sub(f.at); f.err != nil && d >= 0 && d < backoff {
		return f.err
	}
	return nil
}
