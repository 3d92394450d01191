package poll

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/store"
)

// DailyFunc fetches daily usage from a provider's daily API, for a whole
// month ("200601") or one date ("20060102"), for the given card ids.
type DailyFunc func(ctx context.Context, month, date string, cardIDs []string) (map[string][]fleet.DayUsage, error)

// backfillGap is how far behind the daily history may fall before whole
// months are fetched again instead of day by day.
const backfillGap = 31

// dailyRetry is how long to wait before asking the daily API again for days
// it did not have yet (GSL publishes yesterday's figures some time after
// midnight).
const dailyRetry = time.Hour

// dailyChunk is how many cards' daily usage one transaction merges: a
// backfill of a million cards is never held in memory whole. (A variable
// for tests.)
var dailyChunk = 20_000

// HistoryResult says what an UpdateHistory did.
type HistoryResult struct {
	// Asked is false when nothing was due: the history is up to date, or
	// the provider was asked less than an hour ago for days it lacked.
	Asked bool
	Cards int // cards whose history was asked
	Days  int // card-days merged
	// Through is the last day now covered.
	Through int32
	Took    time.Duration
}

// UpdateHistory brings the daily usage history up to yesterday from the
// provider's daily API (its flow data is "as of yesterday 24:00"), for the
// cards of the committed snapshot. On first start it backfills the current
// and the previous month, so that forecasts have data; afterwards it asks
// for each missing day. The history advances only over days the answer
// had: a day the provider has not published yet is asked again after
// dailyRetry.
//
// It runs after a cycle, not in it: a first cycle of a million cards
// alerts without waiting for 60 million card-days, and forecasts follow
// once they are in (the next cycle then runs the clock and history rules
// over every entity). It must not run concurrently with Cycle. Cards are
// asked and merged dailyChunk at a time, each chunk in its own transaction.
func (p *Poller) UpdateHistory(ctx context.Context) (HistoryResult, error) {
	var res HistoryResult
	if p.o.Daily == nil {
		return res, nil
	}
	if err := p.load(); err != nil {
		return res, err
	}
	start := time.Now()
	now := p.o.Now().UTC()
	var meta store.Meta
	yesterday := fleet.DayOf(now) - 1
	err := p.o.Store.View(func(tx *store.Tx) error {
		pt, err := tx.Provider(p.o.Provider)
		if err != nil {
			return err
		}
		meta, err = pt.Meta()
		return err
	})
	if err != nil {
		return res, fmt.Errorf("poll %s: history: %w", p.o.Provider, err)
	}
	if meta.Cycles == 0 || meta.HistoryThrough >= yesterday || now.Sub(meta.HistoryAskedAt) < dailyRetry || len(p.cardFP) == 0 {
		return res, nil
	}
	var queries [][2]string // month, date
	first := meta.HistoryThrough + 1
	if meta.HistoryThrough == 0 || yesterday-meta.HistoryThrough > backfillGap {
		last := fleet.DayDate(yesterday)
		from := time.Date(last.Year(), last.Month()-1, 1, 0, 0, 0, 0, time.UTC)
		first = int32(from.Unix() / 86400)
		queries = append(queries, [2]string{from.Format("200601"), ""}, [2]string{last.Format("200601"), ""})
	} else {
		for d := first; d <= yesterday; d++ {
			queries = append(queries, [2]string{"", fleet.DayDate(d).Format("20060102")})
		}
	}
	ids := slices.Sorted(maps.Keys(p.cardFP))
	res.Asked, res.Cards = true, len(ids)
	// expected are the cards that already had daily history: a day the
	// answer has for some cards but not for these is not complete yet (the
	// provider publishes batch by batch).
	m := dailyMerge{p: p, today: fleet.DayOf(now), pools: map[string]map[int32]float64{}, rows: map[int32]int{}, expectedRows: map[int32]int{}}
	for start := 0; start < len(ids); start += dailyChunk {
		if err := m.chunk(ctx, queries, ids[start:min(start+dailyChunk, len(ids))]); err != nil {
			return res, fmt.Errorf("poll %s: history: %w", p.o.Provider, err)
		}
	}
	for _, n := range m.rows {
		res.Days += n
	}
	// A day is had when every card with daily history has it; a day two
	// days past is taken as it is, so that a card the provider dropped for
	// good cannot hold the account's history back for longer.
	had := make(map[int32]bool, len(m.rows))
	for d, n := range m.rows {
		had[d] = n > 0 && (m.expectedRows[d] == m.expected || d < yesterday-1)
	}
	// Advance over the days the provider had, in order; the first day it
	// did not have is asked again later. A backfill may start before the
	// account's first data: it skips the days before that.
	through := meta.HistoryThrough
	d := first
	if len(queries) > 0 && queries[0][0] != "" {
		for d <= yesterday && !had[d] {
			d++
		}
	}
	for ; d <= yesterday && had[d]; d++ {
		through = d
	}
	askedAt := now
	if through >= yesterday {
		askedAt = time.Time{} // complete: the next day is asked as soon as it is due
	}
	err = p.update(ctx, func(tx *store.Tx) error {
		pt, err := tx.Provider(p.o.Provider)
		if err != nil {
			return err
		}
		merged, err := mergePools(pt, m.pools)
		if err != nil {
			return err
		}
		for _, key := range slices.Sorted(maps.Keys(merged)) {
			if err := pt.PutHistory(key, merged[key], m.today); err != nil {
				return err
			}
		}
		meta, err := pt.Meta()
		if err != nil {
			return err
		}
		advanced := through > meta.HistoryThrough
		meta.HistoryThrough, meta.HistoryAskedAt = through, askedAt
		if advanced {
			// New days: the next cycle runs the history rules over every
			// entity, not only those that changed.
			meta.LastClockEval = time.Time{}
		}
		return pt.PutMeta(meta)
	})
	if err != nil {
		return res, fmt.Errorf("poll %s: history: %w", p.o.Provider, err)
	}
	if through > meta.HistoryThrough {
		p.state.LastClockEval = time.Time{}
	}
	res.Through, res.Took = through, time.Since(start)
	return res, nil
}

