package app

import (
	"time"

	"github.com/simwatch/simwatch/internal/api"
	"github.com/simwatch/simwatch/internal/poll"
	"github.com/simwatch/simwatch/internal/provider"
)

// requestStatser is a provider client that counts its requests (pages,
// throttled answers, the rate and concurrency it now allows).
type requestStatser interface {
	RequestStats() provider.RequestStats
}

// watched is what /metrics reports of the pollers at scrape time: the
// alerts of their committed states, and their clients' request counts.
func (w *Watcher) watched() api.Watched {
	out := api.Watched{Alerts: map[[2]string]int{}, Requests: map[string]provider.RequestStats{}}
	for _, p := range w.providers {
		if w.cl != nil && !w.cl.group.Holds(p.name) {
			// Another watcher polls it: its counts are that one's to
			// report; this poller's memory of them may be stale.
			continue
		}
		for k, n := range p.poller.AlertCounts() {
			out.Alerts[k] += n
		}
		if st, ok := p.poller.Source().(requestStatser); ok {
			out.Requests[p.name] = st.RequestStats()
		}
	}
	return out
}

// observeCycle records a committed cycle's stage times.
func (w *Watcher) observeCycle(provider string, res poll.Result, took time.Duration) {
	if w.api == nil {
		return
	}
	w.api.ObserveCycle(provider, map[string]time.Duration{
		api.StageFetch: res.Fetch, api.StageDiff: res.Diff, api.StageEvaluate: res.Eval,
		api.StageCommit: res.Commit, api.StageTotal: took,
	})
}
