package app

import (
	"context"

	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/notify"
	"github.com/simwatch/simwatch/internal/poll"
	"github.com/simwatch/simwatch/internal/redact"
)

// redactedSource masks secrets in a provider's errors before they become
// logs, the stored last error and provider_unhealthy events: an HTTP
// client's error quotes the URL, and LinkCard's carries the access key id.
type redactedSource struct {
	poll.Source
	r *redact.Redactor
}

func (s redactedSource) Fetch(ctx context.Context) (fleet.Snapshot, error) {
	snap, err := s.Source.Fetch(ctx)
	return snap, s.r.Error(err)
}

// redactedFinder is a redactedSource whose provider can also look cards up
// (poll.Finder): the poller finds that by a type assertion, so the wrapper
// must keep offering it, or removals would go unconfirmed.
type redactedFinder struct {
	redactedSource
	f poll.Finder
}

func (s redactedFinder) FindCards(ctx context.Context, cards map[string]string) (map[string]bool, error) {
	found, err := s.f.FindCards(ctx, cards)
	return found, s.r.Error(err)
}

// redactedStats and redactedFinderStats keep the request counts of a
// provider's client (requestStatser) for the metrics.
type redactedStats struct {
	redactedSource
	requestStatser
}

type redactedFinderStats struct {
	redactedFinder
	requestStatser
}

// redactSource wraps src so that its errors are masked, keeping the
// optional interfaces the poller and the metrics look for.
func redactSource(src poll.Source, r *redact.Redactor) poll.Source {
	rs := redactedSource{src, r}
	f, finder := src.(poll.Finder)
	st, stats := src.(requestStatser)
	switch {
	case finder && stats:
		return redactedFinderStats{redactedFinder{rs, f}, st}
	case finder:
		return redactedFinder{rs, f}
	case stats:
		return redactedStats{rs, st}
	}
	return rs
}

// redactedDeadLetters masks secrets in dead-letter reasons, which quote
// receivers' errors and answers (a webhook echoing its secret, a URL).
type redactedDeadLetters struct {
	notify.DeadLetters
	r *redact.Redactor
}

func (d redactedDeadLetters) DeadLetter(ctx context.Context, notifier string, data []byte, eventID, reason string) error {
	return d.DeadLetters.DeadLetter(ctx, notifier, data, eventID, d.r.String(reason))
}
