package rules

import (
	"context"
	"testing"

	"github.com/simwatch/simwatch/internal/fleet"
)

// FuzzQuery compiles any expression as a card and a pool query and matches
// it against sample entities: it must neither panic nor run past its
// budget. The seed corpus (testdata/fuzz/FuzzQuery) holds the hostile
// tester's expressions.
func FuzzQuery(f *testing.F) {
	f.Add(`flow_left < 10 && any(tags, {# startsWith "fleet-"})`)
	c := card("1", manyTags)
	p := fleet.Pool{Provider: "hw", ID: "p1", Name: "north", FlowLeft: -5, Quantity: 40}
	f.Fuzz(func(t *testing.T, src string) {
		for _, on := range []string{fleet.EntityCard, fleet.EntityPool} {
			q, err := NewQuery(on, src, t0)
			if err != nil {
				continue
			}
			q.SetContext(context.Background())
			// Any error is fine (a budget error, or a nil field): the
			// fuzzer looks for panics and for runs that do not stop.
			if on == fleet.EntityCard {
				_, _ = q.MatchCard(&c)
			} else {
				_, _ = q.MatchPool(&p)
			}
		}
	})
}
