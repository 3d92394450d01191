package mute

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/config"
	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/rules"
	"github.com/simwatch/simwatch/internal/store"
)

// The hostile tester's expressions, against events.
const (
	attackNested  = `let a = 1..1000; !all(a, {all(a, {all(a, {true})})})`
	attackDynamic = `all(tags, {all(tags, {all(tags, {true})})})` // 100 tags: 10^6 steps
	attackReduce  = `reduce(1..10000, #acc + "xxxxxxxxxxxxxxxx", "") != ""`
)

func attackDoubling(n int) string {
	var b strings.Builder
	b.WriteString(`let v0 = "xxxx"; `)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "let v%d = v%d + v%d; ", i, i-1, i-1)
	}
	fmt.Fprintf(&b, "len(v%d) > 0", n)
	return b.String()
}

// manyTagsEvent is a card event with 100 tags.
func manyTagsEvent() event.Event {
	e := card()
	tags := make([]string, 100)
	for i := range tags {
		tags[i] = fmt.Sprint("t", i)
	}
	e.Values, _ = json.Marshal(map[string]any{"tags": tags, "flow_left": 3})
	return e
}

func TestSilenceBudget(t *testing.T) {
	for _, tc := range []struct {
		name, match string
		refused     string // by NewSilence
	}{
		{"nested literal ranges", attackNested, "these nested loops take up to 1001001000 steps"},
		{"repeat is disabled", `repeat(rule, 1000000) != ""`, "unknown name repeat"},
		{"dynamic nested loops", attackDynamic, ""},
		{"reduce concatenation", attackReduce, ""},
		{"let doubling", attackDoubling(24), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewSilence(tc.match, "attack", time.Hour, now)
			if tc.refused != "" {
				require.ErrorContains(t, err, tc.refused)
				require.ErrorContains(t, CheckMatch(tc.match), tc.refused)
				return
			}
			require.NoError(t, err)
			catchAll := mustSilence(t, `rule == "card_low_flow"`)
			set := Silences([]store.Silence{s, catchAll}, now)
			e := manyTagsEvent()
			id, err := set.MatchErr(&e)
			require.Equal(t, catchAll.ID, id, "the silence over budget must not match; the next one still does")
			require.ErrorIs(t, err, rules.ErrBudget)
			require.ErrorContains(t, err, "silence "+s.ID+" mutes nothing")
			// Reported once; skipped from then on.
			id, err = set.MatchErr(&e)
			require.Equal(t, catchAll.ID, id)
			require.NoError(t, err)
			require.Equal(t, catchAll.ID, set.Match(&e))
		})
	}
}

func TestInhibitBudget(t *testing.T) {
	_, err := NewInhibitor([]config.InhibitRule{{SourceMatch: attackNested, TargetMatch: "true"}})
	require.ErrorContains(t, err, "inhibit_rules[0].source_match: these nested loops")

	in, err := NewInhibitor([]config.InhibitRule{
		{SourceMatch: `rule == "provider_unhealthy"`, TargetMatch: attackDynamic, Equal: []string{"provider"}},
		shipped,
	})
	require.NoError(t, err)
	src := in.SourcesAt([]event.Event{unhealthy("hw")}, now)
	target := manyTagsEvent()
	require.Equal(t, "provider_unhealthy hw", src.Inhibited(&target), "the rule over budget is skipped, the next one inhibits")
	require.ErrorIs(t, src.Errors(), rules.ErrBudget)
	require.ErrorContains(t, src.Errors(), "inhibit_rules[0].target_match inhibits nothing")
}
