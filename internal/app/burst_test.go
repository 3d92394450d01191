package app_test

import (
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/notify/slack/slackfake"
)

// A burst of hundreds of alerts reaches Slack as a few digests, worst first,
// and the webhook signed and grouped.
func TestBurstReachesSlackAsDigests(t *testing.T) {
	slackAPI := &slackfake.Server{}
	ts := httptest.NewServer(slackAPI)
	defer ts.Close()
	e := newEnv(t, "")
	raw, err := os.ReadFile(e.config)
	require.NoError(t, err)
	cfg := strings.Replace(string(raw), "notifiers:", "notifiers:\n  - {name: ops-slack, type: slack, token: xoxb-1, channel: \"#iot\", api_url: "+ts.URL+", max_events: 100}", 1)
	require.NoError(t, os.WriteFile(e.config, []byte(cfg), 0o644))
	code, out := e.once()
	require.Zero(t, code, out)

	slackAPI.RateLimit(1, "1") // Slack answers 429 once, then OK
	for i := range 60 {
		e.patchCard(i, `{"flow_used": 99995, "flow_total": 100000}`)
	}
	code, out = e.once()
	require.Zero(t, code, out)

	posts := slackAPI.Posts()
	var low []string
	for _, p := range posts {
		if strings.Contains(p.Text, "card_low_flow") {
			low = append(low, p.Blocks)
		}
	}
	require.NotEmpty(t, low)
	require.LessOrEqual(t, len(posts), 3, "a burst is a few digests, not 60 messages")
	require.Contains(t, strings.Join(low, ""), "for 60 cards")
	require.Contains(t, strings.Join(low, ""), "and 50 more")
	require.Len(t, e.recv.take(), 60+2, "the webhook got every card, and both pools overdrawn by their members")

	// The cards are topped up: resolutions reply in the digest's thread.
	for i := range 60 {
		e.patchCard(i, `{"flow_used": 0}`)
	}
	code, out = e.once()
	require.Zero(t, code, out)
	posts = slackAPI.Posts()
	var replies int
	for _, p := range posts {
		if p.ThreadTS != "" {
			replies++
			require.Contains(t, p.Blocks, "✅")
		}
	}
	require.Positive(t, replies)
}
