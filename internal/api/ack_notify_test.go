package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/notify/console"
	"github.com/simwatch/simwatch/internal/notify/slack"
	"github.com/simwatch/simwatch/internal/notify/slack/slackfake"
	"github.com/simwatch/simwatch/internal/notify/webhook"
	"github.com/simwatch/simwatch/internal/store"
)

// An acknowledgement made through the API reaches Slack as a reply in the
// thread of the message that announced the alert, with the comment shown
// as plain text (no @channel), and leaves the announcement as it was.
func TestAckRepliesInSlackThread(t *testing.T) {
	r := newAlertRig(t)
	fillAlerts(r)
	f := &slackfake.Server{}
	fs := httptest.NewServer(f)
	t.Cleanup(fs.Close)
	threads, err := store.Open(filepath.Join(t.TempDir(), "threads.db"))
	require.NoError(t, err)
	t.Cleanup(func() { threads.Close() })
	n, err := slack.New(slack.Options{Name: "ops-slack", Token: "xoxb-test", Channel: "#iot", APIURL: fs.URL, Threads: threads})
	require.NoError(t, err)
	ctx := context.Background()
	_, err = n.Notify(ctx, r.outbox()...)
	require.NoError(t, err)
	posts := f.Posts()
	require.Len(t, posts, 1, "the nine firings are one digest")
	require.Contains(t, posts[0].Blocks, "for 9 cards")

	ts := tokenServer(t, r)
	admin := bearer(adminSecret)
	for _, k := range []string{keyOf(t, r, ts, admin, "hw", "card_low_flow", 2), keyOf(t, r, ts, admin, "hw", "card_empty", 0)} {
		code, body := postAck(t, ts, admin, ackBody(k, "on it <!channel> & <https://evil.example|click>"))
		require.Equal(t, 200, code, body)
	}
	acks := r.outbox()
	require.Len(t, acks, 2)
	retry, err := n.Notify(ctx, acks...)
	require.NoError(t, err)
	require.False(t, retry)
	posts = f.Posts()
	require.Len(t, posts, 3)
	var reply, alone slackfake.Post
	for _, p := range posts[1:] {
		if strings.Contains(p.Blocks, "card_empty") {
			alone = p
		} else {
			reply = p
		}
	}
	require.Equal(t, "1795435200.000001", reply.ThreadTS, "a reply in the digest's thread")
	require.Contains(t, reply.Text, "ACKNOWLEDGED card_low_flow")
	require.Contains(t, reply.Blocks, "*ACKNOWLEDGED*")
	require.Contains(t, reply.Blocks, "acknowledged by ops: on it \\u0026lt;!channel\\u0026gt; \\u0026amp; \\u0026lt;https://evil.example|click\\u0026gt;")
	require.NotContains(t, reply.Blocks, "<!channel>")
	require.NotContains(t, reply.Text, "<!channel>")
	require.Empty(t, alone.ThreadTS, "a pending alert was never announced: its ack stands alone")
	require.Empty(t, f.Updates(), "an ack does not edit the announcement")

	// Redelivered (a retry), nothing is posted twice.
	_, err = n.Notify(ctx, acks...)
	require.NoError(t, err)
	require.Len(t, f.Posts(), 3)

	// The resolution still edits the digest and replies in the thread.
	r.left("hw", 2, 80)
	r.cycle()
	_, err = n.Notify(ctx, r.outbox()...)
	require.NoError(t, err)
	require.Len(t, f.Posts(), 4)
	require.Equal(t, "1795435200.000001", f.Posts()[3].ThreadTS)
	require.Len(t, f.Updates(), 1)
	require.Contains(t, f.Updates()[0].Blocks, "1 of 9 resolved")
}

// A webhook receives the acknowledgement as an event like any other, in
// both formats, and the console notifier prints it on one line.
func TestAckReachesWebhookAndConsole(t *testing.T) {
	r := newAlertRig(t)
	fillAlerts(r)
	r.outbox()
	var mu sync.Mutex
	var bodies [][]byte
	rs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		mu.Lock()
		bodies = append(bodies, b)
		mu.Unlock()
	}))
	t.Cleanup(rs.Close)
	ts := tokenServer(t, r)
	admin := bearer(adminSecret)
	code, body := postAck(t, ts, admin, ackBody(keyOf(t, r, ts, admin, "lc", "card_low_flow", 1), "on it"))
	require.Equal(t, 200, code, body)
	evs := r.outbox()
	require.Len(t, evs, 1)

	ctx := context.Background()
	_, err := webhook.New(webhook.Options{Name: "crm", URL: rs.URL, Secret: "s"}).Notify(ctx, evs...)
	require.NoError(t, err)
	_, err = webhook.New(webhook.Options{Name: "am", URL: rs.URL, Format: webhook.FormatAlertmanager}).Notify(ctx, evs...)
	require.NoError(t, err)
	require.Len(t, bodies, 2)

	var p webhook.Payload
	require.NoError(t, json.Unmarshal(bodies[0], &p))
	require.Equal(t, "firing", p.Status, "the alert is still active")
	require.Len(t, p.Events, 1)
	e := p.Events[0]
	require.Equal(t, event.KindAcknowledged, e.Kind)
	require.Equal(t, uint64(2), e.Seq)
	require.Equal(t, "acknowledged by ops: on it", e.Summary)
	require.Equal(t, "card_low_flow", e.Rule)
	require.Equal(t, r.iccids["lc"][1], e.ICCID)

	var am struct {
		Status string `json:"status"`
		Alerts []struct {
			Status      string            `json:"status"`
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"alerts"`
	}
	require.NoError(t, json.Unmarshal(bodies[1], &am))
	require.Len(t, am.Alerts, 1)
	require.Equal(t, "firing", am.Alerts[0].Status)
	require.Equal(t, "acknowledged", am.Alerts[0].Annotations["kind"])
	require.Equal(t, "acknowledged by ops: on it", am.Alerts[0].Annotations["summary"])
	require.Equal(t, "card_low_flow", am.Alerts[0].Labels["alertname"])

	line := strings.Join(strings.Fields(console.Line(evs[0])), " ")
	require.Contains(t, line, "ACKNOWLEDGED warning card_low_flow lc card "+r.iccids["lc"][1]+": acknowledged by ops: on it")
}
