package rules

// Hostile tests of the promises about unknown values, usage history windows
// and one evaluation shared by the daemon, rule tests and queries.

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/fleet"
)

func attackHarness(t *testing.T, src string) *harness {
	t.Helper()
	set, err := Parse("attack.yaml", []byte(src), LoadOptions{})
	require.NoError(t, err)
	return &harness{t: t, set: set, cards: map[string]fleet.Card{}}
}

var (
	unknownLeftBit = fleet.CardField("flow_left")
	unknownLeft    = func(c *fleet.Card) { c.FlowLeft, c.Unknown = 0, c.Unknown|unknownLeftBit }
)

// Regression (a hostile tester found it).
// prev read through a variable or a closure escaped readsPrev: a
// "recovered" transition fired when flow_left came back after being
// unknown, because the unknown prev.flow_left reads as 0.
func TestAttackPrevAliasReadsUnknownPrev(t *testing.T) {
	for _, when := range []string{
		`let p = prev; p.flow_left < 10 && flow_left >= 10`,
		`any([prev], #.flow_left < 10) && flow_left >= 10`,
	} {
		t.Run(when, func(t *testing.T) {
			h := attackHarness(t, "rules:\n  - name: recovered\n    on: card\n    when: '"+when+"'\n")
			require.Empty(t, kinds(h.cycle(t0, card("1", nil))), "first sight: there is no prev to read")
			require.Empty(t, kinds(h.cycle(t0.Add(10*time.Minute), card("1", unknownLeft))))
			ev := h.cycle(t0.Add(20*time.Minute), card("1", nil)) // flow_left 50 again
			require.Empty(t, kinds(ev), "prev.flow_left was unknown: the rule reads it and must not fire")
		})
	}
}

// Held: a rule reading only status_code fires on the raw code (it asks for
// it), while status rules stay quiet through known→unknown→known.
func TestAttackStatusCodeFlipsKnownUnknownKnown(t *testing.T) {
	h := attackHarness(t, `rules:
  - {name: status_changed, on: card, when: 'changed("status")'}
  - {name: left_active, on: card, when: 'prev.status == "active" && status != "active"'}
  - {name: not_active, on: card, when: 'status != "active"'}
  - {name: code_changed, on: card, when: 'changed("status_code")'}
`)
	weird := func(c *fleet.Card) { c.Status, c.StatusCode, c.Unknown = "", 99, fleet.CardField("status") }
	require.Empty(t, h.cycle(t0, card("1", func(c *fleet.Card) { c.StatusCode = 20 })))
	require.Equal(t, []string{"transition code_changed 1"}, kinds(h.cycle(t0.Add(time.Minute), card("1", weird))))
	require.Equal(t, []string{"transition code_changed 1"}, kinds(h.cycle(t0.Add(2*time.Minute), card("1", func(c *fleet.Card) { c.StatusCode = 20 }))))
	require.Empty(t, h.state.Alerts)
}

// Regression (a hostile tester found it; internal/api checks the wiring).
// Queries did not know the last day the provider published (Query never set
// usage.through), so over GSL daily history `usage_last("24h")` in a query
// was today..yesterday (neither published: read as zero), while the same
// expression in a rule is the last published day. The daemon fired; the
// query over the same card, history and clock did not match.
func TestAttackQueryUsageLastIgnoresLastPublishedDay(t *testing.T) {
	now := t0
	today := fleet.DayOf(now)
	hist := fleet.History{Source: fleet.HistoryDaily}
	hist.Set(today-3, 40)
	hist.Set(today-2, 40) // the provider has published through the day before yesterday
	read := func(entity, id string) fleet.History { return hist }
	const when = `usage_last("24h") > 30`

	set, err := Parse("r.yaml", []byte("rules:\n  - {name: busy, on: card, when: '"+when+"'}\n"), LoadOptions{})
	require.NoError(t, err)
	c := card("1", nil)
	out := set.Evaluate(Input{Provider: "hw", Now: now, History: read, HistoryThrough: today - 2,
		Cards: Changes[fleet.Card]{Changed: slices.Values([]Change[fleet.Card]{{Cur: &c}})}})
	require.Equal(t, []string{"firing busy 1"}, kinds(out.Events), "the rule reads the last published day")

	q, err := NewQuery(fleet.EntityCard, when, now)
	require.NoError(t, err)
	q.ReadHistory(read, today-2)
	ok, err := q.MatchCard(&c)
	require.NoError(t, err)
	require.True(t, ok, "the query must evaluate %s as the daemon does (it counted unpublished days as zero)", when)
}

