package rules

// The budget every expression (rule, silence, query) runs under.
//
// expr's VM has no step counter, no deadline and no context, and its
// MemoryBudget counts only ranges, arrays and maps it builds itself, not
// strings built with + or arrays built by builtins. So at compile time a
// patch (meterPatch) wraps every node that runs once per loop iteration (the
// body of a predicate: all, any, map, filter, reduce, sortBy …) and every
// node that can grow a value (+ on strings or arrays, builtins that build
// strings or arrays) in a call to a metering function, which counts a step,
// caps the size of the value passing through and, every checkEvery steps,
// checks a deadline and a context. Over budget it returns a *BudgetError,
// which the VM turns into the evaluation's error (errors.Is(err, ErrBudget)).
// The metering functions are fields of the environment (Metering), bound
// to the evaluation's Meter.
// An expression without loops or growth nodes compiles to the same program
// as without the patch and costs nothing extra.
//
// At compile time, CheckLoops refuses an expression whose nested loops over
// literal ranges or arrays provably exceed the step budget.

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
)

// Budget of one evaluation of one expression on one entity or event. A
// SIM rule loops, at most, over a card's few tags or attributes, and builds
// no strings beyond a few hundred bytes: these are 2-3 orders of magnitude
// above anything legitimate, and low enough that a hostile expression costs
// a few milliseconds and a megabyte before it is stopped.
const (
	// MaxSteps bounds the loop iterations (predicate bodies) and growth
	// operations of one evaluation: about 10 ms of the VM's time.
	MaxSteps = 100_000
	// MaxWall bounds one evaluation's wall time. It is checked only every
	// checkEvery steps, so an evaluation that loops little is never stopped
	// by a slow machine or a GC pause.
	MaxWall = 25 * time.Millisecond
	// MaxString and MaxArray cap one value: a string's bytes, an array's
	// or map's elements.
	MaxString = 64 << 10
	MaxArray  = 10_000
	// MaxBytes caps the bytes of all strings built in one evaluation, so
	// that a loop building strings under MaxString each (reduce with +)
	// still stops early.
	MaxBytes = 1 << 20
	// vmMemoryBudget is expr's own budget (ranges, arrays, maps it builds).
	vmMemoryBudget = 100_000
	// maxCycleSteps bounds the steps one rule may take over one whole
	// cycle (every entity): a rule under MaxSteps per card could still
	// take minutes over a million cards.
	maxCycleSteps = 50_000_000
	// checkEvery is how often (in steps) the deadline and the context are
	// checked: reading the clock on every step would cost more than the
	// step, and an evaluation under checkEvery steps (every legitimate
	// one) never reads it. It is small because one step can be costly (a
	// string function over a long string, a regexp built at run time).
	checkEvery = 64
)

// ErrBudget is what an expression that exceeded its budget fails with:
// errors.Is(err, ErrBudget).
var ErrBudget = errors.New("expression exceeded its budget")

// BudgetError says which budget an expression exceeded.
type BudgetError struct{ Reason string }

func (e *BudgetError) Error() string   { return "expression exceeded its budget: " + e.Reason }
func (e *BudgetError) Is(t error) bool { return t == ErrBudget }

// Meter is the budget state of one evaluation. The zero value is ready;
// call Reset before each run. It is not safe for concurrent use: each
// concurrent evaluation needs its own.
type Meter struct {
	ctx   context.Context
	steps int
	bytes int
	start time.Time
}

