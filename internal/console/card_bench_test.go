package console

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/simwatch/simwatch/internal/api"
	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/poll"
	"github.com/simwatch/simwatch/internal/provider/gsl"
	"github.com/simwatch/simwatch/internal/rules"
	"github.com/simwatch/simwatch/internal/sim"
	"github.com/simwatch/simwatch/internal/store"
)

// cbCards is the fleet size the card page is measured at.
const cbCards = 100_000

// cbFleet is a console over a store filled by real cycles of a 100 000-card
// simulated fleet with the shipped example rules, and the daily history.
type cbFleet struct {
	st      *store.Store
	h       http.Handler
	card    string // an active card with history
	pool    string // the pool with the most members
	members int
	small   string // the pool with the fewest: its page walks every card
}

func buildBenchFleet(b *testing.B) (*cbFleet, error) {
	f := &cbFleet{}
	s := sim.NewServer(sim.Options{Fleet: sim.NewFleet(sim.FleetOptions{Cards: cbCards, Pools: 20, Seed: 1})})
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	c, err := gsl.New(gsl.Options{Name: "hw", Endpoint: ts.URL, Token: "t", PageSize: 500, Rate: 1e6, Concurrency: 4})
	if err != nil {
		return nil, err
	}
	src, err := os.ReadFile("../../rules.example.yaml")
	if err != nil {
		return nil, err
	}
	set, err := rules.Parse("rules.example.yaml", src, rules.LoadOptions{})
	if err != nil {
		return nil, err
	}
	if f.st, err = store.Open(filepath.Join(b.TempDir(), "s.db")); err != nil {
		return nil, err
	}
	b.Cleanup(func() { f.st.Close() })
	now := sim.DefaultStart.Add(4 * time.Hour)
	p := poll.New(poll.Options{Provider: "hw", Source: c, Store: f.st, Rules: func() *rules.Set { return set }, Now: func() time.Time { return now },
		Daily: func(ctx context.Context, month, date string, ids []string) (map[string][]fleet.DayUsage, error) {
			return c.DailyFlow(ctx, gsl.DailyQuery{Month: month, Date: date}, ids)
		}})
	ctx := context.Background()
	for i := range 3 { // the history, then cycles that run the history rules
		if i > 0 {
			s.Fleet().Advance(1)
			now = now.Add(24 * time.Hour)
		}
		if _, err := p.Cycle(ctx); err != nil {
			return nil, err
		}
		if _, err := p.UpdateHistory(ctx); err != nil {
			return nil, err
		}
	}
	counts := map[string]int{}
	err = f.st.View(func(tx *store.Tx) error {
		pt, err := tx.Provider("hw")
		if err != nil {
			return err
		}
		return pt.ForEachCard(func(id string, enc []byte) error {
			card, err := store.DecodeCard(enc)
			if err != nil {
				return err
			}
			if card.PoolID != "" {
				counts[card.PoolID]++
			}
			if f.card == "" && card.Status == fleet.StatusActive && pt.HistorySource(store.CardHistoryKey(id)) != "" {
				f.card = id
			}
			return nil
		})
	})
	fewest := 0
	for id, n := range counts {
		if n > f.members {
			f.pool, f.members = id, n
		}
		if f.small == "" || n < fewest {
			f.small, fewest = id, n
		}
	}
	con := New(Options{Store: f.st, Access: api.New(api.Options{Store: f.st}), Now: func() time.Time { return now }})
	f.h = con.Handler()
	return f, err
}

func cbPage(b *testing.B, h http.Handler, path string) {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Host = "127.0.0.1"
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("%s: %d %s", path, w.Code, w.Body.String())
		}
	}
}

// BenchmarkCardPage renders the card, pool and history pages at 100 000
// cards (the store is built once, by real cycles):
//   - card: the card, its history chart, its timeline and IMEI history
//     (two scans of the event history);
//   - pool: the largest pool's first page of members;
//   - pool-walk: the smallest pool, fewer members than a page, so the walk
//     reads every card (the member walk's worst case);
//   - events, events-entity: the history's first page, all and by card.
func BenchmarkCardPage(b *testing.B) {
	f, err := buildBenchFleet(b)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("card", func(b *testing.B) { cbPage(b, f.h, "/cards/hw/"+f.card) })
	b.Run("pool", func(b *testing.B) {
		b.ReportMetric(float64(f.members), "members")
		cbPage(b, f.h, "/pools/hw/"+f.pool)
	})
	b.Run("pool-walk", func(b *testing.B) { cbPage(b, f.h, "/pools/hw/"+f.small) })
	b.Run("events", func(b *testing.B) { cbPage(b, f.h, "/events") })
	b.Run("events-entity", func(b *testing.B) { cbPage(b, f.h, "/events?entity_id="+f.card) })
}
