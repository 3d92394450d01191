package rules

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/fleet"
)

func TestParseProblems(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"unknown field with hint", `rules:
  - name: low
    on: card
    when: status == "active" && flow_lef < 10
`, []string{"r.yaml:4:33: rule low: unknown name flow_lef (did you mean flow_left?)"}},
		{"type mismatch", `rules:
  - name: low
    on: card
    when: 'flow_left < "ten"'
`, []string{"r.yaml:4:", "rule low: invalid operation: < (mismatched types float64 and string)"}},
		{"changed unknown field", `rules:
  - name: swap
    on: card
    when: changed("imie")
`, []string{"r.yaml:4:19: rule swap: unknown name imie (did you mean imei?)"}},
		{"bad duration and severity", `rules:
  - name: low
    on: card
    when: flow_left < 10
    for: 10 minutes
    severity: urgent
`, []string{`r.yaml:5:10: rule low: for: bad duration "10 minutes"`, `r.yaml:6:15: rule low: severity must be info, warning or critical, not "urgent"`}},
		{"unknown notifier", `rules:
  - name: low
    on: card
    when: flow_left < 10
    notify: [ops, pager]
`, []string{`r.yaml:5:19: rule low: unknown notifier "pager" (configured: ops)`}},
		{"template error", `rules:
  - name: low
    on: card
    when: flow_left < 10
    summary: "{{ .flow_lft }} left"
`, []string{`r.yaml:5:14: rule low: summary:`, `map has no entry for key "flow_lft"`}},
		{"transition with for", `rules:
  - name: susp
    on: pool
    when: prev.flow_left > 0 && flow_left < 0
    for: 1h
`, []string{"transition rule"}},
		{"unknown key", `rules:
  - name: low
    on: card
    when: flow_left < 10
    colour: red
`, []string{`r.yaml:5:5: unknown field "colour" (a rule's keys are`}},
		{"every problem at once", `rules:
  - name: a
    on: card
    when: flow_left < 10
    sumary: x
  - name: b
    on: card
    when: flow_lef < 10
  - name: c
    on: pool
    when: flow_left < 0
    repeat: 1 day
  - name: d
    on: card
    when: flow_left < 10
    rearm: monthly
`, []string{`r.yaml:5:5: unknown field "sumary" (did you mean summary?)`, "r.yaml:8:11: rule b: unknown name flow_lef (did you mean flow_left?)",
			`r.yaml:12:13: rule c: repeat: bad duration "1 day"`, `r.yaml:16:12: rule d: rearm must be "cycle"`}},
		{"resolve_when checked", `rules:
  - name: band
    on: card
    when: flow_left < 10
    resolve_when: flow_left > "20"
`, []string{"r.yaml:5:29: rule band: resolve_when: invalid operation: > (mismatched types float64 and string) (see `watcher rules fields`"}},
		{"bad on", `rules:
  - name: Low-Flow
    on: sim
    when: flow_left < 10
`, []string{`r.yaml:2:11: rule name "Low-Flow" must match`, `r.yaml:3:9: rule Low-Flow: on must be card or pool, not "sim"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("r.yaml", []byte(tt.src), LoadOptions{Notifiers: []string{"ops"}})
			require.Error(t, err)
			for _, w := range tt.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestLoadFilesDuplicateAcrossFiles(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml")
	rule := "rules:\n  - {name: low, on: card, when: flow_left < 10}\n"
	require.NoError(t, os.WriteFile(a, []byte(rule), 0o644))
	require.NoError(t, os.WriteFile(b, []byte(rule), 0o644))
	_, err := LoadFiles([]string{a, b}, LoadOptions{})
	require.ErrorContains(t, err, `b.yaml:2:1: duplicate rule name "low" (first defined at `+a+`:2)`)
}

func TestExampleRulesLoad(t *testing.T) {
	set, err := LoadFiles([]string{"../../rules.example.yaml"}, LoadOptions{})
	require.NoError(t, err)
	require.NotEmpty(t, set.Rules)
	for _, r := range set.Rules {
		if strings.Contains(r.When, "prev") || strings.Contains(r.When, "changed") {
			require.True(t, r.Transition(), r.Name)
		}
	}
}

func TestFieldsReferenceCoversEverything(t *testing.T) {
	for _, on := range []string{"card", "pool"} {
		fields := Fields(on)
		names := map[string]Field{}
		for _, f := range fields {
			require.NotEmpty(t, f.Meaning, "%s.%s has no doc", on, f.Name)
			names[f.Name] = f
		}
		for _, n := range fieldNames(on) {
			require.Contains(t, names, n)
		}
		for _, n := range append(clockHelpers, "changed", "pct", "prev") {
			require.Contains(t, names, n)
		}
	}
	require.Equal(t, "float", fieldsByName("card")["flow_left"].Type)
	require.Equal(t, "MB", fieldsByName("card")["flow_left"].Unit)
	require.Equal(t, "(string) → float", fieldsByName("card")["usage_last"].Type)
	require.True(t, fieldsByName("card")["flow_left"].MayBeUnknown)
	require.True(t, fieldsByName("card")["status"].MayBeUnknown)
	require.False(t, fieldsByName("card")["status_code"].MayBeUnknown)
	require.True(t, fieldsByName("pool")["quantity"].MayBeUnknown)
}

func fieldsByName(on string) map[string]Field {
	m := map[string]Field{}
	for _, f := range Fields(on) {
		m[f.Name] = f
	}
	return m
}

func TestExampleRuleTestsPass(t *testing.T) {
	results, err := RunTestFile("../../rules.example.test.yaml")
	require.NoError(t, err)
	covered := map[string]bool{}
	raw, err := os.ReadFile("../../rules.example.test.yaml")
	require.NoError(t, err)
	for _, r := range results {
		require.Empty(t, r.Failures, r.Name)
	}
	set, err := LoadFiles([]string{"../../rules.example.yaml"}, LoadOptions{})
	require.NoError(t, err)
	for _, r := range set.Rules {
		covered[r.Name] = strings.Contains(string(raw), "rule: "+r.Name)
		require.True(t, covered[r.Name], "rules.example.test.yaml has no expectation for %s", r.Name)
	}
}

func TestRuleTestFailureShowsDiff(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "r.yaml"), []byte("rules:\n  - {name: low, on: card, when: 'flow_left < 10', summary: 'low {{ .id }}'}\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "t.yaml"), []byte(`rule_files: [r.yaml]
tests:
  - name: wrong expectation
    steps:
      - cards: [{id: "1", flow_left: 5}, {id: "2", flow_left: 50}]
        expect: [{kind: firing, rule: low, id: "2"}]
`), 0o644))
	results, err := RunTestFile(filepath.Join(dir, "t.yaml"))
	require.NoError(t, err)
	require.Len(t, results, 1)
	require.Equal(t, []string{"step 1 (2026-11-20T04:00:00Z):\n" +
		"    - expected, not produced: firing low 2\n" +
		`    + produced, not expected: firing low 1 summary="low 1"`}, results[0].Failures)

	require.NoError(t, os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte(`rule_files: [r.yaml]
tests:
  - name: unknown field
    steps:
      - cards: [{id: "1", flow_lft: 5}]
`), 0o644))
	results, err = RunTestFile(filepath.Join(dir, "bad.yaml"))
	require.NoError(t, err)
	require.Contains(t, results[0].Failures[0], `cards[0]: unknown field "flow_lft"`)
}

func TestQuery(t *testing.T) {
	q, err := NewQuery("card", `status == "active" && flow_left < 10`, time.Now())
	require.NoError(t, err)
	ok, err := q.MatchCard(&fleet.Card{Status: "active", FlowLeft: 5})
	require.NoError(t, err)
	require.True(t, ok)
	ok, _ = q.MatchCard(&fleet.Card{Status: "active", FlowLeft: 50})
	require.False(t, ok)

	_, err = NewQuery("card", `flow_lef < 10`, time.Now())
	require.EqualError(t, err, "query:1:1: unknown name flow_lef (did you mean flow_left?)")
	_, err = NewQuery("card", `prev.status == "active"`, time.Now())
	require.ErrorContains(t, err, "prev compares two listings")
}

func TestEnvIsRefused(t *testing.T) {
	for _, when := range []string{`$env.flow_left < 10`, `get($env, "prev").flow_left < 1`, "flow_left < 10 &&\n  $env[\"flow_left\"] == 1"} {
		_, err := Parse("r.yaml", []byte("rules:\n  - name: x\n    on: card\n    when: |\n      "+strings.ReplaceAll(when, "\n", "\n      ")+"\n"), LoadOptions{})
		require.ErrorContains(t, err, "$env is not available", when)
	}
	_, err := Parse("r.yaml", []byte("rules:\n  - {name: x, on: card, when: 'plan == \"$env\"'}\n"), LoadOptions{})
	require.NoError(t, err, "a string is only a string")
}
