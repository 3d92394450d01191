package slack

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/notify/slack/slackfake"
	"github.com/simwatch/simwatch/internal/store"
)

func setup(t *testing.T) (*slackfake.Server, *Notifier) {
	t.Helper()
	f := &slackfake.Server{}
	ts := httptest.NewServer(f)
	t.Cleanup(ts.Close)
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	n, err := New(Options{Name: "ops-slack", Token: "xoxb-test-token", Channel: "#iot-alerts", APIURL: ts.URL,
		StatusURL: "https://simwatch.example/", Threads: st})
	require.NoError(t, err)
	return f, n
}

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func cardEvent(i int, kind string, left float64) event.Event {
	id := fmt.Sprintf("490000000%04d", i)
	e := event.Event{Kind: kind, Rule: "card_low_flow", Severity: "warning", Provider: "hw", Entity: "card",
		EntityID: id, ICCID: "8986" + id, StartsAt: t0, ObservedAt: t0,
		Summary: fmt.Sprintf("Card 8986%s has %g MB left", id, left),
		Values:  json.RawMessage(fmt.Sprintf(`{"iccid":"8986%s","status":"active","flow_left":%g,"flow_total":100}`, id, left))}
	e.ID = event.ID(e.Provider, e.Entity, e.EntityID, e.Rule, kind, t0, 0)
	if kind == event.KindResolved {
		e.EndsAt = t0.Add(time.Hour)
	}
	return e
}

func TestSingleEventMessage(t *testing.T) {
	f, n := setup(t)
	retry, err := n.Notify(context.Background(), cardEvent(1, event.KindFiring, 5))
	require.NoError(t, err)
	require.False(t, retry)
	posts := f.Posts()
	require.Len(t, posts, 1)
	p := posts[0]
	require.Equal(t, "#iot-alerts", p.Channel)
	require.Contains(t, p.Auth, "xoxb-test-token")
	require.Contains(t, p.Text, "FIRING card_low_flow")
	for _, want := range []string{"🟠 *FIRING*", "`card_low_flow`", "has 5 MB left", "*ICCID*\n89864900000000001", "*Left*\n5 MB of 100 MB", "<https://simwatch.example/cards/hw/4900000000001|open in simwatch>"} {
		require.Contains(t, p.Blocks, jsonString(want))
	}
}

// jsonString is how s appears inside the JSON of the blocks.
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return strings.Trim(string(b), `"`)
}

func TestBurstBecomesDigestWorstFirst(t *testing.T) {
	f, n := setup(t)
	var events []event.Event
	for i := range 25 {
		events = append(events, cardEvent(i, event.KindFiring, float64(25-i)))
	}
	_, err := n.Notify(context.Background(), events...)
	require.NoError(t, err)
	posts := f.Posts()
	require.Len(t, posts, 1, "one message for the burst")
	b := posts[0].Blocks
	require.Contains(t, b, "for 25 cards")
	require.Contains(t, b, "and 15 more")
	require.Less(t, strings.Index(b, "has 1 MB left"), strings.Index(b, "has 2 MB left"), "worst first")
	require.NotContains(t, b, "has 11 MB left", "only the first 10 are listed")
}

func TestResolvedRepliesInThread(t *testing.T) {
	f, n := setup(t)
	_, err := n.Notify(context.Background(), cardEvent(1, event.KindFiring, 5), cardEvent(2, event.KindFiring, 3))
	require.NoError(t, err)
	_, err = n.Notify(context.Background(), cardEvent(1, event.KindResolved, 50), cardEvent(2, event.KindResolved, 60), cardEvent(3, event.KindResolved, 70))
	require.NoError(t, err)
	posts := f.Posts()
	require.Len(t, posts, 3)
	require.Equal(t, "1795435200.000001", posts[1].ThreadTS, "resolutions of the digest's alerts reply in its thread")
	require.Contains(t, posts[1].Blocks, "for 2 cards")
	require.Empty(t, posts[2].ThreadTS, "a resolution whose firing was never posted here stands alone")
	require.Contains(t, posts[2].Blocks, "✅")
}

func TestRetryDoesNotRepost(t *testing.T) {
	f, n := setup(t)
	e := cardEvent(1, event.KindFiring, 5)
	_, err := n.Notify(context.Background(), e)
	require.NoError(t, err)
	_, err = n.Notify(context.Background(), e) // redelivered
	require.NoError(t, err)
	require.Len(t, f.Posts(), 1)
}

func TestRateLimitedThenOK(t *testing.T) {
	f, n := setup(t)
	f.RateLimit(1, "30")
	retry, err := n.Notify(context.Background(), cardEvent(1, event.KindFiring, 5))
	require.Error(t, err)
	require.True(t, retry)
	var se *Error
	require.ErrorAs(t, err, &se)
	require.Equal(t, 30*time.Second, se.RetryAfter())
	retry, err = n.Notify(context.Background(), cardEvent(1, event.KindFiring, 5))
	require.NoError(t, err)
	require.False(t, retry)
	require.Len(t, f.Posts(), 1)
}

func TestErrorsThatWillNotHeal(t *testing.T) {
	for _, code := range []string{"invalid_auth", "channel_not_found", "not_in_channel"} {
		f, n := setup(t)
		f.Fail(code)
		retry, err := n.Notify(context.Background(), cardEvent(1, event.KindFiring, 5))
		require.ErrorContains(t, err, code)
		require.False(t, retry, code)
		require.NotContains(t, err.Error(), "xoxb-test-token")
	}
	f, n := setup(t)
	f.Fail("internal_error")
	retry, err := n.Notify(context.Background(), cardEvent(1, event.KindFiring, 5))
	require.Error(t, err)
	require.True(t, retry, "a passing Slack error is retried")
}

func TestIncomingWebhook(t *testing.T) {
	var got []map[string]any
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		require.NoError(t, json.NewDecoder(r.Body).Decode(&m))
		got = append(got, m)
		_, _ = w.Write([]byte("ok"))
	}))
	defer ts.Close()
	n, err := New(Options{Name: "hook", WebhookURL: ts.URL})
	require.NoError(t, err)
	_, err = n.Notify(context.Background(), cardEvent(1, event.KindFiring, 5), cardEvent(2, event.KindFiring, 4))
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Contains(t, got[0]["text"], "card_low_flow: 2 cards")
	require.NotEmpty(t, got[0]["blocks"])
}
