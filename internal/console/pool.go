package console

import (
	"math"
	"net/http"
	"reflect"
	"time"

	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/store"
)

// memberPage is how many of a pool's members one page lists.
const memberPage = 50

type poolData struct {
	Provider string
	Pool     fleet.Pool
	Fields   []field
	Usage    usageView
	// Overdraft is how far flow_left is below zero (0 when it is not, or
	// is unknown).
	Overdraft float64
	Members   []member
	// Quantity is the provider's count of members; -1 when unknown.
	Quantity int
	// After is the member the page starts after ("" on the first page);
	// Next the one the next page starts after ("" on the last).
	After, Next string
	Timeline    timeline
}

// member is one row of a pool's member table.
type member struct {
	ID, ICCID, Status, IMEI string
	Used, Total             string
}

func memberOf(c *fleet.Card) member {
	m := member{ID: c.ID, ICCID: c.ICCID, Status: c.Status, IMEI: c.IMEI, Used: formatMB(c.FlowUsed), Total: formatMB(c.FlowTotal)}
	for _, f := range []struct {
		name string
		v    *string
	}{{"status", &m.Status}, {"imei", &m.IMEI}, {"flow_used", &m.Used}, {"flow_total", &m.Total}} {
		if c.Unknown.Has(fleet.CardField(f.name)) {
			*f.v = "unknown"
		}
	}
	return m
}

// pool shows one pool: its fields, usage and overdraft, and its members a
// page at a time.
func (s *Server) pool(w http.ResponseWriter, r *http.Request, v *view) error {
	name, id := r.PathValue("provider"), r.PathValue("id")
	q := r.URL.Query()
	d := poolData{Provider: name, After: q.Get("after")}
	var hist fleet.History
	err := s.o.Store.View(func(tx *store.Tx) error {
		pt, err := knownProvider(tx, name)
		if err != nil {
			return err
		}
		p, ok, err := pt.Pool(id)
		if err != nil {
			return err
		}
		if !ok {
			return notFound{"pool " + id + " of " + name}
		}
		d.Pool = p
		if hist, err = pt.History(store.PoolHistoryKey(id)); err != nil {
			return err
		}
		cards, next, err := pt.PoolMembers(id, d.After, memberPage)
		for i := range cards {
			d.Members = append(d.Members, memberOf(&cards[i]))
		}
		d.Next = next
		return err
	})
	if err != nil {
		return err
	}
	p := &d.Pool
	d.Fields = fieldsOf(fleet.EntityPool, reflect.ValueOf(p).Elem(), p.Unknown)
	d.Usage = usageOf(hist, p.FlowUsed, p.FlowTotal, !p.Unknown.Has(fleet.PoolField("flow_used")),
		!p.Unknown.Has(fleet.PoolField("flow_total")), v.Now)
	d.Quantity = p.Quantity
	if p.Unknown.Has(fleet.PoolField("quantity")) {
		d.Quantity = -1
	}
	if !p.Unknown.Has(fleet.PoolField("flow_left")) && p.FlowLeft < 0 {
		d.Overdraft = -p.FlowLeft
	}
	if d.Timeline, err = s.timeline(name, fleet.EntityPool, id, q.Get("before")); err != nil {
		return err
	}
	title := "Pool " + p.ID
	if p.Name != "" {
		title = "Pool " + p.Name
	}
	v.Title, v.Page, v.Data = title, "pool", d
	return nil
}

// usageView is an entity's usage this billing cycle (the calendar month in
// China time, as the providers bill) and the chart of its history.
type usageView struct {
	Chart                 usageChart
	Used, Total           float64
	UsedKnown, TotalKnown bool
	// Avg7 is the average daily use over the last 7 complete days with
	// data; Forecast is Used plus Avg7 for each day left in the cycle.
	Avg7, Forecast float64
	DaysLeft       float64
	CycleEnd       time.Time
	HistoryDays    int
}

// OverForecast says the forecast goes beyond the allowance.
func (u usageView) OverForecast() bool { return u.TotalKnown && u.Forecast > u.Total }

// usageChart is the data block charts.js draws with uPlot: one x value per
// day (seconds, midnight UTC naming the China-time day) from the first day
// of history to the cycle's last, and a series per line, null where a line
// has no point.
type usageChart struct {
	X          []int64    `json:"x"`
	Daily      []*float64 `json:"daily"`      // MB used each day
	Cumulative []*float64 `json:"cumulative"` // MB used in the cycle up to each day
	Allowance  []*float64 `json:"allowance"`  // flow_total
	Forecast   []*float64 `json:"forecast"`   // from today to the cycle's end
}

func usageOf(h fleet.History, used, total float64, usedKnown, totalKnown bool, now time.Time) usageView {
	u := usageView{Used: used, Total: total, UsedKnown: usedKnown, TotalKnown: totalKnown, HistoryDays: len(h.Days)}
	today := fleet.DayOf(now)
	y, m, _ := now.In(fleet.ChinaTime).Date()
	end := time.Date(y, m+1, 1, 0, 0, 0, 0, fleet.ChinaTime)
	cycleStart, lastDay := fleet.DayOf(time.Date(y, m, 1, 12, 0, 0, 0, fleet.ChinaTime)), fleet.DayOf(end.Add(-time.Hour))
	u.CycleEnd, u.DaysLeft = end, math.Max(0, end.Sub(now).Hours()/24)
	if mb, n := h.Sum(today-7, today-1); n > 0 {
		u.Avg7 = mb / float64(n)
	}
	if !usedKnown {
		u.Used, _ = h.Sum(cycleStart, today)
	}
	u.Forecast = u.Used + u.Avg7*u.DaysLeft

	first := cycleStart
	if len(h.Days) > 0 && h.Days[0].Day < first {
		first = h.Days[0].Day
	}
	if first < lastDay-2*store.HistoryRetention {
		first = lastDay - 2*store.HistoryRetention // a damaged history cannot make the chart huge
	}
	var sum float64
	month := time.Month(0)
	hi := 0
	for day := first; day <= lastDay; day++ {
		c := &u.Chart
		c.X = append(c.X, fleet.DayDate(day).Unix())
		if dm := fleet.DayDate(day).Month(); dm != month {
			month, sum = dm, 0
		}
		for hi < len(h.Days) && h.Days[hi].Day < day {
			hi++
		}
		var daily, cum, fc, allow *float64
		if hi < len(h.Days) && h.Days[hi].Day == day && day <= today {
			daily = num(h.Days[hi].MB)
			sum += h.Days[hi].MB
		}
		switch {
		case day == today:
			cum, fc = num(u.Used), num(u.Used)
		case day < today && daily != nil:
			cum = num(sum)
		case day > today && lastDay > today:
			fc = num(u.Used + (u.Forecast-u.Used)*float64(day-today)/float64(lastDay-today))
		}
		if totalKnown {
			allow = num(total)
		}
		c.Daily, c.Cumulative, c.Forecast, c.Allowance = append(c.Daily, daily), append(c.Cumulative, cum), append(c.Forecast, fc), append(c.Allowance, allow)
	}
	return u
}

func num(f float64) *float64 { return &f }
