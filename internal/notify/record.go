package notify

import (
	"context"
	"time"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/store"
)

// delivered counts and notes events the receiver accepted.
func (d *Dispatcher) delivered(sent []event.Event, attempts int) []store.Outcome {
	outcomes := make([]store.Outcome, 0, len(sent))
	now := d.o.Now()
	for _, e := range sent {
		outcomes = append(outcomes, store.Outcome{ID: e.ID, Result: store.Delivered})
		d.log.Debug("delivered", "event_id", e.ID, "rule", e.Rule, "seq", e.Seq, "attempts", attempts)
		if d.o.Observe != nil {
			d.o.Observe(now.Sub(e.ObservedAt))
		}
	}
	d.Stats.Delivered.Add(int64(len(sent)))
	return outcomes
}

// deadLetterData moves an event to the dead letters; false when that failed
// and the event must stay where it is.
func (d *Dispatcher) deadLetterData(ctx context.Context, data []byte, id, reason string) bool {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := d.o.DeadLetters.DeadLetter(dctx, d.o.Name, data, id, reason); err != nil {
		d.log.Error("dead letter failed; the event stays in hand", "event_id", id, "err", err)
		return false
	}
	d.log.Warn("event dead-lettered", "event_id", id, "reason", reason)
	d.mu.Lock()
	d.lastDeadLetter = reason
	d.mu.Unlock()
	d.Stats.DeadLettered.Add(1)
	return true
}

// record is the record stage: the ledger settles the outcomes (and the
// delivery log and history keep them). It returns the ledger places
// settled.
func (d *Dispatcher) record(outcomes []store.Outcome, byID map[string]*item) map[uint64]bool {
	settled := make(map[uint64]bool, len(outcomes))
	if len(outcomes) == 0 {
		return settled
	}
	for i := range outcomes {
		o := &outcomes[i]
		if it := byID[o.ID]; it != nil {
			o.LSeq, o.Alert, o.Kind, o.StartsAt = it.lseq, it.ev.AlertKey(), it.ev.Kind, it.ev.StartsAt
		}
		if o.Result == store.Muted {
			d.Stats.Muted.Add(1)
			d.log.Info("event muted", "event_id", o.ID, "silence", o.Silenced, "inhibited_by", o.Inhibited, "reason", o.Reason)
		}
	}
	if err := d.o.Ledger.Settle(d.o.Name, d.o.Now(), outcomes); err != nil {
		// The receiver has them; kept in hand, they would be sent again
		// (receivers dedupe by id), which beats losing them.
		d.log.Error("ledger write failed; the events may be sent again", "err", err)
		return settled
	}
	for _, o := range outcomes {
		settled[o.LSeq] = true
	}
	return settled
}
