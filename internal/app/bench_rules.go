package app

import (
	"fmt"
	"strings"
)

// benchRules generates n rules of the kinds fleets write, tuned so that on
// the simulator's fleet (100 pools, seed 1) about 5% of cards fire at first
// sight, each mostly under one rule, as alerts do in a real fleet:
//
//   - per-pool low-data alerts on active cards (pools 1..10; pool 1 is sold
//     short, so most of its members fire);
//   - per-pool percent thresholds (pools 11..20 at 70%, 21..30 at 35%);
//   - status transitions (active → suspended, by stop reason), which fire
//     only when a card changes;
//   - pool thresholds (overdraft beyond a margin).
//
// `watcher bench` prints how many alerts fire, so a fleet or rule change
// that moves the share is seen.
func benchRules(n int) string {
	const pool0 = 4940000001 // the simulator's first pool id
	var b strings.Builder
	b.WriteString("rules:\n")
	for i := range n {
		k := i / 5 // 0..9 for 50 rules
		switch i % 5 {
		case 0:
			fmt.Fprintf(&b, "  - {name: low_%d, on: card, when: 'pool_id == \"%d\" && status == \"active\" && flow_left < 10'}\n", i, pool0+k)
		case 1:
			fmt.Fprintf(&b, "  - {name: pct_%d, on: card, when: 'pool_id == \"%d\" && flow_total > 0 && pct(flow_used, flow_total) >= 70'}\n", i, pool0+10+k)
		case 2:
			fmt.Fprintf(&b, "  - {name: susp_%d, on: card, when: 'prev.status == \"active\" && status == \"suspended\" && operator_status == %d'}\n", i, 1+k%7)
		case 3:
			fmt.Fprintf(&b, "  - {name: pool_%d, on: pool, when: 'flow_left < %d'}\n", i, -k*10)
		default:
			fmt.Fprintf(&b, "  - {name: half_%d, on: card, when: 'pool_id == \"%d\" && flow_total > 0 && pct(flow_used, flow_total) >= 35'}\n", i, pool0+20+k)
		}
	}
	return b.String()
}
