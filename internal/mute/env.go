// Package mute decides, at delivery, whether an event is muted: by a silence
// (an expression over the event, for a while) or by an inhibit rule (while a
// related alert fires, as Alertmanager's inhibit rules do).
//
// A match is an expression in the rule language over the event (see Env):
//
//	rule == "card_low_flow" && "fleet-a" in tags
//	labels.team == "fleet" && hours_since(starts_at) < 2
//	entity == "pool" && known("flow_left") && flow_left < 0
//
// It is type-checked when the silence or rule is created, so a misspelt
// name is an error then, not a silence that never matches. An expression
// that fails at run time (e.g. it compares a field the event does not have)
// does not match.
package mute

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/rules"
)

// Env is what a match sees: the event's own fields, its values and prev as
// maps, the entity's fields flattened at the top level (so that silences
// written against cards and pools, such as `"fleet-a" in tags` or
// `flow_left < 5`, keep working) and helpers bound to the clock of the
// match. Times are pointers: a time the event does not have (ends_at of a
// firing event) is nil, and comparing it fails, so the match does not hold.
type Env struct {
	EventID    string            `expr:"event_id" doc:"|the event id"`
	ID         string            `expr:"id" doc:"|the card's, pool's or provider's id, as in rules (the same as entity_id)"`
	Seq        uint64            `expr:"seq" doc:"|the alert's event counter"`
	Kind       string            `expr:"kind" doc:"|firing, resolved, transition, action or acknowledged"`
	Rule       string            `expr:"rule" doc:"|the rule's name"`
	Severity   string            `expr:"severity" doc:"|info, warning or critical"`
	Summary    string            `expr:"summary" doc:"|the rendered summary"`
	Labels     map[string]string `expr:"labels" doc:"|the rule's labels, e.g. labels.team"`
	Provider   string            `expr:"provider" doc:"|the provider instance"`
	Entity     string            `expr:"entity" doc:"|card, pool or provider"`
	EntityID   string            `expr:"entity_id" doc:"|the card's, pool's or provider's id"`
	ICCID      string            `expr:"iccid" doc:"|the card's ICCID (empty for pools)"`
	StartsAt   *time.Time        `expr:"starts_at" doc:"time|when the alert started"`
	EndsAt     *time.Time        `expr:"ends_at" doc:"time|when it resolved (nil unless resolved)"`
	ObservedAt *time.Time        `expr:"observed_at" doc:"time|the cycle that produced the event"`
	Values     map[string]any    `expr:"values" doc:"|the event's values (the entity's fields); null for an unknown field"`
	Prev       map[string]any    `expr:"prev" doc:"|the entity before a transition (nil otherwise)"`

	Fields
	helpers
	// Metering is what the metering calls the compiler inserts reach (see
	// rules.BudgetOptions), bound to meter; not names for matches.
	rules.Metering
	meter rules.Meter
}

// Fields are the card and pool fields, flattened at the top level of Env
// and read from the event's values. Every scalar is a pointer that is nil
// when values does not have the field, has it as null (unknown) or has a
// value of another type (cut to fit a size limit): an expression that
// reads it then fails and does not match, as `flow_left < 5` on a pool with
// no figure, or `quantity > 3` on a card, should not. provider, id and
// iccid are the event's (id is the entity's, as in rules).
type Fields struct {
	// Cards and pools.
	Account   *string  `expr:"account"`
	Plan      *string  `expr:"plan"`
	FlowUsed  *float64 `expr:"flow_used"`
	FlowLeft  *float64 `expr:"flow_left"`
	FlowTotal *float64 `expr:"flow_total"`
	// Cards.
	MSISDN         *string           `expr:"msisdn"`
	IMSI           *string           `expr:"imsi"`
	IMEI           *string           `expr:"imei"`
	Status         *string           `expr:"status"`
	StatusCode     *int              `expr:"status_code"`
	OperatorStatus *int              `expr:"operator_status"`
	PoolID         *string           `expr:"pool_id"`
	ExpireTime     *time.Time        `expr:"expire_time"`
	ActDate        *time.Time        `expr:"act_date"`
	Tags           []string          `expr:"tags"`
	Attributes     map[string]string `expr:"attributes"`
	DeviceStatus   *int              `expr:"device_status"`
	SignalLevel    *string           `expr:"signal_level"`
	NetworkType    *string           `expr:"network_type"`
	Vendor         *string           `expr:"vendor"`
	APN            *string           `expr:"apn"`
	// Pools.
	Name         *string    `expr:"name"`
	Quantity     *int       `expr:"quantity"`
	Activated    *int       `expr:"activated"`
	Inactive     *int       `expr:"inactive"`
	Disassembled *int       `expr:"disassembled"`
	BillingCycle *string    `expr:"billing_cycle"`
	ExpiredTime  *time.Time `expr:"expired_time"`
}

