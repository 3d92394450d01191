package rules

import (
	"math"
	"reflect"
	"slices"
	"time"

	"github.com/simwatch/simwatch/internal/fleet"
)

// CardEnv is what a card rule's expression sees: the card's fields, prev (the
// card in the previous successful snapshot) and helpers bound to the cycle.
type CardEnv struct {
	fleet.Card
	Prev fleet.Card `expr:"prev" doc:"|the card in the previous listing, e.g. prev.status (makes the rule a transition)"`
	helpers
	// Metering is what the metering calls the compiler inserts reach (see
	// budget.go); not names for rules.
	Metering
}

// PoolEnv is what a pool rule's expression sees.
type PoolEnv struct {
	fleet.Pool
	Prev fleet.Pool `expr:"prev" doc:"|the pool in the previous listing (makes the rule a transition)"`
	helpers
	Metering // see CardEnv
}

// helpers are functions rules call. They are fields, not expr.Functions, so
// that they are typed at compile time and bound to the cycle's clock and the
// entity at hand.
type helpers struct {
	Changed    func(field string) bool    `expr:"changed" doc:"|true when the named field differs from the previous listing (makes the rule a transition)"`
	Known      func(field string) bool    `expr:"known" doc:"|true when the provider gave the named field, e.g. !known(\"flow_left\"); a rule that reads an unknown field does not fire"`
	Pct        func(a, b float64) float64 `expr:"pct" doc:"%|a as a percentage of b (0 when b is 0), e.g. pct(flow_used, flow_total)"`
	DaysUntil  func(t time.Time) float64  `expr:"days_until" doc:"days|days from now until a time (negative once past), e.g. days_until(expire_time)"`
	HoursSince func(t time.Time) float64  `expr:"hours_since" doc:"hours|hours since a time"`

	// Usage history (daily MB, China-time days).
	UsageToday             func() float64              `expr:"usage_today" doc:"MB|used today (China time), from listings; unknown with provider daily data (GSL), which ends yesterday"`
	UsageLast              func(window string) float64 `expr:"usage_last" doc:"MB|used over the window's whole days, today the last (\"24h\" is today, \"168h\" the last 7 days); with provider daily data (GSL) the days end at the last day the provider has published"`
	DailyAvg               func(days int) float64      `expr:"daily_avg" doc:"MB/day|average daily use over the last n complete days with data"`
	DaysToExhaust          func() float64              `expr:"days_to_exhaust" doc:"days|flow_left divided by the 7-day average; +Inf when nothing is used"`
	ExhaustsBeforeCycleEnd func() bool                 `expr:"exhausts_before_cycle_end" doc:"|true when days_to_exhaust() ends before the billing month does"`
	HistorySource          func() string               `expr:"history_source" doc:"|where the history comes from: daily (provider API), snapshot (listings) or empty"`
	HistoryDays            func() int                  `expr:"history_days" doc:"days|how many days of usage history there are"`
	FirstIMEI              func() string               `expr:"first_imei" doc:"|the first IMEI ever seen for the card (empty for pools and LinkCard)"`
	Removed                bool                        `expr:"removed" doc:"|true when the entity has left a complete listing (a rule using it fires once, on removal)"`
}

// Names of the helpers that make a rule depend on the clock or on the usage
// history, so that it is evaluated every cycle even for entities that did
// not change.
var clockHelpers = []string{"days_until", "hours_since", "usage_today", "usage_last", "daily_avg",
	"days_to_exhaust", "exhausts_before_cycle_end", "history_source", "history_days"}

// helperReads are the entity fields a helper reads, so that a rule calling
// it does not fire while the field is unknown.
var helperReads = map[string][]string{
	"days_to_exhaust":           {"flow_left"},
	"exhausts_before_cycle_end": {"flow_left"},
}

// transitionNames make a rule a transition rule.
var transitionNames = []string{"prev", "changed", "removed"}

func pct(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b * 100
}

