package rules

import (
	"fmt"
	"strings"
	"testing"

	"github.com/simwatch/simwatch/internal/fleet"
)

// benchRules are typical rules: plain comparisons (the hot path, which the
// budget must leave alone) and one with a closure over tags.
var benchRules = []string{
	`flow_left < 10`,
	`pct(flow_used, flow_total) > 90`,
	`status != "active" && known("imei")`,
	`days_until(expire_time) < 30`,
	`"vip" in tags && flow_left < 100`,
	`any(tags, {# startsWith "fleet-"}) && flow_left < 5`,
}

func benchSet(b *testing.B, whens []string) *Set {
	var src strings.Builder
	src.WriteString("rules:\n")
	for i, w := range whens {
		fmt.Fprintf(&src, "  - {name: r%d, on: card, when: '%s'}\n", i, w)
	}
	set, err := Parse("bench.yaml", []byte(src.String()), LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	return set
}

// BenchmarkEvaluate evaluates a full listing of 10k cards (every card
// re-evaluated, as after a rule reload) per iteration.
func BenchmarkEvaluate(b *testing.B) {
	for _, bc := range []struct {
		name  string
		whens []string
	}{{"plain", benchRules[:5]}, {"closure", benchRules[5:]}} {
		b.Run(bc.name, func(b *testing.B) {
			set := benchSet(b, bc.whens)
			cards := make([]*fleet.Card, 10_000)
			for i := range cards {
				c := card(fmt.Sprint(i), func(c *fleet.Card) { c.Tags = []string{"a", "b", "fleet-x"} })
				cards[i] = &c
			}
			in := Input{Provider: "hw", Now: t0, Cards: Changes[fleet.Card]{Same: Pointers(cards)}}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				out := set.Evaluate(in)
				if len(out.Errors) > 0 {
					b.Fatal(out.Errors[0])
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(cards)*len(bc.whens)), "ns/eval")
		})
	}
}
