package provider

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Throttled is implemented by errors that say the provider is throttling
// the client (HTTP 429, a throttling code). The adaptive controller slows
// down on them; other failures leave the pace alone.
type Throttled interface {
	Throttled() bool
}

// Defaults of the adaptive controller.
const (
	// DefaultConcurrency is the ceiling on requests in flight when none is
	// configured.
	DefaultConcurrency = 16
	// InitialConcurrency is how many requests may be in flight before any
	// answer came back; it rises by one per round of successes.
	InitialConcurrency = 4
	// MinRate is the floor of the adaptive rate (requests per second):
	// however often the provider throttles, the client keeps asking.
	MinRate = 0.5
	// MaxRetryAfter caps a server's Retry-After: a misconfigured gateway
	// asking for a day must not stall the watcher for a day.
	MaxRetryAfter = 5 * time.Minute
)

const (
	rateWindow  = time.Second     // the send rate is measured over this
	minSpan     = rateWindow / 10 // ...and never over less (a burst at one instant)
	sendRing    = 256             // send times kept for measuring
	decrease    = 0.5             // a throttle halves the rate
	recoverMult = 2               // with no ceiling, the limit goes at 2× the rate throttled

	// The rate climbs back to the rate throttled in recoverK seconds, or
	// over recoverRequests requests at that rate when that is longer (up to
	// maxRecoverK): the cubic is scaled by the rate, so a provider throttling
	// at 5/s is probed as gently, relative to its limit, as one at 500/s,
	// and each probe (which costs a throttled answer or two) comes after
	// enough requests to keep the throttled share small.
	recoverK        = 4.0  // seconds
	recoverRequests = 40.0 // requests
	maxRecoverK     = 60.0 // seconds
)

// AdaptiveOptions configures an Adaptive controller. The zero value adapts
// with no rate ceiling and DefaultConcurrency requests in flight at most.
type AdaptiveOptions struct {
	Name           string  // provider instance, for logs
	MaxRate        float64 // ceiling on requests per second; 0 means none
	MaxConcurrency int     // ceiling on requests in flight; 0 means DefaultConcurrency
	Logger         *slog.Logger
}

// Adaptive paces every request of one provider client: listing pages,
// daily usage, finds and actions share it. It is AIMD as in AWS SDKs'
// adaptive retry mode: requests go unpaced and concurrency rises while the
// provider answers; a throttling answer halves both (the rate from the rate
// measured over the last second), then the rate climbs back on a cubic
// curve and concurrency by one per round of successes. A Retry-After pauses
// every new request of the client until it passes. Safe for concurrent use.
type Adaptive struct {
	name    string
	log     *slog.Logger
	maxRate float64
	maxConc int

	requests, throttled atomic.Int64

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on a change waiters must see
	waiters  int
	inFlight int
	conc     float64 // requests allowed in flight, in [1, maxConc]

	limited     bool      // throttled: the cubic rate applies until it recovers
	lastMax     float64   // the rate when last throttled
	k           float64   // seconds the cubic takes to climb back to lastMax
	decreasedAt time.Time // when last throttled
	// decreasedSeq is the number of the first request sent after the last
	// decrease: a throttle on an earlier one is part of the same burst.
	decreasedSeq uint64
	seq          uint64 // requests sent so far
	lastSend     time.Time
	pausedUntil  time.Time // Retry-After: no request before this

	sends [sendRing]time.Time // the latest send times, a ring
	head  int
}

// NewAdaptive returns a controller for o.
func NewAdaptive(o AdaptiveOptions) *Adaptive {
	if o.MaxConcurrency <= 0 {
		o.MaxConcurrency = DefaultConcurrency
	}
	if o.MaxRate < 0 || math.IsNaN(o.MaxRate) || math.IsInf(o.MaxRate, 0) {
		o.MaxRate = 0
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Adaptive{name: o.Name, log: o.Logger, maxRate: o.MaxRate, maxConc: o.MaxConcurrency,
		conc: float64(min(InitialConcurrency, o.MaxConcurrency)), changed: make(chan struct{})}
}

// Ticket is a request let through by Acquire; hand it to Done.
type Ticket struct {
	seq uint64
}

// Acquire waits until a request may be sent: no Retry-After pause is under
// way, fewer than the allowed number are in flight and the rate allows one
// more. It returns ctx's error if ctx ends first.
func (a *Adaptive) Acquire(ctx context.Context) (Ticket, error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		if err := ctx.Err(); err != nil {
			return Ticket{}, err
		}
		a.mu.Lock()
		now := time.Now()
		wait, ok := a.admit(now)
		if ok {
			t := Ticket{seq: a.seq}
			a.seq++
			a.inFlight++
			a.lastSend = now
			a.sends[a.head] = now
			a.head = (a.head + 1) % sendRing
			a.mu.Unlock()
			a.requests.Add(1)
			return t, nil
		}
		// Wait for a slot to free or the pause to change (changed), or for
		// the time the pause or the pace names (timer), whichever is first.
		ch := a.changed
		a.waiters++
		a.mu.Unlock()
		var fire <-chan time.Time
		if wait > 0 {
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			fire = timer.C
		}
		select {
		case <-ctx.Done():
		case <-ch:
		case <-fire:
		}
		if timer != nil {
			timer.Stop()
		}
		a.mu.Lock()
		a.waiters--
		a.mu.Unlock()
	}
}

