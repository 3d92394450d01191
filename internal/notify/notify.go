// Package notify delivers events from the bus to receivers. Each notifier is
// a durable JetStream consumer run by a Dispatcher through small stages, as
// Alertmanager's notify package composes them:
//
//	route    is the event for this notifier?              (route.go)
//	intake   the store's ledger takes it; the bus forgets  (dispatch.go)
//	order    only the next event of each alert goes        (order.go)
//	group    group_by, group_wait, group_interval          (group.go)
//	dedup    a resolution whose firing was muted is muted  (dedup.go)
//	mute     silences and inhibit rules, at each attempt   (mute.go)
//	retry    backoff, Retry-After, dead letters            (retry.go)
//	record   the ledger and delivery log settle it         (record.go)
//
// Integrations live in subpackages (notify/webhook, notify/slack,
// notify/console, notify/action) and only implement Notifier.
package notify

import (
	"context"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
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

// Forever is the wait of a receiver that asked for more than a Duration
// holds; the retry stage caps it at the notifier's max_backoff.
const Forever = time.Duration(math.MaxInt64)

// ParseRetryAfter reads an HTTP Retry-After value: seconds, or an HTTP
// date. A number of seconds too large for a Duration is Forever (never a
// negative or wrapped wait); a value that cannot be read asks nothing (0).
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v != "" && strings.Trim(v, "0123456789") == "" {
		s, err := strconv.ParseInt(v, 10, 64)
		if err != nil || s > int64(Forever/time.Second) {
			return Forever
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

// PartlyRefusedError is a call that failed for good for some of its events
// only: the receiver refused IDs (e.g. each too large even alone) and
// accepted every other event of the call. The dispatcher dead-letters IDs
// and records the others as delivered.
type PartlyRefusedError struct {
	IDs []string
	Err error
}

func (e *PartlyRefusedError) Error() string { return e.Err.Error() }

func (e *PartlyRefusedError) Unwrap() error { return e.Err }

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

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
