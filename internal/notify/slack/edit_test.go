package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/notify/slack/slackfake"
	"github.com/simwatch/simwatch/internal/store"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func seq(e event.Event, s uint64) event.Event {
	e.Seq = s
	return e
}

func firing(i int, left float64) event.Event { return seq(cardEvent(i, event.KindFiring, left), 1) }
func resolution(i int) event.Event           { return seq(cardEvent(i, event.KindResolved, 80), 2) }

// golden compares the Block Kit JSON of a message with testdata/name, or
// rewrites it with -update.
func golden(t *testing.T, name, blocks string) {
	t.Helper()
	var out bytes.Buffer
	require.NoError(t, json.Indent(&out, []byte(blocks), "", "  "))
	out.WriteByte('\n')
	path := filepath.Join("testdata", name+".golden.json")
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, out.Bytes(), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, string(want), out.String())
}

func TestSingleAlertResolvedEditsInPlace(t *testing.T) {
	f, n := setup(t)
	_, err := n.Notify(context.Background(), firing(1, 5))
	require.NoError(t, err)
	golden(t, "single", f.Posts()[0].Blocks)
	require.Contains(t, f.Posts()[0].Blocks, "simwatch · hw · #1", "seq in the context line")

	retry, err := n.Notify(context.Background(), resolution(1))
	require.NoError(t, err)
	require.False(t, retry)
	posts, updates := f.Posts(), f.Updates()
	require.Len(t, posts, 2)
	require.Equal(t, "1795435200.000001", posts[1].ThreadTS, "the reply is in the thread")
	require.Contains(t, posts[1].Blocks, "✅ *RESOLVED*")
	require.Contains(t, posts[1].Blocks, "#2", "the resolution's seq")
	require.Len(t, updates, 1, "the parent is edited")
	u := updates[0]
	require.Equal(t, "C0123", u.Channel)
	require.Equal(t, "1795435200.000001", u.TS)
	require.Contains(t, u.Text, "RESOLVED card_low_flow")
	for _, want := range []string{"✅ *RESOLVED*", "resolved <!date^1795438800^", "*ICCID*\n89864900000000001", "*Left*\n5 MB of 100 MB", "#1"} {
		require.Contains(t, u.Blocks, jsonString(want))
	}
	golden(t, "single_resolved", u.Blocks)

	// Redelivered: nothing again.
	_, err = n.Notify(context.Background(), resolution(1))
	require.NoError(t, err)
	require.Len(t, f.Posts(), 2)
	require.Len(t, f.Updates(), 1)
}

func TestDigestResolvesInPlace(t *testing.T) {
	f, n := setup(t)
	var burst []event.Event
	for i := range 30 {
		burst = append(burst, firing(i, float64(30-i)))
	}
	_, err := n.Notify(context.Background(), burst...)
	require.NoError(t, err)
	require.Len(t, f.Posts(), 1)
	golden(t, "digest", f.Posts()[0].Blocks)

	// The ten worst resolve, in one call: one reply, one edit.
	var some []event.Event
	for i := 20; i < 30; i++ {
		some = append(some, resolution(i))
	}
	_, err = n.Notify(context.Background(), some...)
	require.NoError(t, err)
	posts, updates := f.Posts(), f.Updates()
	require.Len(t, posts, 2, "one reply for ten resolutions")
	require.Equal(t, "1795435200.000001", posts[1].ThreadTS)
	require.Contains(t, posts[1].Blocks, "for 10 cards")
	require.Len(t, updates, 1, "one edit")
	require.Contains(t, updates[0].Blocks, "10 of 30 resolved")
	require.Contains(t, updates[0].Text, "10 of 30 resolved")
	b := updates[0].Blocks
	require.Less(t, strings.Index(b, "has 11 MB left"), strings.Index(b, "…and 20 more"), "those still firing listed first")
	require.NotContains(t, b, "has 1 MB left", "resolved ones move after those firing")
	golden(t, "digest_partly_resolved", b)

	// The rest: fully resolved.
	var rest []event.Event
	for i := range 20 {
		rest = append(rest, resolution(i))
	}
	_, err = n.Notify(context.Background(), rest...)
	require.NoError(t, err)
	posts, updates = f.Posts(), f.Updates()
	require.Len(t, posts, 3)
	require.Equal(t, "1795435200.000001", posts[2].ThreadTS)
	require.Len(t, updates, 2)
	require.Contains(t, updates[1].Blocks, "✅ *RESOLVED*")
	require.Contains(t, updates[1].Blocks, "all resolved")
	require.NotContains(t, updates[1].Blocks, "of 30 resolved")
	golden(t, "digest_resolved", updates[1].Blocks)
}

