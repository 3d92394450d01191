package api

import (
	"encoding/json"
	"net/http"
	"strconv"
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
// latest snapshot of every provider, in the rule language.
func (s *Server) query(on string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		src := r.URL.Query().Get("q")
		if src == "" {
			src = "true"
		}
		q, err := rules.NewQuery(on, src, time.Now())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var res QueryResult
		err = s.o.Store.View(func(tx *store.Tx) error {
			for _, name := range tx.Providers() {
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
						c, err := store.DecodeCard(enc)
						if err != nil {
							return err
						}
						if ok, err := q.MatchCard(&c); err == nil && ok {
							res.Count++
							if len(res.Cards) < maxQueryResults {
								res.Cards = append(res.Cards, c)
							}
						}
						return nil
					})
				} else {
					err = pt.ForEachPool(func(_ string, enc []byte) error {
						var p fleet.Pool
						if err := json.Unmarshal(enc, &p); err != nil {
							return err
						}
						if ok, err := q.MatchPool(&p); err == nil && ok {
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
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		res.Truncated = res.Count > maxQueryResults
		writeJSON(w, res)
	}
}

// events lists the event history: ?rule= &iccid= &entity_id= &provider=
// &kind= &since=RFC3339 &limit=, newest first.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.EventFilter{Rule: q.Get("rule"), ICCID: q.Get("iccid"), EntityID: q.Get("entity_id"), Provider: q.Get("provider"), Kind: q.Get("kind")}
	f.Limit, _ = strconv.Atoi(q.Get("limit"))
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			http.Error(w, "since: want an RFC 3339 time", http.StatusBadRequest)
			return
		}
		f.Since = t
	}
	evs, err := s.o.Store.Events(f)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if evs == nil {
		evs = []event.Event{}
	}
	writeJSON(w, map[string]any{"events": evs})
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
		http.Error(w, err.Error(), http.StatusInternalServerError)
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
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, `want {"match": EXPR, "for": "2h", "comment": "..."}`, http.StatusBadRequest)
		return
	}
	d, err := time.ParseDuration(req.For)
	if err != nil {
		http.Error(w, "for: want a duration such as 2h", http.StatusBadRequest)
		return
	}
	sl, err := mute.NewSilence(req.Match, req.Comment, d, time.Now())
	if err == nil {
		err = s.o.Store.PutSilence(sl)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	writeJSON(w, sl)
}

func (s *Server) expireSilence(w http.ResponseWriter, r *http.Request) {
	if err := s.o.Store.ExpireSilence(r.PathValue("id"), time.Now()); err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	writeJSON(w, map[string]string{"expired": r.PathValue("id")})
}