// Regression (a hostile tester found it).
// first_imei() in a query was always "": the query had no reader of the
// recorded first IMEIs. card_not_in_original_device (rules.example.yaml)
// fires in the daemon for a swapped card, yet `watcher query` with the same
// expression found no card.
func TestAttackQueryFirstIMEIIsAlwaysEmpty(t *testing.T) {
	const when = `imei != "" && first_imei() != "" && imei != first_imei()`
	set, err := Parse("r.yaml", []byte("rules:\n  - {name: moved, on: card, when: '"+when+"'}\n"), LoadOptions{})
	require.NoError(t, err)
	c := card("1", func(c *fleet.Card) { c.IMEI = "222" })
	first := func(string) string { return "111" }
	out := set.Evaluate(Input{Provider: "hw", Now: t0, FirstIMEI: first,
		Cards: Changes[fleet.Card]{Changed: slices.Values([]Change[fleet.Card]{{Cur: &c}})}})
	require.Equal(t, []string{"firing moved 1"}, kinds(out.Events))

	q, err := NewQuery(fleet.EntityCard, when, t0)
	require.NoError(t, err)
	q.ReadFirstIMEI(first)
	ok, err := q.MatchCard(&c)
	require.NoError(t, err)
	require.True(t, ok, "the query must see the first IMEI the daemon records")
}

// Held: queries skip entities whose read fields are unknown, like rules.
func TestAttackQueryUnknownLikeRules(t *testing.T) {
	q, err := NewQuery(fleet.EntityCard, `flow_left < 10`, t0)
	require.NoError(t, err)
	c := card("1", unknownLeft)
	ok, err := q.MatchCard(&c)
	require.NoError(t, err)
	require.False(t, ok)
}

