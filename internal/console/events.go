package console

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/simwatch/simwatch/internal/api"
	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/store"
)

// Event history page sizes.
const (
	eventPageDefault = 50
	eventPageMax     = 500
)

type eventsData struct {
	// SearchedTo is set when the search read its bound of events before
	// filling the page: how far back it looked (Older searches on).
	SearchedTo time.Time
	// Form is the search as given, to fill the form again.
	Form  url.Values
	Kinds []string
	// Providers are those with stored state, for the provider choice.
	Providers []string
	Events    []eventRow
	// Older is the query of the next, older page (nil on the last);
	// Newest that of the first page, set when this is not it.
	Older, Newest url.Values
	Paged         bool
}

// eventRow is an event and the console page of its entity.
type eventRow struct {
	event.Event
	Link string
}

// events searches the event history (what `watcher events` and
// GET /api/v1/events read): by rule, entity id, ICCID, provider, kind and a
// time range, newest first, a page at a time.
func (s *Server) events(w http.ResponseWriter, r *http.Request, v *view) error {
	q := r.URL.Query()
	f := store.EventQuery{
		EventFilter: store.EventFilter{Rule: strings.TrimSpace(q.Get("rule")), ICCID: strings.TrimSpace(q.Get("iccid")),
			EntityID: strings.TrimSpace(q.Get("entity_id")), Provider: q.Get("provider"), Kind: q.Get("kind"), Limit: eventPageDefault},
		Before: q.Get("before"),
	}
	if f.Kind != "" && !slices.Contains(api.EventKinds, f.Kind) {
		return badRequest{"kind: " + strconv.Quote(f.Kind) + " is not one of " + strings.Join(api.EventKinds, ", ")}
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > eventPageMax {
			return badRequest{"limit: want a whole number from 1 to " + strconv.Itoa(eventPageMax)}
		}
		f.Limit = n
	}
	var err error
	if f.Since, err = timeBound("since", q.Get("since"), v.Now); err != nil {
		return err
	}
	if f.Until, err = timeBound("until", q.Get("until"), v.Now); err != nil {
		return err
	}
	page, err := s.o.Store.EventsPage(f)
	if err == store.ErrBadCursor {
		return badRequest{"before: not a cursor this page gave"}
	}
	if err != nil {
		return err
	}
	d := eventsData{Form: q, Kinds: api.EventKinds, Paged: f.Before != ""}
	for i := range page.Events {
		d.Events = append(d.Events, eventRow{Event: page.Events[i], Link: entityLink(&page.Events[i])})
	}
	if page.Next != "" {
		d.Older = withQuery(q, "before", page.Next)
	}
	if page.Partial {
		d.SearchedTo = page.Reached
	}
	if d.Paged {
		d.Newest = withQuery(q, "before", "")
	}
	_ = s.o.Store.View(func(tx *store.Tx) error { d.Providers = tx.Providers(); return nil })
	v.Title, v.Nav, v.Page, v.Data = "History", "events", "events", d
	return nil
}

// timeBound reads a time from the search form: RFC 3339, a date
// (2026-11-23, midnight UTC), a date and time as a browser's
// datetime-local input sends it (UTC), or a duration back from now (7d).
func timeBound(name, v string, now time.Time) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{"2006-01-02", "2006-01-02T15:04", "2006-01-02 15:04"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	t, err := api.ParseSince(v, now)
	if err != nil {
		return t, badRequest{name + ": " + err.Error()}
	}
	return t, nil
}

// entityLink is the console page of an event's entity, "" for a provider.
func entityLink(e *event.Event) string {
	switch e.Entity {
	case "card":
		return "/cards/" + url.PathEscape(e.Provider) + "/" + url.PathEscape(e.EntityID)
	case "pool":
		return "/pools/" + url.PathEscape(e.Provider) + "/" + url.PathEscape(e.EntityID)
	}
	return ""
}

// withQuery is q with key set to value (removed when value is empty).
func withQuery(q url.Values, key, value string) url.Values {
	out := url.Values{}
	for k, vs := range q {
		if k != key {
			out[k] = vs
		}
	}
	if value != "" {
		out.Set(key, value)
	}
	return out
}