// admit reports whether a request may go now, or how long until it might
// (0: until a slot frees). a.mu is held.
func (a *Adaptive) admit(now time.Time) (time.Duration, bool) {
	if now.Before(a.pausedUntil) {
		return a.pausedUntil.Sub(now), false
	}
	if a.inFlight >= int(a.conc) {
		return 0, false
	}
	if r := a.rate(now); r > 0 && a.seq > 0 {
		if next := a.lastSend.Add(time.Duration(float64(time.Second) / r)); now.Before(next) {
			return next.Sub(now), false
		}
	}
	return 0, true
}

// Done records the outcome of the request t let through, and must be
// called exactly once per ticket: success raises concurrency, a throttling
// answer slows the client down (once per burst), a Retry-After pauses every
// request of the client, and any other failure only frees the slot.
func (a *Adaptive) Done(t Ticket, err error) {
	var th Throttled
	throttled := errors.As(err, &th) && th.Throttled()
	var pause time.Duration
	var ra RetryAfter
	if errors.As(err, &ra) {
		pause = min(ra.RetryAfter(), MaxRetryAfter)
	}
	if throttled {
		a.throttled.Add(1)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	a.inFlight--
	switch {
	case throttled:
		a.slowDown(now, t)
	case err == nil:
		a.conc = min(float64(a.maxConc), a.conc+1/a.conc)
	}
	if pause > 0 {
		if until := now.Add(pause); until.After(a.pausedUntil) {
			a.pausedUntil = until
		}
	}
	if a.waiters > 0 {
		close(a.changed)
		a.changed = make(chan struct{})
	}
}

// slowDown halves the rate and concurrency, unless t was sent before the
// last decrease: then its throttle is an echo of the one already acted on.
// a.mu is held.
func (a *Adaptive) slowDown(now time.Time, t Ticket) {
	if t.seq < a.decreasedSeq {
		return
	}
	base := a.measured(now)
	if r := a.rate(now); r > 0 && (r < base || base == 0) {
		base = r
	}
	if base <= 0 {
		base = 2 * MinRate
	}
	wasLimited := a.limited
	a.limited = true
	a.lastMax = base
	a.k = min(maxRecoverK, max(recoverK, recoverRequests/base))
	a.decreasedAt = now
	a.decreasedSeq = a.seq
	a.conc = max(1, math.Floor(a.conc*decrease))
	if !wasLimited {
		// Logged under the lock: it happens once per throttling episode.
		a.log.Warn("provider is throttling requests: slowing down", "provider", a.name,
			"rate", roundRate(a.rate(now)), "concurrency", int(a.conc))
	}
}

// rate is the request rate now allowed, 0 meaning unlimited. After a
// throttle it climbs on a cubic curve, lastMax·(1 + C·(t−K)³), back to the
// rate throttled in K seconds and beyond; past the ceiling (or twice the rate
// throttled, with none) the episode ends. a.mu is held.
func (a *Adaptive) rate(now time.Time) float64 {
	if !a.limited {
		return a.maxRate
	}
	// C is such that the curve starts at decrease·lastMax: 1 + C·(−K)³ = decrease.
	c := (1 - decrease) / (a.k * a.k * a.k)
	t := now.Sub(a.decreasedAt).Seconds() - a.k
	r := a.lastMax * (1 + c*t*t*t)
	limit := a.maxRate
	if limit == 0 {
		limit = recoverMult * a.lastMax
	}
	if r >= limit {
		a.limited = false
		if a.maxRate > 0 {
			a.log.Info("provider no longer throttling: request rate back at its ceiling", "provider", a.name, "rate", a.maxRate)
		} else {
			a.log.Info("provider no longer throttling: request rate unlimited", "provider", a.name)
		}
		return a.maxRate
	}
	return max(MinRate, r)
}

// measured is the send rate over the last rateWindow. a.mu is held.
func (a *Adaptive) measured(now time.Time) float64 {
	n := 0
	oldest := now
	for i := range sendRing {
		s := a.sends[(a.head-1-i+sendRing)%sendRing]
		if s.IsZero() || now.Sub(s) >= rateWindow {
			break
		}
		n++
		oldest = s
	}
	if n == 0 {
		return 0
	}
	return float64(n) / max(now.Sub(oldest), minSpan).Seconds()
}

// Stats reports the requests let through, the throttling answers, and the
// rate (0: unlimited) and concurrency allowed now. Pages is left to the
// client.
func (a *Adaptive) Stats() RequestStats {
	a.mu.Lock()
	r, c := a.rate(time.Now()), int(a.conc)
	a.mu.Unlock()
	return RequestStats{Requests: a.requests.Load(), Throttled: a.throttled.Load(), Rate: r, Concurrency: c}
}

func roundRate(r float64) float64 { return math.Round(r*100) / 100 }
