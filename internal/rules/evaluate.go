package rules

import (
	"context"
	"iter"
	"time"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/fleet"
)

// State is what evaluating one provider's listings carries from one complete
// listing to the next. The poller keeps it in the store; `rules test` keeps
// it in memory. Evaluate never modifies it: Apply moves it on.
type State struct {
	// Alerts are the active alerts by AlertKey.
	Alerts map[string]*Alert
	// Missing holds the entities (EntityKey) absent from the last complete
	// listing: one more absence removes them.
	Missing map[string]bool
	// RulesHash is the rule set the last listing was evaluated with; a new
	// or edited set evaluates every entity once.
	RulesHash string
	// LastClockEval is when rules reading the clock or the usage history
	// last ran on entities that did not change.
	LastClockEval time.Time
}

// EntityKey identifies an entity within a provider.
func EntityKey(entity, id string) string { return entity + "\x00" + id }

// Change is one entity of a listing that is new (Prev nil) or differs from
// the previous snapshot.
type Change[T any] struct{ Prev, Cur *T }

// Changes is one kind of entity of a complete listing against the previous
// snapshot.
type Changes[T any] struct {
	// Changed yields the new and changed entities, each once, in a stable
	// order: a poller decodes each as it is walked, so a listing where
	// everything changed (a first cycle) is never held decoded whole.
	Changed iter.Seq[Change[T]] `json:"-"`
	// Same yields the unchanged entities. It is only walked when rules must
	// see them (a new rule set, clock rules due), so a poller can read them
	// from its snapshot then instead of holding a decoded listing; nil
	// yields none.
	Same iter.Seq[*T] `json:"-"`
	// Back are the ids of unchanged entities that were missing from the
	// previous listing and are listed again.
	Back   []string
	Absent []*T // in the snapshot, not in this listing
}

// seq is s, or an empty sequence for nil.
func seq[V any](s iter.Seq[V]) iter.Seq[V] {
	if s == nil {
		return func(func(V) bool) {}
	}
	return s
}

// Pointers yields a pointer to each item, for Changes.Same.
func Pointers[T any](items []*T) iter.Seq[*T] {
	return func(yield func(*T) bool) {
		for _, it := range items {
			if !yield(it) {
				return
			}
		}
	}
}

// HistoryKey names an entity's usage history.
type HistoryKey struct{ Entity, ID string }

// Input is everything one evaluation reads.
type Input struct {
	// Ctx stops the evaluation when it ends (a SIGTERM, a timeout): nil
	// never does. Evaluate then returns promptly with Output.Stopped set.
	Ctx      context.Context
	Provider string
	Now      time.Time
	State    State
	Cards    Changes[fleet.Card]
	Pools    Changes[fleet.Pool]
	// History reads an entity's stored daily usage; nil reads none.
	History func(entity, id string) fleet.History
	// FirstIMEI reads the first IMEI recorded for a card; nil reads none.
	FirstIMEI func(cardID string) string
	// SnapshotUsage derives daily usage from successive listings' flow_used,
	// for providers without a daily usage API.
	SnapshotUsage bool
	// ClockEvery is how often clock and history rules run on unchanged
	// entities; zero means every listing.
	ClockEvery time.Duration
	// HistoryThrough is the last day the provider's daily usage API has
	// published (fleet.DayOf days); 0 when it has none.
	HistoryThrough int32
}

// Output is what one evaluation decided. Nothing of it has happened yet:
// the caller commits it (the poller in one store transaction) and then
// calls State.Apply.
type Output struct {
	Events []event.Event
	// Alerts to write; a nil value deletes.
	Alerts map[string]*Alert
	// Missing to write: true marks an entity absent once, false clears it.
	Missing map[string]bool
	// RemovedCards and RemovedPools left two complete listings in a row:
	// they leave the snapshot.
	RemovedCards, RemovedPools []string
	// History holds updated usage histories (snapshot-derived usage).
	History map[HistoryKey]fleet.History
	// FirstIMEI holds first IMEIs seen for the first time.
	FirstIMEI map[string]string
	// RulesHash and ClockEval become the state's.
	RulesHash string
	ClockEval time.Time
	// Full is set when a new rule set saw every entity; Clock when clock
	// rules ran on unchanged entities.
	Full, Clock bool
	// Errors are rule evaluation failures: the rule counts as not holding.
	// A rule over its budget (errors.Is(err, ErrBudget)) is reported once
	// per cycle, and raises a rule_failed event (see RuleFailed).
	Errors []error
	// Stopped is set when Input.Ctx ended before the evaluation did: the
	// output covers part of the listing only and must not be committed;
	// the cycle fails.
	Stopped error
}

