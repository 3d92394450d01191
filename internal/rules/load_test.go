package rules

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// rules check reports unknown keys and every other problem in one run: a
// rule with an unknown key is still checked.
func TestLoadEveryProblemInOnePass(t *testing.T) {
	src := `rules:
  - {name: a, on: card, when: 'flow_left < 1', sevrity: critical, for: 10}
  - {name: b, on: card, when: 'flow_lef < 1', colour: red}
  - {name: c, on: pool, when: 'flow_left < 1', labels: {team: [x]}}
extra: 1
`
	_, err := Parse("r.yaml", []byte(src), LoadOptions{})
	require.Error(t, err)
	for _, want := range []string{
		`r.yaml:2:48: unknown field "sevrity" (did you mean severity?)`,
		`r.yaml:2:72: rule a: for: bad duration "10"`,
		`r.yaml:3:32: rule b: unknown name flow_lef`,
		`r.yaml:3:47: unknown field "colour"`,
		`r.yaml:4:63: rules[2].labels.team: want a single value, not a list`,
		`r.yaml:5:1: unknown key "extra" (a rule file has one key: rules)`,
	} {
		require.Contains(t, err.Error(), want)
	}
}

// Aliases are allowed for reuse, within a bound.
func TestLoadAliases(t *testing.T) {
	src := `rules:
  - &low {name: low, on: card, when: 'flow_left < 1', labels: &team {team: fleet}}
  - {<<: *low, name: low2, severity: critical, labels: *team}
`
	set, err := Parse("r.yaml", []byte(src), LoadOptions{})
	require.NoError(t, err)
	require.Len(t, set.Rules, 2)
	require.Equal(t, "low2", set.Rules[1].Name)
	require.Equal(t, "flow_left < 1", set.Rules[1].When)
	require.Equal(t, map[string]string{"team": "fleet"}, set.Rules[1].Labels)
}

// manyRules is a rule file of n small rules, each with a broken expression.
func manyRules(n int) string {
	var b strings.Builder
	b.WriteString("rules:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - {name: r%d, on: card, when: \"status == 1 &&\"}\n", i)
	}
	return b.String()
}

// TestProblemsListedAreBounded: a file of many bad rules is refused with
// the first MaxProblemsShown problems and a count of the rest.
func TestProblemsListedAreBounded(t *testing.T) {
	_, err := Parse("r.yaml", []byte(manyRules(300)), LoadOptions{})
	require.Error(t, err)
	lines := strings.Split(err.Error(), "\n")
	require.Len(t, lines, MaxProblemsShown+1)
	require.Equal(t, "…and 200 more problems", lines[MaxProblemsShown])
}

// TestTooManyRulesRefusedBeforeCompiling: the count is checked on the
// parsed file, before the costly part (compiling every rule).
func TestTooManyRulesRefusedBeforeCompiling(t *testing.T) {
	src := []byte(manyRules(MaxRules + 1))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := Parse("r.yaml", src, LoadOptions{})
	runtime.ReadMemStats(&after)
	require.ErrorContains(t, err, "r.yaml:1:1: 5001 rules, more than the limit of 5000")
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(100<<20), "bytes allocated")
}

func TestLoadBombs(t *testing.T) {
	laughs := "x: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
	prev := "a"
	for _, name := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
		laughs += name + ": &" + name + " [" + strings.Repeat("*"+prev+", ", 9) + "*" + prev + "]\n"
		prev = name
	}
	laughs += "rules: *i\n"
	var deep strings.Builder
	deep.WriteString("rules:\n")
	for i := range 100 {
		deep.WriteString(strings.Repeat(" ", i+1) + "- k:\n")
	}
	tests := []struct{ name, src, want string }{
		{"billion laughs", laughs, "r.yaml:4:36: aliases expand to more than the limit of 10000 nodes"},
		{"100k [", "rules: " + strings.Repeat("[", 100_000), "r.yaml:1:71: nested deeper than the limit of 64 levels"},
		{"100k {", "rules: " + strings.Repeat("{a: ", 100_000), "nested deeper than the limit of 64 levels"},
		{"deep block indentation", deep.String(), "nested deeper than the limit of 64 levels"},
		{"too big", "rules: []\n" + strings.Repeat("#", 1<<20), "r.yaml:1:1: file is 1048586 bytes, more than the limit of 1048576"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err = Parse("r.yaml", []byte(tt.src), LoadOptions{})
			runtime.ReadMemStats(&after)
			require.ErrorContains(t, err, tt.want)
			require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(8<<20), "bytes allocated")
		})
	}
}
