package mute

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/simwatch/simwatch/internal/config"
	"github.com/simwatch/simwatch/internal/event"
)

// config checks inhibit rules' expressions at load whenever mute is linked.
func init() { config.CheckMatch = CheckMatch }

// Inhibitor holds compiled inhibit rules. A target event (one that a rule's
// target_match matches) is inhibited while a source — the latest firing
// event of a firing alert that the rule's source_match matches — has the
// same value of every equal field. An alert never inhibits itself. It is
// safe for concurrent use.
type Inhibitor struct {
	rules []inhibitRule
	needs needs
}

type inhibitRule struct {
	source, target *program
	equal          []string
}

// NewInhibitor compiles the rules. An error names the rule and field, e.g.
// "inhibit_rules[0].source_match: unknown name rulee (did you mean rule?)".
func NewInhibitor(rules []config.InhibitRule) (*Inhibitor, error) {
	in := &Inhibitor{}
	for i, r := range rules {
		var ir inhibitRule
		for _, m := range []struct {
			key, src string
			p        **program
		}{{"source_match", r.SourceMatch, &ir.source}, {"target_match", r.TargetMatch, &ir.target}} {
			p, err := compile(m.src)
			if err != nil {
				return nil, fmt.Errorf("inhibit_rules[%d].%s: %w", i, m.key, err)
			}
			*m.p = p
			in.needs = in.needs.or(p.needs)
		}
		for j, f := range r.Equal {
			if !config.EqualField(f) {
				return nil, fmt.Errorf("inhibit_rules[%d].equal[%d]: unknown field %q (want rule, provider, severity, kind, entity, entity_id, iccid or labels.NAME)", i, j, f)
			}
		}
		ir.equal = append([]string(nil), r.Equal...)
		in.rules = append(in.rules, ir)
	}
	return in, nil
}

// Len is the number of rules.
func (in *Inhibitor) Len() int {
	if in == nil {
		return 0
	}
	return len(in.rules)
}

// Inhibited returns what inhibits target among sources (e.g.
// "provider_unhealthy hw"), or "". To test many targets against the same
// sources, use Sources once and SourceSet.Inhibited.
func (in *Inhibitor) Inhibited(target *event.Event, sources []event.Event) (by string) {
	return in.Sources(sources).Inhibited(target)
}

// Sources selects, once, the events among firing that can inhibit: those
// of kind firing that a rule's source_match matches, indexed by their
// equal values. Expressions that use the clock see time.Now().
func (in *Inhibitor) Sources(firing []event.Event) *SourceSet {
	return in.SourcesAt(firing, time.Now())
}

// SourcesAt is Sources with the clock at now.
func (in *Inhibitor) SourcesAt(firing []event.Event, now time.Time) *SourceSet {
	s := &SourceSet{clock: newClock(now)}
	if in.Len() == 0 {
		return s
	}
	s.in = in
	s.index = make([]map[string][]source, len(in.rules))
	s.failed = make([]atomic.Bool, len(in.rules))
	for i := range firing {
		e := &firing[i]
		if e.Kind != event.KindFiring {
			continue
		}
		var env *Env
		for r, rule := range in.rules {
			if s.failed[r].Load() {
				continue
			}
			if env == nil {
				env = newEnv(e, &s.clock, in.needs)
			}
			if ok, budget := rule.source.run(env); budget != nil {
				s.fail(r, "source_match", budget)
				continue
			} else if !ok {
				continue
			}
			if s.index[r] == nil {
				s.index[r] = map[string][]source{}
			}
			k := equalKey(e, rule.equal)
			s.index[r][k] = append(s.index[r][k], source{alert: e.AlertKey(), desc: describe(e)})
			s.n++
		}
	}
	return s
}

// SourceSet is the inhibiting events of one moment, indexed by rule and
// equal values. It is safe for concurrent use.
//
// Matches run under the expression budget (see rules.BudgetOptions): a
// rule whose source_match or target_match goes over it inhibits nothing
// for the rest of the set, and Errors reports it.
type SourceSet struct {
	in     *Inhibitor
	clock  clock
	index  []map[string][]source // per rule: equal values → sources
	n      int
	failed []atomic.Bool // per rule: went over its budget
	mu     sync.Mutex
	errs   []error
}

// fail disables rule r for the rest of the set and records why, once.
func (s *SourceSet) fail(r int, key string, err error) {
	if s.failed[r].CompareAndSwap(false, true) {
		s.mu.Lock()
		s.errs = append(s.errs, fmt.Errorf("inhibit_rules[%d].%s inhibits nothing: %w", r, key, err))
		s.mu.Unlock()
	}
}

// Errors returns the rules that went over their budget (errors.Is(err,
// rules.ErrBudget)), for the caller to log; nil when none did.
func (s *SourceSet) Errors() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(s.errs...)
}

type source struct {
	alert string // event.AlertKey, so that an alert does not inhibit itself
	desc  string
}

// Len is the number of (rule, source) pairs in the set.
func (s *SourceSet) Len() int {
	if s == nil {
		return 0
	}
	return s.n
}

// Inhibited returns what inhibits target (the inhibiting alert's rule and
// entity, e.g. "provider_unhealthy hw"), or "".
func (s *SourceSet) Inhibited(target *event.Event) (by string) {
	if s.Len() == 0 || target == nil {
		return ""
	}
	var env *Env
	var alert string
	for r, rule := range s.in.rules {
		if len(s.index[r]) == 0 || s.failed[r].Load() {
			continue
		}
		if env == nil {
			env = newEnv(target, &s.clock, s.in.needs)
			alert = target.AlertKey()
		}
		if ok, budget := rule.target.run(env); budget != nil {
			s.fail(r, "target_match", budget)
			continue
		} else if !ok {
			continue
		}
		for _, src := range s.index[r][equalKey(target, rule.equal)] {
			if src.alert != alert {
				return src.desc
			}
		}
	}
	return ""
}

// describe names an inhibiting alert: its rule and entity.
func describe(e *event.Event) string {
	id := e.EntityID
	if id == "" {
		id = e.Provider
	}
	return strings.TrimSpace(e.Rule + " " + id)
}

// equalKey joins the values of the equal fields unambiguously. A field the
// event does not have is "", which equals "", as in Alertmanager.
func equalKey(e *event.Event, fields []string) string {
	var b strings.Builder
	for _, f := range fields {
		v := e.Field(f)
		b.WriteString(strconv.Itoa(len(v)))
		b.WriteByte(':')
		b.WriteString(v)
	}
	return b.String()
}
