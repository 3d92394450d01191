package config_test

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/config"
	_ "github.com/simwatch/simwatch/internal/mute" // checks inhibit rules' expressions at load
)

const base = `providers:
  - {name: hw, type: huawei-gsl, endpoint: https://gsl.example.com, auth: {token: t}}
notifiers:
  - {name: log, type: console}
`

func noEnv(string) (string, bool) { return "", false }

func TestInhibitRules(t *testing.T) {
	good := base + `inhibit_rules:
  - source_match: 'rule == "provider_unhealthy"'
    target_match: 'entity in ["card", "pool"]'
    equal: [provider, labels.team]
  - {source_match: 'severity == "critical"', target_match: 'severity == "warning"'}
`
	c, err := config.Parse("w.yaml", []byte(good), noEnv)
	require.NoError(t, err)
	require.Equal(t, []config.InhibitRule{
		{SourceMatch: `rule == "provider_unhealthy"`, TargetMatch: `entity in ["card", "pool"]`, Equal: []string{"provider", "labels.team"}},
		{SourceMatch: `severity == "critical"`, TargetMatch: `severity == "warning"`},
	}, c.InhibitRules)

	tests := []struct{ name, rules, want string }{
		{"typo in source_match", `
  - source_match: 'rulee == "provider_unhealthy"'
    target_match: 'true'`, `w.yaml:6:19: inhibit_rules[0].source_match: unknown name rulee (did you mean rule?)`},
		{"type error in target_match", `
  - source_match: 'true'
    target_match: 'entity > 3'`, `w.yaml:7:19: inhibit_rules[0].target_match: invalid operation`},
		{"missing target_match", `
  - source_match: 'true'`, `w.yaml:6:17: inhibit_rules[0].target_match: an expression is required`},
		{"unknown equal field", `
  - {source_match: 'true', target_match: 'true', equal: [provider, region]}`, `w.yaml:6:68: inhibit_rules[0].equal[1]: unknown field "region" (want rule, provider, severity, kind, entity, entity_id, iccid or labels.NAME)`},
		{"empty label name", `
  - {source_match: 'true', target_match: 'true', equal: [labels.]}`, `inhibit_rules[0].equal[0]: unknown field "labels."`},
		{"equal twice", `
  - {source_match: 'true', target_match: 'true', equal: [provider, provider]}`, `inhibit_rules[0].equal[1]: "provider" is listed twice`},
		{"second rule", `
  - {source_match: 'true', target_match: 'true'}
  - {source_match: 'true', target_match: 'now() > starts_at'}`, `w.yaml:7:42: inhibit_rules[1].target_match: unknown name now`},
		{"unknown key", `
  - {source_match: 'true', target_match: 'true', equals: [provider]}`, `w.yaml:6:50: inhibit_rules[0]: unknown key "equals" (did you mean equal?)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse("w.yaml", []byte(base+"inhibit_rules:"+tt.rules+"\n"), noEnv)
			require.ErrorContains(t, err, tt.want)
			require.NotContains(t, err.Error(), "\n |", "one line per error")
		})
	}
}

func TestExampleInhibitRule(t *testing.T) {
	raw, err := os.ReadFile("../../watcher.example.yaml")
	require.NoError(t, err)
	c, err := config.Parse("watcher.example.yaml", raw, func(k string) (string, bool) { return "x", true })
	require.NoError(t, err)
	require.Contains(t, c.InhibitRules, config.InhibitRule{SourceMatch: `rule == "provider_unhealthy"`, TargetMatch: `entity in ["card", "pool"]`, Equal: []string{"provider"}})

	// The expressions of the shipped example are checked at load.
	bad := strings.Replace(string(raw), `rule == "provider_unhealthy"`, `rulee == "provider_unhealthy"`, 1)
	_, err = config.Parse("watcher.example.yaml", []byte(bad), func(k string) (string, bool) { return "x", true })
	require.ErrorContains(t, err, "inhibit_rules[0].source_match: unknown name rulee (did you mean rule?)")
	t.Log(err)
}

// Without package mute linked in, config checks only the structure, and
// mute.NewInhibitor reports the expression when the daemon starts.
func TestInhibitRulesWithoutChecker(t *testing.T) {
	check := config.CheckMatch
	config.CheckMatch = nil
	defer func() { config.CheckMatch = check }()
	_, err := config.Parse("w.yaml", []byte(base+"inhibit_rules:\n  - {source_match: 'rulee', target_match: 'true'}\n"), noEnv)
	require.NoError(t, err)
	_, err = config.Parse("w.yaml", []byte(base+"inhibit_rules:\n  - {source_match: ' ', target_match: 'true'}\n"), noEnv)
	require.ErrorContains(t, err, "w.yaml:6:20: inhibit_rules[0].source_match: an expression is required")
}
