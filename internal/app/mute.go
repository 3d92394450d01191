package app

import (
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/mute"
	"github.com/simwatch/simwatch/internal/notify"
	"github.com/simwatch/simwatch/internal/store"
)

// muter builds what the notifiers' mute stage asks at each send: the
// silences active now and the inhibit rules over the alerts firing now. It
// reads the store each time, so a silence added while events wait mutes
// them; compiled silences are reused while the silences stay the same, and
// the firing alerts are read at most once a second.
type muter struct {
	store   *store.Store
	inhibit *mute.Inhibitor // nil without inhibit rules
	log     *slog.Logger

	// reported holds the budget failures already logged: the sets are
	// rebuilt every second, and each would report its failures again.
	reported sync.Map

	mu         sync.Mutex
	stamp      string // the silences the set was compiled from
	silences   *mute.SilenceSet
	silencesAt time.Time
	sources    *mute.SourceSet
	sourcesAt  time.Time
}

// firingEvery is how long compiled silences (whose helpers read the clock)
// and the firing alerts read for inhibit rules are reused.
const firingEvery = time.Second

func (m *muter) source(now time.Time) (notify.Mutes, error) {
	list, err := m.store.Silences()
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	for _, s := range list {
		if s.Active(now) {
			b.WriteString(s.ID + s.EndsAt.String() + ";")
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.silences == nil || b.String() != m.stamp || now.Sub(m.silencesAt) >= firingEvery || now.Before(m.silencesAt) {
		m.silences, m.stamp, m.silencesAt = mute.Silences(list, now), b.String(), now
	}
	if m.inhibit != nil && (m.sources == nil || now.Sub(m.sourcesAt) >= firingEvery || now.Before(m.sourcesAt)) {
		firing, err := m.store.Firing()
		if err != nil {
			return nil, err
		}
		m.sources, m.sourcesAt = m.inhibit.SourcesAt(firing, now), now
	}
	return mutes{silences: m.silences, sources: m.sources, report: m.report}, nil
}

// report logs, once, a silence or inhibit rule that went over its
// expression budget: it matches nothing until it is fixed or expires.
func (m *muter) report(err error) {
	if err == nil || m.log == nil {
		return
	}
	if _, seen := m.reported.LoadOrStore(err.Error(), true); !seen {
		m.log.Error("a silence or inhibit rule went over its expression budget and matches nothing", "err", err)
	}
}

type mutes struct {
	silences *mute.SilenceSet
	sources  *mute.SourceSet
	report   func(error)
}

func (m mutes) Muted(e *event.Event) (silenced, inhibited string) {
	id, err := m.silences.MatchErr(e)
	m.report(err)
	if id != "" {
		return id, ""
	}
	if m.sources != nil {
		inhibited = m.sources.Inhibited(e)
		m.report(m.sources.Errors())
	}
	return "", inhibited
}
