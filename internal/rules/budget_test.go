package rules

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/fleet"
)

// The hostile tester's expressions.
const (
	attackNested  = `let a = 1..1000; !all(a, {all(a, {all(a, {true})})})`
	attackDynamic = `all(tags, {all(tags, {all(tags, {true})})})` // 100 tags: 10^6 steps
	attackReduce  = `reduce(1..10000, #acc + "xxxxxxxxxxxxxxxx", "") != ""`
)

// attackDoubling doubles a string n times with let: 4·2^n bytes.
func attackDoubling(n int) string {
	var b strings.Builder
	b.WriteString(`let v0 = "xxxx"; `)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "let v%d = v%d + v%d; ", i, i-1, i-1)
	}
	fmt.Fprintf(&b, "len(v%d) > 0", n)
	return b.String()
}

func manyTags(c *fleet.Card) {
	c.Tags = nil
	for i := range 100 {
		c.Tags = append(c.Tags, fmt.Sprint("t", i))
	}
}

func TestRulesCheckRefusesProvableLoops(t *testing.T) {
	for _, tc := range []struct {
		name, rule string
		want       string // "" accepted; else the problem's file:line:col prefix
	}{
		{"nested literal ranges", "    when: '" + attackNested + "'\n", "b.yaml:4:30: rule r: these nested loops take up to 1001001000 steps"},
		{"nested literal arrays", "    when: 'any([1,2,3,4,5,6,7,8,9,10], {any(1..100, {any(1..100, {# == flow_left})})})'\n", "b.yaml:4:12: rule r: these nested loops"},
		{"in resolve_when", "    when: flow_left < 10\n    resolve_when: '" + attackNested + "'\n", "b.yaml:5:38: rule r: resolve_when: these nested loops"},
		{"dynamic size: left to run time", "    when: '" + attackDynamic + "'\n", ""},
		{"small literal loops", "    when: 'any(1..100, {any(1..100, {# == flow_left})})'\n", ""},
		{"repeat is disabled", "    when: 'repeat(status, 3) != \"\"'\n", "b.yaml:4:12: rule r: unknown name repeat"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("b.yaml", []byte("rules:\n  - name: r\n    on: card\n"+tc.rule), LoadOptions{})
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

// evaluations counts, through the history reader, the entities a rule
// calling history_days() was evaluated on.
type evaluations struct{ n int }

func (e *evaluations) read(string, string) fleet.History { e.n++; return fleet.History{} }

func TestRuleOverBudgetIsDisabledForTheCycleAndHeld(t *testing.T) {
	const broken = `rules:
  - {name: big, on: card, when: 'history_days() >= 0 && flow_left < 10 && ` + attackDynamic + `'}
  - {name: low, on: card, when: 'flow_left < 10'}
`
	const fixed = `rules:
  - {name: big, on: card, when: 'history_days() >= 0 && flow_left < 10'}
  - {name: low, on: card, when: 'flow_left < 10'}
`
	set, err := Parse("big.yaml", []byte(broken), LoadOptions{})
	require.NoError(t, err)
	low := func(c *fleet.Card) { c.FlowLeft = 5 }
	var cards []*fleet.Card
	for i := range 1000 {
		c := card(fmt.Sprint(i), low)
		cards = append(cards, &c)
	}
	var state State
	run := func(set *Set, n int, ch Changes[fleet.Card]) (Output, *evaluations) {
		t.Helper()
		ev := &evaluations{}
		out := set.Evaluate(Input{Provider: "hw", Now: t0.Add(time.Duration(n) * time.Minute), State: state, Cards: ch, History: ev.read})
		state.Apply(&out)
		return out, ev
	}

	// Cycle 1: few tags, both rules fire on every card.
	out, _ := run(set, 0, Changes[fleet.Card]{Changed: slices.Values(changed(cards))})
	require.Empty(t, out.Errors)
	require.Len(t, out.Events, 2000)

	// Cycle 2: 100 tags on every card: big goes over its budget on the
	// first card and is not evaluated on the others.
	for _, c := range cards {
		manyTags(c)
	}
	out, ev := run(set, 1, Changes[fleet.Card]{Changed: slices.Values(changed(cards))})
	require.Equal(t, 1, ev.n, "big was evaluated again after it failed")
	require.Len(t, out.Errors, 1)
	require.ErrorIs(t, out.Errors[0], ErrBudget)
	require.Contains(t, out.Errors[0].Error(), "rule big (big.yaml:2)")
	require.Len(t, out.Events, 1)
	e := out.Events[0]
	require.Equal(t, []string{"firing rule_failed big"}, kinds(out.Events))
	require.Equal(t, EntityRule, e.Entity)
	require.Contains(t, e.Summary, "rule big (big.yaml:2) is not evaluated: on card 0: expression exceeded its budget: ") // steps or time, whichever comes first
	for _, c := range cards {
		a := state.Alerts[AlertKey("big", fleet.EntityCard, c.ID)]
		require.NotNil(t, a, "big's alert on %s was dropped", c.ID)
		require.Equal(t, StateFiring, a.State)
	}

	// Cycle 3, still broken, unchanged cards re-evaluated (clock rule):
	// no second rule_failed event; nothing resolves.
	out, ev = run(set, 2, Changes[fleet.Card]{Same: Pointers(cards)})
	require.Equal(t, 1, ev.n)
	require.Len(t, out.Errors, 1)
	require.Empty(t, out.Events)

	// The rule set is fixed: the rule evaluates again, its alerts carry
	// on firing and rule_failed resolves.
	set, err = Parse("big.yaml", []byte(fixed), LoadOptions{})
	require.NoError(t, err)
	out, ev = run(set, 3, Changes[fleet.Card]{Same: Pointers(cards)})
	require.Empty(t, out.Errors)
	require.Equal(t, len(cards), ev.n)
	require.Equal(t, []string{"resolved rule_failed big"}, kinds(out.Events))
	require.Equal(t, e.StartsAt, out.Events[0].StartsAt)
	require.NotContains(t, state.Alerts, AlertKey(RuleFailed, EntityRule, "big"))
	require.Equal(t, StateFiring, state.Alerts[AlertKey("big", fleet.EntityCard, "0")].State)
}

// A rule_failed alert of a rule that left the set resolves.
func TestRuleFailedResolvesWhenTheRuleIsRemoved(t *testing.T) {
	set, err := Parse("r.yaml", []byte("rules:\n  - {name: big, on: card, when: '"+attackDynamic+"'}\n"), LoadOptions{})
	require.NoError(t, err)
	c := card("1", manyTags)
	out := set.Evaluate(Input{Provider: "hw", Now: t0, Cards: Changes[fleet.Card]{Changed: slices.Values(changed([]*fleet.Card{&c}))}})
	require.Equal(t, []string{"firing rule_failed big"}, kinds(out.Events))
	var state State
	state.Apply(&out)

	set, err = Parse("r.yaml", []byte("rules:\n  - {name: other, on: card, when: 'flow_left < 1'}\n"), LoadOptions{})
	require.NoError(t, err)
	out = set.Evaluate(Input{Provider: "hw", Now: t0.Add(time.Minute), State: state, Cards: Changes[fleet.Card]{Same: Pointers([]*fleet.Card{&c})}})
	require.Equal(t, []string{"resolved rule_failed big"}, kinds(out.Events))
}

func changed(cards []*fleet.Card) []Change[fleet.Card] {
	out := make([]Change[fleet.Card], len(cards))
	for i, c := range cards {
		out[i] = Change[fleet.Card]{Cur: c}
	}
	return out
}

// String growth stops at the budget's byte cap, not at the attacker's
// gigabytes.
func TestStringGrowthAbortsWithErrBudget(t *testing.T) {
	for _, tc := range []struct{ name, expr, reason string }{
		{"reduce concatenation", attackReduce, "bytes of strings"},
		{"let doubling", attackDoubling(26), "a string longer than"}, // 256 MiB unbounded
		{"join separator", `let s = "` + strings.Repeat("x", 1000) + `"; join(map(1..5000, {""}), s) != ""`, "a string longer than"},
		{"replace empty", `let s = "` + strings.Repeat("x", 1000) + `"; replace(s, "", s) != ""`, "a string longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := NewQuery(fleet.EntityCard, tc.expr, t0)
			require.NoError(t, err)
			c := card("1", nil)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err = q.MatchCard(&c)
			runtime.ReadMemStats(&after)
			require.ErrorIs(t, err, ErrBudget)
			require.Contains(t, err.Error(), tc.reason)
			require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(16<<20), "allocated past the budget")
		})
	}
}

func TestEvaluateStopsWhenTheContextEnds(t *testing.T) {
	set, err := Parse("r.yaml", []byte("rules:\n  - {name: r, on: card, when: 'history_days() >= 0 && any(tags, {# == \"x\"})'}\n"), LoadOptions{})
	require.NoError(t, err)
	var cards []*fleet.Card
	for i := range 10_000 {
		c := card(fmt.Sprint(i), nil)
		cards = append(cards, &c)
	}
	t.Run("cancelled before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		ev := &evaluations{}
		out := set.Evaluate(Input{Ctx: ctx, Provider: "hw", Now: t0, Cards: Changes[fleet.Card]{Changed: slices.Values(changed(cards))}, History: ev.read})
		require.ErrorIs(t, out.Stopped, context.Canceled)
		require.Zero(t, ev.n)
		require.Empty(t, out.Events)
	})
	t.Run("cancelled during", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ev := &evaluations{}
		read := func(e, id string) fleet.History {
			if ev.n == 100 {
				cancel() // a SIGTERM in the middle of the cycle
			}
			return ev.read(e, id)
		}
		out := set.Evaluate(Input{Ctx: ctx, Provider: "hw", Now: t0, Cards: Changes[fleet.Card]{Changed: slices.Values(changed(cards))}, History: read})
		require.ErrorIs(t, out.Stopped, context.Canceled)
		require.Less(t, ev.n, 400, "evaluation went on after the context ended")
		require.ErrorIs(t, out.Errors[len(out.Errors)-1], context.Canceled)
	})
	t.Run("cancelled inside one evaluation", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		q, err := NewQuery(fleet.EntityCard, `any(1..50000, {# < 0})`, t0)
		require.NoError(t, err)
		q.SetContext(ctx)
		c := card("1", nil)
		_, err = q.MatchCard(&c)
		require.ErrorIs(t, err, context.Canceled)
	})
}

