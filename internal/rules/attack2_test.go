package rules

// Second hostile round: queries against rules, windows, feature interactions.

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/fleet"
)

// A query over GSL daily data that calls usage_today(): the rule with the
// same expression does not fire (today is unknown with daily data), but
// the query matches, reading the unknown figure as 0 MB.
func TestAttack2QueryUsageTodayOverDailyDataMatches(t *testing.T) {
	// Regression: a hostile tester found this.
	const expr = `history_source() == "daily" && usage_today() < 1`
	today := fleet.DayOf(t0)
	h := fleet.History{Source: fleet.HistoryDaily}
	for d := today - 5; d < today; d++ {
		h.Set(d, 500)
	}
	read := func(string, string) fleet.History { return h }
	c := card("1", nil)

	set, err := Parse("r.yaml", []byte("rules:\n  - {name: idle_today, on: card, when: '"+expr+"'}\n"), LoadOptions{})
	require.NoError(t, err)
	out := set.Evaluate(Input{Provider: "hw", Now: t0, HistoryThrough: today - 1, History: read,
		Cards: Changes[fleet.Card]{Changed: slices.Values([]Change[fleet.Card]{{Cur: &c}})}})
	require.Empty(t, kinds(out.Events), "the rule holds (today is unknown)")

	q, err := NewQuery(fleet.EntityCard, expr, t0)
	require.NoError(t, err)
	q.ReadHistory(read, today-1)
	match, err := q.MatchCard(&c)
	require.NoError(t, err)
	require.False(t, match, "query matched a card that used 500 MB a day: usage_today() unknown read as 0")
}

// usage_last("24h") on listing-derived history ("whole days, today
// included") should be today alone; it also counts yesterday.
func TestAttack2UsageLastWindowOneDayTooLong(t *testing.T) {
	// Regression: a hostile tester found this.
	today := fleet.DayOf(t0)
	h := fleet.History{Source: fleet.HistorySnapshot}
	h.Set(today-1, 100) // yesterday
	h.Set(today, 1)     // today
	q, err := NewQuery(fleet.EntityCard, `usage_last("24h") > 50`, t0)
	require.NoError(t, err)
	q.ReadHistory(func(string, string) fleet.History { return h }, 0)
	c := card("1", nil)
	match, err := q.MatchCard(&c)
	require.NoError(t, err)
	require.False(t, match, `usage_last("24h") counted yesterday's 100 MB: the window is 2 days`)
}

// Held: a firing alert whose value goes unknown neither resolves when
// keep_firing_for runs out, nor re-notifies under repeat, across a
// billing-month boundary with rearm: cycle.
func TestAttack2HeldThroughKeepFiringForAndMonthEnd(t *testing.T) {
	h := attackHarness(t, `rules:
  - {name: low, on: card, when: 'flow_left < 10', keep_firing_for: 30m, repeat: 1h, rearm: cycle}
`)
	start := time.Date(2026, 11, 30, 14, 0, 0, 0, time.UTC) // 22:00 China time, Nov 30
	low := func(c *fleet.Card) { c.FlowLeft = 5 }
	require.Empty(t, h.cycle(start, card("1", nil)))
	require.Equal(t, []string{"firing low 1"}, kinds(h.cycle(start.Add(10*time.Minute), card("1", low))))
	// condition stops: keep_firing_for starts
	require.Empty(t, kinds(h.cycle(start.Add(20*time.Minute), card("1", nil))))
	// unknown for hours, past keep_firing_for, past repeat, past month end
	for i := 1; i <= 8; i++ {
		require.Empty(t, kinds(h.cycle(start.Add(20*time.Minute+time.Duration(i)*time.Hour), card("1", unknownLeft))), "hour %d", i)
	}
	// known again, low: a new billing cycle (December): notify again
	ev := kinds(h.cycle(start.Add(9*time.Hour), card("1", low)))
	t.Logf("back low in December: %v", ev)
	require.NotContains(t, ev, "resolved low 1")
}

// `watcher rules test` with clock_every: 0, null values and history: listings.
func TestAttack2RuleTestNullsAndClockEveryZero(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "r.yaml"), []byte(`rules:
  - {name: low, on: card, when: 'flow_left < 10'}
  - {name: busy, on: card, when: 'usage_today() > 20'}
  - {name: gone, on: card, when: removed}
  - {name: swap, on: card, when: 'changed("imei") && prev.imei != ""'}
`), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "t.yaml"), []byte(`rule_files: [r.yaml]
clock_every: 0
history: listings
tests:
  - name: nulls
    steps:
      - cards: [{id: "1", status: active, flow_left: 5, flow_used: 10, imei: "a"}]
        expect: [{kind: firing, rule: low, id: "1"}]
      - after: 10m
        cards: [{id: "1", status: active, flow_left: null, flow_used: null, imei: null}]
      - after: 10m
        cards: [{id: "1", status: active, flow_left: 50, flow_used: 100, imei: "b"}]
        expect: [{kind: resolved, rule: low, id: "1"}]
      - after: 10m
        cards: []
      - after: 10m
        cards: [{id: "1", status: active, flow_left: 50, flow_used: 100, imei: "b"}]
      - after: 10m
        cards: []
      - after: 10m
        cards: []
        expect: [{kind: transition, rule: gone, id: "1"}]
`), 0o644))
	res, err := RunTestFile(filepath.Join(dir, "t.yaml"))
	require.NoError(t, err)
	for _, r := range res {
		require.Empty(t, r.Failures, r.Name)
	}
}

// Observation (not one of the six promises): a rule deleted by a reload
// while its alert is firing ends the alert with no resolved event, so
// receivers (Slack thread, Alertmanager, CRM) keep it open for ever.
func TestAttack2ReloadDropsFiringAlertSilently(t *testing.T) {
	h := attackHarness(t, "rules:\n  - {name: low, on: card, when: 'flow_left < 10'}\n")
	low := func(c *fleet.Card) { c.FlowLeft = 5 }
	require.Empty(t, h.cycle(t0, card("1", nil)))
	require.Equal(t, []string{"firing low 1"}, kinds(h.cycle(t0.Add(time.Minute), card("1", low))))
	set, err := Parse("r.yaml", []byte("rules:\n  - {name: other, on: card, when: 'flow_left < 1'}\n"), LoadOptions{})
	require.NoError(t, err)
	h.set = set
	ev := kinds(h.cycle(t0.Add(2*time.Minute), card("1", low)))
	require.Empty(t, h.state.Alerts)
	t.Logf("events when the firing rule was deleted: %v", ev)
}
