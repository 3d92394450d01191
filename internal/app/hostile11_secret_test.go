package app_test

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Hostile (issue 11, receivers): a Slack incoming-webhook URL is a secret
// ("it never appears in logs, errors or dead letters"). A typo in its scheme
// (htps://, or none at all) makes the config invalid, and the load error
// must still not print it: the error goes to terminals, CI logs and
// journald.
func TestHostile11SlackWebhookURLNotInConfigError(t *testing.T) {
	for _, bad := range []string{
		"htps://hooks.slack.com/services/T0000/B0000/XyZsecretTokenValue",
		"hooks.slack.com/services/T0000/B0000/XyZsecretTokenValue",
	} {
		t.Run(bad, func(t *testing.T) {
			e := newEnv(t, "")
			e.tune("notifiers:", "notifiers:\n  - {name: ops-slack, type: slack, url: \""+bad+"\"}")
			code, out := e.once()
			require.NotZero(t, code, out)
			require.Contains(t, out, "notifiers[0].url", "the error names the field")
			require.NotContains(t, out, "XyZsecretTokenValue", "the incoming-webhook secret is printed: %s", out)
		})
	}
}