func newHelpers(now time.Time, changed, known func(string) bool, h *usage) helpers {
	return helpers{
		Known: known,
		FirstIMEI: func() string {
			if h.entity != fleet.EntityCard {
				return ""
			}
			// Only a card whose IMEI changed has one recorded (see
			// Evaluate): any other still has its first.
			if h.firstIMEI != nil {
				if imei := h.firstIMEI(h.id); imei != "" {
					return imei
				}
			}
			return h.imei
		},
		UsageToday: func() float64 {
			hist := h.get()
			if hist.Source == fleet.HistoryDaily {
				h.unknown = true // the provider's daily data never has today
				return 0
			}
			mb, _ := hist.Get(h.today)
			return mb
		},
		UsageLast: func(window string) float64 {
			d, err := time.ParseDuration(window)
			if err != nil {
				return 0 // rejected at load time; see compile
			}
			days := int32(math.Ceil(d.Hours() / 24))
			hist := h.get()
			if hist.Source == fleet.HistoryDaily && h.through > 0 && h.through < h.today {
				// The provider's daily figures end at the last day it has
				// published: the window is that many whole days up to it,
				// so a day not yet published never reads as zero.
				mb, _ := hist.Sum(h.through-days+1, h.through)
				return mb
			}
			mb, _ := hist.Sum(h.today-days+1, h.today) // days whole days, today the last
			return mb
		},
		DailyAvg:      func(days int) float64 { return h.burn(int32(days)) },
		DaysToExhaust: h.daysToExhaust,
		ExhaustsBeforeCycleEnd: func() bool {
			y, m, _ := now.In(fleet.ChinaTime).Date()
			end := time.Date(y, m+1, 1, 0, 0, 0, 0, fleet.ChinaTime)
			return h.daysToExhaust() < end.Sub(now).Hours()/24
		},
		HistorySource: func() string { return h.get().Source },
		HistoryDays:   func() int { return len(h.get().Days) },
		Changed:       changed,
		Pct:           pct,
		DaysUntil: func(t time.Time) float64 {
			if t.IsZero() {
				return math.Inf(1)
			}
			return t.Sub(now).Hours() / 24
		},
		HoursSince: func(t time.Time) float64 {
			if t.IsZero() {
				return math.Inf(1)
			}
			return now.Sub(t).Hours()
		},
	}
}

// usage reads the history of the entity being evaluated, once.
type usage struct {
	today   int32
	through int32 // the last day of provider daily data; 0 when none
	// unknown is set by a helper that had no figure to give during one
	// rule's run: the rule then counts as reading an unknown value.
	unknown   bool
	read      func(entity, id string) fleet.History
	firstIMEI func(id string) string
	imei      string // the card's IMEI, when known
	entity    string
	id        string
	left      float64
	loaded    bool
	h         fleet.History
}

func (u *usage) reset(entity, id string, left float64, imei string) {
	u.entity, u.id, u.left, u.imei, u.loaded = entity, id, left, imei, false
}

// knownIMEI is the card's IMEI, or "" when the provider did not give it.
func knownIMEI(c *fleet.Card) string {
	if c.Unknown.Has(imeiBit) {
		return ""
	}
	return c.IMEI
}

var imeiBit = fleet.CardField("imei")

func (u *usage) get() *fleet.History {
	if !u.loaded {
		u.h = fleet.History{}
		if u.read != nil {
			u.h = u.read(u.entity, u.id)
		}
		u.loaded = true
	}
	return &u.h
}

// burn is the average daily use over the last `days` complete days that
// have data.
func (u *usage) burn(days int32) float64 {
	mb, n := u.get().Sum(u.today-days, u.today-1)
	if n == 0 {
		return 0
	}
	return mb / float64(n)
}

// daysToExhaust is what is left divided by the 7-day burn rate: +Inf when
// nothing is being used, 0 when nothing is left.
func (u *usage) daysToExhaust() float64 {
	if u.left <= 0 {
		return 0
	}
	b := u.burn(7)
	if b <= 0 {
		return math.Inf(1)
	}
	return u.left / b
}

// fieldIndex maps each expr name of a struct to its field index.
func fieldIndex(t reflect.Type) map[string]int {
	m := map[string]int{}
	for i := range t.NumField() {
		if name := t.Field(i).Tag.Get("expr"); name != "" && name != "-" {
			m[name] = i
		}
	}
	return m
}

var (
	cardFields = fieldIndex(reflect.TypeFor[fleet.Card]())
	poolFields = fieldIndex(reflect.TypeFor[fleet.Pool]())
)

// fieldChanged compares one named field of two values of the same struct type.
func fieldChanged[T any](index map[string]int, prev, cur *T, name string) bool {
	i, ok := index[name]
	if !ok {
		return false
	}
	a := reflect.ValueOf(prev).Elem().Field(i)
	b := reflect.ValueOf(cur).Elem().Field(i)
	switch a.Kind() {
	case reflect.String:
		return a.String() != b.String()
	case reflect.Int:
		return a.Int() != b.Int()
	case reflect.Float64:
		return a.Float() != b.Float()
	case reflect.Slice:
		if s, ok := a.Interface().([]string); ok {
			return !slices.Equal(s, b.Interface().([]string))
		}
	}
	return !reflect.DeepEqual(a.Interface(), b.Interface())
}

// fieldNames lists the expr names of an entity kind, for "did you mean".
func fieldNames(on string) []string {
	idx := cardFields
	if on == fleet.EntityPool {
		idx = poolFields
	}
	names := make([]string, 0, len(idx))
	for n := range idx {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
