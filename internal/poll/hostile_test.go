package poll

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/provider/linkcard"
	"github.com/simwatch/simwatch/internal/rules"
	"github.com/simwatch/simwatch/internal/sim"
	"github.com/simwatch/simwatch/internal/store"
)

// hostileRules fire on every kind of false alert an odd provider answer
// could cause: a low card, a card gone, a card not active, a status
// transition, a pool in overdraft.
const hostileRules = `rules:
  - {name: card_low_flow, on: card, when: 'flow_left < 10'}
  - {name: card_removed, on: card, when: removed}
  - {name: not_active, on: card, when: 'status != "active"'}
  - {name: status_changed, on: card, when: 'prev.status != status'}
  - {name: pool_overdraft, on: pool, when: 'flow_left < 0'}
  - {name: pool_removed, on: pool, when: removed}
`

// cardEvents drops provider_unhealthy signals (a failing provider is
// expected to raise one) and returns the events about cards and pools.
func cardEvents(events []string) []string {
	var out []string
	for _, e := range events {
		if e != "firing provider_unhealthy hw" && e != "resolved provider_unhealthy hw" {
			out = append(out, e)
		}
	}
	return out
}

// raw is sim.Raw, short for the tables below.
func raw(kv ...string) map[string]json.RawMessage { return sim.Raw(kv...) }

// Every odd answer a provider can give either fails the cycle (naming what
// was wrong) or commits with nothing to say: it never becomes a card or pool
// alert, never resolves the alert that is firing, and never removes a card.
func TestHostileProviderAnswersFireNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		// hostile makes the provider odd; its faults are cleared afterwards.
		hostile func(r *rig)
		fails   string // the cycle's error, or "" when it commits
	}{
		{"page 1 is {}", func(r *rig) {
			r.sim.AddFault(sim.Fault{Kind: sim.FaultBody, Path: "sim-cards", Page: 1, Body: `{}`})
		}, "count"},
		{"a later page has sim_cards null", func(r *rig) {
			r.sim.AddFault(sim.Fault{Kind: sim.FaultBody, Path: "sim-cards", Page: 2, Body: `{"limit":10,"offset":2,"count":30,"sim_cards":null}`})
		}, "sim-cards"},
		{"a later page is empty", func(r *rig) {
			r.sim.AddFault(sim.Fault{Kind: sim.FaultBody, Path: "sim-cards", Page: 2, Body: `{"limit":10,"offset":2,"count":30,"sim_cards":[]}`})
		}, "page 2"},
		{"count lower than the fleet", func(r *rig) {
			r.sim.AddFault(sim.Fault{Kind: sim.FaultCount, Path: "sim-cards", Total: 25})
		}, "inconsistent"},
		{"count lower than the fleet by whole pages", func(r *rig) {
			r.sim.AddFault(sim.Fault{Kind: sim.FaultCount, Path: "sim-cards", Total: 20})
		}, "inconsistent"},
		{"count higher than the fleet", func(r *rig) {
			r.sim.AddFault(sim.Fault{Kind: sim.FaultCount, Path: "sim-cards", Total: 31})
		}, "inconsistent"},
		{"a page misses a card", func(r *rig) {
			r.sim.AddFault(sim.Fault{Kind: sim.FaultDrop, Path: "sim-cards", Page: 2})
		}, "inconsistent"},
		{"paging drifts on every try", func(r *rig) {
			r.sim.AddFault(sim.Fault{Kind: sim.FaultDrift, Path: "sim-cards", Page: 2, Shift: -1})
		}, "inconsistent"},
		{"paging drifts once", func(r *rig) {
			r.sim.AddFault(sim.Fault{Kind: sim.FaultDrift, Path: "sim-cards", Page: 2, Shift: 1, Count: 1})
		}, ""},
		{"an id twice on a page", func(r *rig) {
			r.sim.AddFault(sim.Fault{Kind: sim.FaultDup, Path: "sim-cards", Page: 3})
		}, "twice"},
		{"a redirect to a page that answers 200", func(r *rig) {
			r.sim.AddFault(sim.Fault{Kind: sim.FaultRedirect, Path: "sim-cards", Page: 1})
		}, "redirect"},
		{"pools page 1 is {}", func(r *rig) {
			r.sim.AddFault(sim.Fault{Kind: sim.FaultBody, Path: "sim-pools", Page: 1, Body: `{}`})
		}, "count"},
		{"flow_left null on the low card and a fine one", func(r *rig) {
			require.NoError(r.t, r.sim.Fleet().PatchCard(r.iccids[1], sim.CardPatch{Raw: raw("flow_left", "null")}))
			require.NoError(r.t, r.sim.Fleet().PatchCard(r.iccids[5], sim.CardPatch{Raw: raw("flow_left", "null")}))
		}, ""},
		{"flow_left missing", func(r *rig) {
			require.NoError(r.t, r.sim.Fleet().PatchCard(r.iccids[5], sim.CardPatch{Unset: []string{"flow_left"}}))
		}, ""},
		{"an unlisted sim_status", func(r *rig) {
			require.NoError(r.t, r.sim.Fleet().PatchCard(r.iccids[5], sim.CardPatch{Raw: raw("sim_status", "99")}))
		}, ""},
		{"a flow of 1.7e308", func(r *rig) {
			require.NoError(r.t, r.sim.Fleet().PatchCard(r.iccids[5], sim.CardPatch{Raw: raw("flow_used", "1.7e308")}))
		}, "flow_"},
		{"a flow beyond float64", func(r *rig) {
			require.NoError(r.t, r.sim.Fleet().PatchCard(r.iccids[5], sim.CardPatch{Raw: raw("flow_left", "1e400")}))
		}, "page"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, hostileRules)
			r.low(1, 95) // card 2 is low: its alert fires and must stay firing
			ctx := context.Background()
			p := New(Options{Provider: "hw", Source: r.client, Store: r.store, Rules: func() *rules.Set { return r.set },
				UnhealthyAfter: 10, Now: func() time.Time { return r.now }})
			_, err := p.Cycle(ctx)
			require.NoError(t, err)
			require.Equal(t, []string{"firing card_low_flow 4900000000002"}, r.outbox())

			tc.hostile(r)
			for range 2 { // two listings: a removal needs two absences
				r.now = r.now.Add(10 * time.Minute)
				res, err := p.Cycle(ctx)
				if tc.fails != "" {
					require.ErrorContains(t, err, tc.fails)
				} else {
					require.NoError(t, err)
					require.Equal(t, 30, res.Cards)
					require.Zero(t, res.Missing+res.Removed)
				}
				require.Empty(t, cardEvents(r.outbox()), "an odd answer became an alert")
				require.Equal(t, 1, firing(t, r.store), "the low card's alert keeps firing")
			}

			r.sim.ClearFaults()
			for _, iccid := range r.iccids {
				require.NoError(t, r.sim.Fleet().PatchCard(iccid, sim.CardPatch{Raw: raw(), Unset: []string{}}))
			}
			r.now = r.now.Add(10 * time.Minute)
			_, err = p.Cycle(ctx)
			if tc.fails != "" {
				require.NoError(t, err, "the provider is fine again")
			}
			require.Empty(t, cardEvents(r.outbox()))
		})
	}
}

