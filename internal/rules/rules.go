// Package rules loads alert rules from YAML, compiles their expressions
// against the typed card and pool environments, and evaluates them cycle by
// cycle: condition rules move pending → firing → resolved, transition rules
// (those that mention prev or changed) fire once per change.
package rules

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/template"
	"time"

	"github.com/expr-lang/expr/vm"

	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/yamlread"
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
	// reads and readsPrev are the entity fields the rule reads, now and in
	// prev: while one of them is unknown, the rule is not evaluated.
	reads, readsPrev fleet.Unknown
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
	shown := ps[:min(len(ps), MaxProblemsShown)]
	msgs := make([]string, len(shown), len(shown)+1)
	for i, p := range shown {
		msgs[i] = p.Error()
	}
	if more := len(ps) - len(shown); more > 0 {
		msgs = append(msgs, fmt.Sprintf("…and %d more problems", more))
	}
	return strings.Join(msgs, "\n")
}

// MaxProblemsShown bounds the problems an error lists: a file with
// thousands of bad rules says so without a megabyte-long log line.
const MaxProblemsShown = 100

// MaxRules bounds a rule set: far above a fleet's real rules, and low
// enough that loading a hostile file (each rule compiled, 16 KB or so)
// stays within tens of megabytes.
const MaxRules = 5000

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
		// A file over the limit is refused without being read whole.
		src, err := yamlread.ReadFile(path, Limits.MaxBytes)
		if err != nil {
			problems = append(problems, Problem{File: path, Line: 1, Col: 1, Message: err.Error()})
			continue
		}
		rs, ps := parseFile(path, src, o)
		all = append(all, rs...)
		problems = append(problems, ps...)
		if len(all) > MaxRules {
			problems = append(problems, Problem{File: path, Line: 1, Col: 1,
				Message: fmt.Sprintf("the rule files hold more than the limit of %d rules", MaxRules)})
			return nil, problems
		}
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
