package yamlread

import (
	"strings"
	"testing"
)

// TestParseBounds: what each limit refuses, and that ordinary YAML, deep
// only in text (quotes, block scalars, comments), is not refused.
func TestParseBounds(t *testing.T) {
	lim := Limits{MaxBytes: 1 << 16, MaxDepth: 8, MaxNodes: 100}
	laughs := "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
	for _, tc := range []struct {
		name, src, want string // want: "" to load, else a part of the error
	}{
		{"plain", "a: 1\nb: [1, 2, {c: 3}]\n", ""},
		{"deep flow", strings.Repeat("[", 100) + strings.Repeat("]", 100), "nested deeper than the limit of 8"},
		{"deep braces", "a: " + strings.Repeat("{b: ", 50) + "1" + strings.Repeat("}", 50), "nested deeper"},
		{"deep dashes", strings.Repeat("- ", 50) + "x\n", "nested deeper"},
		{"deep indentation", func() string {
			var b strings.Builder
			for i := range 30 {
				b.WriteString(strings.Repeat(" ", i) + "k:\n")
			}
			return b.String()
		}(), "nested deeper"},
		{"brackets in quotes", `a: "` + strings.Repeat("[", 100) + `"` + "\nb: '" + strings.Repeat("{", 100) + "'\n", ""},
		{"brackets in a block scalar", "a: |\n  " + strings.Repeat("[", 100) + "\nb: 1\n", ""},
		{"brackets in a comment", "# " + strings.Repeat("[", 100) + "\na: 1\n", ""},
		{"billion laughs", laughs, "aliases expand to more than the limit of 100 nodes"},
		{"a small alias", "a: &a {x: 1}\nb: *a\nc: *a\n", ""},
		{"too big", "a: " + strings.Repeat("x", 1<<16) + "\n", "more than the limit"},
		{"two documents", "a: 1\n---\nb: 2\n", "one YAML document expected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(tc.src), lim)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			case tc.want != "" && !strings.HasPrefix(err.Error(), "f.yaml"):
				t.Fatalf("the error does not name the file: %v", err)
			}
		})
	}
}
