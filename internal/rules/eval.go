package rules

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/expr-lang/expr/vm"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/fleet"
)

// Alert states.
const (
	StatePending = "pending"
	StateFiring  = "firing"
	// StateResolved is kept only by rules with rearm: cycle, to remember
	// that the alert already notified in this billing cycle.
	StateResolved = "resolved"
)

// vmMemoryBudget bounds what one evaluation may allocate.
const vmMemoryBudget = 100_000

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
	// ClearedAt is when a firing alert's condition stopped holding, while
	// keep_firing_for keeps it firing.
	ClearedAt time.Time `json:"cleared_at,omitzero"`
	// Cycle is the billing month the alert notified in (rearm: cycle);
	// Muted marks an alert that holds again in that month and stays quiet.
	Cycle string `json:"cycle,omitempty"`
	Muted bool   `json:"muted,omitempty"`
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
	vm    vm.VM
	month string // the billing month, China time
	// alerted holds the entities with an alert, so that the common case (a
	// condition that does not hold for an entity without alerts) costs no
	// key building or map writes.
	alerted map[string]bool
	// cur/prev of the entity being evaluated, for changed().
	curCard, prevCard *fleet.Card
	curPool, prevPool *fleet.Pool
}

// NewCycle starts a cycle at now over the provider's active alerts, which it
// updates in place.
func (s *Set) NewCycle(provider string, now time.Time, alerts map[string]*Alert) *Cycle {
	c := &Cycle{set: s, provider: provider, now: now, alerts: alerts,
		touched: map[string]bool{}, dirty: map[string]bool{}, alerted: make(map[string]bool, len(alerts))}
	for _, a := range alerts {
		c.alerted[a.Entity+"\x00"+a.EntityID] = true
	}
	c.usage.today = fleet.DayOf(now)
	c.vm.MemoryBudget = vmMemoryBudget
	c.month = now.In(fleet.ChinaTime).Format("2006-01")
	c.card.helpers = newHelpers(now, func(f string) bool { return fieldChanged(cardFields, c.prevCard, c.curCard, f) }, &c.usage)
	c.pool.helpers = newHelpers(now, func(f string) bool { return fieldChanged(poolFields, c.prevPool, c.curPool, f) }, &c.usage)
	return c
}

// ReadHistory sets where usage helpers read an entity's daily usage from.
func (c *Cycle) ReadHistory(read func(entity, id string) fleet.History) { c.usage.read = read }

// ReadFirstIMEI sets where first_imei() reads a card's first IMEI from.
func (c *Cycle) ReadFirstIMEI(read func(cardID string) string) { c.usage.firstIMEI = read }

