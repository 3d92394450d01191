package rules

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/fleet"
)

const testRules = `rules:
  - name: card_low_flow
    on: card
    when: status == "active" && flow_left < 10
    for: 30m
    repeat: 24h
    summary: 'Card {{ .iccid }} has {{ .flow_left }} MB left'
  - name: card_suspended
    on: card
    when: prev.status == "active" && status == "suspended"
    severity: critical
    summary: 'Card {{ .iccid }}: {{ .prev.status }} → {{ .status }}'
  - name: sim_swap
    on: card
    when: changed("imei") && prev.imei != ""
  - name: pool_overdraft
    on: pool
    when: flow_left < 0
    repeat: 6h
  - name: expiring
    on: card
    when: days_until(expire_time) < 7
`

type harness struct {
	t     *testing.T
	set   *Set
	state State
	cards map[string]fleet.Card
	// history, when set, is every card's usage history.
	history func(entity, id string) fleet.History
}

func newHarness(t *testing.T) *harness {
	set, err := Parse("r.yaml", []byte(testRules), LoadOptions{})
	require.NoError(t, err)
	return &harness{t: t, set: set, cards: map[string]fleet.Card{}}
}

// alert returns the active alert of a rule on a card.
func (h *harness) alert(rule, id string) *Alert {
	return h.state.Alerts[AlertKey(rule, fleet.EntityCard, id)]
}

// cycle feeds the cards as a complete listing at now, as the poller does,
// and returns the events. It checks that Evaluate leaves its input alone.
func (h *harness) cycle(now time.Time, cards ...fleet.Card) []event.Event {
	before, err := json.Marshal(h.state.Alerts)
	require.NoError(h.t, err)
	in := Input{Provider: "hw", Now: now, State: h.state, Cards: listing(cards, h.cards, func(c *fleet.Card) string { return c.ID }, missingIn(h.state, fleet.EntityCard)), History: h.history}
	out := h.set.Evaluate(in)
	require.Empty(h.t, out.Errors)
	after, err := json.Marshal(h.state.Alerts)
	require.NoError(h.t, err)
	require.JSONEq(h.t, string(before), string(after), "Evaluate changed the state it was given")
	h.state.Apply(&out)
	keep(cards, h.cards, out.RemovedCards, func(c *fleet.Card) string { return c.ID })
	return out.Events
}

func kinds(events []event.Event) []string {
	var out []string
	for _, e := range events {
		out = append(out, e.Kind+" "+e.Rule+" "+e.EntityID)
	}
	return out
}

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func card(id string, mut func(*fleet.Card)) fleet.Card {
	c := fleet.Card{Provider: "hw", ID: id, ICCID: "8986" + id, Status: "active", FlowLeft: 50, FlowUsed: 50, FlowTotal: 100, IMEI: "111", ExpireTime: t0.AddDate(1, 0, 0)}
	if mut != nil {
		mut(&c)
	}
	return c
}

func TestConditionLifecycle(t *testing.T) {
	h := newHarness(t)
	low := func(c *fleet.Card) { c.FlowLeft = 5 }
	require.Empty(t, h.cycle(t0, card("1", nil)))
	require.Empty(t, h.cycle(t0.Add(10*time.Minute), card("1", low)), "pending during for")
	require.Equal(t, StatePending, h.alert("card_low_flow", "1").State)
	// Unchanged card: `for` passes in Finish.
	ev := h.cycle(t0.Add(45*time.Minute), card("1", low))
	require.Equal(t, []string{"firing card_low_flow 1"}, kinds(ev))
	require.Equal(t, "Card 89861 has 5 MB left", ev[0].Summary)
	require.Equal(t, t0.Add(10*time.Minute), ev[0].StartsAt)
	require.Empty(t, h.cycle(t0.Add(2*time.Hour), card("1", low)), "no repeat within 24h")
	rep := h.cycle(t0.Add(25*time.Hour), card("1", low))
	require.Equal(t, []string{"firing card_low_flow 1"}, kinds(rep))
	require.NotEqual(t, ev[0].ID, rep[0].ID, "a repeat is a new notification")
	res := h.cycle(t0.Add(26*time.Hour), card("1", nil))
	require.Equal(t, []string{"resolved card_low_flow 1"}, kinds(res))
	require.Equal(t, t0.Add(26*time.Hour), res[0].EndsAt)
	require.Empty(t, h.state.Alerts)
}

