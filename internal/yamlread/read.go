// Package yamlread reads YAML that may be hostile: it bounds the size,
// nesting depth and alias expansion of a document before and while the
// goccy parser handles it, and decodes into structs reporting every
// problem with its line, column and field instead of stopping at the first.
package yamlread

import (
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// Limits bound one document.
type Limits struct {
	MaxBytes int // file size
	MaxDepth int // nesting of mappings and sequences
	MaxNodes int // nodes that expanding aliases adds
	// MaxKeys bounds the keys of one block mapping, which the parser
	// handles in time and memory growing with their square.
	MaxKeys int
	// MaxEntries bounds the items of one block list and the entries of one
	// flow collection.
	MaxEntries int
}

// Default limits: far above any real config or rule file, far below what
// hurts a daemon.
var (
	ConfigLimits = Limits{MaxBytes: 1 << 20, MaxDepth: 64, MaxNodes: 10_000, MaxKeys: 1000, MaxEntries: 10_000}
	RuleLimits   = Limits{MaxBytes: 4 << 20, MaxDepth: 64, MaxNodes: 10_000, MaxKeys: 1000, MaxEntries: 100_000}
)

// Error is a problem at a place in a file. Message never quotes a value:
// the value may be a secret.
type Error struct {
	File      string
	Line, Col int
	Field     string // e.g. providers[0].interval; empty when unknown
	Message   string
	// UnknownKey is set when the problem is a key the target has no field
	// for (the rest of the mapping still decoded).
	UnknownKey string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Col)
	}
	if e.Field != "" {
		b.WriteString(": " + e.Field)
	}
	b.WriteString(": " + e.Message)
	return b.String()
}

// ReadFile reads path, refusing files larger than max without reading them
// whole.
func ReadFile(path string, max int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, int64(max)+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > max {
		return nil, &Error{File: path, Message: fmt.Sprintf("file is larger than the limit of %d bytes", max)}
	}
	return b, nil
}

// Doc is a parsed, bounded document.
type Doc struct {
	File *ast.File
	// Body is the first document's content; nil for an empty file.
	Body ast.Node
	// anchors maps each alias to the node it stands for, as defined at the
	// point of the alias (an anchor may be redefined later).
	anchors map[*ast.AliasNode]ast.Node
}

// Parse checks src against lim, parses it, and checks the result. Errors
// are *Error, one line, naming file, line and the limit.
func Parse(name string, src []byte, lim Limits) (*Doc, error) {
	if len(src) > lim.MaxBytes {
		return nil, &Error{File: name, Message: fmt.Sprintf("file is %d bytes, more than the limit of %d", len(src), lim.MaxBytes)}
	}
	// The parser recurses once per level and dies on deep input, so depth
	// is checked on the text first.
	if d, line, col, tooMany := scanDepth(src, lim.MaxDepth, lim.MaxKeys, lim.MaxEntries); tooMany == "keys" {
		return nil, &Error{File: name, Line: line, Col: col, Message: fmt.Sprintf("a mapping with more than the limit of %d keys", lim.MaxKeys)}
	} else if tooMany != "" {
		return nil, &Error{File: name, Line: line, Col: col, Message: fmt.Sprintf("a list or mapping with more than the limit of %d entries", lim.MaxEntries)}
	} else if line > 0 {
		return nil, &Error{File: name, Line: line, Col: col, Message: fmt.Sprintf("nested deeper than the limit of %d levels", lim.MaxDepth)}
	} else if d > lim.MaxDepth {
		return nil, &Error{File: name, Message: fmt.Sprintf("nested deeper than the limit of %d levels", lim.MaxDepth)}
	}
	f, err := parser.ParseBytes(src, 0)
	if err != nil {
		return nil, syntaxError(name, err)
	}
	doc := &Doc{File: f, anchors: map[*ast.AliasNode]ast.Node{}}
	if len(f.Docs) > 1 {
		pos := f.Docs[1].GetToken().Position
		return nil, &Error{File: name, Line: pos.Line, Col: pos.Column, Message: "one YAML document expected, found more"}
	}
	if len(f.Docs) == 1 {
		doc.Body = f.Docs[0].Body
	}
	w := walker{name: name, lim: lim, doc: doc, defined: map[string]ast.Node{}, size: map[ast.Node]int{}}
	if doc.Body != nil {
		if _, err := w.count(doc.Body, 1); err != nil {
			return nil, err
		}
	}
	return doc, nil
}

