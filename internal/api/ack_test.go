package api

import (
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/rules"
	"github.com/simwatch/simwatch/internal/store"
)

// keyOf finds the API key of a provider's alert of rule on card i.
func keyOf(t *testing.T, r *alertRig, ts *httptest.Server, h map[string]string, provider, rule string, i int) string {
	t.Helper()
	code, body := do12(t, ts, req12{method: "GET", path: "/api/v1/alerts?" + url.Values{"provider": {provider}, "rule": {rule}}.Encode(), header: h})
	require.Equal(t, 200, code, body)
	var a alertsAnswer
	require.NoError(t, json.Unmarshal([]byte(body), &a))
	for _, x := range a.Alerts {
		if x.ICCID == r.iccids[provider][i] {
			return x.Key
		}
	}
	t.Fatalf("no %s alert of %s on card %d", provider, rule, i)
	return ""
}

func ackBody(alert, comment string) string {
	b, _ := json.Marshal(AckRequest{Alert: alert, Comment: comment})
	return string(b)
}

func postAck(t *testing.T, ts *httptest.Server, h map[string]string, body string) (int, string) {
	t.Helper()
	hh := map[string]string{"Content-Type": "application/json"}
	for k, v := range h {
		hh[k] = v
	}
	return do12(t, ts, req12{method: "POST", path: "/api/v1/alerts/ack", body: body, header: hh})
}

func tokenServer(t *testing.T, r *alertRig) *httptest.Server {
	srv := New(Options{Store: r.store, Rules: func() *rules.Set { return r.set },
		Tokens: []Token{{Name: "dash", Secret: readSecret, Role: RoleRead}, {Name: "ops", Secret: adminSecret, Role: RoleAdmin}}})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts
}

// Only an admin acknowledges, with JSON, a comment within bounds, an alert
// that exists and is active; every refusal leaves no ack and no event.
func TestAckRefusals(t *testing.T) {
	r := newAlertRig(t)
	fillAlerts(r)
	r.left("hw", 29, 0.2)
	r.cycle()
	r.left("hw", 29, 50) // card_drained resolves, kept as resolved for the cycle
	r.cycle()
	r.outbox()
	ts := tokenServer(t, r)
	admin, read := bearer(adminSecret), bearer(readSecret)
	key := keyOf(t, r, ts, admin, "hw", "card_low_flow", 2)
	code, body := do12(t, ts, req12{method: "GET", path: "/api/v1/alerts?state=resolved", header: admin})
	require.Equal(t, 200, code)
	var res alertsAnswer
	require.NoError(t, json.Unmarshal([]byte(body), &res))
	require.Len(t, res.Alerts, 1, body)
	drained := res.Alerts[0].Key

	long := strings.Repeat("é", MaxAckComment+1)
	for _, c := range []struct {
		name   string
		h      map[string]string
		body   string
		code   int
		substr string
	}{
		{"read token", read, ackBody(key, "on it"), 403, "token dash has role read"},
		{"no token", nil, ackBody(key, "on it"), 401, "bearer token"},
		{"form post", bearer(adminSecret, "Content-Type", "application/x-www-form-urlencoded"), "alert=" + url.QueryEscape(key) + "&comment=x", 415, "application/json"},
		{"cross-site", bearer(adminSecret, "Sec-Fetch-Site", "cross-site"), ackBody(key, "on it"), 403, "cross-site"},
		{"unknown alert", admin, ackBody(AlertKey("hw", "card_low_flow", "card", "nope"), "on it"), 404, "no such alert"},
		{"unknown provider", admin, ackBody(AlertKey("zz", "card_low_flow", "card", "1"), "on it"), 404, "no such alert"},
		{"resolved alert", admin, ackBody(drained, "on it"), 409, "resolved"},
		{"bad key", admin, ackBody("hw/card_low_flow", "on it"), 400, "alert: want an alert's key"},
		{"no comment", admin, ackBody(key, ""), 400, "comment: required"},
		{"blank comment", admin, ackBody(key, " \n\t "), 400, "comment: required"},
		{"long comment", admin, ackBody(key, long), 400, "501 characters; at most 500"},
		{"control character", admin, ackBody(key, "on it\x1b[31m"), 400, "control character"},
		{"escaped control", admin, `{"alert":"` + key + `","comment":"on \u0007 it"}`, 400, "control character U+0007"},
		{"bidi override", admin, ackBody(key, "fixed \u202egnirtS"), 400, "U+202E"},
		{"unknown field", admin, `{"alert":"` + key + `","comment":"x","by":"ceo"}`, 400, `unknown key \"by\"`},
		{"duplicate key", admin, `{"alert":"` + key + `","comment":"x","comment":"y"}`, 400, "given twice"},
		{"not JSON", admin, `alert`, 400, "want {"},
	} {
		code, body := postAck(t, ts, c.h, c.body)
		require.Equal(t, c.code, code, "%s: %s", c.name, body)
		require.Contains(t, body, c.substr, c.name)
	}
	acks, err := r.store.Acks()
	require.NoError(t, err)
	require.Empty(t, acks)
	require.Empty(t, r.outbox(), "no refusal announces anything")

	// The longest comment allowed goes through.
	code, body = postAck(t, ts, admin, ackBody(key, strings.Repeat("é", MaxAckComment)))
	require.Equal(t, 200, code, body)
}

