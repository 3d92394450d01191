package notify

import (
	"time"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/store"
)

// Mutes says whether an event is muted, and by what: the id of a silence,
// or the firing alert that inhibits it.
type Mutes interface {
	Muted(e *event.Event) (silenced, inhibited string)
}

// MuteSource returns what mutes events at now: the silences active then and
// the inhibitions of the alerts firing then.
type MuteSource func(now time.Time) (Mutes, error)

// Mute is the mute stage (silences and inhibit rules). It runs at delivery
// and again before every retry, so a silence added while an event waits
// mutes it.
type Mute struct {
	Source MuteSource // nil mutes nothing
}

// Split divides events into those that go on and those muted, with what
// muted them. When the mute state cannot be read, nothing is muted: a
// notification too many beats one lost.
func (m Mute) Split(now time.Time, events []event.Event) (pass []event.Event, muted []store.Outcome, err error) {
	if m.Source == nil {
		return events, nil, nil
	}
	mutes, err := m.Source(now)
	if err != nil {
		return events, nil, err
	}
	pass = events[:0:0]
	for i := range events {
		e := &events[i]
		if s, inh := mutes.Muted(e); s != "" || inh != "" {
			muted = append(muted, store.Outcome{ID: e.ID, Result: store.Muted, Silenced: s, Inhibited: inh})
			continue
		}
		pass = append(pass, *e)
	}
	return pass, muted, nil
}
