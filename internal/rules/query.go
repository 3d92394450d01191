package rules

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"

	"github.com/simwatch/simwatch/internal/fleet"
)

// Query is an ad-hoc question over the latest snapshot ("which cards match
// this right now?") in the rule language. Each match runs under the
// expression budget (see budget.go); a query whose loops over literal
// ranges provably exceed it is refused by NewQuery. It is not safe for
// concurrent use.
type Query struct {
	on      string
	program *vm.Program
	reads   fleet.Unknown // fields read: an entity with one unknown does not match
	cycle   *cycle
	// err is the first budget or context error: every later match returns
	// it at once, so a caller that goes on after an error does not spend
	// the budget again on each entity.
	err error
}

// NewQuery compiles expression src for entity kind on. Errors read like
// rule errors: query:1:col: message, with hints. prev, changed() and
// removed compare listings, which a query does not have.
func NewQuery(on, src string, now time.Time) (*Query, error) {
	if on != fleet.EntityCard && on != fleet.EntityPool {
		return nil, fmt.Errorf("query: on must be card or pool")
	}
	prog, fe := compileExpr(src, on)
	if fe != nil {
		return nil, fmt.Errorf("query:%d:%d: %s", fe.Line, fe.Column+1, fe.Message)
	}
	var bad string
	ast.Find(prog.Node(), func(n ast.Node) bool {
		if id, ok := n.(*ast.IdentifierNode); ok && slices.Contains(transitionNames, id.Value) {
			bad = id.Value
		}
		return false
	})
	if bad != "" {
		return nil, fmt.Errorf("query: %s compares two listings; a query looks at the latest one only", bad)
	}
	set := &Set{}
	reads, _ := fieldReads(prog.Node(), on)
	return &Query{on: on, program: prog, reads: reads, cycle: set.newCycle("", now, map[string]*Alert{})}, nil
}

// SetContext makes every later match fail once ctx ends (the client left,
// the query's time is up), even in the middle of one evaluation: a match
// then returns an error wrapping ctx.Err(). The caller should stop the
// whole query at the first error a match returns.
func (q *Query) SetContext(ctx context.Context) { q.cycle.ctx = ctx }

// ReadHistory lets the query's usage helpers read history, as rules read
// it: through is the last day the provider's daily data covers (0: none).
func (q *Query) ReadHistory(read func(entity, id string) fleet.History, through int32) {
	q.cycle.usage.read, q.cycle.usage.through = read, through
}

// ReadFirstIMEI lets first_imei() read what the poller recorded.
func (q *Query) ReadFirstIMEI(read func(cardID string) string) { q.cycle.usage.firstIMEI = read }

// MatchCard reports whether a card matches.
func (q *Query) MatchCard(c *fleet.Card) (bool, error) {
	if c.Unknown.Has(q.reads) {
		return false, nil // as a rule, a query does not match on unknown values
	}
	cy := q.cycle
	cy.curCard, cy.prevCard = c, c
	cy.card.Card, cy.card.Prev = *c, *c
	cy.usage.reset(fleet.EntityCard, c.ID, c.FlowLeft, knownIMEI(c))
	return q.run(&cy.card)
}

// MatchPool reports whether a pool matches.
func (q *Query) MatchPool(p *fleet.Pool) (bool, error) {
	if p.Unknown.Has(q.reads) {
		return false, nil
	}
	cy := q.cycle
	cy.curPool, cy.prevPool = p, p
	cy.pool.Pool, cy.pool.Prev = *p, *p
	cy.usage.reset(fleet.EntityPool, p.ID, p.FlowLeft, "")
	return q.run(&cy.pool)
}

func (q *Query) run(env any) (bool, error) {
	if q.err != nil {
		return false, q.err
	}
	if ctx := q.cycle.ctx; ctx != nil && ctx.Err() != nil {
		q.err = fmt.Errorf("query stopped: %w", ctx.Err())
		return false, q.err
	}
	q.cycle.usage.unknown = false
	q.cycle.meter.Reset(q.cycle.ctx)
	out, err := q.cycle.vm.Run(q.program, env)
	if err != nil {
		switch ctx := q.cycle.ctx; {
		case ctx != nil && ctx.Err() != nil:
			q.err = fmt.Errorf("query stopped: %w", ctx.Err())
		case IsBudget(err) != nil:
			q.err = fmt.Errorf("query: %w", budgetErr(err))
		default:
			return false, err // this entity's alone (e.g. a nil field)
		}
		return false, q.err
	}
	if q.cycle.usage.unknown {
		return false, nil // a helper had no figure: as a rule, no match
	}
	b, _ := out.(bool)
	return b, nil
}
