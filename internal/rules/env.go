package rules

import (
	"math"
	"reflect"
	"slices"
	"time"

	"github.com/simwatch/simwatch/internal/fleet"
)

// CardEnv is what a card rule's expression sees: the card's fields, prev (the
// card in the previous successful snapshot) and helpers bound to the cycle.
type CardEnv struct {
	fleet.Card
	Prev fleet.Card `expr:"prev"`
	helpers
}

// PoolEnv is what a pool rule's expression sees.
type PoolEnv struct {
	fleet.Pool
	Prev fleet.Pool `expr:"prev"`
	helpers
}

// helpers are functions rules call. They are fields, not expr.Functions, so
// that they are typed at compile time and bound to the cycle's clock and the
// entity at hand.
type helpers struct {
	Changed    func(field string) bool    `expr:"changed"`
	Pct        func(a, b float64) float64 `expr:"pct"`
	DaysUntil  func(t time.Time) float64  `expr:"days_until"`
	HoursSince func(t time.Time) float64  `expr:"hours_since"`
}

// Names of the helpers that make a rule depend on the clock, so that it is
// evaluated every cycle even for entities that did not change.
var clockHelpers = []string{"days_until", "hours_since"}

// transitionNames make a rule a transition rule.
var transitionNames = []string{"prev", "changed"}

func pct(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b * 100
}

func newHelpers(now time.Time, changed func(string) bool) helpers {
	return helpers{
		Changed: changed,
		Pct:     pct,
		DaysUntil: func(t time.Time) float64 {
			if t.IsZero() {
				return math.Inf(1)
			}
			return t.Sub(now).Hours() / 24
		},
		HoursSince: func(t time.Time) float64 {
			if t.IsZero() {
				return math.Inf(1)
			}
			return now.Sub(t).Hours()
		},
	}
}

// fieldIndex maps each expr name of a struct to its field index.
func fieldIndex(t reflect.Type) map[string]int {
	m := map[string]int{}
	for i := range t.NumField() {
		if name := t.Field(i).Tag.Get("expr"); name != "" {
			m[name] = i
		}
	}
	return m
}

var (
	cardFields = fieldIndex(reflect.TypeFor[fleet.Card]())
	poolFields = fieldIndex(reflect.TypeFor[fleet.Pool]())
)

// fieldChanged compares one named field of two values of the same struct type.
func fieldChanged[T any](index map[string]int, prev, cur *T, name string) bool {
	i, ok := index[name]
	if !ok {
		return false
	}
	a := reflect.ValueOf(prev).Elem().Field(i)
	b := reflect.ValueOf(cur).Elem().Field(i)
	switch a.Kind() {
	case reflect.String:
		return a.String() != b.String()
	case reflect.Int:
		return a.Int() != b.Int()
	case reflect.Float64:
		return a.Float() != b.Float()
	case reflect.Slice:
		if s, ok := a.Interface().([]string); ok {
			return !slices.Equal(s, b.Interface().([]string))
		}
	}
	return !reflect.DeepEqual(a.Interface(), b.Interface())
}

// fieldNames lists the expr names of an entity kind, for "did you mean".
func fieldNames(on string) []string {
	idx := cardFields
	if on == fleet.EntityPool {
		idx = poolFields
	}
	names := make([]string, 0, len(idx))
	for n := range idx {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