// Apply moves the state on by an output that was committed.
func (s *State) Apply(out *Output) {
	if s.Alerts == nil {
		s.Alerts = map[string]*Alert{}
	}
	for k, a := range out.Alerts {
		if a == nil {
			delete(s.Alerts, k)
		} else {
			s.Alerts[k] = a
		}
	}
	if s.Missing == nil {
		s.Missing = map[string]bool{}
	}
	for k, m := range out.Missing {
		if m {
			s.Missing[k] = true
		} else {
			delete(s.Missing, k)
		}
	}
	s.RulesHash, s.LastClockEval = out.RulesHash, out.ClockEval
}

// Evaluate runs the rule set over one complete listing: new and changed
// entities against their previous version, absent ones towards removal (a
// second absence in a row removes them), unchanged ones for rules that read
// the clock (every ClockEvery) or, once, for a new rule set. It is the one
// evaluation the daemon, `rules test` and the tests run; it reads the
// store only through in's readers and writes nothing.
func (s *Set) Evaluate(in Input) Output {
	out := Output{Missing: map[string]bool{}, History: map[HistoryKey]fleet.History{},
		FirstIMEI: map[string]string{}, RulesHash: s.Hash, ClockEval: in.State.LastClockEval}
	out.Full = in.State.RulesHash != s.Hash
	out.Clock = out.Full || in.ClockEvery <= 0 || in.Now.Sub(in.State.LastClockEval) >= in.ClockEvery
	if out.Clock {
		out.ClockEval = in.Now
	}
	alerts := in.State.Alerts
	if alerts == nil {
		alerts = map[string]*Alert{}
	}
	c := s.newCycle(in.Provider, in.Now, alerts)
	c.ctx = in.Ctx
	c.usage.through = in.HistoryThrough
	today := fleet.DayOf(in.Now)
	c.usage.read = func(entity, id string) fleet.History {
		if h, ok := out.History[HistoryKey{entity, id}]; ok {
			return h
		}
		if in.History == nil {
			return fleet.History{}
		}
		return in.History(entity, id)
	}
	c.usage.firstIMEI = func(id string) string {
		if imei, ok := out.FirstIMEI[id]; ok {
			return imei
		}
		if in.FirstIMEI == nil {
			return ""
		}
		return in.FirstIMEI(id)
	}
	usage := func(entity, id string, prevUsed, curUsed float64) {
		if !in.SnapshotUsage {
			return
		}
		h := c.usage.read(entity, id)
		if addSnapshotUsage(&h, prevUsed, curUsed, today) {
			out.History[HistoryKey{entity, id}] = h
		}
	}
	usedBit := fleet.CardField("flow_used")
	evaluateKind(in, &out, in.Cards, kind[fleet.Card]{
		entity: fleet.EntityCard,
		id:     func(c *fleet.Card) string { return c.ID },
		eval:   c.cardEval,
		same:   c.cardSame,
		clock:  s.HasClockRules(fleet.EntityCard),
		seen: func(prev, cur *fleet.Card) {
			// A card's first IMEI is recorded only when it is about to
			// be lost: the known IMEI the card had changes (or becomes
			// unknown) and none is recorded. Until then the card's own
			// IMEI is its first, and a million new cards write nothing.
			if prev != nil && knownIMEI(prev) != "" && knownIMEI(cur) != prev.IMEI && c.usage.firstIMEI(cur.ID) == "" {
				out.FirstIMEI[cur.ID] = prev.IMEI
			}
			if prev != nil && !(prev.Unknown | cur.Unknown).Has(usedBit) {
				usage(fleet.EntityCard, cur.ID, prev.FlowUsed, cur.FlowUsed)
			}
		},
		// A card leaving the snapshot keeps its first IMEI recorded, for
		// the day it is listed again.
		gone: func(prev *fleet.Card) {
			if imei := knownIMEI(prev); imei != "" && c.usage.firstIMEI(prev.ID) == "" {
				out.FirstIMEI[prev.ID] = imei
			}
		},
		removed: &out.RemovedCards,
		stopped: c.stopped,
	})
	poolUsed := fleet.PoolField("flow_used")
	evaluateKind(in, &out, in.Pools, kind[fleet.Pool]{
		entity: fleet.EntityPool,
		id:     func(p *fleet.Pool) string { return p.ID },
		eval:   c.poolEval,
		same:   c.poolSame,
		clock:  s.HasClockRules(fleet.EntityPool),
		seen: func(prev, cur *fleet.Pool) {
			if prev != nil && !(prev.Unknown | cur.Unknown).Has(poolUsed) {
				usage(fleet.EntityPool, cur.ID, prev.FlowUsed, cur.FlowUsed)
			}
		},
		removed: &out.RemovedPools,
		stopped: c.stopped,
	})
	out.Events, out.Alerts, out.Errors = c.finish()
	out.Stopped = c.stop
	return out
}