// Metering is the functions the compiler's metering calls reach, bound to
// one Meter. Every environment an expression is compiled against embeds
// it (set to Meter.Funcs of the evaluation's meter); its names start with
// "__m" and are not listed among the names an expression can use. They
// are typed fields rather than expr.Functions so that the VM calls them
// directly, without allocating, and so that a wrapped node keeps its type.
// Over budget they panic with a *BudgetError, which the VM returns as the
// evaluation's error.
type Metering struct {
	PassBool   func(bool) bool                  `expr:"__mb"`
	PassString func(string) string              `expr:"__ms"`
	PassInt    func(int) int                    `expr:"__mi"`
	PassFloat  func(float64) float64            `expr:"__mf"`
	PassAny    func(any) any                    `expr:"__ma"`
	PassArray  func([]any) []any                `expr:"__mA"`
	PassStrs   func([]string) []string          `expr:"__mS"`
	Join       func(a any, sep string) string   `expr:"__mjoin"`
	Replace    func(s, old, repl string) string `expr:"__mreplace"`
	Matches    func(s, pattern string) bool     `expr:"__mmatch"`
	// The arguments of builtins and comparisons, charged by their size:
	// one call of sort, uniq, indexOf or fromJSON over a large value is
	// costly though it is one operation.
	ArgString func(string) string `expr:"__mxs"`
	ArgAny    func(any) any       `expr:"__mxa"`
	ArgSquare func(any) any       `expr:"__mxq"`
}

// Funcs returns the metering functions bound to m.
func (m *Meter) Funcs() Metering {
	return Metering{
		PassBool:   func(v bool) bool { m.must(m.step()); return v },
		PassString: func(v string) string { m.must(m.step()); m.must(m.grewString(len(v))); return v },
		PassInt:    func(v int) int { m.must(m.step()); return v },
		PassFloat:  func(v float64) float64 { m.must(m.step()); return v },
		PassAny:    func(v any) any { v, err := m.pass(v); m.must(err); return v },
		PassArray:  func(v []any) []any { _, err := m.pass(v); m.must(err); return v },
		PassStrs:   func(v []string) []string { _, err := m.pass(v); m.must(err); return v },
		Join:       func(a any, sep string) string { s, err := m.join(a, sep); m.must(err); return s },
		Replace:    func(s, old, repl string) string { s, err := m.replace(s, old, repl); m.must(err); return s },
		Matches:    func(s, pattern string) bool { ok, err := m.matches(s, pattern); m.must(err); return ok },
		ArgString:  func(v string) string { m.must(m.chargeSize(v, false)); return v },
		ArgAny:     func(v any) any { m.must(m.chargeSize(v, false)); return v },
		ArgSquare:  func(v any) any { m.must(m.chargeSize(v, true)); return v },
	}
}

// must panics with err: the VM recovers it and returns it, wrapped, as the
// evaluation's error.
func (m *Meter) must(err error) {
	if err != nil {
		panic(err)
	}
}

// Reset starts a new evaluation under ctx (nil: none).
func (m *Meter) Reset(ctx context.Context) {
	m.ctx, m.steps, m.bytes, m.start = ctx, 0, 0, time.Time{}
}

// Steps is how many steps the evaluation since Reset took.
func (m *Meter) Steps() int { return m.steps }

// step counts one step and checks the step budget, and every checkEvery
// steps the context and the deadline. The wall time is measured from the
// checkEvery-th step, so that the many evaluations that loop a little
// (over a card's few tags) never read the clock.
func (m *Meter) step() error { return m.charge(1) }

// charge counts n steps: one for most operations, more for one whose cost
// grows with its input (a regexp match).
func (m *Meter) charge(n int) error {
	before := m.steps
	m.steps += n
	switch {
	case m.steps > MaxSteps:
		return &BudgetError{Reason: fmt.Sprintf("more than %d steps", MaxSteps)}
	case before/checkEvery == m.steps/checkEvery:
		return nil
	}
	if m.ctx != nil {
		if err := m.ctx.Err(); err != nil {
			return fmt.Errorf("evaluation stopped: %w", err)
		}
	}
	if m.start.IsZero() {
		m.start = time.Now()
	} else if time.Since(m.start) > MaxWall {
		return &BudgetError{Reason: fmt.Sprintf("ran longer than %v", MaxWall)}
	}
	return nil
}

