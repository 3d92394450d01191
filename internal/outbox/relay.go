// Package outbox relays events from the store's outbox to the event bus: each
// event is deleted from the outbox only once JetStream has acknowledged it, so
// a crash at any point republishes, and the bus's duplicate window (keyed by
// event id) plus each notifier's delivery log absorb the repeat.
package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/store"
)

// Publisher stores events on the bus durably, each as its bytes are (the
// outbox holds what goes on the wire), deduplicated by its id. It returns
// how many of them, in order from the first, are stored. When it stops at
// an event the bus refuses for good (too large for it, say), its error has
// a method Permanent() bool that returns true, and the count is that
// event's index.
type Publisher interface {
	PublishEncoded(ctx context.Context, events []event.Encoded) (int, error)
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
// many events it published. It stops at the first transient failure, keeping
// order. An entry that can never be published (the Publisher refuses it with
// a permanent error, or it cannot be read) is logged once and set aside in
// the store, and the events behind it flow on: the events that did publish
// stay in order, and no single event blocks the outbox.
func (r *Relay) Drain(ctx context.Context) (int, error) {
	n := 0
	for {
		entries, err := r.store.OutboxEncoded(batch)
		if err != nil {
			return n, err
		}
		if len(entries) == 0 {
			return n, nil
		}
		good := entries[:decodable(entries)]
		stored, perr, err := r.publish(ctx, good)
		n += stored
		if err != nil {
			return n, err
		}
		switch {
		case perr != nil && permanent(perr) && stored < len(good):
			bad := good[stored]
			if err := r.setAside(bad.Seq, bad.ID, perr); err != nil {
				return n, err
			}
		case perr != nil:
			return n, fmt.Errorf("outbox: %w", perr)
		case stored < len(good):
			return n, fmt.Errorf("outbox: publisher stored %d of %d events without an error", stored, len(good))
		case len(good) < len(entries):
			bad := entries[len(good)]
			if err := r.setAside(bad.Seq, "", bad.Err); err != nil {
				return n, err
			}
		}
	}
}

// decodable is how many entries, from the first, could be read.
func decodable(entries []store.OutboxEntry) int {
	for i := range entries {
		if entries[i].Err != nil {
			return i
		}
	}
	return len(entries)
}

// publish hands entries to the Publisher and deletes from the outbox those
// it stored. It returns how many it stored and the Publisher's error, or
// the error of deleting them.
func (r *Relay) publish(ctx context.Context, entries []store.OutboxEntry) (stored int, perr, err error) {
	if len(entries) == 0 {
		return 0, nil, nil
	}
	events := make([]event.Encoded, len(entries))
	for i := range entries {
		events[i] = entries[i].Encoded
	}
	stored, perr = r.pub.PublishEncoded(ctx, events)
	stored = min(max(stored, 0), len(entries))
	if stored > 0 {
		if err := r.store.Published(entries[:stored]); err != nil {
			return 0, perr, fmt.Errorf("outbox: delete published: %w", err)
		}
	}
	return stored, perr, nil
}

// setAside moves an entry that can never be published out of the outbox,
// and logs it: once, since it is gone from the outbox afterwards.
func (r *Relay) setAside(seq uint64, eventID string, reason error) error {
	if err := r.store.SetAsideOutbox(seq, reason.Error(), time.Now()); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	r.log.Error("outbox: event set aside, it can never be published; the events behind it flow on",
		"event_id", eventID, "outbox_seq", seq, "err", reason)
	return nil
}

// permanent reports whether a Publisher's error says the bus refuses the
// event for good (its error has a Permanent method that returns true), as
// opposed to a transient failure to retry in order.
func permanent(err error) bool {
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}