// Held: Evaluate leaves its input alone, and is deterministic, over random
// sequences exercising for, repeat, keep_firing_for, resolve_when, rearm,
// transitions, removal and unknown values.
func TestAttackEvaluateIsPureOverRandomSequences(t *testing.T) {
	set, err := Parse("r.yaml", []byte(`rules:
  - {name: low, on: card, when: 'status == "active" && flow_left < 10', for: 20m, repeat: 1h, resolve_when: 'flow_left > 20'}
  - {name: pct, on: card, when: 'pct(flow_used, flow_total) > 80', rearm: cycle, keep_firing_for: 30m}
  - {name: trans, on: card, when: 'prev.status != status'}
  - {name: gone, on: card, when: 'removed'}
  - {name: swap, on: card, when: 'changed("imei") && prev.imei != ""'}
  - {name: orig, on: card, when: 'imei != first_imei() && first_imei() != ""'}
  - {name: exp, on: card, when: 'days_until(expire_time) < 30'}
  - {name: pool_low, on: pool, when: 'flow_left < 0', keep_firing_for: 15m}
`), LoadOptions{})
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(1, 2))
	var state State
	cards := map[string]fleet.Card{}
	pools := map[string]fleet.Pool{}
	firstIMEI := map[string]string{}
	now := t0
	statuses := []string{"active", "suspended", ""}
	for step := range 300 {
		now = now.Add(time.Duration(rng.IntN(90)) * time.Minute)
		var cur []fleet.Card
		for i := range 6 {
			if rng.IntN(6) == 0 {
				continue
			}
			c := card(fmt.Sprint(i), func(c *fleet.Card) {
				c.FlowLeft = float64(rng.IntN(40))
				c.FlowUsed = 100 - c.FlowLeft
				c.Status = statuses[rng.IntN(3)]
				c.IMEI = []string{"", "a", "b"}[rng.IntN(3)]
				c.ExpireTime = t0.AddDate(0, 0, rng.IntN(60))
				if c.Status == "" {
					c.Unknown |= fleet.CardField("status")
				}
				if rng.IntN(4) == 0 {
					c.FlowLeft, c.Unknown = 0, c.Unknown|unknownLeftBit
				}
			})
			cur = append(cur, c)
		}
		var curPools []fleet.Pool
		for i := range 2 {
			if rng.IntN(5) == 0 {
				continue
			}
			p := fleet.Pool{Provider: "hw", ID: fmt.Sprint("p", i), FlowLeft: float64(rng.IntN(20) - 10)}
			if rng.IntN(4) == 0 {
				p.FlowLeft, p.Unknown = 0, fleet.PoolField("flow_left")
			}
			curPools = append(curPools, p)
		}
		in := Input{Provider: "hw", Now: now, State: state, ClockEvery: time.Hour,
			Cards:     listing(cur, cards, func(c *fleet.Card) string { return c.ID }, missingIn(state, fleet.EntityCard)),
			Pools:     listing(curPools, pools, func(p *fleet.Pool) string { return p.ID }, missingIn(state, fleet.EntityPool)),
			FirstIMEI: func(id string) string { return firstIMEI[id] }}
		before := mustJSON([]any{in.State, in.Cards, in.Pools})
		out1 := set.Evaluate(in)
		out2 := set.Evaluate(in)
		require.Equal(t, string(before), string(mustJSON([]any{in.State, in.Cards, in.Pools})), "step %d: Evaluate changed its input", step)
		view := func(o Output) string {
			evs := make([]string, len(o.Events))
			for i, e := range o.Events {
				evs[i] = string(mustJSON(e))
			}
			slices.Sort(evs) // the order of events of different alerts is free
			return string(mustJSON([]any{evs, o.Alerts, o.Missing, o.RemovedCards, o.RemovedPools, o.FirstIMEI, o.RulesHash, o.ClockEval}))
		}
		require.Equal(t, view(out1), view(out2), "step %d: Evaluate is not deterministic", step)
		require.Empty(t, out1.Errors)
		state.Apply(&out1)
		for id, imei := range out1.FirstIMEI {
			firstIMEI[id] = imei
		}
		keep(cur, cards, out1.RemovedCards, func(c *fleet.Card) string { return c.ID })
		keep(curPools, pools, out1.RemovedPools, func(p *fleet.Pool) string { return p.ID })
	}
}

// Held: `watcher rules fields` marks the nullable fields.
func TestAttackFieldsMarkUnknowns(t *testing.T) {
	may := map[string]bool{}
	for _, f := range Fields(fleet.EntityCard) {
		may[f.Name] = f.MayBeUnknown
	}
	for _, n := range []string{"status", "operator_status", "flow_used", "flow_left", "flow_total", "device_status"} {
		require.True(t, may[n], n)
	}
}