// pass counts a step and checks the size of v, which it lets through.
func (m *Meter) pass(v any) (any, error) {
	if err := m.step(); err != nil {
		return nil, err
	}
	n, isString := sizeOf(v)
	if isString {
		return v, m.grewString(n)
	}
	if n > MaxArray {
		return nil, &BudgetError{Reason: fmt.Sprintf("an array of more than %d elements", MaxArray)}
	}
	return v, nil
}

func (m *Meter) grewString(n int) error {
	if n > MaxString {
		return &BudgetError{Reason: fmt.Sprintf("a string longer than %d bytes", MaxString)}
	}
	m.bytes += n
	if m.bytes > MaxBytes {
		return &BudgetError{Reason: fmt.Sprintf("built more than %d bytes of strings", MaxBytes)}
	}
	return nil
}

// Names of the metering functions (see Metering).
const (
	passBool     = "__mb"
	passString   = "__ms"
	passInt      = "__mi"
	passFloat    = "__mf"
	passAny      = "__ma"
	passArray    = "__mA"
	passStrs     = "__mS"
	meteredJoin  = "__mjoin"
	meteredRepl  = "__mreplace"
	meteredMatch = "__mmatch"
	argString    = "__mxs"
	argAny       = "__mxa"
	argSquare    = "__mxq"
)

// IsMeteringName reports whether name is one of Metering's, for listings
// of the names an expression can use.
func IsMeteringName(name string) bool { return strings.HasPrefix(name, "__m") }

// join and replace are the builtins whose output can be far larger than
// their input (a separator or replacement repeated once per element or
// match): their metered versions check the size before building.
func (m *Meter) join(a any, sep string) (string, error) {
	var parts []string
	switch a := a.(type) {
	case []string:
		parts = a
	case []any:
		parts = make([]string, len(a))
		for i, x := range a {
			s, ok := x.(string)
			if !ok {
				return "", fmt.Errorf("join: element %d is %T, not a string", i, x)
			}
			parts[i] = s
		}
	default:
		return "", fmt.Errorf("join: %T is not an array of strings", a)
	}
	if err := m.step(); err != nil {
		return "", err
	}
	size := len(sep) * max(len(parts)-1, 0)
	for _, p := range parts {
		size += len(p)
	}
	if err := m.grewString(size); err != nil {
		return "", err
	}
	return strings.Join(parts, sep), nil
}

func (m *Meter) replace(s, old, repl string) (string, error) {
	if err := m.step(); err != nil {
		return "", err
	}
	n := strings.Count(s, old) // len(s)+1 when old is empty
	if err := m.grewString(len(s) + n*(len(repl)-len(old))); err != nil {
		return "", err
	}
	return strings.ReplaceAll(s, old, repl), nil
}

// BudgetOptions are the compile options that put an expression under the
// budget. The environment must embed Metering, set for each run to the
// Funcs of a Meter that is Reset before the run.
//
// repeat, concat and flatten are disabled: they build strings or arrays
// many times larger than their arguments in one call, before any check
// could see the result, and a SIM rule has no use for them.
func BudgetOptions() []expr.Option {
	return []expr.Option{
		expr.DisableBuiltin("repeat"), expr.DisableBuiltin("concat"), expr.DisableBuiltin("flatten"),
		expr.Patch(meterPatch{}),
	}
}

// DisabledBuiltin explains, for an "unknown name" error, that name is a
// builtin the budget disables; "" when it is not one.
func DisabledBuiltin(name string) string {
	switch name {
	case "repeat", "concat", "flatten":
		return " (" + name + " is disabled in expressions: it builds values too large to bound)"
	}
	return ""
}

// growBuiltins build a value that can be larger than their arguments (in
// elements or bytes): their result is metered.
var growBuiltins = map[string]bool{
	"map": true, "split": true, "splitAfter": true, "fromJSON": true, "toJSON": true,
	"toBase64": true, "fromBase64": true, "toPairs": true, "fromPairs": true, "keys": true, "values": true,
}

// meterPatch wraps loop bodies and growth nodes in metering calls. ast.Walk
// visits children first, so a body that is itself a growth node is wrapped
// once.
type meterPatch struct{}

