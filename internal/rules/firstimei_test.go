package rules

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/fleet"
)

// A card's first IMEI is recorded only when the card is about to lose it,
// so that a first listing of a million cards records nothing; first_imei()
// still reads the first known IMEI through changes and gaps.
func TestFirstIMEIRecordedOnlyWhenLost(t *testing.T) {
	set, err := Parse("r.yaml", []byte("rules:\n  - {name: moved, on: card, when: 'imei != first_imei()'}\n"), LoadOptions{})
	require.NoError(t, err)
	recorded := map[string]string{}
	var state State
	var prev *fleet.Card
	now := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	step := func(imei string) (fired []string, wrote map[string]string) {
		cur := fleet.Card{ID: "1", IMEI: imei, Status: "active"}
		if imei == "" {
			cur.Unknown = fleet.CardField("imei")
		}
		out := set.Evaluate(Input{Provider: "hw", Now: now, State: state,
			Cards:     Changes[fleet.Card]{Changed: slices.Values([]Change[fleet.Card]{{Prev: prev, Cur: &cur}})},
			FirstIMEI: func(id string) string { return recorded[id] }})
		state.Apply(&out)
		for id, v := range out.FirstIMEI {
			recorded[id] = v
		}
		for _, e := range out.Events {
			fired = append(fired, e.Kind)
		}
		prev = &cur
		return fired, out.FirstIMEI
	}
	fired, wrote := step("A")
	require.Empty(t, fired)
	require.Empty(t, wrote, "a new card's IMEI is its first: nothing to record")
	fired, wrote = step("")
	require.Empty(t, fired, "an unknown IMEI raises nothing")
	require.Equal(t, map[string]string{"1": "A"}, wrote, "the first IMEI is recorded before it is lost")
	fired, _ = step("B")
	require.Equal(t, []string{"firing"}, fired, "B differs from the first, A")
	fired, wrote = step("C")
	require.Empty(t, fired, "still firing")
	require.Empty(t, wrote, "A stays the first")
	fired, _ = step("A")
	require.Equal(t, []string{"resolved"}, fired)
}

// A card removed from the listing and listed again later keeps its first
// IMEI: it is recorded when the card leaves.
func TestFirstIMEIOutlivesRemoval(t *testing.T) {
	set, err := Parse("r.yaml", []byte("rules:\n  - {name: moved, on: card, when: 'imei != first_imei()'}\n"), LoadOptions{})
	require.NoError(t, err)
	recorded := map[string]string{}
	var state State
	now := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	run := func(ch Changes[fleet.Card]) []string {
		out := set.Evaluate(Input{Provider: "hw", Now: now, State: state, Cards: ch, FirstIMEI: func(id string) string { return recorded[id] }})
		state.Apply(&out)
		for id, v := range out.FirstIMEI {
			recorded[id] = v
		}
		var kinds []string
		for _, e := range out.Events {
			kinds = append(kinds, e.Kind+" "+e.Rule)
		}
		return kinds
	}
	a := fleet.Card{ID: "1", IMEI: "A", Status: "active"}
	run(Changes[fleet.Card]{Changed: slices.Values([]Change[fleet.Card]{{Cur: &a}})})
	run(Changes[fleet.Card]{Absent: []*fleet.Card{&a}}) // missing once
	run(Changes[fleet.Card]{Absent: []*fleet.Card{&a}}) // removed
	require.Equal(t, "A", recorded["1"])
	b := fleet.Card{ID: "1", IMEI: "B", Status: "active"}
	require.Equal(t, []string{"firing moved"}, run(Changes[fleet.Card]{Changed: slices.Values([]Change[fleet.Card]{{Cur: &b}})}),
		"listed again in another device")
}
