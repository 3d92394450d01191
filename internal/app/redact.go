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

// redactedDeadLetters masks secrets in dead-letter reasons, which quote
// receivers' errors and answers (a webhook echoing its secret, a URL).
type redactedDeadLetters struct {
	notify.DeadLetters
	r *redact.Redactor
}

func (d redactedDeadLetters) DeadLetter(ctx context.Context, notifier string, data []byte, eventID, reason string) error {
	return d.DeadLetters.DeadLetter(ctx, notifier, data, eventID, d.r.String(reason))
}
