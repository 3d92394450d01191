package api

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/simwatch/simwatch/internal/store"
)

// staleAfter is how many of its intervals a provider may go without a
// committed cycle before the watcher is not ready: one failed cycle is
// ordinary, three in a row mean the data has gone stale.
const staleAfter = 3

// defaultProbeEvery bounds how often /readyz writes to the store.
const defaultProbeEvery = 5 * time.Second

// Readiness is what /readyz checks beyond SetReady.
type Readiness struct {
	// Intervals are the providers' poll intervals, by name.
	Intervals map[string]time.Duration
	// Started is when the watcher started: a provider that has not
	// committed since is counted from here, so that a fresh watcher (or one
	// restarted after a long stop) gets its three intervals.
	Started time.Time
	// Now is the clock; default time.Now.
	Now func() time.Time
	// ProbeEvery is how often the store's write probe may run; default 5s.
	ProbeEvery time.Duration
}

// writeProber is the store's write check, declared here for tests.
type writeProber interface{ Probe() error }

// prober runs the write probe at most every period and remembers the answer.
type prober struct {
	mu   sync.Mutex
	at   time.Time
	err  error
	done bool
}

func (p *prober) check(s writeProber, now time.Time, every time.Duration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.done || now.Sub(p.at) >= every || now.Before(p.at) {
		p.err, p.at, p.done = s.Probe(), now, true
	}
	return p.err
}

// readyz answers 200 when the watcher runs, every provider committed a
// cycle within three of its intervals, and the store takes writes;
// otherwise 503 with every reason, one a line.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	reasons := s.notReady()
	if len(reasons) > 0 {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprintf(w, "not ready:\n%s\n", strings.Join(reasons, "\n"))
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

func (s *Server) notReady() []string {
	if !s.ready.Load() {
		return []string{"watcher not running"}
	}
	rd := s.o.Readiness
	now := time.Now
	if rd.Now != nil {
		now = rd.Now
	}
	t := now()
	var reasons []string
	if len(rd.Intervals) > 0 {
		last := map[string]time.Time{}
		err := s.o.Store.View(func(tx *store.Tx) error {
			for name := range rd.Intervals {
				p, err := tx.Provider(name)
				if err != nil {
					return err
				}
				m, err := p.Meta()
				if err != nil {
					return err
				}
				last[name] = m.LastSuccess
				if m.Committed.After(m.LastSuccess) {
					last[name] = m.Committed
				}
			}
			return nil
		})
		if err != nil {
			return []string{"store: " + err.Error()}
		}
		names := make([]string, 0, len(rd.Intervals))
		for name := range rd.Intervals {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			since := last[name]
			if since.Before(rd.Started) {
				since = rd.Started
			}
			limit := staleAfter * rd.Intervals[name]
			if age := t.Sub(since); age >= limit {
				what := "no committed cycle since " + last[name].UTC().Format(time.RFC3339)
				if last[name].IsZero() {
					what = "no committed cycle yet"
				}
				reasons = append(reasons, fmt.Sprintf("provider %s: %s (%s, more than %d intervals of %s)",
					name, what, age.Round(time.Second), staleAfter, rd.Intervals[name]))
			}
		}
	}
	every := rd.ProbeEvery
	if every <= 0 {
		every = defaultProbeEvery
	}
	var probe writeProber = s.o.Store
	if s.probeStore != nil {
		probe = s.probeStore
	}
	if err := s.probe.check(probe, t, every); err != nil {
		reasons = append(reasons, err.Error())
	}
	return reasons
}
