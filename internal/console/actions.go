package console

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/simwatch/simwatch/internal/store"
)

// actionPage is how many action records one page lists.
const actionPage = 100

// actionWindow is how far back the journal looks unless asked otherwise.
const actionWindow = 7 * 24 * time.Hour

type actionsData struct {
	Form      url.Values
	Notifiers []string
	Records   []store.ActionRecord // newest first
	Total     int
	// Prev and Next are the queries of the neighbouring pages (nil at an end).
	Prev, Next url.Values
	// From and To are the 1-based positions of the first and last shown.
	From, To int
}

// actions is the journal of what action notifiers did (or, dry, would have
// done) about events: stopped or resumed cards, newest first.
func (s *Server) actions(w http.ResponseWriter, r *http.Request, v *view) error {
	q := r.URL.Query()
	since := v.Now.Add(-actionWindow)
	if q.Get("since") != "" {
		var err error
		if since, err = timeBound("since", q.Get("since"), v.Now); err != nil {
			return err
		}
	}
	page := 0
	if p := q.Get("page"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 {
			return badRequest{"page: want a whole number from 1"}
		}
		page = n - 1
	}
	recs, err := s.o.Store.Actions(q.Get("notifier"), since) // oldest first
	if err != nil {
		return err
	}
	slices.Reverse(recs)
	d := actionsData{Form: q, Notifiers: s.o.Notifiers, Total: len(recs), From: page*actionPage + 1}
	lo := min(page*actionPage, len(recs))
	hi := min(lo+actionPage, len(recs))
	d.Records, d.To = recs[lo:hi], hi
	if page > 0 {
		d.Prev = withQuery(q, "page", strconv.Itoa(page))
	}
	if hi < len(recs) {
		d.Next = withQuery(q, "page", strconv.Itoa(page+2))
	}
	v.Title, v.Nav, v.Page, v.Data = "Actions", "actions", "actions", d
	return nil
}
