package rules

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/expr-lang/expr"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/fleet"
)

// Alert states.
const (
	StatePending = "pending"
	StateFiring  = "firing"
)

// Alert is the persisted state of one active condition alert: a rule holding
// for one entity. It lives in the store between cycles and across restarts.
type Alert struct {
	Rule     string          `json:"rule"`
	Entity   string          `json:"entity"`
	EntityID string          `json:"entity_id"`
	ICCID    string          `json:"iccid,omitempty"`
	State    string          `json:"state"`
	ActiveAt time.Time       `json:"active_at"`          // first cycle the condition held
	FiredAt  time.Time       `json:"fired_at,omitzero"`  // when it went firing
	LastSent time.Time       `json:"last_sent,omitzero"` // last firing notification
	Sent     int             `json:"sent"`               // firing notifications so far
	Values   json.RawMessage `json:"values"`             // the entity when last evaluated
}

// AlertKey identifies an alert within a provider.
func AlertKey(rule, entity, entityID string) string {
	return rule + "\x00" + entity + "\x00" + entityID
}

// Key returns the alert's key.
func (a *Alert) Key() string { return AlertKey(a.Rule, a.Entity, a.EntityID) }

// Cycle evaluates one poll cycle of one provider. Feed it every entity that
// changed (and, for clock rules, those that did not), then call Finish.
// A Cycle is not safe for concurrent use.
type Cycle struct {
	set      *Set
	provider string
	now      time.Time
	alerts   map[string]*Alert
	touched  map[string]bool
	dirty    map[string]bool
	events   []event.Event
	errs     []error

	card  CardEnv
	pool  PoolEnv
	usage usage
	// cur/prev of the entity being evaluated, for changed().
	curCard, prevCard *fleet.Card
	curPool, prevPool *fleet.Pool
}

// NewCycle starts a cycle at now over the provider's active alerts, which it
// updates in place.
func (s *Set) NewCycle(provider string, now time.Time, alerts map[string]*Alert) *Cycle {
	c := &Cycle{set: s, provider: provider, now: now, alerts: alerts,
		touched: map[string]bool{}, dirty: map[string]bool{}}
	c.usage.today = fleet.DayOf(now)
	c.card.helpers = newHelpers(now, func(f string) bool { return fieldChanged(cardFields, c.prevCard, c.curCard, f) }, &c.usage)
	c.pool.helpers = newHelpers(now, func(f string) bool { return fieldChanged(poolFields, c.prevPool, c.curPool, f) }, &c.usage)
	return c
}

// ReadHistory sets where usage helpers read an entity's daily usage from.
func (c *Cycle) ReadHistory(read func(entity, id string) fleet.History) { c.usage.read = read }

// Card evaluates the card rules for a card that is new (prev nil), changed,
// or gone from a complete listing (cur nil).
func (c *Cycle) Card(prev, cur *fleet.Card) {
	if cur == nil {
		c.gone(fleet.EntityCard, prev.ID)
		return
	}
	c.curCard, c.prevCard = cur, prev
	c.card.Card = *cur
	if prev != nil {
		c.card.Prev = *prev
	} else {
		c.card.Prev = fleet.Card{}
		c.prevCard = cur // nothing has changed on first sight
	}
	c.evaluate(fleet.EntityCard, cur.ID, cur.ICCID, &c.card, prev != nil, false, lazyJSON(cur), lazyJSON(prev))
}

// CardUnchanged evaluates an unchanged card: only rules that read the clock,
// or every condition rule when all is set (after the rule set changed).
func (c *Cycle) CardUnchanged(cur *fleet.Card, all bool) {
	c.curCard, c.prevCard = cur, cur
	c.card.Card, c.card.Prev = *cur, *cur
	c.evaluate(fleet.EntityCard, cur.ID, cur.ICCID, &c.card, false, !all, lazyJSON(cur), nil)
}

// Pool evaluates the pool rules for a pool that is new, changed or gone.
func (c *Cycle) Pool(prev, cur *fleet.Pool) {
	if cur == nil {
		c.gone(fleet.EntityPool, prev.ID)
		return
	}
	c.curPool, c.prevPool = cur, prev
	c.pool.Pool = *cur
	if prev != nil {
		c.pool.Prev = *prev
	} else {
		c.pool.Prev = fleet.Pool{}
		c.prevPool = cur
	}
	c.evaluate(fleet.EntityPool, cur.ID, "", &c.pool, prev != nil, false, lazyJSON(cur), lazyJSON(prev))
}

// PoolUnchanged is CardUnchanged for pools.
func (c *Cycle) PoolUnchanged(cur *fleet.Pool, all bool) {
	c.curPool, c.prevPool = cur, cur
	c.pool.Pool, c.pool.Prev = *cur, *cur
	c.evaluate(fleet.EntityPool, cur.ID, "", &c.pool, false, !all, lazyJSON(cur), nil)
}

// lazyJSON marshals v the first time it is needed: most evaluations emit nothing.
func lazyJSON[T any](v *T) func() json.RawMessage {
	var b json.RawMessage
	return func() json.RawMessage {
		if v == nil {
			return nil
		}
		if b == nil {
			b = mustJSON(v)
		}
		return b
	}
}

