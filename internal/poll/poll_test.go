package poll

import (
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/provider/gsl"
	"github.com/simwatch/simwatch/internal/rules"
	"github.com/simwatch/simwatch/internal/sim"
	"github.com/simwatch/simwatch/internal/store"
)

const lowRule = `rules:
  - {name: card_low_flow, on: card, when: 'flow_left < 10'}
`

type rig struct {
	t      *testing.T
	sim    *sim.Server
	client *gsl.Client
	store  *store.Store
	set    *rules.Set
	now    time.Time
	iccids []string
}

func newRig(t *testing.T, rulesSrc string) *rig {
	t.Helper()
	s := sim.NewServer(sim.Options{Fleet: sim.NewFleet(sim.FleetOptions{Cards: 30, Pools: 2, Seed: 9, Calm: true})})
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	c, err := gsl.New(gsl.Options{Name: "hw", Endpoint: ts.URL, Token: "t", PageSize: 10, Rate: 1000, Retries: -1,
		Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}) // refetches of a drifting listing stay fast
	require.NoError(t, err)
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	set, err := rules.Parse("r.yaml", []byte(rulesSrc), rules.LoadOptions{})
	require.NoError(t, err)
	return &rig{t: t, sim: s, client: c, store: st, set: set, now: time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), iccids: s.Fleet().CardICCIDs()}
}

func (r *rig) poller() *Poller {
	return New(Options{Provider: "hw", Source: r.client, Store: r.store, Rules: func() *rules.Set { return r.set },
		UnhealthyAfter: 2, Now: func() time.Time { return r.now }})
}

// outbox returns and clears the events committed so far, as "kind rule id".
func (r *rig) outbox() []string {
	entries, err := r.store.Outbox(1000)
	require.NoError(r.t, err)
	var out []string
	var seqs []uint64
	for _, e := range entries {
		out = append(out, e.Event.Kind+" "+e.Event.Rule+" "+e.Event.EntityID)
		seqs = append(seqs, e.Seq)
	}
	require.NoError(r.t, r.store.DeleteOutbox(seqs...))
	return out
}

func (r *rig) low(i int, used float64) {
	total := 100.0
	require.NoError(r.t, r.sim.Fleet().PatchCard(r.iccids[i], sim.CardPatch{FlowUsed: &used, FlowTotal: &total}))
}

func TestProviderOutageMovesNoStateAndSignalsOnce(t *testing.T) {
	r := newRig(t, lowRule)
	p := r.poller()
	ctx := context.Background()
	res, err := p.Cycle(ctx)
	require.NoError(t, err)
	require.Equal(t, 30, res.Cards)
	require.Empty(t, r.outbox())

	r.low(1, 95) // not a pool member, so only the card changes
	r.sim.AddFault(sim.Fault{Kind: sim.FaultError, Path: "sim-cards", Page: 3})
	for range 3 {
		r.now = r.now.Add(10 * time.Minute)
		_, err = p.Cycle(ctx)
		require.ErrorContains(t, err, "poll hw: gsl: GET /v1/sim-cards page 3: HTTP 500 GSL.00010003")
	}
	require.Equal(t, []string{"firing provider_unhealthy hw"}, r.outbox(), "one signal, no card events")

	r.sim.ClearFaults()
	r.now = r.now.Add(10 * time.Minute)
	res, err = p.Cycle(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, res.Changed)
	require.ElementsMatch(t, []string{"firing card_low_flow 4900000000002", "resolved provider_unhealthy hw"}, r.outbox())
}

func TestUnchangedFleetCostsNothingAcrossRestart(t *testing.T) {
	r := newRig(t, lowRule)
	ctx := context.Background()
	r.low(2, 99)
	_, err := r.poller().Cycle(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"firing card_low_flow 4900000000003"}, r.outbox())

	// A new poller (a restarted watcher) diffs against the stored snapshot.
	p := r.poller()
	r.now = r.now.Add(time.Hour)
	res, err := p.Cycle(ctx)
	require.NoError(t, err)
	require.Zero(t, res.Changed)
	require.Equal(t, 1, res.Firing)
	require.Empty(t, r.outbox())

	r.low(2, 0)
	res, err = p.Cycle(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, res.Changed)
	require.Equal(t, []string{"resolved card_low_flow 4900000000003"}, r.outbox())
}

