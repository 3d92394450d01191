// Package sim is a provider simulator: an HTTP server speaking GSL's documented
// wire format (seeds 000, 003) over a generated, seeded fleet whose usage grows
// day by day, whose cards change state and devices, and whose pools run into
// overdraft. It checks signatures and tokens like the real service, injects
// faults on request, and has a control API under /_sim/ for tests and demos.
package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"
)

// GSL sim_status codes.
const (
	gslTestable    = 10
	gslInactive    = 11
	gslActivatable = 13
	gslStopped     = 14
	gslInUse       = 20
	gslDismantled  = 30
)

// card is the simulator's record of one SIM.
type card struct {
	ID             int64
	AccountID      string
	ICCID          string
	IMSI           string
	MSISDN         string
	IMEI           string
	Status         int
	OperatorStatus int
	PoolID         int64
	Plan           string
	Total          float64 // MB per billing cycle
	Used           float64
	Daily          float64 // typical MB per day
	ActDate        time.Time
	ExpireTime     time.Time
	Tags           string
	Attr1          string
	NetworkType    string
	idle           []int32 // days since the start on which the card was not in use
	added          bool    // added by AddCard, with usage from day born on
	born           int32
	over           overrides // raw wire values, see CardPatch.Raw
}

// DefaultStart is the simulated date of day 0.
var DefaultStart = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

// usageOn is the card's usage on a day if it was in use: deterministic, so
// the daily-flow API and the listing agree.
func (c *card) usageOn(day time.Time) float64 {
	h := uint64(c.ID)*0x9e3779b97f4a7c15 ^ uint64(day.Unix()/86400)*0xbf58476d1ce4e5b9
	h ^= h >> 31
	h *= 0x94d049bb133111eb
	h ^= h >> 29
	u := float64(h%10000) / 10000
	return round2(c.Daily * (0.5 + u))
}

func (c *card) left() float64 {
	if l := c.Total - c.Used; l > 0 {
		return l
	}
	return 0
}

// pool is a shared data pool; its usage is its members' usage.
type pool struct {
	ID        int64
	Name      string
	Plan      string
	Total     float64
	Cycle     string
	Effective time.Time
	Expired   time.Time
	over      overrides // raw wire values, see PoolPatch.Raw
}

// Fleet is the simulated account. Its methods are safe for concurrent use.
type Fleet struct {
	mu     sync.RWMutex
	rng    *rand.Rand
	cards  []*card
	pools  []*pool
	byICC  map[string]*card
	day    int
	start  time.Time
	calm   bool
	lag    int      // FleetOptions.DailyLag
	seq    int      // cards ever created, for AddCard's next id
	events []string // what Advance changed, for the demo's narration
}

// FleetOptions sizes and seeds a generated fleet.
type FleetOptions struct {
	Cards int
	Pools int
	Seed  uint64
	// Start is the simulated date of day 0; zero means 2026-11-20, so that
	// the billing month already has usage (and daily history) behind it.
	Start time.Time
	// Calm generates a fleet with nothing to alert on: every card active with
	// no usage, every pool with room. Tests then change what they assert on.
	Calm bool
	// DailyLag delays the daily-flow API: day d is published only once the
	// fleet has advanced DailyLag days past it (0: as soon as it is over),
	// as a provider whose daily figures trail its listing.
	DailyLag int
}

var plans = []struct {
	name  string
	total float64
}{
	{"IoT 30MB monthly", 30},
	{"IoT 100MB monthly", 100},
	{"IoT 500MB monthly", 500},
	{"IoT 1GB monthly", 1024},
}