func TestPendingThatStopsHoldingIsSilent(t *testing.T) {
	h := newHarness(t)
	h.cycle(t0, card("1", nil))
	h.cycle(t0.Add(time.Minute), card("1", func(c *fleet.Card) { c.FlowLeft = 5 }))
	require.Empty(t, h.cycle(t0.Add(2*time.Minute), card("1", nil)))
	require.Empty(t, h.state.Alerts)
}

func TestTransitions(t *testing.T) {
	h := newHarness(t)
	susp := func(c *fleet.Card) { c.Status = "suspended" }
	require.Empty(t, h.cycle(t0, card("1", susp)), "first sight fires no transition")
	require.Empty(t, h.cycle(t0.Add(time.Minute), card("2", nil), card("1", susp)))
	ev := h.cycle(t0.Add(2*time.Minute), card("2", susp), card("1", susp))
	require.Equal(t, []string{"transition card_suspended 2"}, kinds(ev))
	require.Equal(t, "Card 89862: active → suspended", ev[0].Summary)
	require.JSONEq(t, string(mustJSON(card("2", nil))), string(ev[0].Prev))
	require.Empty(t, h.cycle(t0.Add(3*time.Minute), card("2", susp), card("1", susp)), "fires once")

	swap := h.cycle(t0.Add(4*time.Minute), card("2", func(c *fleet.Card) { c.Status = "suspended"; c.IMEI = "222" }), card("1", susp))
	require.Equal(t, []string{"transition sim_swap 2"}, kinds(swap))
}

// A card leaves only when two complete listings in a row lack it: one
// absence (offset paging drift, a provider hiccup) resolves nothing.
func TestGoneCardResolvesOnSecondAbsence(t *testing.T) {
	h := newHarness(t)
	h.set.Rules[0].For = 0
	low := card("1", func(c *fleet.Card) { c.FlowLeft = 1 })
	require.Equal(t, []string{"firing card_low_flow 1"}, kinds(h.cycle(t0, low)))
	require.Empty(t, h.cycle(t0.Add(time.Hour)), "absent once")
	require.True(t, h.state.Missing[EntityKey(fleet.EntityCard, "1")])
	require.Empty(t, h.cycle(t0.Add(2*time.Hour), low), "back: nothing happened")
	require.Empty(t, h.state.Missing)
	require.Empty(t, h.cycle(t0.Add(3*time.Hour)), "absent once again")
	require.Equal(t, []string{"resolved card_low_flow 1"}, kinds(h.cycle(t0.Add(4*time.Hour))))
	require.Empty(t, h.cards)
	require.Empty(t, h.state.Missing)
}

func TestClockRuleOnUnchangedCard(t *testing.T) {
	h := newHarness(t)
	c1 := card("1", func(c *fleet.Card) { c.ExpireTime = t0.AddDate(0, 0, 10) })
	require.Empty(t, h.cycle(t0, c1))
	require.Equal(t, []string{"firing expiring 1"}, kinds(h.cycle(t0.AddDate(0, 0, 4), c1)))
}

func TestEventIDsDeterministic(t *testing.T) {
	run := func() []event.Event {
		h := newHarness(t)
		h.set.Rules[0].For = 0
		h.cycle(t0, card("1", nil))
		return h.cycle(t0.Add(time.Hour), card("1", func(c *fleet.Card) { c.FlowLeft = 2; c.Status = "suspended" }), card("2", func(c *fleet.Card) { c.FlowLeft = 2 }))
	}
	a, b := run(), run()
	require.Len(t, a, 2)
	require.Equal(t, a, b)
	require.NotEqual(t, a[0].ID, a[1].ID)
}

func TestPoolOverdraftRepeat(t *testing.T) {
	set, err := Parse("r.yaml", []byte(testRules), LoadOptions{})
	require.NoError(t, err)
	var state State
	p := fleet.Pool{ID: "9", FlowTotal: 60, FlowUsed: 102.59, FlowLeft: -42.59}
	run := func(now time.Time, first bool) []event.Event {
		in := Input{Provider: "hw", Now: now, State: state, Pools: Changes[fleet.Pool]{Same: Pointers([]*fleet.Pool{&p})}}
		if first {
			in.Pools = Changes[fleet.Pool]{Changed: slices.Values([]Change[fleet.Pool]{{Cur: &p}})}
		}
		out := set.Evaluate(in)
		state.Apply(&out)
		return out.Events
	}
	require.Equal(t, []string{"firing pool_overdraft 9"}, kinds(run(t0, true)))
	require.Empty(t, run(t0.Add(5*time.Hour), false))
	require.Equal(t, []string{"firing pool_overdraft 9"}, kinds(run(t0.Add(6*time.Hour), false)))
}

