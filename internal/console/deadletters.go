package console

import (
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/simwatch/simwatch/internal/bus"
)

// deadLettersShown bounds the dead letters listed per notifier, newest
// first; replaying all of a notifier's takes the rest too.
const deadLettersShown = 100

// deadLetterWait bounds the read of the dead-letter stream.
const deadLetterWait = 5 * time.Second

type deadLettersData struct {
	// Unavailable says why nothing could be listed ("" when listed).
	Unavailable string
	Notifiers   []notifierLetters
}

type notifierLetters struct {
	Name    string
	Letters []bus.DeadLetter // newest first
	Total   int
}

// deadLetters lists the events each notifier gave up on; an admin replays
// them through the API.
func (s *Server) deadLetters(w http.ResponseWriter, r *http.Request, v *view) error {
	v.Title, v.Nav, v.Page = "Dead letters", "deadletters", "deadletters"
	d := deadLettersData{}
	v.Data = &d
	if s.o.DeadLetters == nil {
		d.Unavailable = "This watcher keeps no dead letters (no event bus)."
		return nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), deadLetterWait)
	defer cancel()
	all, err := s.o.DeadLetters.ListDeadLetters(ctx, "") // one walk of the stream for every notifier
	if err != nil {
		s.o.Logger.Warn("console: dead letters", "err", err)
		d.Unavailable = "The dead letters could not be read: " + err.Error()
		return nil
	}
	by := map[string]*notifierLetters{}
	names := slices.Clone(s.o.Notifiers)
	for _, n := range names {
		by[n] = &notifierLetters{Name: n}
	}
	for i := len(all) - 1; i >= 0; i-- { // the stream is oldest first
		dl := all[i]
		nl := by[dl.Notifier]
		if nl == nil { // a notifier no longer configured still has its letters
			nl = &notifierLetters{Name: dl.Notifier}
			by[dl.Notifier] = nl
			names = append(names, dl.Notifier)
		}
		nl.Total++
		if len(nl.Letters) < deadLettersShown {
			nl.Letters = append(nl.Letters, dl)
		}
	}
	for _, n := range names {
		d.Notifiers = append(d.Notifiers, *by[n])
	}
	return nil
}
