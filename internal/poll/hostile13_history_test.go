package poll

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/rules"
	"github.com/simwatch/simwatch/internal/store"
)

// staticSource lists the same snapshot every time.
type staticSource struct{ snap fleet.Snapshot }

func (s *staticSource) Fetch(context.Context) (fleet.Snapshot, error) { return s.snap, nil }

// The daily API fails on the second chunk of cards: the history does not
// advance, the next update asks again and merges every card once (the
// pools' sums over members in both chunks are not counted twice), and new
// days then make the next cycle run the history rules over every entity.
func TestHostile13HistoryChunkFailsMidway(t *testing.T) {
	defer func(n int) { dailyChunk = n }(dailyChunk)
	dailyChunk = 40 // two chunks of a small fleet, as 20 001 cards make two of the real size
	n := dailyChunk + 1
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	snap := fleet.Snapshot{}
	for i := range n {
		pool := "p1"
		if i%2 == 1 {
			pool = "p2"
		}
		snap.Cards = append(snap.Cards, fleet.Card{Provider: "hw", ID: fmt.Sprintf("%06d", i), ICCID: fmt.Sprintf("89%06d", i),
			Status: "active", FlowUsed: 1, FlowLeft: 99, FlowTotal: 100, PoolID: pool})
	}
	snap.Pools = []fleet.Pool{{Provider: "hw", ID: "p1", FlowTotal: 1e6}, {Provider: "hw", ID: "p2", FlowTotal: 1e6}}
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	set, err := rules.Parse("r.yaml", []byte(`rules:
  - {name: pool_history, on: pool, when: 'history_days() > 0 && daily_avg(7) > 0'}
`), rules.LoadOptions{})
	require.NoError(t, err)
	calls, failAt := 0, 2
	broken := errors.New("daily API down")
	daily := func(_ context.Context, month, date string, ids []string) (map[string][]fleet.DayUsage, error) {
		calls++
		if calls == failAt {
			return nil, broken
		}
		d, err := time.Parse("20060102", date)
		if err != nil {
			return nil, fmt.Errorf("want a date, got month %q date %q", month, date)
		}
		out := map[string][]fleet.DayUsage{}
		for _, id := range ids {
			out[id] = []fleet.DayUsage{{Day: fleet.DayOf(d), MB: 1}}
		}
		return out, nil
	}
	p := New(Options{Provider: "hw", Source: &staticSource{snap}, Store: st, Rules: func() *rules.Set { return set },
		Now: func() time.Time { return now }, Daily: daily})
	ctx := context.Background()
	_, err = p.Cycle(ctx)
	require.NoError(t, err)
	yesterday := fleet.DayOf(now) - 1
	// The history is one day behind: one date is asked per chunk.
	require.NoError(t, st.Update(func(tx *store.Tx) error {
		pt, err := tx.Provider("hw")
		if err != nil {
			return err
		}
		meta, err := pt.Meta()
		if err != nil {
			return err
		}
		meta.HistoryThrough = yesterday - 1
		return pt.PutMeta(meta)
	}))
	p = New(Options{Provider: "hw", Source: &staticSource{snap}, Store: st, Rules: func() *rules.Set { return set },
		Now: func() time.Time { return now }, Daily: daily})
	_, err = p.Cycle(ctx)
	require.NoError(t, err)

	_, err = p.UpdateHistory(ctx)
	require.ErrorIs(t, err, broken)
	meta := hostile13Meta(t, st)
	require.Equal(t, yesterday-1, meta.HistoryThrough, "a failed update does not advance")

	res, err := p.UpdateHistory(ctx)
	require.NoError(t, err)
	require.True(t, res.Asked)
	require.Equal(t, yesterday, res.Through)
	require.Equal(t, n, res.Days)
	for _, pool := range []string{"p1", "p2"} {
		h := hostile13History(t, st, store.PoolHistoryKey(pool))
		mb, ok := h.Get(yesterday)
		require.True(t, ok)
		want := float64(n / 2)
		if pool == "p1" {
			want = float64((n + 1) / 2)
		}
		require.Equal(t, want, mb, "pool %s: the sum of its members' day, each once", pool)
	}
	r, err := p.Cycle(ctx)
	require.NoError(t, err)
	require.True(t, r.ClockRules, "new days run the history rules over every entity")
}

func hostile13Meta(t *testing.T, st *store.Store) store.Meta {
	var m store.Meta
	require.NoError(t, st.View(func(tx *store.Tx) error {
		pt, err := tx.Provider("hw")
		if err != nil {
			return err
		}
		m, err = pt.Meta()
		return err
	}))
	return m
}

func hostile13History(t *testing.T, st *store.Store, key string) fleet.History {
	var h fleet.History
	require.NoError(t, st.View(func(tx *store.Tx) error {
		pt, err := tx.Provider("hw")
		if err != nil {
			return err
		}
		h, err = pt.History(key)
		return err
	}))
	sort.Slice(h.Days, func(i, j int) bool { return h.Days[i].Day < h.Days[j].Day })
	return h
}