func TestQueryBudget(t *testing.T) {
	for _, tc := range []struct {
		name, expr string
		refused    string // at NewQuery
		budget     bool   // aborted by MatchCard
	}{
		{"nested literal ranges", attackNested, "query:1:19: these nested loops take up to", false},
		{"dynamic nested loops", attackDynamic, "", true},
		{"reduce concatenation", attackReduce, "", true},
		{"let doubling", attackDoubling(20), "", true},
		{"a plain query", `flow_left < 100 && any(tags, {# startsWith "t1"})`, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := NewQuery(fleet.EntityCard, tc.expr, t0)
			if tc.refused != "" {
				require.ErrorContains(t, err, tc.refused)
				return
			}
			require.NoError(t, err)
			c := card("1", manyTags)
			match, err := q.MatchCard(&c)
			if !tc.budget {
				require.NoError(t, err)
				require.True(t, match)
				return
			}
			require.ErrorIs(t, err, ErrBudget)
			// Later matches fail at once with the same error: the caller
			// must stop, and a caller that does not spends nothing more.
			_, again := q.MatchCard(&c)
			require.Equal(t, err, again)
		})
	}
	t.Run("pool", func(t *testing.T) {
		q, err := NewQuery(fleet.EntityPool, `reduce(1..10000, #acc + name, "") != ""`, t0)
		require.NoError(t, err)
		_, err = q.MatchPool(&fleet.Pool{ID: "p", Name: "pool-name-xxxxxxxxxx"})
		require.ErrorIs(t, err, ErrBudget)
	})
}