func TestHistoryHelpers(t *testing.T) {
	set, err := Parse("r.yaml", []byte(`rules:
  - {name: runs_out, on: card, when: 'days_to_exhaust() < 7.5'}
  - {name: before_cycle_end, on: card, when: 'exhausts_before_cycle_end()'}
  - {name: heavy_week, on: card, when: 'usage_last("168h") == 64 && usage_last("24h") == 4 && daily_avg(7) == 10'}
  - {name: today, on: card, when: 'usage_today() > 3 && history_source() == "snapshot" && history_days() == 8'}
`), LoadOptions{})
	require.NoError(t, err)
	now := time.Date(2026, 11, 23, 4, 0, 0, 0, time.UTC) // noon on the 23rd in China
	today := fleet.DayOf(now)
	h := fleet.History{Source: fleet.HistorySnapshot}
	for d := today - 7; d < today; d++ {
		h.Set(d, 10)
	}
	h.Set(today, 4)
	cur := card("1", func(c *fleet.Card) { c.FlowLeft = 70 })
	out := set.Evaluate(Input{Provider: "ali", Now: now, Cards: Changes[fleet.Card]{Changed: slices.Values([]Change[fleet.Card]{{Cur: &cur}})},
		History: func(entity, id string) fleet.History {
			require.Equal(t, fleet.EntityCard, entity)
			return h
		}})
	ev := out.Events
	require.Empty(t, out.Errors)
	// 70 MB left at 10 MB a day: 7 days, the 30th, before the month ends.
	require.ElementsMatch(t, []string{"firing runs_out 1", "firing before_cycle_end 1", "firing heavy_week 1", "firing today 1"}, kinds(ev))

	// No history: never exhausts.
	out = set.Evaluate(Input{Provider: "ali", Now: now, Cards: Changes[fleet.Card]{Changed: slices.Values([]Change[fleet.Card]{{Cur: &cur}})}})
	require.Empty(t, out.Events)
}

func TestUsageLastNeedsAWindow(t *testing.T) {
	_, err := Parse("r.yaml", []byte("rules:\n  - {name: x, on: card, when: 'usage_last(\"a day\") > 1'}\n"), LoadOptions{})
	require.ErrorContains(t, err, `usage_last() takes a window in quotes, e.g. usage_last("24h")`)
}

func TestHysteresisAndRearm(t *testing.T) {
	set, err := Parse("r.yaml", []byte(`rules:
  - name: keep
    on: card
    when: flow_left < 10
    keep_firing_for: 1h
  - name: band
    on: card
    when: flow_left < 10
    resolve_when: flow_left > 20
  - name: once_a_cycle
    on: card
    when: flow_left < 10
    rearm: cycle
`), LoadOptions{})
	require.NoError(t, err)
	h := &harness{t: t, set: set, cards: map[string]fleet.Card{}}
	left := func(v float64) fleet.Card { return card("1", func(c *fleet.Card) { c.FlowLeft = v }) }
	at := time.Date(2026, 11, 20, 4, 0, 0, 0, time.UTC)
	step := func(d time.Duration, v float64) []string { at = at.Add(d); return kinds(h.cycle(at, left(v))) }

	require.ElementsMatch(t, []string{"firing keep 1", "firing band 1", "firing once_a_cycle 1"}, step(0, 5))
	// Hovering just above the threshold: keep and band stay firing.
	require.Equal(t, []string{"resolved once_a_cycle 1"}, step(10*time.Minute, 12))
	// Back under: once_a_cycle does not notify again this billing cycle.
	require.Empty(t, step(10*time.Minute, 8))
	require.Empty(t, step(10*time.Minute, 15))
	// keep_firing_for runs out an hour after the condition last stopped holding.
	require.Empty(t, step(30*time.Minute, 15))
	require.Equal(t, []string{"resolved keep 1"}, step(31*time.Minute, 15))
	// band resolves only past resolve_when.
	require.Equal(t, []string{"resolved band 1"}, step(10*time.Minute, 25))
	// A new billing cycle re-arms once_a_cycle.
	at = time.Date(2026, 12, 1, 4, 0, 0, 0, time.UTC)
	require.ElementsMatch(t, []string{"firing keep 1", "firing band 1", "firing once_a_cycle 1"}, step(0, 5))
}