// helpers are what matches call, with the names and meanings of the rules'
// helpers. They are fields, so that they are typed at compile time and bound
// to the clock of the match and to the event at hand. There is no now():
// a match compares times through days_until and hours_since.
type helpers struct {
	Known      func(field string) bool    `expr:"known" doc:"|true when the event's values have the field, not null, e.g. known(\"flow_left\")"`
	DaysUntil  func(t *time.Time) float64 `expr:"days_until" doc:"days|days from now until a time (negative once past)"`
	HoursSince func(t *time.Time) float64 `expr:"hours_since" doc:"hours|hours since a time, e.g. hours_since(starts_at)"`
}

// fieldKind is how a flattened field is read from a JSON value.
type fieldKind int

const (
	kindString fieldKind = iota
	kindFloat
	kindInt
	kindTime
	kindStrings
	kindStringMap
)

type flatField struct {
	name  string
	index int
	kind  fieldKind
}

// flatFields lists the fields of Fields, in order.
var flatFields = func() []flatField {
	t := reflect.TypeFor[Fields]()
	kinds := map[reflect.Type]fieldKind{
		reflect.TypeFor[*string](): kindString, reflect.TypeFor[*float64](): kindFloat, reflect.TypeFor[*int](): kindInt,
		reflect.TypeFor[*time.Time](): kindTime, reflect.TypeFor[[]string](): kindStrings, reflect.TypeFor[map[string]string](): kindStringMap,
	}
	var out []flatField
	for i := range t.NumField() {
		f := t.Field(i)
		k, ok := kinds[f.Type]
		if !ok {
			panic("mute: Fields." + f.Name + " has a type fill does not read")
		}
		out = append(out, flatField{name: f.Tag.Get("expr"), index: i, kind: k})
	}
	return out
}()

// fill sets the fields values has, with the right type and not null.
func (f *Fields) fill(values map[string]any) {
	if len(values) == 0 {
		return
	}
	rv := reflect.ValueOf(f).Elem()
	for _, ff := range flatFields {
		raw, ok := values[ff.name]
		if !ok || raw == nil {
			continue
		}
		var v any
		switch ff.kind {
		case kindString:
			if s, ok := raw.(string); ok {
				v = &s
			}
		case kindFloat:
			if n, ok := raw.(float64); ok {
				v = &n
			}
		case kindInt:
			if n, ok := raw.(float64); ok && n == math.Trunc(n) && math.Abs(n) < 1<<53 {
				i := int(n)
				v = &i
			}
		case kindTime:
			if s, ok := raw.(string); ok {
				if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
					v = &t
				}
			}
		case kindStrings:
			if a, ok := raw.([]any); ok {
				s := make([]string, 0, len(a))
				for _, x := range a {
					if x, ok := x.(string); ok {
						s = append(s, x)
					}
				}
				v = s
			}
		case kindStringMap:
			if m, ok := raw.(map[string]any); ok {
				s := make(map[string]string, len(m))
				for k, x := range m {
					if x, ok := x.(string); ok {
						s[k] = x
					}
				}
				v = s
			}
		}
		if v != nil {
			rv.Field(ff.index).Set(reflect.ValueOf(v))
		}
	}
}