// syntaxError keeps the parser's message and position but not its source
// snippet, nor any source text the message quotes (`invalid header option:
// "…"`, `unknown YAML version "…"`): either may show a secret written in
// the file.
func syntaxError(name string, err error) error {
	var ye yaml.Error
	if errors.As(err, &ye) && ye.GetToken() != nil {
		pos := ye.GetToken().Position
		msg, _, _ := strings.Cut(ye.GetMessage(), "\n")
		return &Error{File: name, Line: pos.Line, Col: pos.Column, Message: "YAML: " + unquote(msg)}
	}
	msg, _, _ := strings.Cut(err.Error(), "\n")
	return &Error{File: name, Message: "YAML: " + unquote(msg)}
}

// quoted matches the quoted parts of a parser message: %q of a string
// ("…") or of a rune ('…').
var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"?|'(?:[^'\\]|\\.){0,8}'`)

// unquote replaces the quoted parts of a parser message, which are source
// text, with a placeholder.
func unquote(msg string) string {
	return quoted.ReplaceAllString(msg, "(text not shown)")
}

// walker counts the nodes that aliases add, remembering the expanded size
// of each anchored node so that a billion laughs costs one pass over the
// text and is refused at the alias that goes over the limit.
type walker struct {
	name    string
	lim     Limits
	doc     *Doc
	defined map[string]ast.Node
	size    map[ast.Node]int
	copies  int // nodes added by expanding aliases
}

func (w *walker) count(n ast.Node, depth int) (int, error) {
	if depth > w.lim.MaxDepth {
		return 0, w.fail(n, fmt.Sprintf("nested deeper than the limit of %d levels", w.lim.MaxDepth))
	}
	size := 1
	switch n := n.(type) {
	case *ast.AliasNode:
		target, ok := w.defined[n.Value.GetToken().Value]
		if !ok {
			return 0, w.fail(n, "alias to an undefined anchor")
		}
		w.doc.anchors[n] = target
		size = w.size[target]
		// Every node an alias stands for is decoded again: bound the
		// copies, not the text, which is already bounded.
		if w.copies += size; w.copies > w.lim.MaxNodes {
			return 0, w.fail(n, fmt.Sprintf("aliases expand to more than the limit of %d nodes", w.lim.MaxNodes))
		}
	case *ast.AnchorNode:
		s, err := w.count(n.Value, depth)
		if err != nil {
			return 0, err
		}
		w.size[n.Value] = s
		w.defined[n.Name.GetToken().Value] = n.Value
		return s, nil
	case *ast.TagNode:
		return w.count(n.Value, depth)
	case *ast.MappingNode:
		for _, v := range n.Values {
			s, err := w.count(v, depth+1)
			if err != nil {
				return 0, err
			}
			size += s
		}
	case *ast.MappingValueNode:
		for _, c := range []ast.Node{n.Key, n.Value} {
			s, err := w.count(c, depth)
			if err != nil {
				return 0, err
			}
			size += s
		}
	case *ast.MappingKeyNode:
		return w.count(n.Value, depth)
	case *ast.SequenceNode:
		for _, v := range n.Values {
			s, err := w.count(v, depth+1)
			if err != nil {
				return 0, err
			}
			size += s
		}
	}
	return size, nil
}

func (w *walker) fail(n ast.Node, msg string) error {
	pos := n.GetToken().Position
	return &Error{File: w.name, Line: pos.Line, Col: pos.Column, Message: msg}
}