// dailyMerge merges the daily API's answers into the cards' histories, a
// chunk of cards per transaction, and sums them per pool.
type dailyMerge struct {
	p     *Poller
	today int32
	// pools are each pool's fetched days, summed over its members: the
	// cards' histories are merged into the store chunk by chunk (derived
	// data: merging the same days again is harmless, so an update cut
	// short loses nothing), the pools' with the update's last write.
	pools map[string]map[int32]float64
	// rows counts the cards with a row, by day; expectedRows those of them
	// that already had daily history, of which there are expected.
	rows, expectedRows map[int32]int
	expected           int
}

func (m *dailyMerge) chunk(ctx context.Context, queries [][2]string, ids []string) error {
	got := map[string][]fleet.DayUsage{}
	for _, q := range queries {
		rows, err := m.p.o.Daily(ctx, q[0], q[1], ids)
		if err != nil {
			return err
		}
		for id, days := range rows {
			got[id] = append(got[id], days...)
		}
	}
	return m.p.update(ctx, func(tx *store.Tx) error {
		pt, err := tx.Provider(m.p.o.Provider)
		if err != nil {
			return err
		}
		expected := map[string]bool{}
		for _, id := range ids {
			if pt.HistorySource(store.CardHistoryKey(id)) == fleet.HistoryDaily {
				expected[id] = true
			}
		}
		m.expected += len(expected)
		for _, id := range slices.Sorted(maps.Keys(got)) {
			days := got[id]
			key := store.CardHistoryKey(id)
			h, err := pt.History(key)
			if err != nil {
				return err
			}
			h.Source = fleet.HistoryDaily
			pool, err := m.poolOf(pt, id)
			if err != nil {
				return err
			}
			for _, u := range days {
				h.Set(u.Day, u.MB)
				m.rows[u.Day]++
				if expected[id] {
					m.expectedRows[u.Day]++
				}
				if pool != "" {
					if m.pools[pool] == nil {
						m.pools[pool] = map[int32]float64{}
					}
					m.pools[pool][u.Day] += u.MB
				}
			}
			if err := pt.PutHistory(key, h, m.today); err != nil {
				return err
			}
		}
		return nil
	})
}

// poolOf is the pool of a card of the snapshot.
func (m *dailyMerge) poolOf(pt *store.ProviderTx, id string) (string, error) {
	c, _, err := pt.Card(id)
	return c.PoolID, err
}

// mergePools sets the fetched days, summed over each pool's members, on
// the pools' stored histories, for evaluation to read and the commit to
// write.
func mergePools(pt *store.ProviderTx, pools map[string]map[int32]float64) (map[string]fleet.History, error) {
	merged := make(map[string]fleet.History, len(pools))
	for pool, days := range pools {
		key := store.PoolHistoryKey(pool)
		h, err := pt.History(key)
		if err != nil {
			return nil, err
		}
		h.Source = fleet.HistoryDaily
		for day, mb := range days {
			h.Set(day, mb)
		}
		merged[key] = h
	}
	return merged, nil
}