// firing counts the stored alerts in firing state.
func firing(t *testing.T, st *store.Store) int {
	n := 0
	require.NoError(t, st.View(func(tx *store.Tx) error {
		pt, err := tx.Provider("hw")
		if err != nil {
			return err
		}
		alerts, err := pt.Alerts()
		for _, a := range alerts {
			if a.State == rules.StateFiring {
				n++
			}
		}
		return err
	}))
	return n
}

// The same for LinkCard: its envelope, its flow strings and its derived
// pools.
func TestHostileLinkCardAnswersFireNothing(t *testing.T) {
	for _, tc := range []struct {
		name    string
		hostile func(s *sim.Server, iccids []string)
		fails   string
	}{
		{"Data.List null while Total says 30", func(s *sim.Server, _ []string) {
			s.AddFault(sim.Fault{Kind: sim.FaultBody, Path: "linkcard", Page: 2,
				Body: `{"Code":"200","Success":true,"RequestId":"x","Data":{"PageNo":2,"PageSize":10,"PageCount":3,"Total":30,"List":null}}`})
		}, "page 2"},
		{"Total lower than the fleet", func(s *sim.Server, _ []string) {
			s.AddFault(sim.Fault{Kind: sim.FaultCount, Path: "linkcard", Total: 25})
		}, "inconsistent"},
		{"Total lower than the fleet by whole pages", func(s *sim.Server, _ []string) {
			s.AddFault(sim.Fault{Kind: sim.FaultCount, Path: "linkcard", Total: 20})
		}, "inconsistent"},
		{"a DataLevel of 10^21 TB", func(s *sim.Server, iccids []string) {
			require.NoError(t, s.Fleet().PatchCard(iccids[4], sim.CardPatch{Raw: raw("DataLevel", `"1000000000000000000000TB"`)}))
		}, "DataLevel"},
		{"PeriodRestFlow missing", func(s *sim.Server, iccids []string) {
			require.NoError(t, s.Fleet().PatchCard(iccids[4], sim.CardPatch{Unset: []string{"PeriodRestFlow"}}))
		}, ""},
		{"an unlisted Status", func(s *sim.Server, iccids []string) {
			require.NoError(t, s.Fleet().PatchCard(iccids[4], sim.CardPatch{Raw: raw("Status", `"77"`)}))
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := sim.NewServer(sim.Options{Fleet: sim.NewFleet(sim.FleetOptions{Cards: 30, Pools: 2, Seed: 9, Calm: true})})
			ts := httptest.NewServer(s.Handler())
			t.Cleanup(ts.Close)
			c, err := linkcard.New(linkcard.Options{Name: "ali", Endpoint: ts.URL, AccessKeyID: "k", AccessKeySecret: "s",
				PageSize: 10, Rate: 1000, Retries: -1, Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
			require.NoError(t, err)
			st, err := store.Open(filepath.Join(t.TempDir(), "s.db"))
			require.NoError(t, err)
			t.Cleanup(func() { st.Close() })
			set, err := rules.Parse("r.yaml", []byte(hostileRules), rules.LoadOptions{})
			require.NoError(t, err)
			now := sim.DefaultStart
			p := New(Options{Provider: "ali", Source: c, Store: st, Rules: func() *rules.Set { return set },
				UnhealthyAfter: 10, Now: func() time.Time { return now }})
			ctx := context.Background()
			_, err = p.Cycle(ctx)
			require.NoError(t, err)
			events := func() []string {
				entries, err := st.Outbox(1000)
				require.NoError(t, err)
				var out []string
				var seqs []uint64
				for _, e := range entries {
					out = append(out, e.Event.Kind+" "+e.Event.Rule+" "+e.Event.EntityID)
					seqs = append(seqs, e.Seq)
				}
				require.NoError(t, st.DeleteOutbox(seqs...))
				return out
			}
			require.Empty(t, events())

			tc.hostile(s, s.Fleet().CardICCIDs())
			for range 2 {
				now = now.Add(10 * time.Minute)
				_, err := p.Cycle(ctx)
				if tc.fails != "" {
					require.ErrorContains(t, err, tc.fails)
				} else {
					require.NoError(t, err)
				}
				require.Empty(t, events(), "an odd answer became an alert")
			}
		})
	}
}
