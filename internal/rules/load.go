package rules

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/expr-lang/expr/file"
	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"

	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/suggest"
	"github.com/simwatch/simwatch/internal/yamlread"
)

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

// decodeRules decodes each rule on its own, going on after a problem, so
// that one run of rules check reports unknown keys and every other
// problem together. A rule that is not a mapping is reported and left out.
func decodeRules(path string, doc *yamlread.Doc) (docs map[int]ruleDoc, count int, problems []Problem) {
	docs = map[int]ruleDoc{}
	noRules := []Problem{{File: path, Line: 1, Col: 1, Message: "no rules: the file needs a top-level rules: list"}}
	if doc.Body == nil {
		return docs, 0, noRules
	}
	dec := yamlread.Decoder{File: path, Doc: doc}
	var rulesNode ast.Node
	dec.Keys(doc.Body, "", func(key string, kn, vn ast.Node) {
		if key == "rules" {
			rulesNode = vn
			return
		}
		pos := kn.GetToken().Position
		problems = append(problems, Problem{File: path, Line: pos.Line, Col: pos.Column, Message: fmt.Sprintf("unknown key %q (a rule file has one key: rules)", key)})
	})
	problems = append(problems, problemsOf(dec.Problems)...)
	if rulesNode == nil {
		return docs, 0, append(problems, noRules...)
	}
	seq, ok := dec.Resolve(rulesNode).(*ast.SequenceNode)
	if !ok {
		pos := rulesNode.GetToken().Position
		return docs, 0, append(problems, Problem{File: path, Line: pos.Line, Col: pos.Column, Message: "rules must be a list"})
	}
	for i, item := range seq.Values {
		if _, ok := dec.Resolve(item).(*ast.MappingNode); !ok {
			pos := item.GetToken().Position
			problems = append(problems, Problem{File: path, Line: pos.Line, Col: pos.Column, Message: fmt.Sprintf("rules[%d]: a rule must be a mapping", i)})
			continue
		}
		rd := yamlread.Decoder{File: path, Doc: doc}
		var d ruleDoc
		rd.Decode(item, &d, fmt.Sprintf("rules[%d]", i))
		problems = append(problems, problemsOf(rd.Problems)...)
		docs[i] = d
	}
	return docs, len(seq.Values), problems
}

var ruleKeys = []string{"name", "on", "when", "for", "repeat", "severity", "labels", "summary", "notify", "keep_firing_for", "resolve_when", "rearm"}

func hintKey(k string) string {
	best := suggest.Closest(k, ruleKeys, 2)
	if best == "" {
		return " (a rule's keys are " + strings.Join(ruleKeys, ", ") + ")"
	}
	return fmt.Sprintf(" (did you mean %s?)", best)
}

// problemsOf converts the decoder's problems.
func problemsOf(errs []*yamlread.Error) []Problem {
	ps := make([]Problem, len(errs))
	for i, e := range errs {
		msg := e.Message
		switch {
		case e.UnknownKey != "":
			msg = fmt.Sprintf("unknown field %q", e.UnknownKey) + hintKey(e.UnknownKey)
		case e.Field != "":
			msg = e.Field + ": " + msg
		}
		ps[i] = Problem{File: e.File, Line: max(e.Line, 1), Col: max(e.Col, 1), Message: msg}
	}
	return ps
}

// Limits bound each rule file: a rule file is reloaded while the daemon
// runs, so a hostile one must fail to load, not take the daemon down.
var Limits = func() yamlread.Limits {
	l := yamlread.RuleLimits
	// 1 MiB holds MaxRules rules of 200 bytes; parsing it costs ~120 MB
	// at worst, where 4 MiB cost 400 MB.
	l.MaxBytes = 1 << 20
	return l
}()

func parseFile(path string, src []byte, o LoadOptions) ([]*Rule, []Problem) {
	doc, err := yamlread.Parse(path, src, Limits)
	if err != nil {
		return nil, []Problem{yamlProblem(path, err)}
	}
	f := doc.File
	docs, count, problems := decodeRules(path, doc)
	if count > MaxRules {
		// Refused before any rule is compiled: that is where the memory goes.
		return nil, append(problems, Problem{File: path, Line: 1, Col: 1,
			Message: fmt.Sprintf("%d rules, more than the limit of %d", count, MaxRules)})
	}
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
			if prog != nil {
				cur, prev := fieldReads(prog.Node(), d.On)
				r.reads |= cur
				r.readsPrev |= prev
			}
		}
		rules = append(rules, r)
	}
	return rules, problems
}

func yamlProblem(path string, err error) Problem {
	p := Problem{File: path, Line: 1, Col: 1, Message: err.Error()}
	var ye *yamlread.Error
	if errors.As(err, &ye) {
		p.Line, p.Col, p.Message = max(ye.Line, 1), max(ye.Col, 1), ye.Message
	}
	return p
}

// nodeAt finds the token at path, or at fallback when the key is absent.
func nodeAt(f *ast.File, path, fallback string) (*token.Token, int, int) {
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
