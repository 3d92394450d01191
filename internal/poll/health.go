package poll

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/rules"
	"github.com/simwatch/simwatch/internal/store"
)

// failed records a failed cycle. Nothing about cards moves; the count is
// written to the store each time (the failed_cycles metric reads it), and
// after UnhealthyAfter failures in a row one provider_unhealthy event is
// emitted. The write is one small transaction: when the cycle failed because
// its commit did, a small commit often still succeeds (bbolt reuses freed
// pages without growing the file). When it fails too, the count stays in
// memory and the event is committed by the first write that succeeds: a
// later failure's, or the next committed cycle's, with its resolution.
func (p *Poller) failed(ctx context.Context, now time.Time, cause error) error {
	n := p.failures.Add(1)
	p.lastErr = cause.Error()
	if n == int64(p.o.UnhealthyAfter) {
		p.declared = now
	}
	fired := false
	err := p.update(ctx, func(tx *store.Tx) error {
		pt, err := tx.Provider(p.o.Provider)
		if err != nil {
			return err
		}
		meta, err := pt.Meta()
		if err != nil {
			return err
		}
		meta.Failures = int(n)
		meta.LastFailure = now
		meta.LastError = p.lastErr
		if n >= int64(p.o.UnhealthyAfter) && !meta.Unhealthy {
			meta.Unhealthy, meta.UnhealthySince = true, p.declared
			if err := tx.AppendOutbox([]event.Event{p.healthEvent(event.KindFiring, now, meta, p.unhealthySummary())}); err != nil {
				return err
			}
			fired = true
		}
		return pt.PutMeta(meta)
	})
	if err != nil {
		return fmt.Errorf("poll %s: record failed cycle %d: %w", p.o.Provider, n, err)
	}
	if fired {
		p.o.Committed()
	}
	return nil
}

// unhealthySummary is a provider_unhealthy firing event's summary.
func (p *Poller) unhealthySummary() string {
	return fmt.Sprintf("provider %s failed %d cycles in a row: %s", p.o.Provider, p.failures.Load(), p.lastErr)
}

// Failures is how many cycles in a row have failed, as the poller counts
// them: it is right even when the store could not record the count. Safe
// to call from any goroutine.
func (p *Poller) Failures() int { return int(p.failures.Load()) }

// healthEvent is a provider_unhealthy event; its identity is the provider and
// the time the outage was detected.
func (p *Poller) healthEvent(kind string, now time.Time, meta store.Meta, summary string) event.Event {
	since := meta.UnhealthySince
	values, _ := json.Marshal(map[string]any{"provider": p.o.Provider, "last_success": meta.LastSuccess, "last_error": meta.LastError})
	e := event.Event{
		ID:         event.ID(p.o.Provider, "provider", p.o.Provider, RuleUnhealthy, kind, since, 0),
		Kind:       kind,
		Rule:       RuleUnhealthy,
		Severity:   rules.SeverityCritical,
		Summary:    summary,
		Provider:   p.o.Provider,
		Entity:     "provider",
		EntityID:   p.o.Provider,
		Values:     values,
		StartsAt:   since,
		ObservedAt: now,
	}
	if kind == event.KindResolved {
		e.EndsAt = now
	}
	return e
}