// pct(a, b) is a as a percentage of b (0 when b is 0). It is a function
// rather than a field of Env so that an unknown argument (a nil field) is
// an error, hence no match, rather than 0.
var pct = expr.Function("pct", func(args ...any) (any, error) {
	a, okA := toFloat(args[0])
	b, okB := toFloat(args[1])
	switch {
	case !okA || !okB:
		return nil, errors.New("pct: an argument is unknown")
	case b == 0:
		return 0.0, nil
	}
	return a / b * 100, nil
}, new(func(a, b float64) float64))

func toFloat(v any) (float64, bool) {
	switch v := v.(type) {
	case float64:
		return v, true
	case int:
		return float64(v), true
	}
	rv := reflect.ValueOf(v)
	switch {
	case rv.CanFloat():
		return rv.Float(), true
	case rv.CanInt():
		return float64(rv.Int()), true
	case rv.CanUint():
		return float64(rv.Uint()), true
	}
	return 0, false
}

// clock is the helpers that depend only on the time of the match, shared
// by every event of a set.
type clock struct {
	daysUntil, hoursSince func(*time.Time) float64
}

func newClock(now time.Time) clock {
	return clock{
		// A time the event does not have gives NaN, which no comparison
		// holds for; the zero time (not given) is infinitely far, as rules
		// have it.
		daysUntil: func(t *time.Time) float64 {
			switch {
			case t == nil:
				return math.NaN()
			case t.IsZero():
				return math.Inf(1)
			}
			return t.Sub(now).Hours() / 24
		},
		hoursSince: func(t *time.Time) float64 {
			switch {
			case t == nil:
				return math.NaN()
			case t.IsZero():
				return math.Inf(1)
			}
			return now.Sub(*t).Hours()
		},
	}
}

// needs says which parts of the event an expression reads beyond its
// plain fields, so that an event's JSON is decoded only when some match
// reads it.
type needs struct{ values, prev bool }

func (n needs) or(o needs) needs { return needs{n.values || o.values, n.prev || o.prev} }

// newEnv builds the environment of e. It decodes values and prev only when
// asked to.
func newEnv(e *event.Event, c *clock, n needs) *Env {
	env := &Env{
		EventID: e.ID, ID: e.EntityID, Seq: e.Seq, Kind: e.Kind, Rule: e.Rule, Severity: e.Severity, Summary: e.Summary,
		Labels: e.Labels, Provider: e.Provider, Entity: e.Entity, EntityID: e.EntityID, ICCID: e.ICCID,
		StartsAt: timePtr(e.StartsAt, true), EndsAt: timePtr(e.EndsAt, false), ObservedAt: timePtr(e.ObservedAt, true),
	}
	if n.values && len(e.Values) > 0 {
		_ = json.Unmarshal(e.Values, &env.Values) // not an object: nothing
		env.Fields.fill(env.Values)
	}
	if n.prev && len(e.Prev) > 0 {
		_ = json.Unmarshal(e.Prev, &env.Prev)
	}
	values := env.Values
	env.helpers = helpers{
		Known: func(field string) bool {
			v, ok := values[field]
			return ok && v != nil
		},
		DaysUntil: c.daysUntil, HoursSince: c.hoursSince,
	}
	env.Metering = env.meter.Funcs()
	return env
}

func timePtr(t time.Time, always bool) *time.Time {
	if t.IsZero() && !always {
		return nil
	}
	return &t
}

// program is one compiled match and what it reads.
type program struct {
	p     *vm.Program
	needs needs
}

// vmMemoryBudget is expr's own budget (ranges, arrays, maps it builds), as
// for rules.
const vmMemoryBudget = 100_000

