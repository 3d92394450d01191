package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/mute"
	"github.com/simwatch/simwatch/internal/rules"
	"github.com/simwatch/simwatch/internal/store"
)

// maxQueryResults bounds one query's answer.
const maxQueryResults = 10000

// QueryResult is the answer of /api/v1/cards and /api/v1/pools.
type QueryResult struct {
	Cards     []fleet.Card `json:"cards,omitempty"`
	Pools     []fleet.Pool `json:"pools,omitempty"`
	Count     int          `json:"count"`
	Truncated bool         `json:"truncated,omitempty"`
}

// query answers "which cards (or pools) match ?q= right now?" over the
// latest snapshot of every provider, in the rule language. It stops between
// entities once the client has gone or the query timeout has passed, so an
// expensive expression burns no CPU for nobody.
func (s *Server) query(on string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := s.queryContext(r)
		defer cancel()
		src := r.URL.Query().Get("q")
		if src == "" {
			src = "true"
		}
		q, err := rules.NewQuery(on, src, time.Now())
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		// The context also stops an evaluation under way, not only the
		// loop between entities.
		q.SetContext(ctx)
		// stop is checked before every entity: the callbacks' error ends
		// the read transaction.
		stop := func() error {
			if s.onEntity != nil {
				s.onEntity(ctx)
			}
			return ctx.Err()
		}
		var res QueryResult
		err = s.o.Store.View(func(tx *store.Tx) error {
			for _, name := range tx.Providers() {
				if err := ctx.Err(); err != nil {
					return err
				}
				pt, err := tx.Provider(name)
				if err != nil {
					return err
				}
				meta, err := pt.Meta()
				if err != nil {
					return err
				}
				q.ReadHistory(func(entity, id string) fleet.History {
					key := store.CardHistoryKey(id)
					if entity == fleet.EntityPool {
						key = store.PoolHistoryKey(id)
					}
					h, _ := pt.History(key)
					return h
				}, meta.HistoryThrough)
				q.ReadFirstIMEI(pt.FirstIMEI)
				if on == fleet.EntityCard {
					err = pt.ForEachCard(func(_ string, enc []byte) error {
						if err := stop(); err != nil {
							return err
						}
						c, err := store.DecodeCard(enc)
						if err != nil {
							return err
						}
						ok, err := q.MatchCard(&c)
						if err != nil && (errors.Is(err, rules.ErrBudget) || ctx.Err() != nil) {
							return err // every later match would fail the same way
						}
						if err == nil && ok {
							res.Count++
							if len(res.Cards) < maxQueryResults {
								res.Cards = append(res.Cards, c)
							}
						}
						return nil
					})
				} else {
					err = pt.ForEachPool(func(_ string, enc []byte) error {
						if err := stop(); err != nil {
							return err
						}
						var p fleet.Pool
						if err := json.Unmarshal(enc, &p); err != nil {
							return err
						}
						ok, err := q.MatchPool(&p)
						if err != nil && (errors.Is(err, rules.ErrBudget) || ctx.Err() != nil) {
							return err // every later match would fail the same way
						}
						if err == nil && ok {
							res.Count++
							if len(res.Pools) < maxQueryResults {
								res.Pools = append(res.Pools, p)
							}
						}
						return nil
					})
				}
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			s.queryFailed(w, ctx, err)
			return
		}
		res.Truncated = res.Count > maxQueryResults
		writeJSON(w, res)
	}
}

// queryContext is the request's context bounded by the query timeout.
func (s *Server) queryContext(r *http.Request) (context.Context, context.CancelFunc) {
	d := s.o.QueryTimeout
	if d <= 0 {
		d = DefaultQueryTimeout
	}
	return context.WithTimeout(r.Context(), d)
}

// queryFailed answers a query that ended with err: 503 when it ran out of
// time, nothing when the client left (no one reads it), 500 otherwise.
func (s *Server) queryFailed(w http.ResponseWriter, ctx context.Context, err error) {
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		d := s.o.QueryTimeout
		if d <= 0 {
			d = DefaultQueryTimeout
		}
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("query took longer than %s; narrow it", d))
	case errors.Is(err, context.Canceled):
		// The client has gone.
	case errors.Is(err, rules.ErrBudget):
		writeError(w, http.StatusUnprocessableEntity, "the expression went over its budget: "+err.Error())
	default:
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

// EventKinds are the kinds ?kind= (and events --kind) accept.
var EventKinds = []string{event.KindFiring, event.KindResolved, event.KindTransition, event.KindAction, event.KindAcknowledged}

// events lists the event history: ?rule= &iccid= &entity_id= &provider=
// &kind= &since= (RFC 3339, or a relative duration such as 2h or 7d)
// &limit= (1..MaxEventLimit, default 100), newest first, and &after= (the
// answer's "next", there when the page is full) for the page after.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := s.queryContext(r)
	defer cancel()
	q := r.URL.Query()
	f := store.EventFilter{Rule: q.Get("rule"), ICCID: q.Get("iccid"), EntityID: q.Get("entity_id"), Provider: q.Get("provider"), Kind: q.Get("kind")}
	if f.Kind != "" && !slices.Contains(EventKinds, f.Kind) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("kind: %q is not one of %s", f.Kind, strings.Join(EventKinds, ", ")))
		return
	}
	if v := q.Get("limit"); v != "" {
		n, err := ParseLimit(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "limit: "+err.Error())
			return
		}
		f.Limit = n
	}
	if v := q.Get("since"); v != "" {
		t, err := ParseSince(v, time.Now())
		if err != nil {
			writeError(w, http.StatusBadRequest, "since: "+err.Error())
			return
		}
		f.Since = t
	}
	// The store's scan is bounded by the retention and the limit; the
	// deadline is checked around it.
	if err := ctx.Err(); err != nil {
		s.queryFailed(w, ctx, err)
		return
	}
	page, err := s.o.Store.EventsPage(store.EventQuery{EventFilter: f, Before: q.Get("after")})
	if errors.Is(err, store.ErrBadCursor) {
		writeError(w, http.StatusBadRequest, "after: not a next cursor from an earlier page")
		return
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		s.queryFailed(w, ctx, err)
		return
	}
	ans := map[string]any{"events": page.Events}
	if page.Events == nil {
		ans["events"] = []event.Event{}
	}
	if page.Next != "" {
		ans["next"] = page.Next
	}
	if page.Partial {
		// The search read its bound of events: more may match further back.
		ans["partial"], ans["searched_to"] = true, page.Reached
	}
	writeJSON(w, ans)
}

