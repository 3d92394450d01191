package poll

import (
	"context"
	"fmt"
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

// dailyUsage is what the daily API returned this cycle, written with the
// cycle's commit.
type dailyUsage struct {
	cards   map[string][]fleet.DayUsage
	through int32 // the last day now covered
}

// fetchDaily brings the daily history up to yesterday (the providers' flow
// data is "as of yesterday 24:00"). On first start it backfills the current
// and the previous month, so forecasts work from the first cycle; afterwards
// it fetches each missing day once. A failure is logged and retried next
// cycle: the listing itself is still good.
func (p *Poller) fetchDaily(ctx context.Context, now time.Time, cards []fleet.Card) *dailyUsage {
	if p.o.Daily == nil || len(cards) == 0 {
		return nil
	}
	var meta store.Meta
	err := p.o.Store.View(func(tx *store.Tx) error {
		pt, err := tx.Provider(p.o.Provider)
		if err != nil {
			return err
		}
		meta, err = pt.Meta()
		return err
	})
	yesterday := fleet.DayOf(now) - 1
	if err != nil || meta.HistoryThrough >= yesterday {
		return nil
	}
	ids := make([]string, len(cards))
	for i := range cards {
		ids[i] = cards[i].ID
	}
	var queries [][2]string // month, date
	if meta.HistoryThrough == 0 || yesterday-meta.HistoryThrough > backfillGap {
		last := fleet.DayDate(yesterday)
		first := time.Date(last.Year(), last.Month()-1, 1, 0, 0, 0, 0, time.UTC)
		queries = append(queries, [2]string{first.Format("200601"), ""}, [2]string{last.Format("200601"), ""})
	} else {
		for d := meta.HistoryThrough + 1; d <= yesterday; d++ {
			queries = append(queries, [2]string{"", fleet.DayDate(d).Format("20060102")})
		}
	}
	out := &dailyUsage{cards: map[string][]fleet.DayUsage{}, through: yesterday}
	for _, q := range queries {
		got, err := p.o.Daily(ctx, q[0], q[1], ids)
		if err != nil {
			p.o.Logger.Warn("daily usage not fetched; will try again next cycle", "provider", p.o.Provider, "err", err)
			return nil
		}
		for id, days := range got {
			out.cards[id] = append(out.cards[id], days...)
		}
	}
	return out
}

// writeDaily stores fetched daily usage for each card, and for each pool the
// sum of its members'.
func writeDaily(pt *store.ProviderTx, d *dailyUsage, cards []fleet.Card, today int32) error {
	poolOf := make(map[string]string, len(cards))
	for i := range cards {
		if cards[i].PoolID != "" {
			poolOf[cards[i].ID] = cards[i].PoolID
		}
	}
	pools := map[string]map[int32]float64{}
	for id, days := range d.cards {
		h, err := pt.History(store.CardHistoryKey(id))
		if err != nil {
			return err
		}
		h.Source = fleet.HistoryDaily
		for _, u := range days {
			h.Set(u.Day, u.MB)
			if pool := poolOf[id]; pool != "" {
				if pools[pool] == nil {
					pools[pool] = map[int32]float64{}
				}
				pools[pool][u.Day] += u.MB
			}
		}
		if err := pt.PutHistory(store.CardHistoryKey(id), h, today); err != nil {
			return err
		}
	}
	for pool, days := range pools {
		h, err := pt.History(store.PoolHistoryKey(pool))
		if err != nil {
			return err
		}
		h.Source = fleet.HistoryDaily
		for day, mb := range days {
			h.Set(day, mb)
		}
		if err := pt.PutHistory(store.PoolHistoryKey(pool), h, today); err != nil {
			return err
		}
	}
	return nil
}

// addSnapshotUsage derives today's usage from the difference between two
// listings, for providers without a daily API. A drop in flow_used is a new
// billing cycle: the new figure is all this cycle's use.
func addSnapshotUsage(pt *store.ProviderTx, key string, prevUsed, curUsed float64, today int32) error {
	delta := curUsed - prevUsed
	if delta < 0 {
		delta = curUsed
	}
	if delta == 0 {
		return nil
	}
	h, err := pt.History(key)
	if err != nil {
		return err
	}
	if h.Source == fleet.HistoryDaily {
		return nil // the provider's own figures win
	}
	h.Source = fleet.HistorySnapshot
	mb, _ := h.Get(today)
	h.Set(today, mb+delta)
	if err := pt.PutHistory(key, h, today); err != nil {
		return fmt.Errorf("history %s: %w", key, err)
	}
	return nil
}