func TestBurstOf599IsOneDigest(t *testing.T) {
	f, n := setup(t)
	var burst []event.Event
	for i := range 599 {
		burst = append(burst, seq(cardEvent(i, event.KindFiring, float64(i%97)), uint64(i%5+1)))
	}
	_, err := n.Notify(context.Background(), burst...)
	require.NoError(t, err)
	posts := f.Posts()
	require.Len(t, posts, 1)
	require.Contains(t, posts[0].Blocks, "for 599 cards")
	require.Contains(t, posts[0].Blocks, "and 589 more")
	require.Contains(t, posts[0].Blocks, "has 0 MB left · #1", "worst first, with its seq")

	var res []event.Event
	for i := range 412 {
		res = append(res, resolution(i))
	}
	_, err = n.Notify(context.Background(), res...)
	require.NoError(t, err)
	require.Len(t, f.Posts(), 2)
	require.Len(t, f.Updates(), 1)
	require.Contains(t, f.Updates()[0].Blocks, "412 of 599 resolved")
	require.Contains(t, f.Updates()[0].Blocks, "(177 still firing)")
}

// A failed edit that may heal fails the call as retryable; the retry makes
// the edit and does not post the reply twice.
func TestRetryAfterFailedEditDoesNotRepost(t *testing.T) {
	f, n := setup(t)
	_, err := n.Notify(context.Background(), firing(1, 5))
	require.NoError(t, err)
	f.FailUpdates(1, "ratelimited")
	retry, err := n.Notify(context.Background(), resolution(1))
	require.Error(t, err)
	require.True(t, retry)
	require.Len(t, f.Posts(), 2, "the reply went out")
	require.Empty(t, f.Updates())

	retry, err = n.Notify(context.Background(), resolution(1))
	require.NoError(t, err)
	require.False(t, retry)
	require.Len(t, f.Posts(), 2, "not posted twice")
	require.Len(t, f.Updates(), 1)
}

// A failed reply fails the call; the retry posts it once and edits.
func TestRetryAfterFailedReply(t *testing.T) {
	f, n := setup(t)
	_, err := n.Notify(context.Background(), firing(1, 5), firing(2, 4))
	require.NoError(t, err)
	f.FailPosts(1)
	retry, err := n.Notify(context.Background(), resolution(1))
	require.Error(t, err)
	require.True(t, retry)
	require.Len(t, f.Posts(), 1)
	_, err = n.Notify(context.Background(), resolution(1))
	require.NoError(t, err)
	require.Len(t, f.Posts(), 2)
	require.Len(t, f.Updates(), 1)
	require.Contains(t, f.Updates()[0].Blocks, "1 of 2 resolved")
}

// An edit Slack refuses for good (the message was deleted) is logged; the
// reply was delivered, so the call succeeds.
func TestPermanentEditFailureIsLogged(t *testing.T) {
	f := &slackfake.Server{}
	ts := httptest.NewServer(f)
	defer ts.Close()
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"))
	require.NoError(t, err)
	defer st.Close()
	var logs bytes.Buffer
	n, err := New(Options{Name: "ops-slack", Token: "xoxb-test-token", Channel: "#iot-alerts", APIURL: ts.URL, Threads: st,
		Log: slog.New(slog.NewTextHandler(&logs, nil))})
	require.NoError(t, err)
	_, err = n.Notify(context.Background(), firing(1, 5))
	require.NoError(t, err)
	f.FailUpdates(1, "message_not_found")
	retry, err := n.Notify(context.Background(), resolution(1))
	require.NoError(t, err)
	require.False(t, retry)
	require.Len(t, f.Posts(), 2)
	require.Contains(t, logs.String(), "message_not_found")
	require.NotContains(t, logs.String(), "xoxb-test-token")
	_, err = n.Notify(context.Background(), resolution(1))
	require.NoError(t, err)
	require.Empty(t, f.Updates(), "given up, not retried forever")
}

