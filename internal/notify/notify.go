// Package notify delivers events from the bus to receivers. Each notifier is
// a durable JetStream consumer run by a Dispatcher through small stages: route
// (is the event for this notifier?), dedup (the delivery log), group (per
// rule), retry (backoff, Retry-After) and record (delivery log, then ack), with
// events that will not go through moved to the dead letters.
//
// Integrations live in subpackages (notify/webhook, notify/console) and only
// implement Notifier.
package notify

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/simwatch/simwatch/internal/event"
)

// Notifier delivers a group of events to one receiver. retry reports whether
// a failure may succeed if tried again; the retry stage decides when.
type Notifier interface {
	Notify(ctx context.Context, events ...event.Event) (retry bool, err error)
}

// NotifierFunc adapts a function to Notifier.
type NotifierFunc func(ctx context.Context, events ...event.Event) (bool, error)

// Notify calls f.
func (f NotifierFunc) Notify(ctx context.Context, events ...event.Event) (bool, error) {
	return f(ctx, events...)
}

// RetryAfter is implemented by errors that carry the receiver's requested wait.
type RetryAfter interface {
	RetryAfter() time.Duration
}

// Backoff is capped exponential backoff with jitter.
type Backoff struct {
	Base, Max time.Duration
}

// Delay is the wait before retry number attempt (from 0): Base·2^attempt
// capped at Max, jittered into [d/2, d].
func (b Backoff) Delay(attempt int) time.Duration {
	d := b.Base << min(attempt, 30)
	if d > b.Max || d <= 0 {
		d = b.Max
	}
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

// Retry is the retry stage: it calls n until it succeeds, fails for good, or
// has made maxAttempts attempts. Between attempts it waits the backoff delay,
// or the receiver's Retry-After when longer (but never more than b.Max, so a
// receiver cannot stall the notifier), calling keepAlive at least every
// keepAliveEvery so that the bus does not redeliver the events meanwhile.
// It returns the attempts made and the last error; permanent reports that the
// last error was not worth retrying.
func Retry(ctx context.Context, n Notifier, events []event.Event, maxAttempts int, b Backoff, keepAlive func(), keepAliveEvery time.Duration) (attempts int, permanent bool, err error) {
	return RetryNotify(ctx, n, events, maxAttempts, b, keepAlive, keepAliveEvery, nil)
}

// RetryInfo describes a failed attempt that will be retried.
type RetryInfo struct {
	Attempt int           // the attempt that failed, from 1
	Wait    time.Duration // the wait before the next attempt
	// Asked is the receiver's Retry-After when it asked for longer than
	// the maximum backoff, which Wait is then capped at; zero otherwise.
	Asked time.Duration
	Err   error
}

// RetryNotify is Retry, calling onRetry (when not nil) before each wait.
func RetryNotify(ctx context.Context, n Notifier, events []event.Event, maxAttempts int, b Backoff, keepAlive func(), keepAliveEvery time.Duration, onRetry func(RetryInfo)) (attempts int, permanent bool, err error) {
	for attempts = 1; ; attempts++ {
		retry, err := n.Notify(ctx, events...)
		if err == nil {
			return attempts, false, nil
		}
		if ctx.Err() != nil {
			return attempts, false, errors.Join(ctx.Err(), err)
		}
		if !retry {
			return attempts, true, err
		}
		if attempts >= maxAttempts {
			return attempts, false, err
		}
		info := RetryInfo{Attempt: attempts, Wait: b.Delay(attempts - 1), Err: err}
		var ra RetryAfter
		if errors.As(err, &ra) && ra.RetryAfter() > info.Wait {
			info.Wait = ra.RetryAfter()
			if b.Max > 0 && info.Wait > b.Max {
				info.Asked, info.Wait = info.Wait, b.Max
			}
		}
		if onRetry != nil {
			onRetry(info)
		}
		if werr := sleep(ctx, info.Wait, keepAlive, keepAliveEvery); werr != nil {
			return attempts, false, errors.Join(werr, err)
		}
	}
}

// sleep waits d or until ctx ends, calling keepAlive every `every`.
func sleep(ctx context.Context, d time.Duration, keepAlive func(), every time.Duration) error {
	if every <= 0 {
		every = d
	}
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(max(every, time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return nil
		case <-tick.C:
			if keepAlive != nil {
				keepAlive()
			}
		}
	}
}