func TestNewRuleSeesUnchangedCards(t *testing.T) {
	r := newRig(t, `rules:
  - {name: suspended, on: card, when: 'status == "suspended"'}
`)
	ctx := context.Background()
	r.low(4, 97)
	_, err := r.poller().Cycle(ctx)
	require.NoError(t, err)
	require.Empty(t, r.outbox())

	r.set, err = rules.Parse("r.yaml", []byte(lowRule), rules.LoadOptions{})
	require.NoError(t, err)
	res, err := r.poller().Cycle(ctx)
	require.NoError(t, err)
	require.Zero(t, res.Changed)
	require.Equal(t, []string{"firing card_low_flow 4900000000005"}, r.outbox(), "the edited set evaluated the whole fleet")
	_, err = r.poller().Cycle(ctx)
	require.NoError(t, err)
	require.Empty(t, r.outbox(), "and only once")
}

// A card counts as removed only after two complete listings in a row
// lack it, and the count survives a restart between them.
func TestRemovedCardResolvesAfterTwoAbsences(t *testing.T) {
	r := newRig(t, lowRule+`  - {name: card_removed, on: card, when: removed}
`)
	ctx := context.Background()
	r.low(7, 99)
	p := r.poller()
	_, err := p.Cycle(ctx)
	require.NoError(t, err)
	require.Len(t, r.outbox(), 1)
	require.NoError(t, r.sim.Fleet().RemoveCard(r.iccids[7]))
	res, err := p.Cycle(ctx)
	require.NoError(t, err)
	require.Equal(t, 29, res.Cards)
	require.Equal(t, 1, res.Missing)
	require.Zero(t, res.Removed)
	require.Empty(t, r.outbox(), "one absence resolves nothing")

	p = r.poller() // a restarted watcher remembers the absence
	res, err = p.Cycle(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, res.Removed)
	require.ElementsMatch(t, []string{"resolved card_low_flow 4900000000008", "transition card_removed 4900000000008"}, r.outbox())
	res, err = p.Cycle(ctx)
	require.NoError(t, err)
	require.Zero(t, res.Removed+res.Missing)
	require.Empty(t, r.outbox())
}

// A card absent from one listing and back in the next fires nothing.
func TestCardBackAfterOneAbsenceFiresNothing(t *testing.T) {
	r := newRig(t, lowRule+`  - {name: card_removed, on: card, when: removed}
  - {name: card_new, on: card, when: 'prev.id == "" && id != ""'}
`)
	ctx := context.Background()
	r.low(3, 99)
	src := &hidingSource{Source: r.client, hide: map[string]bool{}}
	p := New(Options{Provider: "hw", Source: src, Store: r.store, Rules: func() *rules.Set { return r.set },
		Now: func() time.Time { return r.now }})
	_, err := p.Cycle(ctx)
	require.NoError(t, err)
	require.Len(t, r.outbox(), 1)
	src.hide["4900000000004"] = true
	_, err = p.Cycle(ctx)
	require.NoError(t, err)
	require.Empty(t, r.outbox())
	delete(src.hide, "4900000000004")
	res, err := p.Cycle(ctx)
	require.NoError(t, err)
	require.Zero(t, res.Missing+res.Removed)
	require.Zero(t, res.Changed, "back as it was")
	require.Empty(t, r.outbox())
	require.Equal(t, 1, res.Firing)
}

func TestEventsCarryCycleTime(t *testing.T) {
	r := newRig(t, lowRule)
	r.low(1, 99)
	_, err := r.poller().Cycle(context.Background())
	require.NoError(t, err)
	entries, err := r.store.Outbox(10)
	require.NoError(t, err)
	require.Len(t, entries, 1)
	e := entries[0].Event
	require.Equal(t, r.now, e.ObservedAt)
	require.Equal(t, event.ID("hw", "card", "4900000000002", "card_low_flow", event.KindFiring, r.now, 0), e.ID)
}