func (meterPatch) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.PredicateNode:
		if !metered(n.Node) {
			wrap(&n.Node)
		}
	case *ast.BinaryNode:
		if n.Operator == "matches" {
			ast.Patch(node, call(meteredMatch, n.Left, n.Right))
			return
		}
		switch n.Operator {
		case "in", "==", "!=", "contains", "startsWith", "endsWith":
			// Strings compared with == stay unwrapped: that is the hot
			// path of most rules, and a comparison is bounded by
			// MaxString and the expression's size.
			eq := n.Operator == "==" || n.Operator == "!="
			sides := []*ast.Node{&n.Left, &n.Right}
			if n.Operator == "in" {
				sides = sides[1:] // the work is in the haystack
			}
			for _, side := range sides {
				switch (*side).Type().Kind() {
				case reflect.Slice, reflect.Array, reflect.Map:
					wrapArg(side, false)
				default:
					// A predicate's # is an interface, nearly always a
					// scalar: == on it stays unwrapped, in the hot loop.
					if !eq {
						wrapArg(side, false)
					}
				}
			}
		}
		if n.Operator == "+" {
			switch n.Type().Kind() {
			case reflect.String, reflect.Slice, reflect.Array, reflect.Interface:
				wrap(node)
			}
		}
	case *ast.BuiltinNode:
		if n.Name != "len" && n.Name != "join" && n.Name != "replace" && !takesPredicate(n) {
			for i := range n.Arguments {
				wrapArg(&n.Arguments[i], n.Name == "uniq")
			}
		}
		switch {
		case n.Name == "join" && len(n.Arguments) == 1:
			ast.Patch(node, call(meteredJoin, n.Arguments[0], &ast.StringNode{}))
		case n.Name == "join" && len(n.Arguments) == 2:
			ast.Patch(node, call(meteredJoin, n.Arguments...))
		case n.Name == "replace" && len(n.Arguments) == 3:
			ast.Patch(node, call(meteredRepl, n.Arguments...))
		case growBuiltins[n.Name]:
			wrap(node)
		}
	}
}

// takesPredicate reports whether a builtin loops with a predicate (all,
// map, filter, ...): each of its iterations is metered already.
func takesPredicate(n *ast.BuiltinNode) bool {
	for _, a := range n.Arguments {
		if _, ok := a.(*ast.PredicateNode); ok {
			return true
		}
	}
	return false
}

// wrapArg puts an argument that can be large (a string, array or map)
// under a call that charges its size; square charges size², for uniq,
// whose work grows so.
func wrapArg(node *ast.Node, square bool) {
	switch (*node).(type) {
	case *ast.StringNode, *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.NilNode, *ast.ConstantNode:
		return // bounded by the expression's own size
	}
	if metered(*node) {
		return
	}
	t := (*node).Type()
	if t == nil {
		return
	}
	// Anything but a string passes as any: a value typed []any may be an
	// []int at run time (a range), which a typed []any parameter refuses.
	fn := ""
	switch t.Kind() {
	case reflect.String:
		fn = argString
	case reflect.Slice, reflect.Array, reflect.Map, reflect.Interface:
		fn = argAny
	}
	if square && (t.Kind() == reflect.Interface || t.Kind() == reflect.Slice) {
		fn = argSquare
	}
	if fn == "" {
		return
	}
	ast.Patch(node, call(fn, *node))
}

func call(fn string, args ...ast.Node) *ast.CallNode {
	return &ast.CallNode{Callee: &ast.IdentifierNode{Value: fn}, Arguments: args}
}

// wrap replaces *node by a metering call that passes it through, typed as
// it is.
func wrap(node *ast.Node) {
	fn := passAny
	switch t := (*node).Type(); t.Kind() {
	case reflect.Slice:
		switch t.Elem().Kind() {
		case reflect.Interface:
			fn = passArray
		case reflect.String:
			fn = passStrs
		}
	case reflect.Bool:
		fn = passBool
	case reflect.String:
		fn = passString
	case reflect.Int:
		fn = passInt
	case reflect.Float64:
		fn = passFloat
	}
	ast.Patch(node, call(fn, *node))
}