// NewFleet generates a fleet. The same options always give the same fleet.
func NewFleet(o FleetOptions) *Fleet {
	if o.Start.IsZero() {
		o.Start = DefaultStart
	}
	f := &Fleet{
		rng:   rand.New(rand.NewPCG(o.Seed, o.Seed^0x5eed)),
		byICC: make(map[string]*card, o.Cards),
		start: o.Start,
		calm:  o.Calm,
		lag:   max(o.DailyLag, 0),
		seq:   o.Cards,
	}
	cycle := o.Start.Format("2006-01")
	monthStart := time.Date(o.Start.Year(), o.Start.Month(), 1, 0, 0, 0, 0, time.UTC)
	for j := range o.Pools {
		f.pools = append(f.pools, &pool{
			ID:        4940000000 + int64(j+1),
			Name:      fmt.Sprintf("pool-%02d", j+1),
			Plan:      "Pooled IoT data",
			Cycle:     cycle,
			Effective: monthStart.Add(-8 * time.Hour),
			Expired:   monthStart.AddDate(0, 1, 0).Add(-8*time.Hour - time.Second),
		})
	}
	for i := range o.Cards {
		p := plans[f.rng.IntN(len(plans))]
		c := &card{
			ID:             4900000000000 + int64(i+1),
			AccountID:      "04eef84sim",
			ICCID:          fmt.Sprintf("89860%015d", i+1),
			IMSI:           fmt.Sprintf("46001%010d", i+1),
			MSISDN:         fmt.Sprintf("861%010d", i+1),
			IMEI:           fmt.Sprintf("35%013d", f.rng.Int64N(1e13)),
			Status:         gslInUse,
			OperatorStatus: -1,
			Plan:           p.name,
			Total:          p.total,
			Daily:          p.total / 30 * (0.2 + 1.6*f.rng.Float64()),
			ActDate:        o.Start.AddDate(0, -f.rng.IntN(12)-1, 0),
			ExpireTime:     o.Start.AddDate(1, 0, f.rng.IntN(300)),
			NetworkType:    "4G",
		}
		switch r := f.rng.Float64(); {
		case r < 0.05:
			c.Status = gslTestable
		case r < 0.10:
			c.Status = gslInactive
		case r < 0.13:
			c.Status = gslStopped
			c.OperatorStatus = 5
		}
		if len(f.pools) > 0 && i%3 == 0 {
			pl := f.pools[(i/3)%len(f.pools)]
			c.PoolID = pl.ID
			if pl == f.pools[0] && !o.Calm {
				// The first pool is sold short, so that it goes into
				// overdraft within a few simulated days.
				c.Total = round2(c.Total * 0.35)
			}
			pl.Total += c.Total
		}
		// The month so far: the sum of the days before the start, as the
		// daily-flow API reports them. Heavy users start near their limit.
		for d := monthStart; d.Before(o.Start); d = d.AddDate(0, 0, 1) {
			c.Used += c.usageOn(d)
		}
		c.Used = min(round2(c.Used), c.Total)
		if i%7 == 0 {
			c.Tags = "fleet-a"
		}
		if o.Calm {
			c.Status, c.OperatorStatus, c.Used = gslInUse, -1, 0
		}
		f.cards = append(f.cards, c)
		f.byICC[c.ICCID] = c
	}
	return f
}

// Day is the number of simulated days since the start.
func (f *Fleet) Day() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.day
}

// Advance moves the fleet on by days: active cards use data, a few are
// suspended or resumed, and now and then a device (IMEI) changes. It returns
// a line for each notable change.
func (f *Fleet) Advance(days int) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = f.events[:0]
	for range days {
		today := f.start.AddDate(0, 0, f.day) // the day now ending
		f.day++
		newMonth := f.start.AddDate(0, 0, f.day).Month() != today.Month()
		for _, c := range f.cards {
			if c.Status != gslInUse {
				c.idle = append(c.idle, int32(f.day-1))
			}
			switch c.Status {
			case gslInUse:
				c.Used = round2(c.Used + c.usageOn(today))
				// Pool members draw on the pool, so only cards with their
				// own allowance are stopped when it is used up.
				if c.Used >= c.Total && c.OperatorStatus == -1 && c.PoolID == 0 {
					c.Status, c.OperatorStatus = gslStopped, 1
					f.note("card %s used its %.0f MB and was stopped", c.ICCID, c.Total)
				} else if f.rng.Float64() < 0.004 {
					c.Status, c.OperatorStatus = gslStopped, 5
					f.note("card %s suspended", c.ICCID)
				}
				if f.rng.Float64() < 0.006 {
					c.IMEI = fmt.Sprintf("86%013d", f.rng.Int64N(1e13))
					f.note("card %s moved to device %s", c.ICCID, c.IMEI)
				}
			case gslStopped:
				if c.OperatorStatus == 5 && f.rng.Float64() < 0.2 {
					c.Status, c.OperatorStatus = gslInUse, -1
					f.note("card %s resumed", c.ICCID)
				}
			case gslInactive, gslActivatable:
				if f.rng.Float64() < 0.05 {
					c.Status = gslInUse
					f.note("card %s activated", c.ICCID)
				}
			}
			if newMonth {
				// A new billing cycle: usage starts again, quota stops lift.
				c.Used = 0
				if c.Status == gslStopped && c.OperatorStatus == 1 {
					c.Status, c.OperatorStatus = gslInUse, -1
				}
			}
		}
	}
	return append([]string(nil), f.events...)
}

func (f *Fleet) note(format string, args ...any) {
	f.events = append(f.events, fmt.Sprintf(format, args...))
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

type poolStats struct {
	used                          float64
	quantity, activated, inactive int
	dismantled                    int
}

// poolStats sums each pool's members. Callers hold f.mu.
func (f *Fleet) poolStats() map[int64]*poolStats {
	out := make(map[int64]*poolStats, len(f.pools))
	for _, p := range f.pools {
		out[p.ID] = &poolStats{}
	}
	for _, c := range f.cards {
		s := out[c.PoolID]
		if s == nil {
			continue
		}
		s.used += c.Used
		s.quantity++
		switch c.Status {
		case gslInUse, gslStopped:
			s.activated++
		case gslDismantled:
			s.dismantled++
		default:
			s.inactive++
		}
	}
	return out
}
