package outbox

import (
	"context"
	"fmt"

	"github.com/simwatch/simwatch/internal/event"
)

// Bus is what recovery needs of the event bus.
type Bus interface {
	// EnsureStreams creates the streams where they are missing.
	EnsureStreams(ctx context.Context) error
	// Pending counts the events the notifier's consumer has not yet had
	// acknowledged; an error when the consumer is missing.
	Pending(ctx context.Context, notifier string) (uint64, error)
	// Republish publishes an event again for one notifier, with the same
	// event id and a fresh message id.
	Republish(ctx context.Context, notifier string, e *event.Event, data []byte) error
}

// Recover republishes the events a notifier owes that the bus lost: those
// published, not yet taken by the notifier, while the bus has nothing more
// for it (or, with force, because its consumer was just made anew). The
// store's ledger is the record, so a deleted or corrupt bus store, or an
// external server that came back empty, loses no event. It returns how many
// it republished.
func (r *Relay) Recover(ctx context.Context, b Bus, notifier string, force bool) (int, error) {
	lost, err := r.store.Unreceived(notifier)
	if err != nil || len(lost) == 0 {
		return 0, err
	}
	if !force {
		pending, err := b.Pending(ctx, notifier)
		if err != nil {
			return 0, fmt.Errorf("outbox: recover %s: %w", notifier, err)
		}
		if pending > 0 {
			return 0, nil // on its way
		}
		// The bus had nothing for the notifier after these were listed:
		// those still not taken now were lost.
		again, err := r.store.Unreceived(notifier)
		if err != nil {
			return 0, err
		}
		still := make(map[uint64]bool, len(again))
		for _, le := range again {
			still[le.LSeq] = true
		}
		kept := lost[:0]
		for _, le := range lost {
			if still[le.LSeq] {
				kept = append(kept, le)
			}
		}
		lost = kept
	}
	n := 0
	for _, le := range lost {
		if err := b.Republish(ctx, notifier, &le.Event, le.Data); err != nil {
			return n, fmt.Errorf("outbox: recover %s: %w", notifier, err)
		}
		n++
	}
	if n > 0 {
		r.log.Warn("outbox: the bus had lost events; republished them from the ledger", "notifier", notifier, "events", n)
	}
	return n, nil
}
