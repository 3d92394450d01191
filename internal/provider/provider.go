// Package provider holds what every provider client shares: retrying a
// request with capped exponential backoff and jitter, paced by an adaptive
// controller that slows down when the provider throttles, and fetching the remaining pages of a listing concurrently. The
// clients themselves live in subpackages (gsl, linkcard).
package provider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// Temporary is implemented by errors that know whether the same request may
// succeed later.
type Temporary interface {
	Temporary() bool
}

// RetryAfter is implemented by errors that carry the server's requested wait.
type RetryAfter interface {
	RetryAfter() time.Duration
}

// TransportError is a request that got no usable answer: connection refused
// or reset, a body cut short, or the per-request timeout.
type TransportError struct {
	Op      string
	Err     error
	Timeout bool
}

func (e *TransportError) Error() string {
	if e.Timeout {
		return fmt.Sprintf("%s: timed out: %v", e.Op, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Op, e.Err)
}

func (e *TransportError) Unwrap() error { return e.Err }

// Temporary reports whether the failure is of the kind that passes: timeouts,
// network errors and truncated bodies.
func (e *TransportError) Temporary() bool {
	var ne net.Error
	return e.Timeout || errors.As(e.Err, &ne) || errors.Is(e.Err, io.ErrUnexpectedEOF) || errors.Is(e.Err, io.EOF)
}

// PageError is an answer that was not a valid listing: malformed JSON, a
// value that does not parse, a record missing what identifies it. It is
// retried (the body may have been cut short) and fails the cycle if it
// persists.
type PageError struct {
	Provider  string // "gsl", "linkcard"
	Op        string
	RequestID string
	Err       error
}

func (e *PageError) Error() string {
	s := fmt.Sprintf("%s: %s: bad page: %v", e.Provider, e.Op, e.Err)
	if e.RequestID != "" {
		s += " (request id " + e.RequestID + ")"
	}
	return s
}

func (e *PageError) Unwrap() error { return e.Err }

// Temporary is true: a bad page may have been cut short on the way.
func (e *PageError) Temporary() bool { return true }

// Retrier runs requests with retries. The zero value of a field is a default.
type Retrier struct {
	Name       string        // provider instance, for logs
	Retries    int           // attempts beyond the first; negative means none; 0 means 4
	Backoff    time.Duration // first wait, doubled each time; 0 means 500ms
	MaxBackoff time.Duration // 0 means 30s
	// Adaptive paces every attempt (rate, requests in flight, Retry-After)
	// and learns from its outcome; nil means no pacing.
	Adaptive *Adaptive
	Logger   *slog.Logger
}

// Do calls attempt until it succeeds, fails with an error that is not
// Temporary, ctx ends, or the retries are spent. It waits the backoff (or the
// server's Retry-After, when longer) between attempts.
func (r *Retrier) Do(ctx context.Context, op string, attempt func(ctx context.Context) error) error {
	retries, base, maxWait := r.Retries, r.Backoff, r.MaxBackoff
	if retries == 0 {
		retries = 4
	}
	if base <= 0 {
		base = 500 * time.Millisecond
	}
	if maxWait <= 0 {
		maxWait = 30 * time.Second
	}
	for n := 0; ; n++ {
		var ticket Ticket
		if r.Adaptive != nil {
			var err error
			if ticket, err = r.Adaptive.Acquire(ctx); err != nil {
				return fmt.Errorf("%s: %w", op, err)
			}
		}
		err := attempt(ctx)
		if r.Adaptive != nil {
			r.Adaptive.Done(ticket, err)
		}
		if err == nil || ctx.Err() != nil || !IsTemporary(err) || n >= retries {
			return err
		}
		wait := Backoff(base, maxWait, n)
		var ra RetryAfter
		if errors.As(err, &ra) && min(ra.RetryAfter(), MaxRetryAfter) > wait {
			wait = min(ra.RetryAfter(), MaxRetryAfter)
		}
		if r.Logger != nil {
			// Throttling is logged once per episode by the controller, not
			// once per request it turns back.
			level := slog.LevelWarn
			var th Throttled
			if r.Adaptive != nil && errors.As(err, &th) && th.Throttled() {
				level = slog.LevelDebug
			}
			r.Logger.Log(ctx, level, "provider request failed, retrying", "provider", r.Name, "op", op, "attempt", n+1, "wait", wait, "err", err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (after: %w)", ctx.Err(), err)
		case <-t.C:
		}
	}
}

// IsTemporary reports whether err says the request may succeed if repeated.
func IsTemporary(err error) bool {
	var t Temporary
	return errors.As(err, &t) && t.Temporary()
}

// Backoff is base·2^attempt capped at max, with jitter in [d/2, d].
func Backoff(base, max time.Duration, attempt int) time.Duration {
	d := base << min(attempt, 30)
	if d > max || d <= 0 {
		d = max
	}
	return d/2 + rand.N(d/2+1)
}

// Pages fetches pages 2..pages with fetch, concurrency at a time, and returns
// first followed by every page in order. The first failure cancels the rest
// and is returned: a listing is complete or it is an error.
func Pages[T any](ctx context.Context, concurrency, pages int, first []T, fetch func(ctx context.Context, page int) ([]T, error)) ([]T, error) {
	if pages <= 1 {
		return first, nil
	}
	results := make([][]T, pages)
	results[0] = first
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var wg sync.WaitGroup
	for range max(1, min(concurrency, pages-1)) {
		wg.Go(func() {
			for page := range next {
				items, err := fetch(ctx, page)
				if err != nil {
					cancel(err)
					continue
				}
				results[page-1] = items
			}
		})
	}
feed:
	for page := 2; page <= pages; page++ {
		select {
		case next <- page:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	n := 0
	for _, r := range results {
		n += len(r)
	}
	out := make([]T, 0, n)
	for _, r := range results {
		out = append(out, r...)
	}
	return out, nil
}
