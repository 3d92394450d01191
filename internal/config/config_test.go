package config

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

const good = `data_dir: /tmp/x
http: {listen: 127.0.0.1:8080}
nats: {url: ""}
rule_files: [rules.yaml]
providers:
  - {name: hw, type: huawei-gsl, endpoint: https://gsl.example.com,
     auth: {ak: "${HW_AK}", sk: "${HW_SK}"}, interval: 10m, page_size: 200, rate: 5}
notifiers:
  - {name: crm, type: webhook, url: "https://crm.example/hook", secret: "${HOOK_SECRET}"}
  - {name: log, type: console}
`

func TestParseGood(t *testing.T) {
	c, err := Parse("w.yaml", []byte(good), env(map[string]string{"HW_AK": "ak1", "HW_SK": "sk-secret", "HOOK_SECRET": "hs"}))
	require.NoError(t, err)
	require.Equal(t, "ak1", c.Providers[0].Auth.AK.Reveal())
	require.Equal(t, 10*time.Minute, c.Providers[0].Interval.D())
	require.Equal(t, 200, c.Providers[0].PageSize)
	require.Equal(t, DefaultMaxDeliver, c.Notifiers[0].MaxDeliver)
	require.Equal(t, []string{"crm", "log"}, c.NotifierNames())
	// Secrets never print.
	out := fmt.Sprintf("%v %+v %#v", c, c, c)
	require.NotContains(t, out, "sk-secret")
	require.NotContains(t, out, "hs}")
}

func TestParseErrors(t *testing.T) {
	vars := env(map[string]string{"HW_AK": "a", "HW_SK": "b", "HOOK_SECRET": "c"})
	tests := []struct {
		name, src, want string
	}{
		{"unset var", good, "w.yaml:7:33: providers[0].auth.sk: environment variable HW_SK is not set"},
		{"unknown key", strings.Replace(good, "rate: 5", "rate: 5, colour: red", 1), `w.yaml:7:86: providers[0]: unknown key "colour"`},
		{"bad page size", strings.Replace(good, "page_size: 200", "page_size: 900", 1), "w.yaml:7:72: providers[0].page_size: 900 is out of range"},
		{"bad duration", strings.Replace(good, "interval: 10m", "interval: soon", 1), `w.yaml:7:56: providers[0].interval: bad duration "soon"`},
		{"bad type", strings.Replace(good, "type: console", "type: pager", 1), "w.yaml:10:23: notifiers[1].type: unknown notifier type \"pager\" (want console, webhook, slack or action)"},
		{"bad url", strings.Replace(good, "https://crm.example/hook", "crm", 1), "notifiers[0].url"},
		{"duplicate name", strings.Replace(good, "name: log", "name: crm", 1), `duplicate notifier name "crm"`},
		{"slack without channel", strings.Replace(good, "type: console", "type: slack, token: xoxb-1", 1), "notifiers[1]: a slack notifier needs token and channel"},
		{"webhook format", strings.Replace(good, "type: webhook,", "type: webhook, format: prometheus,", 1), `unknown format "prometheus"`},
		{"action without rules", strings.Replace(good, "type: console", "type: action, provider: hw, operation: stop", 1), "notifiers[1].rules: list the rules that may trigger this action"},
		{"action on unknown provider", strings.Replace(good, "type: console", "type: action, provider: ali, operation: halt, rules: [x]", 1), `"ali" is not a configured huawei-gsl provider`},
		{"linkcard page size", strings.Replace(strings.Replace(good, "huawei-gsl", "aliyun-linkcard", 1), `auth: {ak: "${HW_AK}", sk: "${HW_SK}"}`, `auth: {access_key_id: x, access_key_secret: y}`, 1),
			"providers[0].page_size: 200 is not a LinkCard page size: ListCardInfo accepts 10, 15, 25 or 40"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lookup := vars
			if tt.name == "unset var" {
				lookup = env(map[string]string{"HW_AK": "a", "HOOK_SECRET": "c"})
			}
			_, err := Parse("w.yaml", []byte(tt.src), lookup)
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestExampleConfigLoads(t *testing.T) {
	raw, err := os.ReadFile("../../watcher.example.yaml")
	require.NoError(t, err)
	c, err := Parse("watcher.example.yaml", raw, env(map[string]string{"HW_AK": "a", "HW_SK": "b", "HOOK_SECRET": "c", "ALI_AK": "d", "ALI_SK": "e", "SLACK_BOT_TOKEN": "xoxb"}))
	require.NoError(t, err)
	require.Len(t, c.Providers, 2)
	require.Len(t, c.Notifiers, 4)
	require.True(t, c.Notifiers[3].IsDryRun())
}
