package yamlread

import (
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"

	"github.com/simwatch/simwatch/internal/suggest"
)

// Unmarshaler is a type that parses its own scalar text, such as a duration.
// Its error becomes the problem's message, so it must not quote a secret.
type Unmarshaler interface {
	UnmarshalYAML([]byte) error
}

// Decoder decodes a Doc into Go values by their `yaml` tags. Unlike
// yaml.Unmarshal it goes on after a problem, so that one run reports all
// of them, and its messages never quote a value.
type Decoder struct {
	File string
	Doc  *Doc
	// Expand, when set, rewrites the text of every string scalar before it
	// is used (e.g. ${VAR} from the environment). Its error is reported at
	// the scalar.
	Expand func(s string) (string, error)
	// Problems collects what went wrong, in document order.
	Problems []*Error
	// MaxProblems, when positive, stops decoding once that many problems
	// are collected, so that a hostile document costs little time and
	// memory; Stopped then reports that there may be more.
	MaxProblems int
	Stopped     bool
	// MaxList, when positive, bounds every list: a longer one is a problem
	// and is not decoded.
	MaxList int
}

// Decode decodes n into dst, a pointer; field names n in messages ("" for
// the document itself).
func (d *Decoder) Decode(n ast.Node, dst any, field string) {
	d.decode(n, reflect.ValueOf(dst).Elem(), field)
}

// Problem records a problem at n.
func (d *Decoder) Problem(n ast.Node, field, format string, args ...any) {
	if d.full() {
		d.Stopped = true
		return
	}
	e := &Error{File: d.File, Field: field, Message: fmt.Sprintf(format, args...)}
	if n != nil && n.GetToken() != nil {
		e.Line, e.Col = n.GetToken().Position.Line, n.GetToken().Position.Column
	}
	d.Problems = append(d.Problems, e)
}

// Resolve follows aliases and steps over anchors and tags.
func (d *Decoder) Resolve(n ast.Node) ast.Node {
	for range 100 { // an alias names an anchored node, never another alias for long
		switch v := n.(type) {
		case *ast.AliasNode:
			if d.Doc == nil || d.Doc.anchors[v] == nil {
				return nil
			}
			n = d.Doc.anchors[v]
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			n = v.Value
		default:
			return n
		}
	}
	return n
}

var unmarshalerType = reflect.TypeFor[Unmarshaler]()

// full reports whether MaxProblems problems are collected.
func (d *Decoder) full() bool {
	return d.MaxProblems > 0 && len(d.Problems) >= d.MaxProblems
}

