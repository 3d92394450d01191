package app_test

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/notify/slack/slackfake"
)

// The bursts of the issue: 597 cards going low in one cycle is one Slack
// digest ("for 597 cards", worst first) and one webhook post; 19 SIM swaps
// are one Slack message and one webhook post; the cards topped up resolve
// in the digest's thread and the digest is edited in place.
func TestBurstIsOneDigestAndOnePost(t *testing.T) {
	slackAPI := &slackfake.Server{}
	ts := httptest.NewServer(slackAPI)
	defer ts.Close()
	e := newFleetEnv(t, gslCase, 620, "")
	// The default group_wait: the burst's 600 events reach the notifier over
	// several fetches, and run --once sends each group when all are in hand.
	e.tune("group_wait: 50ms", "group_wait: 10s", "notifiers:", "notifiers:\n  - {name: ops-slack, type: slack, token: xoxb-1, channel: \"#iot\", api_url: "+ts.URL+"}")
	code, out := e.once()
	require.Zero(t, code, out)
	require.Empty(t, slackAPI.Posts(), "a calm fleet says nothing")
	e.recv.takePosts()

	slackAPI.RateLimit(1, "1") // Slack answers 429 once, then OK
	const low = 597
	for i := range low {
		left := 9 - float64(i)/100 // card i has 9 - i/100 MB left: the last is the worst
		e.patchCard(i, fmt.Sprintf(`{"flow_used": %v, "flow_total": 100000}`, 100000-left))
	}
	code, out = e.once()
	require.Zero(t, code, out)

	var digests []slackfake.Post
	for _, p := range slackAPI.Posts() {
		if strings.Contains(p.Text, "card_low_flow") {
			digests = append(digests, p)
		}
	}
	require.Len(t, digests, 1, "597 cards going low are one Slack message")
	require.Contains(t, digests[0].Text+digests[0].Blocks, fmt.Sprintf("for %d cards", low))
	require.Contains(t, digests[0].Blocks, fmt.Sprintf("and %d more", low-10))
	require.Contains(t, digests[0].Blocks, e.iccids[low-1], "worst first: the card with least left is listed")
	require.NotContains(t, digests[0].Blocks, e.iccids[0], "the card with most left is not among the first 10")
	posts := e.recv.takePosts()
	require.Equal(t, 1, count(posts, "rule=card_low_flow"), "one webhook post for the burst; posts %v", posts)
	events := e.recv.takeEvents()
	require.Equal(t, low, countRule(events, "card_low_flow"))

	// 19 SIM swaps in one cycle.
	before := len(slackAPI.Posts())
	for i := range 19 {
		e.patchCard(low+1+i, fmt.Sprintf(`{"imei": "8600000000%05d"}`, i))
	}
	code, out = e.once()
	require.Zero(t, code, out)
	var swaps []slackfake.Post
	for _, p := range slackAPI.Posts()[before:] {
		if strings.Contains(p.Text, "sim_swap") {
			swaps = append(swaps, p)
		}
	}
	require.Len(t, swaps, 1, "19 SIM swaps are one Slack message")
	require.Contains(t, swaps[0].Text+swaps[0].Blocks, "for 19 cards")
	posts = e.recv.takePosts()
	require.Equal(t, []string{"rule=sim_swap"}, posts, "one webhook post for the swaps")
	require.Equal(t, 19, countRule(e.recv.takeEvents(), "sim_swap"))

	// Topped up: the resolutions are one reply in the digest's thread, and
	// the digest is edited in place.
	for i := range low {
		e.patchCard(i, `{"flow_used": 0}`)
	}
	code, out = e.once()
	require.Zero(t, code, out)
	var replies []slackfake.Post
	for _, p := range slackAPI.Posts() {
		if p.ThreadTS != "" && strings.Contains(p.Text, "card_low_flow") {
			replies = append(replies, p)
		}
	}
	require.Len(t, replies, 1, "one reply for the burst's resolutions")
	require.Contains(t, replies[0].Blocks, "✅")
	var edited bool
	for _, u := range slackAPI.Updates() {
		if u.TS == replies[0].ThreadTS && strings.Contains(u.Text+u.Blocks, "resolved") {
			edited = true
		}
	}
	require.True(t, edited, "the digest itself shows the alerts resolved")
	require.Equal(t, 1, count(e.recv.takePosts(), "rule=card_low_flow"), "one webhook post for the resolutions")
}

func count(keys []string, key string) int {
	n := 0
	for _, k := range keys {
		if k == key {
			n++
		}
	}
	return n
}

func countRule(events []event.Event, rule string) int {
	n := 0
	for _, e := range events {
		if e.Rule == rule {
			n++
		}
	}
	return n
}
