package rules

import (
	"context"
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
	// Held marks an alert whose entity has an unknown value the rule reads:
	// it neither advances nor resolves until the value is known again.
	Held bool `json:"held,omitempty"`
}

// AlertKey identifies an alert within a provider.
func AlertKey(rule, entity, entityID string) string {
	return rule + "\x00" + entity + "\x00" + entityID
}

// Key returns the alert's key.
func (a *Alert) Key() string { return AlertKey(a.Rule, a.Entity, a.EntityID) }

// cycle evaluates one listing of one provider; Evaluate drives it. Feed it
// every entity that changed (and, for clock rules, those that did not), then
// call finish. It never modifies the alerts it starts from: an alert it
// changes is copied into own first, so a cycle that fails to commit leaves
// the caller's state as it was.
type cycle struct {
	set      *Set
	provider string
	now      time.Time
	base     map[string]*Alert // the alerts before the cycle; read only
	own      map[string]*Alert // alerts this cycle created or changed; nil deletes
	touched  map[string]bool
	events   []event.Event
	errs     []error

	card  CardEnv
	pool  PoolEnv
	usage usage
	vm    vm.VM
	// meter is the budget of the evaluation at hand (see budget.go); ctx
	// ends the whole cycle (nil: never).
	meter Meter
	ctx   context.Context
	// Per rule, by index in set.Rules: failed is why the rule went over
	// its budget this cycle (it is then skipped for the rest of the cycle
	// and its alerts held), clean that it evaluated without error at least
	// once, steps what it spent over the cycle.
	failed []error
	clean  []bool
	steps  []int
	// watch is the entity (entity+"\x00"+id) a rule with a firing
	// rule_failed alert last failed on; recovered that it evaluated that
	// entity cleanly this cycle, which alone resolves the alert: another
	// entity evaluating cleanly says nothing about the one that failed.
	// failedOn is the entity a rule failed on this cycle.
	watch     []string
	recovered []bool
	failedOn  [][2]string
	// stop is set when ctx ended: the cycle evaluates nothing more and its
	// output must not be committed.
	stop  error
	polls int    // entities seen, to check ctx every so often
	month string // the billing month, China time
	// alerted holds the entities with an alert, so that the common case (a
	// condition that does not hold for an entity without alerts) costs no
	// key building or map writes.
	alerted map[string]bool
	// cur/prev of the entity being evaluated, for changed() and known().
	curCard, prevCard *fleet.Card
	curPool, prevPool *fleet.Pool
}

func (s *Set) newCycle(provider string, now time.Time, alerts map[string]*Alert) *cycle {
	c := &cycle{set: s, provider: provider, now: now, base: alerts, own: map[string]*Alert{},
		touched: map[string]bool{}, alerted: make(map[string]bool, len(alerts))}
	for _, a := range alerts {
		c.alerted[a.Entity+"\x00"+a.EntityID] = true
	}
	c.usage.today = fleet.DayOf(now)
	c.vm.MemoryBudget = vmMemoryBudget
	c.card.Metering = c.meter.Funcs()
	c.pool.Metering = c.card.Metering
	c.failed, c.clean, c.steps = make([]error, len(s.Rules)), make([]bool, len(s.Rules)), make([]int, len(s.Rules))
	c.watch, c.recovered, c.failedOn = watchedEntities(s, alerts), make([]bool, len(s.Rules)), make([][2]string, len(s.Rules))
	c.month = now.In(fleet.ChinaTime).Format("2006-01")
	c.card.helpers = newHelpers(now, func(f string) bool { return fieldChanged(cardFields, c.prevCard, c.curCard, f) },
		func(f string) bool { return !c.curCard.Unknown.Has(fleet.CardField(f)) }, &c.usage)
	c.pool.helpers = newHelpers(now, func(f string) bool { return fieldChanged(poolFields, c.prevPool, c.curPool, f) },
		func(f string) bool { return !c.curPool.Unknown.Has(fleet.PoolField(f)) }, &c.usage)
	return c
}

// get returns the alert at key as the cycle sees it (nil if none). The
// result must not be modified: see mut.
func (c *cycle) get(key string) *Alert {
	if a, ok := c.own[key]; ok {
		return a
	}
	return c.base[key]
}

// mut returns the cycle's own, writable copy of the alert at key.
func (c *cycle) mut(key string) *Alert {
	if a, ok := c.own[key]; ok {
		return a
	}
	a := c.base[key]
	if a == nil {
		return nil
	}
	cp := *a
	c.own[key] = &cp
	return &cp
}

func (c *cycle) put(key string, a *Alert) { c.own[key] = a }
func (c *cycle) del(key string)           { c.own[key] = nil }

