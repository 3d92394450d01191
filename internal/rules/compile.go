package rules

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"

	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/suggest"
)

// RearmCycle is the rearm mode that notifies at most once per billing cycle.
const RearmCycle = "cycle"

// compileExpr compiles a boolean expression against an entity kind's
// environment, bounded in size, with the non-deterministic builtins removed.
func compileExpr(src, on string) (*vm.Program, *file.Error) {
	// The environment's type is given as a struct, not a pointer, so that
	// the compiler reads fields by index (OpLoadField) rather than by name
	// through reflection on every access; the VM runs it on *CardEnv.
	var env any = CardEnv{}
	if on == fleet.EntityPool {
		env = PoolEnv{}
	}
	opts := append([]expr.Option{expr.Env(env), expr.AsBool(), expr.MaxNodes(maxNodes),
		expr.DisableBuiltin("now"), expr.DisableBuiltin("date")}, BudgetOptions()...)
	prog, err := expr.Compile(src, opts...)
	if err != nil {
		var fe *file.Error
		if errors.As(err, &fe) {
			fe.Message = hint(fe.Message, on)
			return nil, fe
		}
		return nil, &file.Error{Message: err.Error(), Line: 1, Column: 0}
	}
	// $env reads fields by computed name, which defeats the checks that keep
	// unknown values from firing and that classify transitions.
	var envErr *file.Error
	ast.Find(prog.Node(), func(n ast.Node) bool {
		if id, ok := n.(*ast.IdentifierNode); ok && id.Value == "$env" && envErr == nil {
			loc := id.Location()
			line, col := offsetPosition(src, loc.From)
			envErr = &file.Error{Location: loc, Line: line, Column: col, Message: "$env is not available: use the field names (see `watcher rules fields`)"}
		}
		return false
	})
	if envErr != nil {
		return nil, envErr
	}
	if fe := CheckLoops(src); fe != nil {
		return nil, fe
	}
	return prog, nil
}

// compile compiles When against the rule's environment and classifies it.
func (r *Rule) compile() *file.Error {
	prog, fe := compileExpr(r.When, r.On)
	if fe != nil {
		return fe
	}
	r.program = prog
	var bad *file.Error
	ast.Find(prog.Node(), func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.IdentifierNode:
			if slices.Contains(transitionNames, n.Value) {
				r.transition = true
			}
			if n.Value == "removed" {
				r.removal = true
			}
			if slices.Contains(clockHelpers, n.Value) {
				r.clock = true
			}
		case *ast.CallNode:
			if id, ok := n.Callee.(*ast.IdentifierNode); ok && id.Value == "usage_last" && len(n.Arguments) == 1 {
				s, ok := n.Arguments[0].(*ast.StringNode)
				loc := n.Arguments[0].Location()
				line, col := offsetPosition(r.When, loc.From)
				if d, err := time.ParseDuration(s.Value); !ok || err != nil || d <= 0 {
					bad = &file.Error{Location: loc, Line: line, Column: col, Message: `usage_last() takes a window in quotes, e.g. usage_last("24h") or usage_last("168h")`}
				}
			}
			if id, ok := n.Callee.(*ast.IdentifierNode); ok && (id.Value == "changed" || id.Value == "known") && len(n.Arguments) == 1 {
				s, ok := n.Arguments[0].(*ast.StringNode)
				loc := n.Arguments[0].Location()
				line, col := offsetPosition(r.When, loc.From)
				switch {
				case !ok:
					bad = &file.Error{Location: loc, Line: line, Column: col, Message: id.Value + `() takes a field name in quotes, e.g. ` + id.Value + `("imei")`}
				case !slices.Contains(fieldNames(r.On), s.Value):
					bad = &file.Error{Location: loc, Line: line, Column: col, Message: hint(fmt.Sprintf("unknown name %s", s.Value), r.On)}
				}
			}
		}
		return false
	})
	if bad != nil {
		return bad
	}
	r.reads, r.readsPrev = fieldReads(prog.Node(), r.On)
	return nil
}

// fieldReads finds the entity fields an expression reads: by name, through
// prev.name, changed("name") (both), and helpers that read a field.
// known("name") reads nothing: it asks whether the value is there. Where
// the analysis cannot tell which field is read — the whole environment
// ($env), or prev used as a value (let p = prev, [prev], get(prev, f)) —
// the expression counts as reading every field.
func fieldReads(node ast.Node, on string) (cur, prev fleet.Unknown) {
	bit := fleet.CardField
	if on == fleet.EntityPool {
		bit = fleet.PoolField
	}
	const all = ^fleet.Unknown(0)
	prevUses, prevMembers := 0, 0
	ast.Find(node, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.IdentifierNode:
			switch n.Value {
			case "$env":
				cur, prev = all, all
			case "prev":
				prevUses++
			}
			cur |= bit(n.Value)
			for _, f := range helperReads[n.Value] {
				cur |= bit(f)
			}
		case *ast.MemberNode:
			if id, ok := n.Node.(*ast.IdentifierNode); ok && id.Value == "prev" {
				if s, ok := n.Property.(*ast.StringNode); ok {
					prevMembers++
					prev |= bit(s.Value)
				}
			}
		case *ast.CallNode:
			if id, ok := n.Callee.(*ast.IdentifierNode); ok && id.Value == "changed" && len(n.Arguments) == 1 {
				if s, ok := n.Arguments[0].(*ast.StringNode); ok {
					cur |= bit(s.Value)
					prev |= bit(s.Value)
				}
			}
		}
		return false
	})
	if prevUses > prevMembers {
		prev = all // prev itself is passed around: any field may be read
	}
	return cur, prev
}

var unknownName = regexp.MustCompile(`unknown name ([A-Za-z_][A-Za-z0-9_]*)`)

// hint adds "did you mean" to an unknown-name error, and a pointer to the
// field reference to a type error.
func hint(msg, on string) string {
	if strings.Contains(msg, "mismatched types") || strings.Contains(msg, "expected bool") {
		return msg + " (see `watcher rules fields` for each field's type and unit)"
	}
	m := unknownName.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	if d := DisabledBuiltin(m[1]); d != "" {
		return msg + d
	}
	best := Closest(m[1], append(fieldNames(on), append([]string{"prev", "changed", "known", "pct"}, clockHelpers...)...))
	if best == "" {
		return msg + " (see `watcher rules fields` for what " + on + " rules can use)"
	}
	return msg + fmt.Sprintf(" (did you mean %s?)", best)
}

// Closest is the name of names nearest to name (at most 3 edits away), for
// "did you mean" hints; "" when none is.
func Closest(name string, names []string) string { return suggest.Closest(name, names, 3) }

// offsetPosition turns a rune offset into a 1-based line and 0-based column,
// as expr reports them.
func offsetPosition(src string, from int) (line, col int) {
	line = 1
	for i, r := range []rune(src) {
		if i == from {
			break
		}
		col++
		if r == '\n' {
			line, col = line+1, 0
		}
	}
	return line, col
}
