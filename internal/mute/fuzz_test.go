package mute

import (
	"errors"
	"testing"
	"time"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/rules"
	"github.com/simwatch/simwatch/internal/store"
)

// FuzzSilence creates a silence from any expression and matches it against
// sample events: it must neither panic nor run past its budget, and the
// only error a match reports is the budget's. The seed corpus
// (testdata/fuzz/FuzzSilence) holds the hostile tester's expressions.
func FuzzSilence(f *testing.F) {
	f.Add(`rule == "card_low_flow" && "fleet-a" in tags`)
	events := []event.Event{card(), pool(), manyTagsEvent(), unhealthy("hw")}
	f.Fuzz(func(t *testing.T, match string) {
		s, err := NewSilence(match, "fuzz", time.Hour, now)
		if err != nil {
			return
		}
		set := Silences([]store.Silence{s}, now)
		for i := range events {
			e := events[i]
			if _, err := set.MatchErr(&e); err != nil && !errors.Is(err, rules.ErrBudget) {
				t.Fatalf("match %q: %v", match, err)
			}
		}
	})
}