// Clock rules run on unchanged cards every ClockEvery, not every cycle;
// changed cards are always evaluated.
func TestClockRulesOnTheirOwnSchedule(t *testing.T) {
	r := newRig(t, `rules:
  - {name: expiring, on: card, when: 'days_until(expire_time) < 7'}
`)
	expire := r.now.Add(7*24*time.Hour + 30*time.Minute).Format(time.RFC3339)
	require.NoError(t, r.sim.Fleet().PatchCard(r.iccids[1], sim.CardPatch{ExpireTime: &expire}))
	p := New(Options{Provider: "hw", Source: r.client, Store: r.store, Rules: func() *rules.Set { return r.set },
		Now: func() time.Time { return r.now }, ClockEvery: time.Hour})
	ctx := context.Background()
	res, err := p.Cycle(ctx)
	require.NoError(t, err)
	require.True(t, res.ClockRules)
	require.Empty(t, r.outbox())

	r.now = r.now.Add(40 * time.Minute) // now within 7 days, but the clock rules ran 40m ago
	res, err = p.Cycle(ctx)
	require.NoError(t, err)
	require.False(t, res.ClockRules)
	require.Empty(t, r.outbox())

	r.now = r.now.Add(21 * time.Minute)
	res, err = p.Cycle(ctx)
	require.NoError(t, err)
	require.True(t, res.ClockRules)
	require.Equal(t, []string{"firing expiring 4900000000002"}, r.outbox())
}

// hidingSource is a provider whose complete listings lack some cards, as a
// fleet does between a card's removal and its return.
type hidingSource struct {
	Source
	hide map[string]bool
}

func (h *hidingSource) Fetch(ctx context.Context) (fleet.Snapshot, error) {
	snap, err := h.Source.Fetch(ctx)
	snap.Cards = slices.DeleteFunc(snap.Cards, func(c fleet.Card) bool { return h.hide[c.ID] })
	return snap, err
}

// hidingFinder hides cards from listings but can be asked about them, as a
// provider whose offset paging drifted.
type hidingFinder struct {
	hidingSource
	find func(ctx context.Context, cards map[string]string) (map[string]bool, error)
}

func (h *hidingFinder) FindCards(ctx context.Context, cards map[string]string) (map[string]bool, error) {
	return h.find(ctx, cards)
}

// Two listings without a card remove it only once the provider, asked
// about the card itself, does not have it either.
func TestRemovalConfirmedByLookup(t *testing.T) {
	for _, tc := range []struct {
		name    string
		find    func(real Finder) func(context.Context, map[string]string) (map[string]bool, error)
		removed bool
	}{
		{"the provider still has it", func(real Finder) func(context.Context, map[string]string) (map[string]bool, error) {
			return real.FindCards
		}, false},
		{"the lookup fails", func(Finder) func(context.Context, map[string]string) (map[string]bool, error) {
			return func(context.Context, map[string]string) (map[string]bool, error) { return nil, errors.New("HTTP 500") }
		}, false},
		{"it is gone", func(Finder) func(context.Context, map[string]string) (map[string]bool, error) {
			return func(context.Context, map[string]string) (map[string]bool, error) { return map[string]bool{}, nil }
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, lowRule+`  - {name: card_removed, on: card, when: removed}
`)
			r.low(3, 99)
			src := &hidingFinder{hidingSource: hidingSource{Source: r.client, hide: map[string]bool{}}, find: tc.find(r.client)}
			p := New(Options{Provider: "hw", Source: src, Store: r.store, Rules: func() *rules.Set { return r.set },
				Now: func() time.Time { return r.now }})
			ctx := context.Background()
			_, err := p.Cycle(ctx)
			require.NoError(t, err)
			require.Len(t, r.outbox(), 1)
			src.hide["4900000000004"] = true
			for range 2 {
				_, err = p.Cycle(ctx)
				require.NoError(t, err)
			}
			if tc.removed {
				require.ElementsMatch(t, []string{"resolved card_low_flow 4900000000004", "transition card_removed 4900000000004"}, r.outbox())
				return
			}
			require.Empty(t, r.outbox(), "a card the provider may still have is not removed")
			delete(src.hide, "4900000000004")
			res, err := p.Cycle(ctx)
			require.NoError(t, err)
			require.Zero(t, res.Missing+res.Removed)
			require.Empty(t, r.outbox())
			require.Equal(t, 1, res.Firing)
		})
	}
}