// run evaluates the program under the expression budget (see
// rules.BudgetOptions); an error or a panic is no match. The error is
// returned when it is the budget's (errors.Is(err, rules.ErrBudget)), so
// that the caller can stop running the program; other errors (a field the
// event does not have) are the event's alone, and nil.
func (p *program) run(env *Env) (ok bool, budget error) {
	defer func() {
		if r := recover(); r != nil {
			ok, budget = false, nil
		}
	}()
	env.meter.Reset(nil)
	v := vm.VM{MemoryBudget: vmMemoryBudget}
	out, err := v.Run(p.p, env)
	if be := rules.IsBudget(err); be != nil {
		return false, fmt.Errorf("%w (%v)", be, err)
	}
	b, _ := out.(bool)
	return err == nil && b, nil
}

const maxNodes = 500

// compile type-checks a match against Env.
func compile(src string) (*program, error) {
	if strings.TrimSpace(src) == "" {
		return nil, errors.New("the expression is empty (true matches every event)")
	}
	opts := append([]expr.Option{expr.Env(Env{}), pct, expr.AsBool(), expr.MaxNodes(maxNodes),
		expr.DisableBuiltin("now"), expr.DisableBuiltin("date")}, rules.BudgetOptions()...)
	p, err := expr.Compile(src, opts...)
	if err != nil {
		var fe *file.Error
		if errors.As(err, &fe) {
			fe.Message = hint(fe.Message)
			return nil, fe
		}
		return nil, err
	}
	prog := &program{p: p}
	var bad error
	ast.Find(p.Node(), func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.IdentifierNode:
			switch {
			case n.Value == "$env":
				prog.needs = needs{true, true}
			case n.Value == "values" || n.Value == "known" || slices.Contains(flatNames, n.Value):
				prog.needs.values = true
			case n.Value == "prev":
				prog.needs.prev = true
			}
		case *ast.CallNode:
			if id, ok := n.Callee.(*ast.IdentifierNode); ok && id.Value == "known" && len(n.Arguments) == 1 && bad == nil {
				s, ok := n.Arguments[0].(*ast.StringNode)
				switch {
				case !ok:
					bad = errors.New(`known() takes a field name in quotes, e.g. known("flow_left")`)
				case !slices.Contains(entityNames, s.Value):
					bad = errors.New(hintFrom("unknown field "+s.Value+" in known()", s.Value, entityNames))
				}
			}
		}
		return false
	})
	if bad != nil {
		return nil, bad
	}
	if fe := rules.CheckLoops(src); fe != nil {
		return nil, fe
	}
	return prog, nil
}

// Names for checks and "did you mean": envNames is every name a match can
// use, flatNames the flattened entity fields and entityNames every card and
// pool field (what known() asks about).
var (
	envNames    = append(exprNames(reflect.TypeFor[Env]()), "pct")
	flatNames   = exprNames(reflect.TypeFor[Fields]())
	entityNames = func() []string {
		names := append(exprNames(reflect.TypeFor[fleet.Card]()), exprNames(reflect.TypeFor[fleet.Pool]())...)
		slices.Sort(names)
		return slices.Compact(names)
	}()
)

func exprNames(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous {
			out = append(out, exprNames(f.Type)...)
			continue
		}
		if name := f.Tag.Get("expr"); name != "" && name != "-" && !rules.IsMeteringName(name) {
			out = append(out, name)
		}
	}
	return out
}

var unknownName = regexp.MustCompile(`unknown name ([A-Za-z_][A-Za-z0-9_]*)`)

// hint adds "did you mean" to an unknown-name error.
func hint(msg string) string {
	m := unknownName.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	if d := rules.DisabledBuiltin(m[1]); d != "" {
		return msg + d
	}
	return hintFrom(msg, m[1], envNames)
}

// hintFrom adds to msg the name of names closest to name.
func hintFrom(msg, name string, names []string) string {
	best := rules.Closest(name, names)
	if best == "" {
		return msg + " (see the event fields in README, Silences and inhibit rules)"
	}
	return msg + fmt.Sprintf(" (did you mean %s?)", best)
}