// A value the provider left out is unknown, never 0: a rule that reads it
// neither fires nor resolves, and an alert it has waits, however long.
func TestUnknownValuesNeitherFireNorResolve(t *testing.T) {
	h := newHarness(t)
	h.set.Rules[0].For = 30 * time.Minute
	unknownLeft := func(c *fleet.Card) { c.FlowLeft, c.Unknown = 0, fleet.CardField("flow_left") }
	require.Empty(t, h.cycle(t0, card("1", unknownLeft)), "flow_left unknown is not 0")
	require.Empty(t, h.state.Alerts)

	low := func(c *fleet.Card) { c.FlowLeft = 5 }
	require.Empty(t, h.cycle(t0.Add(10*time.Minute), card("1", low)))
	require.Equal(t, StatePending, h.alert("card_low_flow", "1").State)
	// Unknown while pending: `for` does not run on, even across cycles
	// where the card does not change.
	require.Empty(t, h.cycle(t0.Add(20*time.Minute), card("1", unknownLeft)))
	require.Empty(t, h.cycle(t0.Add(3*time.Hour), card("1", unknownLeft)))
	require.Equal(t, StatePending, h.alert("card_low_flow", "1").State)
	require.True(t, h.alert("card_low_flow", "1").Held)

	// Known and low again: `for` counts from the first time it held.
	ev := h.cycle(t0.Add(3*time.Hour+time.Minute), card("1", low))
	require.Equal(t, []string{"firing card_low_flow 1"}, kinds(ev))
	require.False(t, h.alert("card_low_flow", "1").Held)
	// Firing, then unknown: no resolution, no repeat.
	require.Empty(t, h.cycle(t0.Add(4*time.Hour), card("1", unknownLeft)))
	require.Empty(t, h.cycle(t0.Add(30*time.Hour), card("1", unknownLeft)))
	require.Equal(t, StateFiring, h.alert("card_low_flow", "1").State)
	require.Equal(t, []string{"resolved card_low_flow 1"}, kinds(h.cycle(t0.Add(31*time.Hour), card("1", nil))))
}

func TestUnknownStatusFiresNoTransition(t *testing.T) {
	set, err := Parse("r.yaml", []byte(`rules:
  - {name: not_active, on: card, when: 'status != "active"'}
  - {name: suspended, on: card, when: 'prev.status == "active" && status == "suspended"'}
  - {name: status_changed, on: card, when: 'changed("status")'}
  - {name: code_changed, on: card, when: 'changed("status_code")'}
  - {name: no_left, on: card, when: '!known("flow_left")', summary: 'card {{ .id }}: {{ .flow_left }} MB left'}
  - {name: runs_out, on: card, when: 'days_to_exhaust() < 3'}
`), LoadOptions{})
	require.NoError(t, err)
	h := &harness{t: t, set: set, cards: map[string]fleet.Card{}}
	require.Empty(t, h.cycle(t0, card("1", nil)))
	weird := func(c *fleet.Card) { c.Status, c.StatusCode, c.Unknown = "", 99, fleet.CardField("status") }
	ev := h.cycle(t0.Add(time.Minute), card("1", weird))
	require.Equal(t, []string{"transition code_changed 1"}, kinds(ev), "only the raw code is known to have changed")
	ev = h.cycle(t0.Add(2*time.Minute), card("1", func(c *fleet.Card) { c.Status, c.StatusCode = "suspended", 99 }))
	require.Equal(t, []string{"firing not_active 1"}, kinds(ev), "unknown → suspended: no transition, the previous status is not known")

	ev = h.cycle(t0.Add(3*time.Minute), card("1", func(c *fleet.Card) {
		c.Status, c.StatusCode, c.FlowLeft, c.Unknown = "suspended", 99, 0, fleet.CardField("flow_left")
	}))
	require.Equal(t, []string{"firing no_left 1"}, kinds(ev), "runs_out reads flow_left through days_to_exhaust()")
	require.Equal(t, "card 1: unknown MB left", ev[0].Summary)
	var values map[string]any
	require.NoError(t, json.Unmarshal(ev[0].Values, &values))
	require.Contains(t, values, "flow_left")
	require.Nil(t, values["flow_left"], "events carry an unknown value as null")
}
