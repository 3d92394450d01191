// Package outbox relays events from the store's outbox to the event bus: each
// event is deleted from the outbox only once JetStream has acknowledged it, so
// a crash at any point republishes, and the bus's duplicate window (keyed by
// event id) plus each notifier's delivery log absorb the repeat.
package outbox

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/store"
)

// Publisher stores events on the bus durably. It returns how many of them,
// in order from the first, are stored.
type Publisher interface {
	PublishBatch(ctx context.Context, events []event.Event) (int, error)
}

// batch is how many events one drain pass reads from the outbox.
const batch = 256

// Relay moves events from the outbox to a Publisher.
type Relay struct {
	store  *store.Store
	pub    Publisher
	log    *slog.Logger
	kick   chan struct{}
	period time.Duration
}

// New returns a relay. Period is how often it retries when not kicked (zero means 2s).
func New(s *store.Store, pub Publisher, period time.Duration, log *slog.Logger) *Relay {
	if period <= 0 {
		period = 2 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Relay{store: s, pub: pub, log: log, kick: make(chan struct{}, 1), period: period}
}

// Kick asks the relay to drain now. It never blocks.
func (r *Relay) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run drains the outbox whenever kicked, and every period, until ctx ends.
func (r *Relay) Run(ctx context.Context) {
	t := time.NewTicker(r.period)
	defer t.Stop()
	for {
		if _, err := r.Drain(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("outbox relay failed; will retry", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
		case <-t.C:
		}
	}
}

// Drain publishes everything in the outbox, oldest first, and returns how
// many events it published. It stops at the first failure, keeping order.
func (r *Relay) Drain(ctx context.Context) (int, error) {
	n := 0
	for {
		entries, err := r.store.Outbox(batch)
		if err != nil {
			return n, err
		}
		if len(entries) == 0 {
			return n, nil
		}
		events := make([]event.Event, len(entries))
		for i := range entries {
			events[i] = entries[i].Event
		}
		stored, perr := r.pub.PublishBatch(ctx, events)
		done := make([]uint64, 0, stored)
		for _, e := range entries[:stored] {
			done = append(done, e.Seq)
		}
		if len(done) > 0 {
			if err := r.store.DeleteOutbox(done...); err != nil {
				return n, fmt.Errorf("outbox: delete published: %w", err)
			}
			n += len(done)
		}
		if perr != nil {
			return n, fmt.Errorf("outbox: %w", perr)
		}
	}
}