// A reminder is a message of its own; the resolution replies in the first
// message's thread and edits both.
func TestReminderAndResolution(t *testing.T) {
	f, n := setup(t)
	_, err := n.Notify(context.Background(), firing(1, 5))
	require.NoError(t, err)
	reminder := cardEvent(1, event.KindFiring, 2)
	reminder.ID = event.ID(reminder.Provider, reminder.Entity, reminder.EntityID, reminder.Rule, event.KindFiring, t0, 1)
	reminder.Seq = 2
	_, err = n.Notify(context.Background(), reminder)
	require.NoError(t, err)
	_, err = n.Notify(context.Background(), seq(resolution(1), 3))
	require.NoError(t, err)
	posts, updates := f.Posts(), f.Updates()
	require.Len(t, posts, 3)
	require.Equal(t, "1795435200.000001", posts[2].ThreadTS)
	require.Len(t, updates, 2)
	require.Equal(t, "1795435200.000001", updates[0].TS)
	require.Equal(t, "1795435200.000002", updates[1].TS)
}

// Resolutions find their thread by their alert, whatever the firing's id
// (e.g. its first firing was muted and a reminder announced it).
func TestResolutionFindsThreadByAlert(t *testing.T) {
	f, n := setup(t)
	reminder := firing(1, 5)
	reminder.ID = "some-other-id"
	_, err := n.Notify(context.Background(), reminder)
	require.NoError(t, err)
	_, err = n.Notify(context.Background(), resolution(1))
	require.NoError(t, err)
	require.Equal(t, "1795435200.000001", f.Posts()[1].ThreadTS)
	require.Len(t, f.Updates(), 1)
}

// Records written before messages were kept: the thread is found by the
// firing's id; there is nothing to edit.
func TestLegacyThreadRecord(t *testing.T) {
	f := &slackfake.Server{}
	ts := httptest.NewServer(f)
	defer ts.Close()
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"))
	require.NoError(t, err)
	defer st.Close()
	require.NoError(t, st.SaveThread("ops-slack", t0, firing(1, 5).ID, "C0123", "1700000000.000001"))
	n, err := New(Options{Name: "ops-slack", Token: "xoxb-test-token", Channel: "#iot-alerts", APIURL: ts.URL, Threads: st})
	require.NoError(t, err)
	_, err = n.Notify(context.Background(), resolution(1))
	require.NoError(t, err)
	require.Equal(t, "1700000000.000001", f.Posts()[0].ThreadTS)
	require.Empty(t, f.Updates())
}

// Incoming webhooks can neither thread nor edit: resolutions are messages
// of their own.
func TestIncomingWebhookResolutionsStandAlone(t *testing.T) {
	var got []map[string]any
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		require.NoError(t, json.NewDecoder(r.Body).Decode(&m))
		got = append(got, m)
		_, _ = w.Write([]byte("ok"))
	}))
	defer ts.Close()
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"))
	require.NoError(t, err)
	defer st.Close()
	n, err := New(Options{Name: "hook", WebhookURL: ts.URL, Threads: st})
	require.NoError(t, err)
	_, err = n.Notify(context.Background(), firing(1, 5))
	require.NoError(t, err)
	_, err = n.Notify(context.Background(), firing(1, 5)) // redelivered
	require.NoError(t, err)
	_, err = n.Notify(context.Background(), resolution(1))
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.NotContains(t, got[1], "thread_ts")
	require.Contains(t, got[1]["text"], "RESOLVED card_low_flow")
}

func TestRecordStaysCompact(t *testing.T) {
	var burst []event.Event
	for i := range 599 {
		e := firing(i, 5)
		e.Summary = strings.Repeat("é", 400)
		burst = append(burst, e)
	}
	data, err := json.Marshal(newRecord(burst))
	require.NoError(t, err)
	require.Less(t, len(data), 599*400, "summaries are cut in a digest's record")
	require.Nil(t, newRecord(burst).Single)
}