// Metering keeps a rule's static type: type errors are still caught when
// the rule is loaded, and loops still type their predicate.
func TestMeteringKeepsTypes(t *testing.T) {
	for _, when := range []string{
		`map(tags, {# + "x"}) + 1 > 0`,
		`any(tags, {# + 1})`,
		`status + "x" > 5`,
	} {
		_, err := Parse("r.yaml", []byte("rules:\n  - {name: r, on: card, when: '"+when+"'}\n"), LoadOptions{})
		require.Error(t, err, when)
	}
	_, err := Parse("r.yaml", []byte("rules:\n  - {name: r, on: card, when: 'join(map(tags, {upper(#)}), \",\") contains \"A\"'}\n"), LoadOptions{})
	require.NoError(t, err)
}

// TestRegexpPatternsCheckedAtLoad: the metered match compiles patterns at
// run time, so a constant pattern that is invalid, or too large to match
// within the budget, is refused when the rule loads.
func TestRegexpPatternsCheckedAtLoad(t *testing.T) {
	for _, tc := range []struct{ when, want string }{
		{`iccid matches "["`, "missing closing ]"},
		{`iccid matches "` + strings.Repeat("(?:.*){999}", 20) + `x"`, "too many to match within the budget"},
		{`iccid matches "^8986"`, ""},
	} {
		_, err := Parse("r.yaml", []byte("rules:\n  - name: r\n    on: card\n    when: '"+tc.when+"'\n"), LoadOptions{})
		if tc.want == "" {
			require.NoError(t, err, tc.when)
			continue
		}
		require.ErrorContains(t, err, tc.want, tc.when)
	}
}

// TestRuleFailedResolvesOnlyWhenItsEntityRecovers: another card evaluating
// cleanly says nothing about the card the rule failed on, which is still
// there, unchanged; only that card evaluating cleanly resolves the alert.
func TestRuleFailedResolvesOnlyWhenItsEntityRecovers(t *testing.T) {
	set, err := Parse("r.yaml", []byte("rules:\n  - {name: big, on: card, when: '"+attackDynamic+"'}\n"), LoadOptions{})
	require.NoError(t, err)
	bad, good := card("1", manyTags), card("2", nil)
	var state State
	step := func(at time.Duration, cards ...*fleet.Card) []string {
		out := set.Evaluate(Input{Provider: "hw", Now: t0.Add(at), State: state, Cards: Changes[fleet.Card]{Changed: slices.Values(changed(cards))}})
		state.Apply(&out)
		var failed []string // the rule's own alerts on card 2 are not the point
		for _, k := range kinds(out.Events) {
			if strings.Contains(k, RuleFailed) {
				failed = append(failed, k)
			}
		}
		return failed
	}
	require.Equal(t, []string{"firing rule_failed big"}, step(0, &bad, &good))
	require.Empty(t, step(time.Minute, &good), "card 2 changed and is fine; card 1 would still fail")
	fixed := card("1", nil)
	require.Equal(t, []string{"resolved rule_failed big"}, step(2*time.Minute, &fixed))
}