// SilenceRequest is the body of POST /api/v1/silences.
type SilenceRequest struct {
	Match   string `json:"match"`
	For     string `json:"for"` // a duration, e.g. 2h
	Comment string `json:"comment"`
}

func (s *Server) listSilences(w http.ResponseWriter, r *http.Request) {
	sl, err := s.o.Store.Silences()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	now := time.Now()
	type view struct {
		store.Silence
		Active bool `json:"active"`
	}
	out := []view{}
	for _, x := range sl {
		out = append(out, view{x, x.Active(now)})
	}
	writeJSON(w, map[string]any{"silences": out})
}

func (s *Server) addSilence(w http.ResponseWriter, r *http.Request) {
	var req SilenceRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeError(w, http.StatusBadRequest, `want {"match": EXPR, "for": "2h", "comment": "..."}: `+err.Error())
		return
	}
	d, err := ParseDuration(req.For)
	if err != nil || d <= 0 {
		writeError(w, http.StatusBadRequest, "for: want a positive duration such as 2h or 7d")
		return
	}
	sl, err := mute.NewSilence(req.Match, req.Comment, d, time.Now())
	if err == nil {
		err = s.writes().PutSilence(r.Context(), sl)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, sl)
}

func (s *Server) expireSilence(w http.ResponseWriter, r *http.Request) {
	if err := s.writes().ExpireSilence(r.Context(), r.PathValue("id"), time.Now()); err != nil {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	writeJSON(w, map[string]string{"expired": r.PathValue("id")})
}
