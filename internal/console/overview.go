package console

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/rules"
	"github.com/simwatch/simwatch/internal/store"
)

// ovStatuses are the normalised card statuses, in the order the overview
// shows them.
var ovStatuses = []string{fleet.StatusActive, fleet.StatusSuspended, fleet.StatusInactive, fleet.StatusTest, fleet.StatusTerminated, store.StatusUnknown}

// ovSeverities are the severities the overview counts firing alerts by;
// anything else counts as "other".
var ovSeverities = []string{rules.SeverityCritical, rules.SeverityWarning, rules.SeverityInfo}

// ovMaxPools bounds the pools the overview lists (those in overdraft and
// the fullest first); the rest are a count.
const ovMaxPools = 200

// ovStaleIntervals is how many polling intervals without a commit make a
// provider stale.
const ovStaleIntervals = 3

// ovForecastDays is how many complete days the forecast averages.
const ovForecastDays = 7

type overviewData struct {
	Providers []ovProvider
	// Statuses are the status names in column order; Total counts per status.
	Statuses []string
	Total    map[string]int
	Cards    int
	Pools    []ovPool
	// PoolsMore counts the pools not listed (beyond ovMaxPools).
	PoolsMore int
	Firing    []ovSeverity
	// FiringTotal counts every firing alert, provider outages included.
	FiringTotal int
}

type ovProvider struct {
	Name, Type string
	Interval   time.Duration
	Meta       store.Meta
	// Health is one word: ok, failing, unhealthy, stale or never.
	Health string
	// Counts are the provider's cards by status.
	Counts map[string]int
	Cards  int
}

type ovPool struct {
	Provider string
	fleet.Pool
	UsedPct float64
	Over    bool // flow_left < 0: in overdraft
	// Known says the pool's figures were given (not unknown).
	Known bool
	// Forecast is flow_used projected to the end of the billing cycle;
	// HasForecast is false when the pool has no history yet.
	Forecast     float64
	ForecastPct  float64
	ForecastOver bool
	HasForecast  bool
}

type ovSeverity struct {
	Severity string
	Count    int
}

// overview is the page fleet owners open first: each provider's health,
// the cards by status, the pools and what is firing.
func (s *Server) overview(w http.ResponseWriter, r *http.Request, v *view) error {
	v.Title, v.Nav, v.Page = "Overview", "overview", "overview"
	d := overviewData{Statuses: ovStatuses, Total: map[string]int{}}
	now := v.Now
	err := s.o.Store.View(func(tx *store.Tx) error {
		for _, cp := range s.o.Providers {
			pt, err := tx.Provider(cp.Name)
			if err != nil {
				return err
			}
			p, err := ovProviderOf(pt, cp, now)
			if err != nil {
				return err
			}
			for st, n := range p.Counts {
				d.Total[st] += n
			}
			d.Cards += p.Cards
			d.Providers = append(d.Providers, p)
			if err := ovPools(pt, cp.Name, now, &d); err != nil {
				return err
			}
		}
		bySev := map[string]int{}
		err := tx.ForEachFiring(func(f store.FiringBrief) {
			bySev[f.Severity]++
			d.FiringTotal++
		})
		for _, sev := range ovSeverities {
			d.Firing = append(d.Firing, ovSeverity{sev, bySev[sev]})
			delete(bySev, sev)
		}
		other := 0
		for _, n := range bySev {
			other += n
		}
		if other > 0 {
			d.Firing = append(d.Firing, ovSeverity{"other", other})
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("console: overview: %w", err)
	}
	// In overdraft first, then the fullest: what needs a look is on top.
	slices.SortStableFunc(d.Pools, func(a, b ovPool) int {
		if a.Over != b.Over {
			if a.Over {
				return -1
			}
			return 1
		}
		return cmp.Compare(b.UsedPct, a.UsedPct)
	})
	if len(d.Pools) > ovMaxPools {
		d.PoolsMore, d.Pools = len(d.Pools)-ovMaxPools, d.Pools[:ovMaxPools]
	}
	v.Data = d
	return nil
}

func ovProviderOf(pt *store.ProviderTx, cp Provider, now time.Time) (ovProvider, error) {
	p := ovProvider{Name: cp.Name, Type: cp.Type, Interval: cp.Interval}
	var err error
	if p.Meta, err = pt.Meta(); err != nil {
		return p, err
	}
	// Each commit keeps the counts in the provider's meta; a store whose
	// provider has not committed since that began is counted card by card.
	if p.Counts = p.Meta.StatusCounts; p.Counts == nil {
		if p.Counts, err = pt.CardStatusCounts(); err != nil {
			return p, err
		}
	}
	for _, n := range p.Counts {
		p.Cards += n
	}
	p.Health = ovHealth(p.Meta, cp.Interval, now)
	return p, nil
}

// ovHealth sums a provider's state up in one word. Stale wins over ok: a
// provider whose last commit is three intervals old is not polled, whatever
// its last cycle said.
func ovHealth(m store.Meta, interval time.Duration, now time.Time) string {
	last := m.Committed
	if last.IsZero() {
		last = m.LastSuccess
	}
	switch {
	case m.Unhealthy:
		return "unhealthy"
	case last.IsZero() && m.Failures > 0:
		return "failing"
	case last.IsZero():
		return "never"
	case interval > 0 && now.Sub(last) > ovStaleIntervals*interval:
		return "stale"
	case m.Failures > 0:
		return "failing"
	}
	return "ok"
}

func ovPools(pt *store.ProviderTx, provider string, now time.Time, d *overviewData) error {
	return pt.ForEachPool(func(id string, encoded []byte) error {
		var pool fleet.Pool
		if err := json.Unmarshal(encoded, &pool); err != nil {
			return fmt.Errorf("pool %s: %w", id, err)
		}
		p := ovPool{Provider: provider, Pool: pool}
		u := pool.Unknown
		p.Known = !u.Has(fleet.PoolField("flow_used")) && !u.Has(fleet.PoolField("flow_total"))
		p.Over = !u.Has(fleet.PoolField("flow_left")) && pool.FlowLeft < 0
		if p.Known {
			p.UsedPct = min(pctOf(pool.FlowUsed, pool.FlowTotal), 100)
		}
		h, err := pt.History(store.PoolHistoryKey(id))
		if err != nil {
			return err
		}
		if f, ok := ovForecast(h, pool.FlowUsed, now); ok && p.Known {
			p.Forecast, p.HasForecast = f, true
			p.ForecastPct = min(pctOf(f, pool.FlowTotal), 100)
			p.ForecastOver = f > pool.FlowTotal
		}
		d.Pools = append(d.Pools, p)
		return nil
	})
}

// ovForecast projects flow_used to the end of the billing cycle (the
// calendar month in the providers' zone): the average of the last complete
// days (up to ovForecastDays of them, those recorded) times what is left of
// the month. ok is false when none of those days is recorded.
func ovForecast(h fleet.History, used float64, now time.Time) (float64, bool) {
	today := fleet.DayOf(now)
	mb, days := h.Sum(today-ovForecastDays, today-1)
	if days == 0 {
		return 0, false
	}
	local := now.In(fleet.ChinaTime)
	end := time.Date(local.Year(), local.Month()+1, 1, 0, 0, 0, 0, fleet.ChinaTime)
	left := end.Sub(now).Hours() / 24
	return used + mb/float64(days)*left, true
}