func (d *Decoder) decode(written ast.Node, v reflect.Value, field string) {
	if d.full() {
		d.Stopped = true
		return
	}
	n := d.Resolve(written)
	if n == nil || n.Type() == ast.NullType {
		return // absent: the zero value, as yaml.Unmarshal leaves it
	}
	if v.Kind() != reflect.Pointer && reflect.PointerTo(v.Type()).Implements(unmarshalerType) {
		s, ok := d.scalar(written, n, field)
		if !ok {
			return
		}
		if err := v.Addr().Interface().(Unmarshaler).UnmarshalYAML([]byte(s)); err != nil {
			d.Problem(written, field, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		d.decode(written, p.Elem(), field)
		v.Set(p)
	case reflect.String:
		if s, ok := d.scalar(written, n, field); ok {
			v.SetString(s)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		s, ok := d.scalar(written, n, field)
		if !ok {
			return
		}
		i, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 0, 64)
		if err != nil || v.OverflowInt(i) {
			d.Problem(written, field, "want a whole number")
			return
		}
		v.SetInt(i)
	case reflect.Float32, reflect.Float64:
		s, ok := d.scalar(written, n, field)
		if !ok {
			return
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			d.Problem(written, field, "want a number")
			return
		}
		v.SetFloat(f)
	case reflect.Bool:
		s, ok := d.scalar(written, n, field)
		if !ok {
			return
		}
		switch strings.ToLower(s) {
		case "true":
			v.SetBool(true)
		case "false":
			v.SetBool(false)
		default:
			d.Problem(written, field, "want true or false")
		}
	case reflect.Slice:
		seq, ok := n.(*ast.SequenceNode)
		if !ok {
			d.Problem(written, field, "want a list, not %s", kind(n))
			return
		}
		if d.MaxList > 0 && len(seq.Values) > d.MaxList {
			d.Problem(written, field, "a list of %d items, more than the limit of %d", len(seq.Values), d.MaxList)
			return
		}
		s := reflect.MakeSlice(v.Type(), len(seq.Values), len(seq.Values))
		for i, item := range seq.Values {
			d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", field, i))
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		d.mapping(written, n, field, func(key string, kn, vn ast.Node) {
			e := reflect.New(v.Type().Elem()).Elem()
			d.decode(vn, e, join(field, key))
			m.SetMapIndex(reflect.ValueOf(key).Convert(v.Type().Key()), e)
		})
		v.Set(m)
	case reflect.Struct:
		d.structure(written, n, v, field)
	default:
		d.Problem(written, field, "cannot decode into %s", v.Type())
	}
}

func (d *Decoder) structure(written, n ast.Node, v reflect.Value, field string) {
	t := v.Type()
	index := map[string]int{}
	var keys []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !t.Field(i).IsExported() {
			continue
		}
		index[name] = i
		keys = append(keys, name)
	}
	d.mapping(written, n, field, func(key string, kn, vn ast.Node) {
		i, ok := index[key]
		if !ok {
			if d.full() {
				d.Stopped = true
				return
			}
			d.Problem(kn, field, "%s", unknownKey(key, keys))
			d.Problems[len(d.Problems)-1].UnknownKey = key
			return
		}
		d.decode(vn, v.Field(i), join(field, key))
	})
}

// Keys calls f for each key of the mapping n, with the key's and the
// value's nodes; n not being a mapping is a problem.
func (d *Decoder) Keys(n ast.Node, field string, f func(key string, kn, vn ast.Node)) {
	d.mapping(n, d.Resolve(n), field, f)
}

// mapping calls f for each key of a mapping, merged keys (<<: *x) first so
// that the mapping's own keys win.
func (d *Decoder) mapping(written, n ast.Node, field string, f func(key string, kn, vn ast.Node)) {
	var pairs []*ast.MappingValueNode
	switch m := n.(type) {
	case *ast.MappingNode:
		pairs = m.Values
	case *ast.MappingValueNode:
		pairs = []*ast.MappingValueNode{m}
	default:
		d.Problem(written, field, "want a mapping, not %s", kind(n))
		return
	}
	for _, p := range pairs {
		if p.Key.Type() != ast.MergeKeyType {
			continue
		}
		src := d.Resolve(p.Value)
		if seq, ok := src.(*ast.SequenceNode); ok {
			for _, s := range seq.Values {
				d.mapping(s, d.Resolve(s), field, f)
			}
			continue
		}
		d.mapping(p.Value, src, field, f)
	}
	for _, p := range pairs {
		if d.full() {
			d.Stopped = true
			return
		}
		if p.Key.Type() == ast.MergeKeyType {
			continue
		}
		kn := d.Resolve(p.Key)
		if k, ok := kn.(*ast.MappingKeyNode); ok {
			kn = d.Resolve(k.Value)
		}
		key, ok := keyText(kn)
		if !ok {
			d.Problem(p.Key, field, "a key must be text, not %s", kind(kn))
			continue
		}
		f(key, p.Key, p.Value)
	}
}

// scalar returns the text of a scalar node, expanded.
func (d *Decoder) scalar(written, n ast.Node, field string) (string, bool) {
	var s string
	switch v := n.(type) {
	case *ast.StringNode:
		s = v.Value
	case *ast.LiteralNode:
		s = v.Value.Value
	case ast.ScalarNode:
		return v.GetToken().Value, true
	default:
		d.Problem(written, field, "want a single value, not %s", kind(n))
		return "", false
	}
	if d.Expand != nil {
		x, err := d.Expand(s)
		if err != nil {
			d.Problem(written, field, "%v", err)
			return "", false
		}
		s = x
	}
	return s, true
}

func keyText(n ast.Node) (string, bool) {
	switch v := n.(type) {
	case *ast.StringNode:
		return v.Value, true
	case nil:
		return "", false
	case ast.ScalarNode:
		if n.Type() == ast.NullType {
			return "", false
		}
		return v.GetToken().Value, true
	}
	return "", false
}

// kind names a node's type for a message, without its value.
func kind(n ast.Node) string {
	switch n.(type) {
	case nil:
		return "nothing"
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.StringNode, *ast.LiteralNode:
		return "text"
	case *ast.IntegerNode, *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		return "a number"
	case *ast.BoolNode:
		return "true or false"
	}
	return "a " + strings.ToLower(n.Type().String())
}

func join(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

// plainKey is what a key must look like to be quoted in a message: the
// shape of the keys simwatch knows. Anything else may be a secret typed
// where a key was meant (`{ak: X, SECRET}`), so it is not shown.
var plainKey = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

func unknownKey(key string, known []string) string {
	if !plainKey.MatchString(key) {
		return fmt.Sprintf("unknown key (not shown, as it may be a secret; known keys: %s)", strings.Join(known, ", "))
	}
	if best := suggest.Closest(key, known, 2); best != "" {
		return fmt.Sprintf("unknown key %q (did you mean %s?)", key, best)
	}
	return fmt.Sprintf("unknown key %q (known keys: %s)", key, strings.Join(known, ", "))
}
