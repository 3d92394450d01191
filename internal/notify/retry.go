package notify

import (
	"context"
	"errors"
	"time"

	"github.com/simwatch/simwatch/internal/event"
)

// RetryInfo describes a failed attempt that will be retried.
type RetryInfo struct {
	Attempt int           // the attempt that failed, from 1
	Wait    time.Duration // the wait before the next attempt
	// Asked is the receiver's Retry-After when it asked for longer than
	// the maximum backoff, which Wait is then capped at; zero otherwise.
	Asked time.Duration
	Err   error
}

// Retrier is the retry stage: it calls a Notifier until it succeeds, fails
// for good, or has made Max attempts. Between attempts it waits the backoff
// delay, or the receiver's Retry-After when longer, but never more than
// Backoff.Max, so a receiver cannot stall the notifier.
type Retrier struct {
	Max     int
	Backoff Backoff
	// OnRetry, when set, is told of each failed attempt before the wait.
	OnRetry func(RetryInfo)
	// Before, when set, runs before every attempt and returns the events
	// still to send (the mute stage runs again here): when none are left,
	// Run stops with success.
	Before func([]event.Event) []event.Event
}

// Run sends events. It returns the events the last attempt carried, the
// attempts made and the last error; permanent reports that the last error
// was not worth retrying.
func (r Retrier) Run(ctx context.Context, n Notifier, events []event.Event) (sent []event.Event, attempts int, permanent bool, err error) {
	for attempts = 1; ; attempts++ {
		if r.Before != nil {
			if events = r.Before(events); len(events) == 0 {
				return nil, attempts - 1, false, nil
			}
		}
		retry, err := n.Notify(ctx, events...)
		if err == nil {
			return events, attempts, false, nil
		}
		if ctx.Err() != nil {
			return events, attempts, false, errors.Join(ctx.Err(), err)
		}
		if !retry {
			return events, attempts, true, err
		}
		if attempts >= max(r.Max, 1) {
			return events, attempts, false, err
		}
		info := RetryInfo{Attempt: attempts, Wait: r.Backoff.Delay(attempts - 1), Err: err}
		var ra RetryAfter
		if errors.As(err, &ra) && ra.RetryAfter() > info.Wait {
			info.Wait = ra.RetryAfter()
			if r.Backoff.Max > 0 && info.Wait > r.Backoff.Max {
				info.Asked, info.Wait = info.Wait, r.Backoff.Max
			}
		}
		if r.OnRetry != nil {
			r.OnRetry(info)
		}
		if werr := sleep(ctx, info.Wait); werr != nil {
			return events, attempts, false, errors.Join(werr, err)
		}
	}
}
