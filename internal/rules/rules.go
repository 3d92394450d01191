// Package rules loads alert rules from YAML, compiles their expressions
// against the typed card and pool environments, and evaluates them cycle by
// cycle: condition rules move pending → firing → resolved, transition rules
// (those that mention prev or changed) fire once per change.
package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
	"github.com/goccy/go-yaml"
	yast "github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"

	"github.com/simwatch/simwatch/internal/fleet"
)

// Severities.
const (
	SeverityInfo     = "info"
	SeverityWarning  = "warning"
	SeverityCritical = "critical"
)

// maxNodes bounds an expression's size, so a rule cannot be a program.
const maxNodes = 1000

// Rule is one compiled rule.
type Rule struct {
	Name     string
	On       string // fleet.EntityCard or fleet.EntityPool
	When     string
	For      time.Duration
	Repeat   time.Duration
	Severity string
	Labels   map[string]string
	Summary  string
	Notify   []string
	// KeepFiringFor keeps a firing alert firing this long after its
	// condition stops holding, so a value hovering at a threshold does not flap.
	KeepFiringFor time.Duration
	// Rearm "cycle" lets the alert notify at most once per billing cycle.
	Rearm string
	// ResolveWhen, when set, must hold for a firing alert to resolve.
	ResolveWhen string

	File string
	Line int

	program     *vm.Program
	resolveWhen *vm.Program // when set, a firing alert resolves only when this holds
	summary     *template.Template
	transition  bool // fires once per change; never pending, never resolved
	removal     bool // fires once when the entity leaves a complete listing
	clock       bool // reads the clock, so it is evaluated on unchanged entities too
}

// Transition reports whether the rule fires on changes rather than holding.
func (r *Rule) Transition() bool { return r.transition }

// Set is a loaded, valid rule set.
type Set struct {
	Rules []*Rule
	// Hash identifies the set's definitions: when it changes, every entity is
	// re-evaluated once so that new or edited rules see the whole fleet.
	Hash string
}

// Problem is one thing wrong with a rule file, at file:line:col.
type Problem struct {
	File    string
	Line    int
	Col     int
	Message string
}

func (p Problem) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", p.File, p.Line, p.Col, p.Message)
}

// Problems is every problem found in a set of rule files.
type Problems []Problem

func (ps Problems) Error() string {
	msgs := make([]string, len(ps))
	for i, p := range ps {
		msgs[i] = p.Error()
	}
	return strings.Join(msgs, "\n")
}

// LoadOptions tells the loader what else the rules may refer to.
type LoadOptions struct {
	// Notifiers are the configured notifier names; nil skips the check.
	Notifiers []string
}