// cardEval evaluates the card rules for a card that is new (prev nil),
// changed, or gone from the listings (cur nil).
func (c *cycle) cardEval(prev, cur *fleet.Card) {
	if cur == nil {
		c.curCard, c.prevCard = prev, prev
		c.card.Card, c.card.Prev = *prev, *prev
		c.card.Removed = true
		c.evaluate(fleet.EntityCard, prev.ID, prev.ICCID, &c.card, true, false, prev.Unknown, prev.Unknown, lazyJSON(prev), lazyJSON(prev))
		c.card.Removed = false
		c.gone(fleet.EntityCard, prev.ID)
		return
	}
	c.curCard, c.prevCard = cur, prev
	c.card.Card = *cur
	var prevUnknown fleet.Unknown
	if prev != nil {
		c.card.Prev = *prev
		prevUnknown = prev.Unknown
	} else {
		c.card.Prev = fleet.Card{}
		c.prevCard = cur // nothing has changed on first sight
	}
	c.evaluate(fleet.EntityCard, cur.ID, cur.ICCID, &c.card, prev != nil, false, cur.Unknown, prevUnknown, lazyJSON(cur), lazyJSON(prev))
}

// cardSame evaluates an unchanged card: only rules that read the clock, or
// every condition rule when all is set (after the rule set changed).
func (c *cycle) cardSame(cur *fleet.Card, all bool) {
	c.curCard, c.prevCard = cur, cur
	c.card.Card, c.card.Prev = *cur, *cur
	c.evaluate(fleet.EntityCard, cur.ID, cur.ICCID, &c.card, false, !all, cur.Unknown, cur.Unknown, lazyJSON(cur), nil)
}

// poolEval is cardEval for pools.
func (c *cycle) poolEval(prev, cur *fleet.Pool) {
	if cur == nil {
		c.curPool, c.prevPool = prev, prev
		c.pool.Pool, c.pool.Prev = *prev, *prev
		c.pool.Removed = true
		c.evaluate(fleet.EntityPool, prev.ID, "", &c.pool, true, false, prev.Unknown, prev.Unknown, lazyJSON(prev), lazyJSON(prev))
		c.pool.Removed = false
		c.gone(fleet.EntityPool, prev.ID)
		return
	}
	c.curPool, c.prevPool = cur, prev
	c.pool.Pool = *cur
	var prevUnknown fleet.Unknown
	if prev != nil {
		c.pool.Prev = *prev
		prevUnknown = prev.Unknown
	} else {
		c.pool.Prev = fleet.Pool{}
		c.prevPool = cur
	}
	c.evaluate(fleet.EntityPool, cur.ID, "", &c.pool, prev != nil, false, cur.Unknown, prevUnknown, lazyJSON(cur), lazyJSON(prev))
}

