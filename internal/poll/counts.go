package poll

import (
	"runtime"
	"sync"
	"weak"

	"github.com/simwatch/simwatch/internal/rules"
)

// AlertCount keys the active alerts of a committed state: a rule's name
// and a state (rules.StatePending or rules.StateFiring).
type AlertCount = [2]string

// committedCounts holds each poller's alert counts as of its last commit,
// for metrics read from other goroutines while Cycle runs. It is keyed
// weakly, so a poller that is gone takes its entry with it.
var committedCounts sync.Map // weak.Pointer[Poller] → map[AlertCount]int

// noteAlertCounts records the committed state's alert counts. Cycle calls
// it after each commit.
func (p *Poller) noteAlertCounts() {
	counts := make(map[AlertCount]int)
	for _, a := range p.state.Alerts {
		if a.State == rules.StatePending || a.State == rules.StateFiring {
			counts[AlertCount{a.Rule, a.State}]++
		}
	}
	k := weak.Make(p)
	if _, loaded := committedCounts.Swap(k, counts); !loaded {
		runtime.AddCleanup(p, func(k weak.Pointer[Poller]) { committedCounts.Delete(k) }, k)
	}
}

// AlertCounts is how many alerts each rule has pending and firing in the
// state of the last committed cycle; nil before the first. The map is the
// caller's. Safe to call while Cycle runs.
func (p *Poller) AlertCounts() map[AlertCount]int {
	v, ok := committedCounts.Load(weak.Make(p))
	if !ok {
		return nil
	}
	src := v.(map[AlertCount]int)
	out := make(map[AlertCount]int, len(src))
	for k, n := range src {
		out[k] = n
	}
	return out
}

// Source is the provider source the poller lists, for what else it offers
// (its request counts, say).
func (p *Poller) Source() Source { return p.o.Source }