// metered reports whether n is already a metering call.
func metered(n ast.Node) bool {
	c, ok := n.(*ast.CallNode)
	if !ok {
		return false
	}
	id, ok := c.Callee.(*ast.IdentifierNode)
	return ok && IsMeteringName(id.Value) && len(c.Arguments) > 0
}

// IsBudget classifies an evaluation error: a *BudgetError (or expr's own
// "memory budget exceeded", which it raises as a bare string) is returned
// as one, anything else as nil.
func IsBudget(err error) *BudgetError {
	var be *BudgetError
	if errors.As(err, &be) {
		return be
	}
	if err != nil && strings.Contains(err.Error(), "memory budget exceeded") {
		return &BudgetError{Reason: "built ranges, arrays or maps over the memory budget"}
	}
	return nil
}

// budgetErr returns err wrapped so that errors.Is(err, ErrBudget) holds
// when it is one, err as it is otherwise.
func budgetErr(err error) error {
	if be := IsBudget(err); be != nil && !errors.Is(err, ErrBudget) {
		return fmt.Errorf("%w: %w", be, err)
	}
	return err
}

// CheckLoops refuses an expression whose loops over literal ranges or
// arrays (1..1000, [1, 2, 3], or a let bound to one) provably take more
// than MaxSteps steps, e.g. three nested loops over 1..1000 (10⁹). A loop
// over a size known only at run time (a field, a computed range) counts
// once here and is left to the run-time budget. The error is at the
// outermost loop that exceeds the budget. src must already compile.
func CheckLoops(src string) *file.Error {
	tree, err := parser.Parse(src)
	if err != nil {
		return nil // the compiler reported it
	}
	// A constant pattern is checked here: the metered match compiles it
	// at run time, where expr would have refused it at compile time.
	var bad *file.Error
	ast.Find(tree.Node, func(n ast.Node) bool {
		b, ok := n.(*ast.BinaryNode)
		if !ok || b.Operator != "matches" || bad != nil {
			return false
		}
		if pat, ok := b.Right.(*ast.StringNode); ok {
			if err := regexpProblem(pat.Value); err != "" {
				loc := pat.Location()
				line, col := offsetPosition(src, loc.From)
				bad = &file.Error{Location: loc, Line: line, Column: col, Message: err}
			}
		}
		return false
	})
	if bad != nil {
		return bad
	}
	lc := loopCheck{vars: map[string]int64{}}
	total := lc.cost(tree.Node)
	if total <= MaxSteps {
		return nil
	}
	at := tree.Node
	if lc.at != nil {
		at = lc.at
	}
	loc := at.Location()
	line, col := offsetPosition(src, loc.From)
	return &file.Error{Location: loc, Line: line, Column: col,
		Message: fmt.Sprintf("these nested loops take up to %s steps, over the budget of %d per evaluation: loop over fewer elements", fmtCount(total), MaxSteps)}
}

func fmtCount(n int64) string {
	if n >= maxCost {
		return "more than 10^18"
	}
	return fmt.Sprint(n)
}

// maxCost saturates cost arithmetic, so that absurd nesting cannot overflow.
const maxCost = int64(1) << 60

func mulCost(a, b int64) int64 {
	if a == 0 || b == 0 {
		return 0
	}
	if a > maxCost/b {
		return maxCost
	}
	return a * b
}

func addCost(a, b int64) int64 { return min(a+b, maxCost) }

// loopCheck computes an upper bound of an expression's steps.
type loopCheck struct {
	vars map[string]int64 // let variables bound to a value of known size
	at   ast.Node         // the outermost loop over the budget
}

