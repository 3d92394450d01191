package yamlread

import (
	"fmt"
	"strings"
	"testing"
)

// The scan refuses block mappings with more keys than MaxKeys (the parser
// is quadratic there) and lists or flow collections with more entries than
// MaxEntries, but counts each mapping on its own.
func TestHostile12ScanCounts(t *testing.T) {
	lim := Limits{MaxBytes: 4 << 20, MaxDepth: 64, MaxNodes: 10_000, MaxKeys: 1000, MaxEntries: 10_000}
	keys := func(n int) string {
		var b strings.Builder
		b.WriteString("top:\n")
		for i := range n {
			fmt.Fprintf(&b, "  k%d: 1\n", i)
		}
		return b.String()
	}
	rules := func(n int) string { // many small mappings in one list: each counted alone
		var b strings.Builder
		b.WriteString("rules:\n")
		for i := range n {
			fmt.Fprintf(&b, "  - name: r%d\n    expr: x > 1\n    summary: s\n", i)
		}
		return b.String()
	}
	nested := func(n int) string { // 3600 lines, no mapping over 900 keys
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "k%d:\n  x: 1\n  y: 2\n  z: 3\n", i)
		}
		return b.String()
	}
	for _, tc := range []struct {
		name, src, want string
	}{
		{"1000 keys", keys(1000), ""},
		{"1001 keys", keys(1001), "y.yaml:1002:3: a mapping with more than the limit of 1000 keys"},
		{"5000 rules of 3 keys", rules(5000), ""},
		{"10000 items", "l:\n" + strings.Repeat("- a\n", 10_000), ""},
		{"10001 items", "l:\n" + strings.Repeat("- a\n", 10_001), "y.yaml:10002:1: a list or mapping with more than the limit of 10000 entries"},
		{"10001 flow entries", "l: [" + strings.Repeat("a,", 10_001) + "]\n", "y.yaml:1:20004: a list or mapping with more than the limit of 10000 entries"},
		{"commas in quotes", "l: ['" + strings.Repeat("a,", 20_000) + "']\n", ""},
		{"900 keys, each a mapping of 3", nested(900), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("y.yaml", []byte(tc.src), lim)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || err.Error() != tc.want):
				t.Fatalf("got %v, want %s", err, tc.want)
			}
		})
	}
}

// Parser messages keep their position but not the source text they quote.
func TestHostile12SyntaxUnquoted(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"a: |SECRETxyz\n  b\n", "y.yaml:1:4: YAML: invalid header option: (text not shown)"},
		{"%YAML SECRETxyz\n---\na: 1\n", "YAML: unknown YAML version (text not shown)"},
	} {
		_, err := Parse("y.yaml", []byte(tc.src), ConfigLimits)
		if err == nil || strings.Contains(err.Error(), "SECRETxyz") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %s", tc.src, err, tc.want)
		}
	}
}
