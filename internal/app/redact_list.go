package app

import (
	"context"

	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/poll"
	"github.com/simwatch/simwatch/internal/redact"
)

// redactedLister masks secrets in a streaming provider's errors, as
// redactedSource does for Fetch.
type redactedLister struct {
	l poll.Lister
	r *redact.Redactor
}

func (s redactedLister) List(ctx context.Context, known fleet.Known) (fleet.Listing, error) {
	l, err := s.l.List(ctx, known)
	return l, s.r.Error(err)
}

func (s redactedLister) FingerprintKind() string { return s.l.FingerprintKind() }

// redactLister is src's poll.Lister with its errors masked, or nil when src
// only offers Fetch.
func redactLister(src poll.Source, r *redact.Redactor) poll.Lister {
	if l, ok := src.(poll.Lister); ok {
		return redactedLister{l, r}
	}
	return nil
}