// Card evaluates the card rules for a card that is new (prev nil), changed,
// or gone from a complete listing (cur nil).
func (c *Cycle) Card(prev, cur *fleet.Card) {
	if cur == nil {
		c.curCard, c.prevCard = prev, prev
		c.card.Card, c.card.Prev = *prev, *prev
		c.card.Removed = true
		c.evaluate(fleet.EntityCard, prev.ID, prev.ICCID, &c.card, true, false, lazyJSON(prev), lazyJSON(prev))
		c.card.Removed = false
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
		c.curPool, c.prevPool = prev, prev
		c.pool.Pool, c.pool.Prev = *prev, *prev
		c.pool.Removed = true
		c.evaluate(fleet.EntityPool, prev.ID, "", &c.pool, true, false, lazyJSON(prev), lazyJSON(prev))
		c.pool.Removed = false
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
	removing := c.card.Removed || c.pool.Removed
	for _, r := range c.set.Rules {
		if r.On != entity || (clockOnly && !r.clock) || r.removal != removing {
			continue
		}
		if r.transition && !hasPrev {
			continue // first sight or unchanged: no transition
		}
		out, err := c.vm.Run(r.program, env)
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
		if !holds && !c.alerted[entity+"\x00"+id] {
			continue
		}
		key := AlertKey(r.Name, entity, id)
		c.touched[key] = true
		a := c.alerts[key]
		if a != nil && a.State == StateResolved && a.Cycle != c.month {
			delete(c.alerts, key) // a new billing cycle: the rule is armed again
			c.dirty[key] = true
			a = nil
		}
		switch {
		case holds && a == nil:
			a = &Alert{Rule: r.Name, Entity: entity, EntityID: id, ICCID: iccid, State: StatePending, ActiveAt: c.now, Values: values()}
			c.alerts[key] = a
			c.alerted[entity+"\x00"+id] = true
			c.dirty[key] = true
			c.advance(r, a)
		case holds && a.State == StateResolved:
			// Already notified this billing cycle: hold quietly.
			a.State, a.Muted, a.ActiveAt, a.Values = StateFiring, true, c.now, values()
			c.dirty[key] = true
		case holds:
			a.Values, a.ClearedAt = values(), time.Time{}
			c.dirty[key] = true
			c.advance(r, a)
		case a != nil && a.State == StateFiring && r.resolveWhen != nil && !c.run(r, r.resolveWhen, env, entity, id):
			// Inside the hysteresis band: still firing.
			a.Values = values()
			c.dirty[key] = true
		case a != nil && a.State != StateResolved:
			c.clear(r, a, values())
		}
	}
}

// run evaluates a boolean program; an error counts as false and is reported.
func (c *Cycle) run(r *Rule, p *vm.Program, env any, entity, id string) bool {
	out, err := c.vm.Run(p, env)
	if err != nil {
		c.errs = append(c.errs, fmt.Errorf("rule %s on %s %s: %w", r.Name, entity, id, err))
		return false
	}
	b, _ := out.(bool)
	return b
}

// clear handles a condition that stopped holding: keep_firing_for holds a
// firing alert a while longer, then it ends.
func (c *Cycle) clear(r *Rule, a *Alert, values json.RawMessage) {
	if a.State == StateFiring && !a.Muted && r.KeepFiringFor > 0 {
		if a.ClearedAt.IsZero() {
			a.ClearedAt = c.now
		}
		if values != nil {
			a.Values = values
		}
		c.dirty[a.Key()] = true
		if c.now.Sub(a.ClearedAt) < r.KeepFiringFor {
			return
		}
	}
	c.end(r, a, values)
}

// advance moves a holding alert on: pending to firing once `for` has passed,
// and a repeat notification once `repeat` has.
func (c *Cycle) advance(r *Rule, a *Alert) {
	if a.Muted && a.Cycle != c.month {
		// Held quietly through the end of a billing cycle: armed again.
		a.Muted, a.State, a.ActiveAt, a.Sent = false, StatePending, c.now, 0
		c.dirty[a.Key()] = true
	}
	if a.Muted {
		return
	}
	switch {
	case a.State == StatePending && c.now.Sub(a.ActiveAt) >= r.For:
		a.State, a.FiredAt, a.Cycle = StateFiring, c.now, c.month
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
	if a.State == StateFiring && !a.Muted {
		c.emit(r, event.KindResolved, a.Entity, a.EntityID, a.ICCID, a.ActiveAt, 0, a.Values, nil)
	}
	c.touched[a.Key()] = true
	c.dirty[a.Key()] = true
	if r.Rearm == RearmCycle && a.Cycle != "" {
		// Remember the notification until the billing cycle ends.
		a.State, a.Muted, a.ClearedAt = StateResolved, false, time.Time{}
		return
	}
	delete(c.alerts, a.Key())
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
		if r == nil || r.transition || r.On != a.Entity || (a.State == StateResolved && a.Cycle != c.month) {
			// The rule was removed or changed kind, or a remembered
			// notification's cycle is over: the record ends quietly.
			delete(c.alerts, key)
			c.dirty[key] = true
			continue
		}
		if a.State == StateFiring && !a.ClearedAt.IsZero() {
			c.clear(r, a, nil) // keep_firing_for may have run out
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