// cost is an upper bound of the steps (predicate body runs) of n.
func (lc *loopCheck) cost(n ast.Node) int64 {
	switch n := n.(type) {
	case nil:
		return 0
	case *ast.BuiltinNode:
		if len(n.Arguments) >= 2 {
			if p, ok := n.Arguments[1].(*ast.PredicateNode); ok {
				c := lc.cost(n.Arguments[0])
				for _, a := range n.Arguments[2:] {
					c = addCost(c, lc.cost(a))
				}
				iterations := max(lc.size(n.Arguments[0]), 1)
				c = addCost(c, mulCost(iterations, addCost(1, lc.cost(p.Node))))
				if c > MaxSteps {
					lc.at = n // children first: the last one set is outermost
				}
				return c
			}
		}
		return lc.sum(n.Arguments...)
	case *ast.VariableDeclaratorNode:
		c := lc.cost(n.Value)
		old, had := lc.vars[n.Name]
		if s := lc.size(n.Value); s > 0 {
			lc.vars[n.Name] = s
		} else {
			delete(lc.vars, n.Name) // shadows an outer one of known size
		}
		c = addCost(c, lc.cost(n.Expr))
		if had {
			lc.vars[n.Name] = old
		} else {
			delete(lc.vars, n.Name)
		}
		return c
	case *ast.UnaryNode:
		return lc.cost(n.Node)
	case *ast.BinaryNode:
		return lc.sum(n.Left, n.Right)
	case *ast.ChainNode:
		return lc.cost(n.Node)
	case *ast.MemberNode:
		return lc.sum(n.Node, n.Property)
	case *ast.SliceNode:
		return lc.sum(n.Node, n.From, n.To)
	case *ast.CallNode:
		return addCost(lc.cost(n.Callee), lc.sum(n.Arguments...))
	case *ast.PredicateNode:
		return lc.cost(n.Node)
	case *ast.ConditionalNode:
		return lc.sum(n.Cond, n.Exp1, n.Exp2)
	case *ast.SequenceNode:
		return lc.sum(n.Nodes...)
	case *ast.ArrayNode:
		return lc.sum(n.Nodes...)
	case *ast.MapNode:
		return lc.sum(n.Pairs...)
	case *ast.PairNode:
		return lc.sum(n.Key, n.Value)
	}
	return 0
}

func (lc *loopCheck) sum(nodes ...ast.Node) int64 {
	var c int64
	for _, n := range nodes {
		c = addCost(c, lc.cost(n))
	}
	return c
}

// size is the number of elements of n when it is known before run time,
// 0 when it is not.
func (lc *loopCheck) size(n ast.Node) int64 {
	switch n := n.(type) {
	case *ast.ArrayNode:
		return int64(len(n.Nodes))
	case *ast.IdentifierNode:
		return lc.vars[n.Value]
	case *ast.BinaryNode:
		switch n.Operator {
		case "..":
			from, ok1 := intLiteral(n.Left)
			to, ok2 := intLiteral(n.Right)
			if ok1 && ok2 && to >= from {
				if d := to - from; d >= 0 && d < maxCost { // d < 0: it overflowed
					return d + 1
				}
				return maxCost
			}
		case "+":
			if a, b := lc.size(n.Left), lc.size(n.Right); a > 0 && b > 0 {
				return addCost(a, b)
			}
		}
	case *ast.BuiltinNode:
		switch n.Name {
		case "map", "filter", "sortBy", "sort", "uniq", "reverse", "take", "drop":
			if len(n.Arguments) > 0 {
				return lc.size(n.Arguments[0])
			}
		}
	case *ast.ConditionalNode:
		if a, b := lc.size(n.Exp1), lc.size(n.Exp2); a > 0 && b > 0 {
			return max(a, b)
		}
	}
	return 0
}

func intLiteral(n ast.Node) (int64, bool) {
	switch n := n.(type) {
	case *ast.IntegerNode:
		return int64(n.Value), true
	case *ast.UnaryNode:
		if v, ok := intLiteral(n.Node); ok && n.Operator == "-" {
			return -v, true
		}
	}
	return 0, false
}