// kind is how Evaluate walks one kind of entity.
type kind[T any] struct {
	entity  string
	id      func(*T) string
	eval    func(prev, cur *T) // new, changed (prev set) or gone (cur nil)
	same    func(cur *T, all bool)
	clock   bool               // some condition rule on the kind reads the clock
	seen    func(prev, cur *T) // what a new or changed entity records
	gone    func(prev *T)      // what a removed entity records; nil: nothing
	removed *[]string
	stopped func() bool // the evaluation must stop (its context ended)
}

// evaluateKind walks one kind of entity of a listing: changed ones are
// evaluated, absent ones marked missing or (the second time) removed,
// unchanged ones evaluated for clock rules or a new rule set.
func evaluateKind[T any](in Input, out *Output, ch Changes[T], k kind[T]) {
	missing := func(id string) bool { return in.State.Missing[EntityKey(k.entity, id)] }
	present := func(id string) {
		if missing(id) {
			out.Missing[EntityKey(k.entity, id)] = false // back before it was removed
		}
	}
	for c := range seq(ch.Changed) {
		if k.stopped() {
			return
		}
		present(k.id(c.Cur))
		k.seen(c.Prev, c.Cur)
		k.eval(c.Prev, c.Cur)
	}
	for _, prev := range ch.Absent {
		if k.stopped() {
			return
		}
		id := k.id(prev)
		out.Missing[EntityKey(k.entity, id)] = !missing(id)
		if missing(id) {
			*k.removed = append(*k.removed, id)
			if k.gone != nil {
				k.gone(prev)
			}
			k.eval(prev, nil)
		}
	}
	for _, id := range ch.Back {
		present(id)
	}
	if !(out.Full || out.Clock && k.clock) || ch.Same == nil {
		return
	}
	for cur := range ch.Same {
		if k.stopped() {
			return
		}
		k.same(cur, out.Full)
	}
}

// addSnapshotUsage derives today's usage from the difference between two
// listings, for providers without a daily API, and reports whether h
// changed. A drop in flow_used is a new billing cycle: the new figure is all
// this cycle's use. The provider's own daily figures, when there are any,
// win.
func addSnapshotUsage(h *fleet.History, prevUsed, curUsed float64, today int32) bool {
	delta := curUsed - prevUsed
	if delta < 0 {
		delta = curUsed
	}
	if delta == 0 || h.Source == fleet.HistoryDaily {
		return false
	}
	h.Source = fleet.HistorySnapshot
	mb, _ := h.Get(today)
	days := append([]fleet.DayUsage(nil), h.Days...) // the reader's copy stays as it was
	h.Days = days
	h.Set(today, mb+delta)
	return true
}
