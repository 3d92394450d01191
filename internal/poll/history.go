package poll

import (
	"context"
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

// dailyUsage is what the daily API returned this cycle, written with the
// cycle's commit.
type dailyUsage struct {
	cards   map[string][]fleet.DayUsage
	through int32     // the last day now covered: days after it are asked again
	askedAt time.Time // when the API was asked
	// merged is each card's and pool's stored history with the fetched days
	// set, by history key: what evaluation reads and the commit writes.
	merged map[string]fleet.History
}

// get returns the merged history at key, if this cycle fetched any for it.
func (d *dailyUsage) get(key string) (fleet.History, bool) {
	if d == nil {
		return fleet.History{}, false
	}
	h, ok := d.merged[key]
	return h, ok
}

// fetchDaily brings the daily history up to yesterday (the providers' flow
// data is "as of yesterday 24:00"). On first start it backfills the current
// and the previous month, so forecasts work from the first cycle; afterwards
// it asks for each missing day. The history advances only over days the
// answer had: a day the provider has not published yet is asked again after
// dailyRetry. A failure is logged and retried next cycle: the listing itself
// is still good.
func (p *Poller) fetchDaily(ctx context.Context, now time.Time, cards []fleet.Seen) *dailyUsage {
	if p.o.Daily == nil || len(cards) == 0 {
		return nil
	}
	var meta store.Meta
	yesterday := fleet.DayOf(now) - 1
	// expected are the cards that already have daily history: a day the
	// answer has for some cards but not for these is not complete yet
	// (the provider publishes batch by batch).
	expected := map[string]bool{}
	err := p.o.Store.View(func(tx *store.Tx) error {
		pt, err := tx.Provider(p.o.Provider)
		if err != nil {
			return err
		}
		if meta, err = pt.Meta(); err != nil || meta.HistoryThrough >= yesterday || now.Sub(meta.HistoryAskedAt) < dailyRetry {
			return err
		}
		for _, c := range cards {
			if pt.HistorySource(store.CardHistoryKey(c.ID)) == fleet.HistoryDaily {
				expected[c.ID] = true
			}
		}
		return nil
	})
	if err != nil || meta.HistoryThrough >= yesterday || now.Sub(meta.HistoryAskedAt) < dailyRetry {
		return nil
	}
	ids := make([]string, len(cards))
	for i, c := range cards {
		ids[i] = c.ID
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
	out := &dailyUsage{cards: map[string][]fleet.DayUsage{}, through: meta.HistoryThrough, askedAt: now}
	rows := map[int32]int{}         // cards with a row, by day
	expectedRows := map[int32]int{} // of them, expected ones
	for _, q := range queries {
		got, err := p.o.Daily(ctx, q[0], q[1], ids)
		if err != nil {
			p.o.Logger.Warn("daily usage not fetched; will try again next cycle", "provider", p.o.Provider, "err", err)
			return nil
		}
		for id, days := range got {
			out.cards[id] = append(out.cards[id], days...)
			for _, d := range days {
				rows[d.Day]++
				if expected[id] {
					expectedRows[d.Day]++
				}
			}
		}
	}
	// A day is had when every card with daily history has it; a day two
	// days past is taken as it is, so that a card the provider dropped for
	// good cannot hold the account's history back for longer.
	had := make(map[int32]bool, len(rows))
	for d, n := range rows {
		had[d] = n > 0 && (expectedRows[d] == len(expected) || d < yesterday-1)
	}
	// Advance over the days the provider had, in order; the first day it
	// did not have is asked again later. A backfill may start before the
	// account's first data: it skips the days before that.
	d := first
	if len(queries) > 0 && queries[0][0] != "" {
		for d <= yesterday && !had[d] {
			d++
		}
	}
	for ; d <= yesterday && had[d]; d++ {
		out.through = d
	}
	if out.through >= yesterday {
		out.askedAt = time.Time{} // complete: the next day is asked as soon as it is due
	}
	return out
}

// mergeDaily sets the fetched days on each card's stored history, and on
// each pool's the sum of its members', for evaluation to read and the commit
// to write.
func mergeDaily(pt *store.ProviderTx, d *dailyUsage, cards *cardDiff) (map[string]fleet.History, error) {
	changed := make(map[string][]byte, len(cards.changed))
	for _, r := range cards.changed {
		changed[r.ID] = r.Data
	}
	// A card's pool is the listing's: the changed card's own, or the
	// snapshot's for a card that did not change.
	poolOf := func(id string) (string, error) {
		if enc, ok := changed[id]; ok {
			c, err := store.DecodeCard(enc)
			return c.PoolID, err
		}
		c, _, err := pt.Card(id)
		return c.PoolID, err
	}
	merged := make(map[string]fleet.History, len(d.cards))
	pools := map[string]map[int32]float64{}
	for id, days := range d.cards {
		key := store.CardHistoryKey(id)
		h, err := pt.History(key)
		if err != nil {
			return nil, err
		}
		h.Source = fleet.HistoryDaily
		pool, err := poolOf(id)
		if err != nil {
			return nil, err
		}
		for _, u := range days {
			h.Set(u.Day, u.MB)
			if pool != "" {
				if pools[pool] == nil {
					pools[pool] = map[int32]float64{}
				}
				pools[pool][u.Day] += u.MB
			}
		}
		merged[key] = h
	}
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
