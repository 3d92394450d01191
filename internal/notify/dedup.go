package notify

import (
	"time"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/store"
)

// FiringLog remembers whether the firing of each alert's current episode
// reached a notifier.
type FiringLog interface {
	FiringOutcome(notifier, alert string, startsAt time.Time) (known, delivered bool, err error)
}

// Dedup is the dedup stage. Repeats of an event never reach it (the ledger
// takes each event once per notifier, and the delivery log remembers what
// was delivered after the ledger let go); what it decides is, as
// Alertmanager's dedup stage does, that a resolution whose firing never
// reached the receiver (it was muted there) is muted too.
type Dedup struct {
	Notifier string
	Log      FiringLog
}

// Split divides events into those that go on and resolutions muted because
// their firing was.
func (d Dedup) Split(events []event.Event) (pass []event.Event, muted []store.Outcome, err error) {
	pass = events[:0:0]
	for _, e := range events {
		if e.Kind == event.KindResolved && d.Log != nil {
			known, delivered, err := d.Log.FiringOutcome(d.Notifier, e.AlertKey(), e.StartsAt)
			if err != nil {
				return events, nil, err
			}
			if known && !delivered {
				muted = append(muted, store.Outcome{ID: e.ID, Result: store.Muted, Reason: "its firing was muted"})
				continue
			}
		}
		pass = append(pass, e)
	}
	return pass, muted, nil
}