// An ack is recorded with the token's name, shown with its alert, and
// announced as the alert's next event; it lasts until the alert resolves.
func TestAckAnnouncedAndDroppedOnResolve(t *testing.T) {
	r := newAlertRig(t)
	fillAlerts(r)
	firings := r.outbox()
	ts := tokenServer(t, r)
	admin := bearer(adminSecret)
	key := keyOf(t, r, ts, admin, "hw", "card_low_flow", 2)
	var firing event.Event
	for _, e := range firings {
		if e.Provider == "hw" && e.Rule == "card_low_flow" && e.ICCID == r.iccids["hw"][2] {
			firing = e
		}
	}
	require.Equal(t, uint64(1), firing.Seq)

	code, body := postAck(t, ts, admin, ackBody(key, "on it <!channel>"))
	require.Equal(t, 200, code, body)
	require.Contains(t, body, `"announced": true`)
	evs := r.outbox()
	require.Len(t, evs, 1)
	e := evs[0]
	require.Equal(t, event.KindAcknowledged, e.Kind)
	require.Equal(t, firing.AlertKey(), e.AlertKey(), "an event of the same alert")
	require.Equal(t, uint64(2), e.Seq, "the alert's next seq")
	require.True(t, firing.StartsAt.Equal(e.StartsAt), "the episode's start, which threads it")
	require.Equal(t, "acknowledged by ops: on it <!channel>", e.Summary)
	require.Equal(t, "warning", e.Severity)
	require.Equal(t, map[string]string{"team": "radio"}, e.Labels)
	require.Equal(t, firing.ICCID, e.ICCID)

	a := getAlertsWith(t, ts, admin, url.Values{"provider": {"hw"}, "rule": {"card_low_flow"}})
	acked := 0
	for _, x := range a.Alerts {
		if x.Ack != nil {
			acked++
			require.Equal(t, key, x.Key)
			require.Equal(t, "ops", x.Ack.By)
			require.Equal(t, "on it <!channel>", x.Ack.Comment)
		}
	}
	require.Equal(t, 1, acked)

	// A double submit changes nothing; a new comment is a new ack.
	code, body = postAck(t, ts, admin, ackBody(key, "on it <!channel>"))
	require.Equal(t, 200, code, body)
	require.Contains(t, body, `"announced": false`)
	require.Empty(t, r.outbox())
	code, body = postAck(t, ts, admin, ackBody(key, "SIM swapped, watching"))
	require.Equal(t, 200, code, body)
	evs = r.outbox()
	require.Len(t, evs, 1)
	require.Equal(t, uint64(3), evs[0].Seq)
	ack, ok, err := r.store.AckFor(store.AckKey("hw", rules.AlertKey("card_low_flow", "card", strings.Split(key, "/")[3])))
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "SIM swapped, watching", ack.Comment)

	// A pending alert can be acknowledged too.
	pending := keyOf(t, r, ts, admin, "hw", "card_empty", 0)
	code, body = postAck(t, ts, admin, ackBody(pending, "known"))
	require.Equal(t, 200, code, body)
	evs = r.outbox()
	require.Len(t, evs, 1)
	require.Equal(t, "critical", evs[0].Severity)
	require.Equal(t, uint64(1), evs[0].Seq, "the first event of an alert that has not fired")

	// The card recovers: the alert resolves and its ack goes with it.
	r.left("hw", 2, 80)
	r.cycle()
	evs = r.outbox()
	require.Len(t, evs, 1)
	require.Equal(t, event.KindResolved, evs[0].Kind)
	require.Equal(t, uint64(4), evs[0].Seq, "the resolution follows the acks in the alert's order")
	_, ok, err = r.store.AckFor(ack.Provider + "\x00" + ack.Alert)
	require.NoError(t, err)
	require.False(t, ok)
	acks, err := r.store.Acks()
	require.NoError(t, err)
	require.Len(t, acks, 1, "only the pending alert's ack is left")
	code, body = postAck(t, ts, admin, ackBody(key, "late"))
	require.Equal(t, 404, code, body)

	// Its next episode starts unacknowledged.
	r.left("hw", 2, 5)
	r.cycle()
	r.outbox()
	for _, x := range getAlertsWith(t, ts, admin, url.Values{"provider": {"hw"}, "rule": {"card_low_flow"}}).Alerts {
		if x.Key == key {
			require.Nil(t, x.Ack, "an ack lasts one episode")
		}
	}
}

func getAlertsWith(t *testing.T, ts *httptest.Server, h map[string]string, q url.Values) alertsAnswer {
	t.Helper()
	code, body := do12(t, ts, req12{method: "GET", path: "/api/v1/alerts?" + q.Encode(), header: h})
	require.Equal(t, 200, code, body)
	var a alertsAnswer
	require.NoError(t, json.Unmarshal([]byte(body), &a))
	return a
}

// Without tokens (loopback only) the ack is by "localhost".
func TestAckWithoutTokens(t *testing.T) {
	r := newAlertRig(t)
	fillAlerts(r)
	r.outbox()
	announced := 0
	ts := httptest.NewServer(New(Options{Store: r.store, Announced: func() { announced++ }}).Handler())
	t.Cleanup(ts.Close)
	key := keyOf(t, r, ts, nil, "lc", "card_low_flow", 1)
	code, body := postAck(t, ts, map[string]string{"Host": "simwatch.example"}, ackBody(key, "on it"))
	require.Equal(t, 421, code, body)
	code, body = postAck(t, ts, nil, ackBody(key, "on it"))
	require.Equal(t, 200, code, body)
	require.Equal(t, 1, announced, "the relay is kicked")
	evs := r.outbox()
	require.Len(t, evs, 1)
	require.Equal(t, "acknowledged by localhost: on it", evs[0].Summary)
	require.Equal(t, "warning", evs[0].Severity, "from the firing event without a rule set")
}