// Regression (a hostile tester found it).
// The daemon for a provider without a daily API (LinkCard) derives usage
// from successive listings (SnapshotUsage), so `usage_today() > 20` fires
// when flow_used rises by 50 MB between two listings. `watcher rules test`
// never sets SnapshotUsage: the same two listings produce no event, and a
// step's history exists only in that step (card_history is not carried
// from one step to the next as the daemon's store carries it).
func TestAttackRuleTestIgnoresListingDerivedUsage(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "r.yaml"), []byte(`rules:
  - {name: busy_today, on: card, when: 'usage_today() > 20'}
`), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "t.yaml"), []byte(`rule_files: [r.yaml]
history: listings
tests:
  - name: usage rises between listings
    steps:
      - at: 2026-11-23T02:00:00Z
        cards: [{id: "1", status: active, flow_used: 10, flow_left: 90, flow_total: 100}]
      - after: 1h
        cards: [{id: "1", status: active, flow_used: 60, flow_left: 40, flow_total: 100}]
        expect: [{kind: firing, rule: busy_today, id: "1"}]
`), 0o600))
	// What the daemon's evaluation does with the same two listings.
	set, err := LoadFiles([]string{filepath.Join(dir, "r.yaml")}, LoadOptions{})
	require.NoError(t, err)
	var state State
	snap := map[string]fleet.Card{}
	hist := map[string]fleet.History{}
	var daemon []string
	for i, used := range []float64{10, 60} {
		c := fleet.Card{ID: "1", Status: "active", FlowUsed: used, FlowLeft: 100 - used, FlowTotal: 100}
		out := set.Evaluate(Input{Provider: "ali", Now: time.Date(2026, 11, 23, 2+i, 0, 0, 0, time.UTC), State: state, SnapshotUsage: true, ClockEvery: time.Hour,
			History: func(_, id string) fleet.History { return hist[id] },
			Cards:   listing([]fleet.Card{c}, snap, func(c *fleet.Card) string { return c.ID }, missingIn(state, fleet.EntityCard))})
		state.Apply(&out)
		for k, h := range out.History {
			hist[k.ID] = h
		}
		keep([]fleet.Card{c}, snap, nil, func(c *fleet.Card) string { return c.ID })
		daemon = append(daemon, kinds(out.Events)...)
	}
	require.Equal(t, []string{"firing busy_today 1"}, daemon, "the daemon fires")
	res, err := RunTestFile(filepath.Join(dir, "t.yaml"))
	require.NoError(t, err)
	require.Empty(t, res[0].Failures, "rules test must produce what the daemon produces:\n%s", strings.Join(res[0].Failures, "\n"))
}

// Held: events carry unknown values as null (values and prev), and
// summaries say "unknown".
func TestAttackEventsCarryUnknownAsNull(t *testing.T) {
	h := attackHarness(t, `rules:
  - {name: act, on: card, when: 'status == "active"', summary: 'left {{ .flow_left }}'}
  - {name: imei, on: card, when: 'changed("imei")', summary: 'left {{ .flow_left }} was {{ .prev.flow_left }}'}
`)
	ev := h.cycle(t0, card("1", unknownLeft))
	require.Len(t, ev, 1)
	require.Contains(t, string(ev[0].Values), `"flow_left":null`)
	require.Contains(t, string(ev[0].Values), `"flow_total":100`)
	require.Equal(t, "left unknown", ev[0].Summary)
	ev = h.cycle(t0.Add(time.Minute), card("1", func(c *fleet.Card) { unknownLeft(c); c.IMEI = "222" }))
	require.Len(t, ev, 1)
	require.Contains(t, string(ev[0].Prev), `"flow_left":null`)
	require.Equal(t, "left unknown was unknown", ev[0].Summary)
}

// Regression (a hostile tester found it).
// Over GSL daily data, usage_today() reads today — a day the provider has
// not published, and never will before midnight — as 0 MB, instead of
// unknown: `history_source() == "daily" && usage_today() < 1` ("no data
// today") fires for every GSL card that used plenty.
func TestAttackUsageTodayOverDailyDataReadsZero(t *testing.T) {
	today := fleet.DayOf(t0)
	h := fleet.History{Source: fleet.HistoryDaily}
	for d := today - 5; d < today; d++ {
		h.Set(d, 500)
	}
	set, err := Parse("r.yaml", []byte(`rules:
  - {name: idle_today, on: card, when: 'history_source() == "daily" && usage_today() < 1'}
`), LoadOptions{})
	require.NoError(t, err)
	c := card("1", nil)
	out := set.Evaluate(Input{Provider: "hw", Now: t0, HistoryThrough: today - 1,
		History: func(string, string) fleet.History { return h },
		Cards:   Changes[fleet.Card]{Changed: slices.Values([]Change[fleet.Card]{{Cur: &c}})}})
	require.Empty(t, kinds(out.Events), "today is not published: it is not 0 MB")
}
