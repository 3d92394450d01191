package poll

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/provider/gsl"
	"github.com/simwatch/simwatch/internal/provider/linkcard"
	"github.com/simwatch/simwatch/internal/rules"
	"github.com/simwatch/simwatch/internal/sim"
	"github.com/simwatch/simwatch/internal/store"
)

const forecastRule = `rules:
  - name: exhausts_soon
    on: card
    when: status == "active" && history_source() == "daily" && days_to_exhaust() < 400
  - name: pool_exhausts
    on: pool
    when: history_days() > 0 && daily_avg(7) > 0
`

// historyRig polls a GSL fleet (with usage) at a clock that starts at noon
// China time on the simulator's first day.
type historyRig struct {
	sim   *sim.Server
	store *store.Store
	p     *Poller
	now   time.Time
}

func newHistoryRig(t *testing.T, rulesSrc string) *historyRig {
	s := sim.NewServer(sim.Options{Fleet: sim.NewFleet(sim.FleetOptions{Cards: 250, Pools: 3, Seed: 4})})
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	c, err := gsl.New(gsl.Options{Name: "hw", Endpoint: ts.URL, Token: "t", PageSize: 100, Rate: 1000})
	require.NoError(t, err)
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	set, err := rules.Parse("r.yaml", []byte(rulesSrc), rules.LoadOptions{})
	require.NoError(t, err)
	r := &historyRig{sim: s, store: st, now: sim.DefaultStart.Add(4 * time.Hour)}
	r.p = New(Options{Provider: "hw", Source: c, Store: st, Rules: func() *rules.Set { return set }, Now: func() time.Time { return r.now },
		Daily: func(ctx context.Context, month, date string, ids []string) (map[string][]fleet.DayUsage, error) {
			return c.DailyFlow(ctx, gsl.DailyQuery{Month: month, Date: date}, ids)
		}})
	return r
}

// cycle runs a cycle and then the daily history update, as the daemon does.
func (r *historyRig) cycle(ctx context.Context) (Result, error) {
	res, err := r.p.Cycle(ctx)
	if err != nil {
		return res, err
	}
	_, err = r.p.UpdateHistory(ctx)
	return res, err
}

func (r *historyRig) history(t *testing.T, key string) fleet.History {
	var h fleet.History
	require.NoError(t, r.store.View(func(tx *store.Tx) error {
		pt, err := tx.Provider("hw")
		if err != nil {
			return err
		}
		h, err = pt.History(key)
		return err
	}))
	return h
}

func TestBackfillThenDailyIncrements(t *testing.T) {
	r := newHistoryRig(t, forecastRule)
	ctx := context.Background()
	_, err := r.cycle(ctx)
	require.NoError(t, err)
	// Backfill, after the first cycle: two months (October, November) for
	// 250 cards in batches of 100.
	require.Equal(t, 2*3, r.sim.Stats().ByPath["batch-daily-flow"])
	first := sim.DefaultStart // 2026-11-20: data runs to the 19th
	h := r.history(t, store.CardHistoryKey("4900000000001"))
	require.Equal(t, fleet.HistoryDaily, h.Source)
	require.Equal(t, fleet.DayOf(first)-1, h.Days[len(h.Days)-1].Day, "through yesterday")
	require.Equal(t, fleet.DayOf(time.Date(2026, 10, 1, 12, 0, 0, 0, time.UTC)), h.Days[0].Day, "from the first of last month")
	require.Len(t, h.Days, 31+19)

	// Forecasts work from the next cycle on, over every card (unchanged
	// ones included), from the backfilled history.
	clearOutbox(t, r.store)
	res, err := r.cycle(ctx)
	require.NoError(t, err)
	require.True(t, res.ClockRules, "new days of history run the history rules over every entity")
	entries, err := r.store.Outbox(1000)
	require.NoError(t, err)
	byRule := map[string]int{}
	for _, e := range entries {
		byRule[e.Event.Rule]++
	}
	require.Positive(t, byRule["exhausts_soon"], "fired on the cycle after the backfill")
	require.Equal(t, 3, byRule["pool_exhausts"], "pools have history from their members")
	require.Equal(t, res.Events, len(entries))

	// Same day: nothing more to fetch.
	r.now = r.now.Add(2 * time.Hour)
	_, err = r.cycle(ctx)
	require.NoError(t, err)
	require.Equal(t, 6, r.sim.Stats().ByPath["batch-daily-flow"])

	// The next day: yesterday's figures only, one request per batch.
	r.sim.Fleet().Advance(1)
	r.now = r.now.Add(24 * time.Hour)
	_, err = r.cycle(ctx)
	require.NoError(t, err)
	require.Equal(t, 6+3, r.sim.Stats().ByPath["batch-daily-flow"])
	h2 := r.history(t, store.CardHistoryKey("4900000000001"))
	require.Len(t, h2.Days, len(h.Days)+1)
	require.Equal(t, fleet.DayOf(first), h2.Days[len(h2.Days)-1].Day)

	// The stored figures are the provider's: the month's days add up to
	// the card's flow_used (as of yesterday).
	snap, err := r.p.o.Source.Fetch(ctx)
	require.NoError(t, err)
	card := snap.Cards[0]
	mb, _ := h2.Sum(fleet.DayOf(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)), fleet.DayOf(first))
	if card.FlowUsed < card.FlowTotal { // not capped at the allowance
		require.InDelta(t, card.FlowUsed, mb, 0.05)
	}
}