// LoadFiles reads and compiles rule files. On any problem it returns
// Problems listing all of them.
func LoadFiles(paths []string, o LoadOptions) (*Set, error) {
	var all []*Rule
	var problems Problems
	for _, path := range paths {
		src, err := os.ReadFile(path)
		if err != nil {
			problems = append(problems, Problem{File: path, Line: 1, Col: 1, Message: err.Error()})
			continue
		}
		rs, ps := parseFile(path, src, o)
		all = append(all, rs...)
		problems = append(problems, ps...)
	}
	seen := map[string]*Rule{}
	for _, r := range all {
		if prev, dup := seen[r.Name]; dup {
			problems = append(problems, Problem{File: r.File, Line: r.Line, Col: 1,
				Message: fmt.Sprintf("duplicate rule name %q (first defined at %s:%d)", r.Name, prev.File, prev.Line)})
		}
		seen[r.Name] = r
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return newSet(all), nil
}

// Parse compiles the rules in src as if read from path.
func Parse(path string, src []byte, o LoadOptions) (*Set, error) {
	rs, ps := parseFile(path, src, o)
	if len(ps) > 0 {
		return nil, Problems(ps)
	}
	return newSet(rs), nil
}

func newSet(rs []*Rule) *Set {
	def, _ := json.Marshal(func() []any {
		out := make([]any, len(rs))
		for i, r := range rs {
			out[i] = []any{r.Name, r.On, r.When, r.For, r.Repeat, r.Severity, r.Labels, r.Summary, r.Notify, r.KeepFiringFor, r.Rearm, r.ResolveWhen}
		}
		return out
	}())
	return &Set{Rules: rs, Hash: fmt.Sprintf("%x", hash64(def))}
}

func hash64(b []byte) uint64 {
	// FNV-1a: only used to notice that definitions changed.
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// ruleDoc is a rule as written, before validation.
type ruleDoc struct {
	Name          string            `yaml:"name"`
	On            string            `yaml:"on"`
	When          string            `yaml:"when"`
	For           string            `yaml:"for"`
	Repeat        string            `yaml:"repeat"`
	Severity      string            `yaml:"severity"`
	Labels        map[string]string `yaml:"labels"`
	Summary       string            `yaml:"summary"`
	Notify        []string          `yaml:"notify"`
	KeepFiringFor string            `yaml:"keep_firing_for"`
	ResolveWhen   string            `yaml:"resolve_when"`
	Rearm         string            `yaml:"rearm"`
}

var ruleName = regexp.MustCompile(`^[a-z0-9_]+$`)

// decodeRules decodes each rule on its own, so that one rule's bad key does
// not hide the next rule's problems. A rule that does not decode is reported
// and left out.
func decodeRules(path string, f *yast.File) (docs map[int]ruleDoc, count int, problems []Problem) {
	docs = map[int]ruleDoc{}
	if len(f.Docs) == 0 || f.Docs[0].Body == nil {
		return docs, 0, []Problem{{File: path, Line: 1, Col: 1, Message: "no rules: the file needs a top-level rules: list"}}
	}
	var top map[string]any
	if err := yaml.NodeToValue(f.Docs[0].Body, &top); err != nil {
		return docs, 0, []Problem{yamlProblem(path, err)}
	}
	for k := range top {
		if k != "rules" {
			_, line, col := nodeAt(f, "$."+k, "$")
			problems = append(problems, Problem{File: path, Line: line, Col: col, Message: fmt.Sprintf("unknown key %q (a rule file has one key: rules)", k)})
		}
	}
	p, _ := yaml.PathString("$.rules")
	node, err := p.FilterFile(f)
	if err != nil || node == nil {
		return docs, 0, append(problems, Problem{File: path, Line: 1, Col: 1, Message: "no rules: the file needs a top-level rules: list"})
	}
	seq, ok := node.(*yast.SequenceNode)
	if !ok {
		pos := node.GetToken().Position
		return docs, 0, append(problems, Problem{File: path, Line: pos.Line, Col: pos.Column, Message: "rules must be a list"})
	}
	for i, item := range seq.Values {
		var d ruleDoc
		if err := yaml.NodeToValue(item, &d, yaml.DisallowUnknownField()); err != nil {
			pr := yamlProblem(path, err)
			if m := unknownField.FindStringSubmatch(pr.Message); m != nil {
				pr.Message += hintKey(m[1])
			}
			problems = append(problems, pr)
			continue
		}
		docs[i] = d
	}
	return docs, len(seq.Values), problems
}

var unknownField = regexp.MustCompile(`unknown field "([^"]+)"`)

var ruleKeys = []string{"name", "on", "when", "for", "repeat", "severity", "labels", "summary", "notify", "keep_firing_for", "resolve_when", "rearm"}

func hintKey(k string) string {
	best, bestD := "", 3
	for _, n := range ruleKeys {
		if d := levenshtein(k, n); d < bestD {
			best, bestD = n, d
		}
	}
	if best == "" {
		return " (a rule's keys are " + strings.Join(ruleKeys, ", ") + ")"
	}
	return fmt.Sprintf(" (did you mean %s?)", best)
}

func parseFile(path string, src []byte, o LoadOptions) ([]*Rule, []Problem) {
	f, err := parser.ParseBytes(src, 0)
	if err != nil {
		return nil, []Problem{yamlProblem(path, err)}
	}
	docs, count, problems := decodeRules(path, f)
	var rules []*Rule
	for i := range count {
		d, ok := docs[i]
		if !ok {
			continue
		}
		at := func(field string) (*token.Token, int, int) {
			return nodeAt(f, fmt.Sprintf("$.rules[%d].%s", i, field), fmt.Sprintf("$.rules[%d]", i))
		}
		report := func(field, format string, args ...any) {
			_, line, col := at(field)
			problems = append(problems, Problem{File: path, Line: line, Col: col, Message: fmt.Sprintf(format, args...)})
		}
		_, line, _ := at("name")
		r := &Rule{Name: d.Name, On: d.On, When: d.When, Severity: d.Severity, Labels: d.Labels,
			Summary: d.Summary, Notify: d.Notify, File: path, Line: line, ResolveWhen: d.ResolveWhen}
		if !ruleName.MatchString(d.Name) {
			report("name", "rule name %q must match [a-z0-9_]+", d.Name)
		}
		switch d.On {
		case fleet.EntityCard, fleet.EntityPool:
		case "":
			report("on", "rule %s: on is required (card or pool)", d.Name)
		default:
			report("on", "rule %s: on must be card or pool, not %q", d.Name, d.On)
		}
		switch d.Severity {
		case "":
			r.Severity = SeverityWarning
		case SeverityInfo, SeverityWarning, SeverityCritical:
		default:
			report("severity", "rule %s: severity must be info, warning or critical, not %q", d.Name, d.Severity)
		}
		for _, fd := range []struct {
			field, val string
			dst        *time.Duration
		}{{"for", d.For, &r.For}, {"repeat", d.Repeat, &r.Repeat}, {"keep_firing_for", d.KeepFiringFor, &r.KeepFiringFor}} {
			if fd.val == "" {
				continue
			}
			v, err := time.ParseDuration(fd.val)
			if err != nil || v < 0 {
				report(fd.field, "rule %s: %s: bad duration %q (use e.g. 30m, 24h)", d.Name, fd.field, fd.val)
			}
			*fd.dst = v
		}
		if o.Notifiers != nil {
			for j, n := range d.Notify {
				if !slices.Contains(o.Notifiers, n) {
					report(fmt.Sprintf("notify[%d]", j), "rule %s: unknown notifier %q (configured: %s)", d.Name, n, strings.Join(o.Notifiers, ", "))
				}
			}
		}
		if d.When == "" {
			report("when", "rule %s: when is required", d.Name)
		} else if d.On == fleet.EntityCard || d.On == fleet.EntityPool {
			tok, _, _ := at("when")
			if p := r.compile(); p != nil {
				line, col := exprPosition(tok, p)
				problems = append(problems, Problem{File: path, Line: line, Col: col, Message: fmt.Sprintf("rule %s: %s", d.Name, p.Message)})
			}
		}
		if err := r.parseSummary(); err != nil {
			report("summary", "rule %s: summary: %v", d.Name, err)
		}
		if r.transition && (r.For > 0 || r.Repeat > 0 || r.KeepFiringFor > 0 || d.ResolveWhen != "" || d.Rearm != "") {
			report("when", "rule %s: a transition rule (it uses prev or changed) fires once per change, so for, repeat, keep_firing_for, resolve_when and rearm do not apply", d.Name)
		}
		switch d.Rearm {
		case "", RearmCycle:
			r.Rearm = d.Rearm
		default:
			report("rearm", "rule %s: rearm must be %q (at most once per billing cycle), not %q", d.Name, RearmCycle, d.Rearm)
		}
		if d.ResolveWhen != "" && (d.On == fleet.EntityCard || d.On == fleet.EntityPool) {
			tok, _, _ := at("resolve_when")
			prog, p := compileExpr(d.ResolveWhen, d.On)
			if p != nil {
				line, col := exprPosition(tok, p)
				problems = append(problems, Problem{File: path, Line: line, Col: col, Message: fmt.Sprintf("rule %s: resolve_when: %s", d.Name, p.Message)})
			}
			r.resolveWhen = prog
		}
		rules = append(rules, r)
	}
	return rules, problems
}

func yamlProblem(path string, err error) Problem {
	p := Problem{File: path, Line: 1, Col: 1, Message: yaml.FormatError(err, false, false)}
	var se interface{ GetToken() *token.Token }
	if errors.As(err, &se) && se.GetToken() != nil {
		p.Line, p.Col = se.GetToken().Position.Line, se.GetToken().Position.Column
		if _, msg, ok := strings.Cut(p.Message, "] "); ok {
			p.Message = strings.SplitN(msg, "\n", 2)[0]
		}
	}
	return p
}

// nodeAt finds the token at path, or at fallback when the key is absent.
func nodeAt(f *yast.File, path, fallback string) (*token.Token, int, int) {
	for _, p := range []string{path, fallback} {
		yp, err := yaml.PathString(p)
		if err != nil {
			continue
		}
		if n, err := yp.FilterFile(f); err == nil && n != nil {
			t := n.GetToken()
			return t, t.Position.Line, t.Position.Column
		}
	}
	return nil, 1, 1
}

// exprPosition maps an expression error's position to the file.
func exprPosition(tok *token.Token, p *file.Error) (int, int) {
	if tok == nil {
		return 1, 1
	}
	line, col := tok.Position.Line, tok.Position.Column
	switch tok.Type {
	case token.DoubleQuoteType, token.SingleQuoteType:
		col++ // the opening quote
	case token.LiteralType, token.FoldedType:
		return line + p.Line, p.Column + 1 // block scalar: starts on the next line; indent unknown
	}
	if p.Line > 1 {
		return line + p.Line - 1, p.Column + 1
	}
	return line, col + p.Column
}

// RearmCycle is the rearm mode that notifies at most once per billing cycle.
const RearmCycle = "cycle"

// compileExpr compiles a boolean expression against an entity kind's
// environment, bounded in size, with the non-deterministic builtins removed.
func compileExpr(src, on string) (*vm.Program, *file.Error) {
	var env any = &CardEnv{}
	if on == fleet.EntityPool {
		env = &PoolEnv{}
	}
	prog, err := expr.Compile(src, expr.Env(env), expr.AsBool(), expr.MaxNodes(maxNodes),
		expr.DisableBuiltin("now"), expr.DisableBuiltin("date"))
	if err != nil {
		var fe *file.Error
		if errors.As(err, &fe) {
			fe.Message = hint(fe.Message, on)
			return nil, fe
		}
		return nil, &file.Error{Message: err.Error(), Line: 1, Column: 0}
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
			if id, ok := n.Callee.(*ast.IdentifierNode); ok && id.Value == "changed" && len(n.Arguments) == 1 {
				s, ok := n.Arguments[0].(*ast.StringNode)
				loc := n.Arguments[0].Location()
				line, col := offsetPosition(r.When, loc.From)
				switch {
				case !ok:
					bad = &file.Error{Location: loc, Line: line, Column: col, Message: `changed() takes a field name in quotes, e.g. changed("imei")`}
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
	return nil
}

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
	best, bestD := "", 4
	for _, n := range append(fieldNames(on), append([]string{"prev", "changed", "pct"}, clockHelpers...)...) {
		if d := levenshtein(m[1], n); d < bestD {
			best, bestD = n, d
		}
	}
	if best == "" {
		return msg + " (see `watcher rules fields` for what " + on + " rules can use)"
	}
	return msg + fmt.Sprintf(" (did you mean %s?)", best)
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// parseSummary parses the summary template and executes it once against an
// entity of the rule's kind, so a misspelt field fails at load time.
func (r *Rule) parseSummary() error {
	text := r.Summary
	if text == "" {
		if r.On == fleet.EntityPool {
			text = `{{ .rule }}: pool {{ .name }} ({{ .id }})`
		} else {
			text = `{{ .rule }}: card {{ .iccid }}`
		}
	}
	t, err := template.New("summary").Option("missingkey=error").Parse(text)
	if err != nil {
		return err
	}
	r.summary = t
	var zero any = fleet.Card{}
	if r.On == fleet.EntityPool {
		zero = fleet.Pool{}
	}
	_, err = r.render(mustJSON(zero), mustJSON(zero))
	return err
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// render executes the summary with the entity's fields, prev, and the rule's
// name, severity and labels.
func (r *Rule) render(values, prev json.RawMessage) (string, error) {
	data := map[string]any{}
	if err := json.Unmarshal(values, &data); err != nil {
		return "", err
	}
	if len(prev) > 0 {
		var p map[string]any
		if err := json.Unmarshal(prev, &p); err != nil {
			return "", err
		}
		data["prev"] = p
	} else {
		data["prev"] = map[string]any{}
	}
	data["rule"], data["severity"], data["labels"] = r.Name, r.Severity, r.Labels
	var b bytes.Buffer
	if err := r.summary.Execute(&b, data); err != nil {
		return "", err
	}
	return b.String(), nil
}

// HasClockRules reports whether any condition rule on entity reads the clock,
// so that unchanged entities must still be evaluated every cycle.
func (s *Set) HasClockRules(entity string) bool {
	for _, r := range s.Rules {
		if r.On == entity && r.clock && !r.transition {
			return true
		}
	}
	return false
}
