package rules

import (
	"encoding/json"
	"fmt"

	"github.com/simwatch/simwatch/internal/event"
)

// A rule that goes over its budget (see budget.go) is not evaluated for the
// rest of the cycle, and its alerts are held. So that this does not go
// unnoticed, it raises a rule_failed alert of its own, kept with the
// others in State.Alerts: entity "rule", entity id the rule's name. It
// fires once per episode and resolves when the rule evaluates cleanly the
// entity it failed on, or leaves the rule set.
const (
	RuleFailed = "rule_failed"
	EntityRule = "rule"
)

// ruleHealth raises the rule_failed alerts of the rules that failed this
// cycle and resolves those of rules that evaluated cleanly. A rule that
// evaluated nothing this cycle (no entity it applies to changed) keeps its
// alert as it is.
func (c *cycle) ruleHealth(byName map[string]int) {
	for i, r := range c.set.Rules {
		key := AlertKey(RuleFailed, EntityRule, r.Name)
		a := c.get(key)
		switch {
		case c.failed[i] != nil && a == nil:
			a = &Alert{Rule: RuleFailed, Entity: EntityRule, EntityID: r.Name, State: StateFiring,
				ActiveAt: c.now, FiredAt: c.now, LastSent: c.now, Sent: 1, Values: c.failedValues(i, r)}
			c.put(key, a)
			c.emitRuleFailed(event.KindFiring, a,
				fmt.Sprintf("rule %s (%s:%d) is not evaluated: %v", r.Name, r.File, r.Line, c.failed[i]))
		case a != nil && c.failed[i] != nil:
			// Still failing, perhaps on another entity: that one must
			// evaluate cleanly before the alert resolves.
			c.mut(key).Values = c.failedValues(i, r)
		case a != nil && (c.recovered[i] || (c.watch[i] == "" && c.clean[i])):
			c.endRuleFailed(r.Name, c.mut(key))
		}
		c.touched[key] = true // finish's visit leaves it alone
	}
}

// failedValues are a rule_failed alert's values: the rule, where it is
// written, why it failed and on which entity.
type failedValues struct {
	Rule     string `json:"rule"`
	File     string `json:"file"`
	Line     int    `json:"line"`
	Error    string `json:"error"`
	Entity   string `json:"entity,omitempty"`
	EntityID string `json:"entity_id,omitempty"`
}

func (c *cycle) failedValues(i int, r *Rule) json.RawMessage {
	return mustJSON(failedValues{Rule: r.Name, File: r.File, Line: r.Line, Error: c.failed[i].Error(),
		Entity: c.failedOn[i][0], EntityID: c.failedOn[i][1]})
}

// watchedEntities is, per rule of s, the entity its firing rule_failed
// alert failed on ("" for none).
func watchedEntities(s *Set, alerts map[string]*Alert) []string {
	watch := make([]string, len(s.Rules))
	var index map[string]int
	for _, a := range alerts {
		if a.Rule != RuleFailed || a.Entity != EntityRule {
			continue
		}
		if index == nil {
			index = make(map[string]int, len(s.Rules))
			for i, r := range s.Rules {
				index[r.Name] = i
			}
		}
		var v failedValues
		if i, ok := index[a.EntityID]; ok && json.Unmarshal(a.Values, &v) == nil && v.Entity != "" {
			watch[i] = v.Entity + "\x00" + v.EntityID
		}
	}
	return watch
}

// endRuleFailed resolves a rule_failed alert (the cycle's own copy).
func (c *cycle) endRuleFailed(rule string, a *Alert) {
	c.emitRuleFailed(event.KindResolved, a, fmt.Sprintf("rule %s evaluates again", rule))
	c.touched[a.Key()] = true
	c.del(a.Key())
}

func (c *cycle) emitRuleFailed(kind string, a *Alert, summary string) {
	e := event.Event{
		ID:         event.ID(c.provider, EntityRule, a.EntityID, RuleFailed, kind, a.ActiveAt, 0),
		Kind:       kind,
		Rule:       RuleFailed,
		Severity:   SeverityCritical,
		Summary:    summary,
		Provider:   c.provider,
		Entity:     EntityRule,
		EntityID:   a.EntityID,
		Values:     a.Values,
		StartsAt:   a.ActiveAt,
		ObservedAt: c.now,
	}
	if kind == event.KindResolved {
		e.EndsAt = c.now
	}
	c.events = append(c.events, e)
}
