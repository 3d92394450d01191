package rules

// What single operations cost: a regexp match by its work, a builtin by
// the size of its arguments. One step is about 100 ns of the VM's time.

import (
	"fmt"
	"reflect"
	"regexp"
	"regexp/syntax"
	"sync"
	"sync/atomic"
)

// A regexp match costs up to (instructions × input bytes) work: Go's
// engines are linear, but the pattern's size multiplies the input's, and
// `(?:.*){999}` repeated is thousands of instructions. Each unit is
// roughly 10 ns, a tenth of a step.
const (
	// maxRegexpWork bounds one match: about 10 ms.
	maxRegexpWork = 1_000_000
	// regexpWorkPerStep converts a match's work into steps, so that the
	// matches of one evaluation share its step budget.
	regexpWorkPerStep = 10
	// maxCachedRegexps bounds the compiled patterns kept: a pattern built
	// at run time from card fields differs per card.
	maxCachedRegexps = 1024
)

type compiledRegexp struct {
	re    *regexp.Regexp
	insts int
	err   error
}

var (
	regexps      sync.Map // pattern → *compiledRegexp
	regexpsCount atomic.Int64
)

// compileRegexp compiles pattern and measures its program, once per
// pattern while the cache has room.
func compileRegexp(pattern string) *compiledRegexp {
	if c, ok := regexps.Load(pattern); ok {
		return c.(*compiledRegexp)
	}
	c := &compiledRegexp{}
	c.re, c.err = regexp.Compile(pattern)
	if c.err == nil {
		// Parse and Compile succeeded in regexp.Compile, so they do here.
		re, _ := syntax.Parse(pattern, syntax.Perl)
		prog, _ := syntax.Compile(re.Simplify())
		c.insts = len(prog.Inst)
	}
	if regexpsCount.Load() < maxCachedRegexps {
		if _, loaded := regexps.LoadOrStore(pattern, c); !loaded {
			regexpsCount.Add(1)
		}
	}
	return c
}

// matches is the metered `s matches pattern`: the match's work is known
// before it runs, so a match that would take too long is refused instead
// of run.
func (m *Meter) matches(s, pattern string) (bool, error) {
	c := compileRegexp(pattern)
	if c.err != nil {
		return false, fmt.Errorf("matches: %w", c.err)
	}
	work := int64(c.insts) * int64(len(s)+1)
	if work > maxRegexpWork {
		return false, &BudgetError{Reason: fmt.Sprintf("a regexp match of %d instructions over %d bytes (more than %d units of work)", c.insts, len(s), maxRegexpWork)}
	}
	if err := m.charge(1 + int(work/regexpWorkPerStep)); err != nil {
		return false, err
	}
	return c.re.MatchString(s), nil
}

// regexpProblem says what is wrong with a constant pattern: it does not
// compile, or it is so large that matching it against a short string
// already goes over the budget; "" when nothing is.
func regexpProblem(pattern string) string {
	c := compileRegexp(pattern)
	switch {
	case c.err != nil:
		return fmt.Sprintf("matches: %v", c.err)
	case int64(c.insts)*64 > maxRegexpWork:
		return fmt.Sprintf("matches: the pattern compiles to %d instructions, too many to match within the budget: simplify it", c.insts)
	}
	return ""
}

// Sizes per step when an argument is charged: an operation over 8
// elements or 16 bytes costs about what a step (~100 ns) does; fromJSON,
// the costliest per byte, is near that.
const (
	elementsPerStep = 8
	bytesPerStep    = 16
	// squarePerStep scales uniq's n² comparisons (~12 ns each).
	squarePerStep = 8
)

// chargeSize charges the steps an operation over v costs.
func (m *Meter) chargeSize(v any, square bool) error {
	n, isString := sizeOf(v)
	unit := elementsPerStep
	if isString {
		unit = bytesPerStep
	}
	if square {
		return m.charge(1 + int(min(int64(n)*int64(n)/squarePerStep, MaxSteps+1)))
	}
	return m.charge(1 + n/unit)
}

// sizeOf is a value's size: a string's bytes (isString), an array's or
// map's elements, 0 for a scalar.
func sizeOf(v any) (n int, isString bool) {
	switch v := v.(type) {
	case nil, bool, int, float64:
		return 0, false
	case string:
		return len(v), true
	case []any:
		return len(v), false
	case []string:
		return len(v), false
	case map[string]any:
		return len(v), false
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.String:
		return rv.Len(), true
	case reflect.Slice, reflect.Array, reflect.Map:
		return rv.Len(), false
	}
	return 0, false
}
