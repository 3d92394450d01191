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
// reached the receiver (it was muted there) is muted too, and so is an
// acknowledgement of it: a receiver that never heard of an alert is not
// told that someone is on it.
type Dedup struct {
	Notifier string
	Log      FiringLog
}

// Split divides events into those that go on and resolutions muted because
// their firing was: before, or in this very send (mutedNow: the episodes
// whose firings the mute stage just muted, with what muted them). A
// resolution goes when its episode's firing reached the receiver before or
// goes with it.
func (d Dedup) Split(events []event.Event, mutedNow map[episode]store.Outcome) (pass []event.Event, muted []store.Outcome, err error) {
	going := map[episode]bool{}
	for i := range events {
		if events[i].Kind == event.KindFiring {
			going[episodeOf(&events[i])] = true
		}
	}
	pass = events[:0:0]
	for _, e := range events {
		if (e.Kind != event.KindResolved && e.Kind != event.KindAcknowledged) || d.Log == nil {
			pass = append(pass, e)
			continue
		}
		ep := episodeOf(&e)
		known, delivered, err := d.Log.FiringOutcome(d.Notifier, ep.alert, e.StartsAt)
		if err != nil {
			return events, nil, err
		}
		switch by, now := mutedNow[ep]; {
		case going[ep] || (known && delivered):
			pass = append(pass, e) // the receiver has, or gets now, its firing
		case now:
			muted = append(muted, store.Outcome{ID: e.ID, Result: store.Muted, Silenced: by.Silenced, Inhibited: by.Inhibited,
				Reason: "its firing was muted"})
		case known:
			muted = append(muted, store.Outcome{ID: e.ID, Result: store.Muted, Reason: "its firing was muted"})
		default:
			pass = append(pass, e)
		}
	}
	return pass, muted, nil
}

// episode is one firing-to-resolution stretch of an alert.
type episode struct {
	alert string
	start int64
}

func episodeOf(e *event.Event) episode { return episode{e.AlertKey(), e.StartsAt.UnixNano()} }

// mutedFirings maps the episodes of the firings among events that the mute
// stage muted to what muted them.
func mutedFirings(events []event.Event, muted []store.Outcome) map[episode]store.Outcome {
	if len(muted) == 0 {
		return nil
	}
	byID := make(map[string]store.Outcome, len(muted))
	for _, o := range muted {
		byID[o.ID] = o
	}
	out := map[episode]store.Outcome{}
	for i := range events {
		if o, ok := byID[events[i].ID]; ok && events[i].Kind == event.KindFiring {
			out[episodeOf(&events[i])] = o
		}
	}
	return out
}
