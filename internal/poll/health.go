package poll

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/rules"
	"github.com/simwatch/simwatch/internal/store"
)

// failed records a failed cycle. Nothing about cards moves; after
// UnhealthyAfter failures in a row one provider_unhealthy event is emitted.
func (p *Poller) failed(now time.Time, cause error) error {
	p.failures++
	if p.failures < p.o.UnhealthyAfter {
		return nil
	}
	return p.o.Store.Update(func(tx *store.Tx) error {
		pt, err := tx.Provider(p.o.Provider)
		if err != nil {
			return err
		}
		meta, err := pt.Meta()
		if err != nil {
			return err
		}
		meta.Failures = p.failures
		meta.LastFailure = now
		meta.LastError = cause.Error()
		if !meta.Unhealthy {
			meta.Unhealthy, meta.UnhealthySince = true, now
			msg := fmt.Sprintf("provider %s failed %d cycles in a row: %v", p.o.Provider, p.failures, cause)
			if err := tx.AppendOutbox([]event.Event{p.healthEvent(event.KindFiring, now, meta, msg)}); err != nil {
				return err
			}
			defer p.o.Committed()
		}
		return pt.PutMeta(meta)
	})
}

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