// poolSame is cardSame for pools.
func (c *cycle) poolSame(cur *fleet.Pool, all bool) {
	c.curPool, c.prevPool = cur, cur
	c.pool.Pool, c.pool.Prev = *cur, *cur
	c.evaluate(fleet.EntityPool, cur.ID, "", &c.pool, false, !all, cur.Unknown, cur.Unknown, lazyJSON(cur), nil)
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

func (c *cycle) evaluate(entity, id, iccid string, env any, hasPrev, clockOnly bool, unknown, prevUnknown fleet.Unknown, values, prev func() json.RawMessage) {
	left, imei := c.card.FlowLeft, knownIMEI(&c.card.Card)
	if entity == fleet.EntityPool {
		left, imei = c.pool.FlowLeft, ""
	}
	c.usage.reset(entity, id, left, imei)
	removing := c.card.Removed || c.pool.Removed
	for i, r := range c.set.Rules {
		if r.On != entity || (clockOnly && !r.clock) || r.removal != removing {
			continue
		}
		if c.failed[i] != nil || c.stop != nil {
			continue // over budget earlier in the cycle: its alerts are held (see finish)
		}
		if r.transition && !hasPrev {
			continue // first sight or unchanged: no transition
		}
		if unknown.Has(r.reads) || (hasPrev && prevUnknown.Has(r.readsPrev)) {
			c.hold(r, entity, id) // a value the rule reads is unknown
			continue
		}
		c.usage.unknown = false
		out, err := c.runMetered(i, r.program, env, entity, id)
		if err != nil {
			c.fail(i, r, entity, id, err)
			continue
		}
		if c.usage.unknown {
			c.hold(r, entity, id) // a helper had no figure to give
			continue
		}
		holds, _ := out.(bool)
		if r.transition {
			if holds {
				cur, old := c.entityValues(entity)
				c.emit(r, event.KindTransition, entity, id, iccid, c.now, 0, values(), prev(), cur, old)
			}
			continue
		}
		if !holds && !c.alerted[entity+"\x00"+id] {
			continue
		}
		key := AlertKey(r.Name, entity, id)
		c.touched[key] = true
		a := c.mut(key)
		if a != nil {
			a.Held = false
		}
		if a != nil && a.State == StateResolved && a.Cycle != c.month {
			c.del(key) // a new billing cycle: the rule is armed again
			a = nil
		}
		switch {
		case holds && a == nil:
			a = &Alert{Rule: r.Name, Entity: entity, EntityID: id, ICCID: iccid, State: StatePending, ActiveAt: c.now, Values: values()}
			c.put(key, a)
			c.alerted[entity+"\x00"+id] = true
			c.advance(r, a)
		case holds && a.State == StateResolved:
			// Already notified this billing cycle: hold quietly.
			a.State, a.Muted, a.ActiveAt, a.Values = StateFiring, true, c.now, values()
		case holds:
			a.Values, a.ClearedAt = values(), time.Time{}
			c.advance(r, a)
		case a != nil && a.State == StateFiring && r.resolveWhen != nil && !c.run(i, r, r.resolveWhen, env, entity, id):
			// Inside the hysteresis band: still firing.
			a.Values = values()
		case a != nil && a.State != StateResolved:
			c.clear(r, a, values())
		}
	}
}

// hold handles a rule that could not be evaluated because a value it reads
// is unknown: it neither fires nor resolves, and an alert it has waits as
// it is (Held: finish does not advance it either).
func (c *cycle) hold(r *Rule, entity, id string) {
	if r.transition || !c.alerted[entity+"\x00"+id] {
		return
	}
	key := AlertKey(r.Name, entity, id)
	if a := c.get(key); a != nil {
		c.touched[key] = true
		if !a.Held {
			c.mut(key).Held = true
		}
	}
}

// run evaluates a boolean program of rule i; an error counts as false and
// is reported.
func (c *cycle) run(i int, r *Rule, p *vm.Program, env any, entity, id string) bool {
	out, err := c.runMetered(i, p, env, entity, id)
	if err != nil {
		c.fail(i, r, entity, id, err)
		return false
	}
	b, _ := out.(bool)
	return b
}

// runMetered runs a program of rule i on an entity under the budget, and
// accounts its steps to the rule's budget for the cycle.
func (c *cycle) runMetered(i int, p *vm.Program, env any, entity, id string) (any, error) {
	c.meter.Reset(c.ctx)
	out, err := c.vm.Run(p, env)
	if n := c.meter.steps; n > 0 {
		c.steps[i] += n
		if err == nil && c.steps[i] > maxCycleSteps {
			err = &BudgetError{Reason: fmt.Sprintf("more than %d steps over the cycle's entities", maxCycleSteps)}
		}
	}
	if err == nil {
		c.clean[i] = true
		if c.watch[i] != "" && c.watch[i] == entity+"\x00"+id {
			c.recovered[i] = true
		}
	}
	return out, err
}

// fail records an evaluation error of rule i on an entity. A rule over its
// budget is not evaluated again this cycle: spending the budget again on
// each of a million entities would stall the cycle. The context ending
// stops the cycle. Any other error is the entity's alone.
func (c *cycle) fail(i int, r *Rule, entity, id string, err error) {
	switch {
	case c.ctx != nil && c.ctx.Err() != nil:
		if c.stop == nil {
			c.stop = fmt.Errorf("rules: evaluation stopped: %w", c.ctx.Err())
			c.errs = append(c.errs, c.stop)
		}
	case IsBudget(err) != nil:
		err = budgetErr(err)
		c.failed[i] = fmt.Errorf("on %s %s: %w", entity, id, IsBudget(err))
		c.failedOn[i] = [2]string{entity, id}
		c.errs = append(c.errs, fmt.Errorf("rule %s (%s:%d) on %s %s, not evaluated for the rest of the cycle: %w", r.Name, r.File, r.Line, entity, id, err))
	default:
		c.errs = append(c.errs, fmt.Errorf("rule %s on %s %s: %w", r.Name, entity, id, err))
	}
}

// stopped reports whether the cycle must stop: its context ended. It reads
// the context only every 256 entities, as a cheap evaluation takes far less
// than the context costs to check.
func (c *cycle) stopped() bool {
	if c.stop != nil {
		return true
	}
	c.polls++
	if c.ctx != nil && c.polls%256 == 1 {
		if err := c.ctx.Err(); err != nil {
			c.stop = fmt.Errorf("rules: evaluation stopped: %w", err)
			c.errs = append(c.errs, c.stop)
			return true
		}
	}
	return false
}

// clear handles a condition that stopped holding: keep_firing_for holds a
// firing alert a while longer, then it ends. a is the cycle's own copy.
func (c *cycle) clear(r *Rule, a *Alert, values json.RawMessage) {
	if a.State == StateFiring && !a.Muted && r.KeepFiringFor > 0 {
		if a.ClearedAt.IsZero() {
			a.ClearedAt = c.now
		}
		if values != nil {
			a.Values = values
		}
		if c.now.Sub(a.ClearedAt) < r.KeepFiringFor {
			return
		}
	}
	c.end(r, a, values)
}

// advance moves a holding alert on: pending to firing once `for` has passed,
// and a repeat notification once `repeat` has. a is the cycle's own copy.
func (c *cycle) advance(r *Rule, a *Alert) {
	if a.Muted && a.Cycle != c.month {
		// Held quietly through the end of a billing cycle: armed again.
		a.Muted, a.State, a.ActiveAt, a.Sent = false, StatePending, c.now, 0
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
	c.emit(r, event.KindFiring, a.Entity, a.EntityID, a.ICCID, a.ActiveAt, a.Sent, a.Values, nil, nil, nil)
	a.Sent++
	a.LastSent = c.now
}

// due reports whether advance would change an untouched alert, so that
// finish copies only those.
func (c *cycle) due(r *Rule, a *Alert) bool {
	if a.Muted {
		return a.Cycle != c.month
	}
	return (a.State == StatePending && c.now.Sub(a.ActiveAt) >= r.For) ||
		(a.State == StateFiring && r.Repeat > 0 && c.now.Sub(a.LastSent) >= r.Repeat)
}

// end removes an alert that stopped holding; a firing one resolves. a is
// the cycle's own copy.
func (c *cycle) end(r *Rule, a *Alert, values json.RawMessage) {
	if values != nil {
		a.Values = values
	}
	if a.State == StateFiring && !a.Muted {
		c.emit(r, event.KindResolved, a.Entity, a.EntityID, a.ICCID, a.ActiveAt, 0, a.Values, nil, nil, nil)
	}
	c.touched[a.Key()] = true
	if r.Rearm == RearmCycle && a.Cycle != "" {
		// Remember the notification until the billing cycle ends.
		a.State, a.Muted, a.ClearedAt, a.Held = StateResolved, false, time.Time{}, false
		return
	}
	c.del(a.Key())
}

// gone ends every alert of an entity that left the listings.
func (c *cycle) gone(entity, id string) {
	for _, r := range c.set.Rules {
		key := AlertKey(r.Name, entity, id)
		if c.get(key) != nil {
			c.end(r, c.mut(key), nil)
		}
	}
}

// finish advances the alerts no entity touched (pending ones whose `for`
// has passed, firing ones due a repeat), ends alerts of rules that no longer
// exist, and returns the cycle's events and the alerts to write: a nil value
// means delete.
func (c *cycle) finish() (events []event.Event, writes map[string]*Alert, errs []error) {
	if c.stop != nil {
		// Stopped part way: nothing of it may be committed, so nothing
		// more is decided.
		return c.events, c.own, c.errs
	}
	byName := make(map[string]int, len(c.set.Rules))
	for i, r := range c.set.Rules {
		byName[r.Name] = i
	}
	c.ruleHealth(byName)
	visit := func(key string) {
		a := c.get(key)
		if a == nil || c.touched[key] {
			return
		}
		var r *Rule
		i, ok := byName[a.Rule]
		if ok {
			r = c.set.Rules[i]
		}
		switch {
		case a.Entity == EntityRule:
			// A rule_failed alert of a rule no longer in the set: its
			// rule was fixed by removing or renaming it.
			c.endRuleFailed(a.EntityID, c.mut(key))
		case r != nil && c.failed[i] != nil:
			// The rule went over its budget this cycle: its alerts are
			// held, as with an unknown value, neither advanced nor resolved.
		case r == nil || r.transition || r.On != a.Entity || (a.State == StateResolved && a.Cycle != c.month):
			// The rule was removed or changed kind, or a remembered
			// notification's cycle is over: the record ends quietly.
			c.del(key)
		case a.Held:
			// Its entity has an unknown value the rule reads: it waits.
		case a.State == StateFiring && !a.ClearedAt.IsZero():
			c.clear(r, c.mut(key), nil) // keep_firing_for may have run out
		case c.due(r, a):
			c.advance(r, c.mut(key))
		}
	}
	for key := range c.base {
		visit(key)
	}
	for key := range c.own {
		if _, ok := c.base[key]; !ok {
			visit(key)
		}
	}
	return c.events, c.own, c.errs
}

// emit records an event. cur and old, when set, are the entity's Go values
// now and before: the summary is rendered from them, without decoding the
// JSON (the same text; see renderValues).
func (c *cycle) emit(r *Rule, kind, entity, id, iccid string, startsAt time.Time, seq int, values, prev json.RawMessage, cur, old any) {
	at := startsAt
	if kind == event.KindTransition {
		at = c.now
	}
	var summary string
	var err error
	if cur != nil {
		summary, err = r.renderValues(cur, old)
	} else {
		summary, err = r.render(values, prev)
	}
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