func (c *Cycle) evaluate(entity, id, iccid string, env any, hasPrev, clockOnly bool, values, prev func() json.RawMessage) {
	left := c.card.FlowLeft
	if entity == fleet.EntityPool {
		left = c.pool.FlowLeft
	}
	c.usage.reset(entity, id, left)
	for _, r := range c.set.Rules {
		if r.On != entity || (clockOnly && !r.clock) {
			continue
		}
		if r.transition && !hasPrev {
			continue // first sight or unchanged: no transition
		}
		out, err := expr.Run(r.program, env)
		if err != nil {
			c.errs = append(c.errs, fmt.Errorf("rule %s on %s %s: %w", r.Name, entity, id, err))
			continue
		}
		holds, _ := out.(bool)
		if r.transition {
			if holds {
				c.emit(r, event.KindTransition, entity, id, iccid, c.now, 0, values(), prev())
			}
			continue
		}
		key := AlertKey(r.Name, entity, id)
		c.touched[key] = true
		a := c.alerts[key]
		switch {
		case holds && a == nil:
			a = &Alert{Rule: r.Name, Entity: entity, EntityID: id, ICCID: iccid, State: StatePending, ActiveAt: c.now, Values: values()}
			c.alerts[key] = a
			c.dirty[key] = true
			c.advance(r, a)
		case holds:
			a.Values = values()
			c.dirty[key] = true
			c.advance(r, a)
		case a != nil:
			c.end(r, a, values())
		}
	}
}

// advance moves a holding alert on: pending to firing once `for` has passed,
// and a repeat notification once `repeat` has.
func (c *Cycle) advance(r *Rule, a *Alert) {
	switch {
	case a.State == StatePending && c.now.Sub(a.ActiveAt) >= r.For:
		a.State, a.FiredAt = StateFiring, c.now
	case a.State == StateFiring && r.Repeat > 0 && c.now.Sub(a.LastSent) >= r.Repeat:
	default:
		return
	}
	c.emit(r, event.KindFiring, a.Entity, a.EntityID, a.ICCID, a.ActiveAt, a.Sent, a.Values, nil)
	a.Sent++
	a.LastSent = c.now
	c.dirty[a.Key()] = true
}

// end removes an alert that stopped holding; a firing one resolves.
func (c *Cycle) end(r *Rule, a *Alert, values json.RawMessage) {
	if values != nil {
		a.Values = values
	}
	if a.State == StateFiring {
		c.emit(r, event.KindResolved, a.Entity, a.EntityID, a.ICCID, a.ActiveAt, 0, a.Values, nil)
	}
	delete(c.alerts, a.Key())
	c.touched[a.Key()] = true
	c.dirty[a.Key()] = true
}

// gone ends every alert of an entity that left a complete listing.
func (c *Cycle) gone(entity, id string) {
	for _, r := range c.set.Rules {
		if a := c.alerts[AlertKey(r.Name, entity, id)]; a != nil {
			c.end(r, a, nil)
		}
	}
}

// Finish advances the alerts no entity change touched (pending ones whose
// `for` has passed, firing ones due a repeat), ends alerts of rules that no
// longer exist, and returns the cycle's events and the alerts to write: a nil
// value means delete.
func (c *Cycle) Finish() (events []event.Event, writes map[string]*Alert, errs []error) {
	byName := make(map[string]*Rule, len(c.set.Rules))
	for _, r := range c.set.Rules {
		byName[r.Name] = r
	}
	for key, a := range c.alerts {
		if c.touched[key] {
			continue
		}
		r := byName[a.Rule]
		if r == nil || r.transition || r.On != a.Entity {
			// The rule was removed or changed kind: the alert ends quietly.
			delete(c.alerts, key)
			c.dirty[key] = true
			continue
		}
		c.advance(r, a)
	}
	writes = make(map[string]*Alert, len(c.dirty))
	for key := range c.dirty {
		writes[key] = c.alerts[key]
	}
	return c.events, writes, c.errs
}

func (c *Cycle) emit(r *Rule, kind, entity, id, iccid string, startsAt time.Time, seq int, values, prev json.RawMessage) {
	at := startsAt
	if kind == event.KindTransition {
		at = c.now
	}
	summary, err := r.render(values, prev)
	if err != nil {
		c.errs = append(c.errs, fmt.Errorf("rule %s summary on %s %s: %w", r.Name, entity, id, err))
		summary = r.Name + ": " + entity + " " + id
	}
	e := event.Event{
		ID:         event.ID(c.provider, entity, id, r.Name, kind, at, seq),
		Kind:       kind,
		Rule:       r.Name,
		Severity:   r.Severity,
		Summary:    summary,
		Labels:     r.Labels,
		Provider:   c.provider,
		Entity:     entity,
		EntityID:   id,
		ICCID:      iccid,
		Values:     values,
		Prev:       prev,
		StartsAt:   at,
		ObservedAt: c.now,
		Notify:     r.Notify,
	}
	if kind == event.KindResolved {
		e.EndsAt = c.now
	}
	c.events = append(c.events, e)
}