func TestDailyFailureKeepsTheCycle(t *testing.T) {
	r := newHistoryRig(t, forecastRule)
	r.sim.AddFault(sim.Fault{Kind: sim.FaultError, Status: 400, Code: gsl.CodeParamInvalid, Path: "batch-daily-flow"})
	ctx := context.Background()
	_, err := r.p.Cycle(ctx)
	require.NoError(t, err, "the listing is good")
	_, err = r.p.UpdateHistory(ctx)
	require.Error(t, err, "history waits")
	require.Empty(t, r.history(t, store.CardHistoryKey("4900000000001")).Days)
	r.sim.ClearFaults()
	r.now = r.now.Add(time.Hour)
	_, err = r.cycle(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, r.history(t, store.CardHistoryKey("4900000000001")).Days, "backfilled on the next cycle")
}

// Without a daily API (LinkCard), history comes from successive listings,
// and rules can tell.
func TestSnapshotDerivedHistory(t *testing.T) {
	s := sim.NewServer(sim.Options{Fleet: sim.NewFleet(sim.FleetOptions{Cards: 30, Pools: 1, Seed: 2}), Keys: map[string]string{"k": "s"}})
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	c, err := linkcard.New(linkcard.Options{Name: "ali", Endpoint: ts.URL, AccessKeyID: "k", AccessKeySecret: "s", Rate: 1000})
	require.NoError(t, err)
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"))
	require.NoError(t, err)
	defer st.Close()
	set, err := rules.Parse("r.yaml", []byte(`rules:
  - {name: busy_today, on: card, when: 'history_source() == "snapshot" && usage_today() > 0'}
`), rules.LoadOptions{})
	require.NoError(t, err)
	now := sim.DefaultStart.Add(4 * time.Hour)
	p := New(Options{Provider: "ali", Source: c, Store: st, Rules: func() *rules.Set { return set }, Now: func() time.Time { return now }})
	_, err = p.Cycle(context.Background())
	require.NoError(t, err)
	out, err := st.Outbox(100)
	require.NoError(t, err)
	require.Empty(t, out, "no history yet on first sight")

	s.Fleet().Advance(1)
	now = now.Add(time.Hour)
	_, err = p.Cycle(context.Background())
	require.NoError(t, err)
	out, err = st.Outbox(100)
	require.NoError(t, err)
	require.NotEmpty(t, out, "cards that used data since the last listing")
	for _, e := range out {
		require.Equal(t, "busy_today", e.Event.Rule)
	}
}

// Ten days on an injected clock, polled every two hours, against a provider
// whose days end later than the watcher's (the simulator closes a day at UTC
// midnight, eight hours after China midnight; GSL publishes late too). Every
// day reaches the history once the provider has it, and card_silent fires
// only for cards that truly used nothing in its window.
func TestDailyHistoryKeepsUpOverTenDays(t *testing.T) {
	r := newHistoryRig(t, `rules:
  - name: card_silent
    on: card
    when: status == "active" && history_days() >= 3 && usage_last("72h") == 0
`)
	fl := r.sim.Fleet()
	r.now = sim.DefaultStart
	ctx := context.Background()
	card := "4900000000002"
	type silentAt struct {
		id      string
		through int32 // the last day the provider had published
	}
	var fired []silentAt
	for step := 0; step < 12*11; step++ {
		for !r.now.Before(sim.DefaultStart.AddDate(0, 0, fl.Day()+1)) {
			fl.Advance(1) // the simulator's day ends at UTC midnight
		}
		_, err := r.cycle(ctx)
		require.NoError(t, err)
		entries, err := r.store.Outbox(10000)
		require.NoError(t, err)
		for _, e := range entries {
			if e.Event.Rule == "card_silent" && e.Event.Kind == "firing" {
				h := r.history(t, store.CardHistoryKey(e.Event.EntityID))
				fired = append(fired, silentAt{e.Event.EntityID, h.Days[len(h.Days)-1].Day})
			}
		}
		var seqs []uint64
		for _, e := range entries {
			seqs = append(seqs, e.Seq)
		}
		require.NoError(t, r.store.DeleteOutbox(seqs...))

		// The history holds every day the provider has published, once the
		// retry interval has passed since it did.
		published := fleet.DayOf(sim.DefaultStart.AddDate(0, 0, fl.Day()-1).Add(12 * time.Hour))
		h := r.history(t, store.CardHistoryKey(card))
		last := h.Days[len(h.Days)-1].Day
		require.LessOrEqual(t, last, published)
		if r.now.Sub(sim.DefaultStart.AddDate(0, 0, fl.Day())) >= dailyRetry+2*time.Hour {
			require.Equal(t, published, last, "at %s the history stops at %s", r.now, fleet.DayDate(last).Format("2006-01-02"))
		}
		for i := 1; i < len(h.Days); i++ {
			require.Equal(t, h.Days[i-1].Day+1, h.Days[i].Day, "no day is skipped")
		}
		r.now = r.now.Add(2 * time.Hour)
	}
	require.GreaterOrEqual(t, fl.Day(), 10)
	// Now that every day is published: each firing was true, on the last
	// three days the provider had published when it fired — never on a
	// day it had not published yet.
	fl.Advance(1)
	for _, f := range fired {
		for d := f.through - 2; d <= f.through; d++ {
			got, err := r.p.o.Daily(ctx, "", fleet.DayDate(d).Format("20060102"), []string{f.id})
			require.NoError(t, err)
			require.Len(t, got[f.id], 1, "the provider has %s", fleet.DayDate(d).Format("2006-01-02"))
			require.Zero(t, got[f.id][0].MB, "card_silent fired for card %s, which used %.2f MB on %s",
				f.id, got[f.id][0].MB, fleet.DayDate(d).Format("2006-01-02"))
		}
	}
	t.Logf("card_silent fired %d times, each checked against the provider's figures", len(fired))
}
