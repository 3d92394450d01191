package rules

import (
	"reflect"
	"strings"
	"time"

	"github.com/simwatch/simwatch/internal/fleet"
)

// Field documents one name a rule expression can use.
type Field struct {
	Name    string `json:"name"`
	Type    string `json:"type"`
	Unit    string `json:"unit,omitempty"`
	Meaning string `json:"meaning"`
	Helper  bool   `json:"helper,omitempty"` // a function, called with ()
	// MayBeUnknown: a provider may leave the field out. While it is unknown
	// a rule that reads it does not fire (and an alert it has holds).
	MayBeUnknown bool `json:"may_be_unknown,omitempty"`
}

// Fields lists every field and helper available to rules on an entity kind,
// read from the environment types themselves so the reference cannot drift.
func Fields(on string) []Field {
	var entity, env reflect.Type = reflect.TypeFor[fleet.Card](), reflect.TypeFor[CardEnv]()
	if on == fleet.EntityPool {
		entity, env = reflect.TypeFor[fleet.Pool](), reflect.TypeFor[PoolEnv]()
	}
	var out []Field
	add := func(f reflect.StructField, helper bool) {
		name := f.Tag.Get("expr")
		if name == "" || name == "-" {
			return
		}
		unit, meaning, _ := strings.Cut(f.Tag.Get("doc"), "|")
		out = append(out, Field{Name: name, Type: typeName(f.Type), Unit: unit, Meaning: meaning, Helper: helper,
			MayBeUnknown: !helper && fleet.MayBeUnknown(on, name)})
	}
	for i := range entity.NumField() {
		add(entity.Field(i), false)
	}
	if f, ok := env.FieldByName("Prev"); ok {
		add(f, false)
	}
	h := reflect.TypeFor[helpers]()
	for i := range h.NumField() {
		add(h.Field(i), true)
	}
	return out
}

func typeName(t reflect.Type) string {
	switch t {
	case reflect.TypeFor[time.Time]():
		return "time"
	case reflect.TypeFor[fleet.Card](), reflect.TypeFor[fleet.Pool]():
		return "entity"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Int:
		return "int"
	case reflect.Float64:
		return "float"
	case reflect.Bool:
		return "bool"
	case reflect.Slice:
		return "list of " + typeName(t.Elem())
	case reflect.Map:
		return "map of " + typeName(t.Elem())
	case reflect.Func:
		var in []string
		for i := range t.NumIn() {
			in = append(in, typeName(t.In(i)))
		}
		return "(" + strings.Join(in, ", ") + ") → " + typeName(t.Out(0))
	}
	return t.String()
}
