package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	amtemplate "github.com/prometheus/alertmanager/template"
	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/event"
)

// amMessageDecoded is Alertmanager's own notify/webhook.Message, built from
// its template.Data so that the payload is checked against Alertmanager's
// types rather than ours.
type amMessageDecoded struct {
	*amtemplate.Data
	Version         string `json:"version"`
	GroupKey        string `json:"groupKey"`
	TruncatedAlerts uint64 `json:"truncatedAlerts"`
}

func TestAlertmanagerFormat(t *testing.T) {
	var body []byte
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { body, _ = io.ReadAll(r.Body) }))
	defer ts.Close()
	firing := sampleEvents()[0]
	resolved := firing
	resolved.ID, resolved.Kind, resolved.EntityID, resolved.ICCID = "1a2b3c4d5e6f70819293a4b5c6d7e8f9", event.KindResolved, "4900000000003", "89860000000000000003"
	resolved.Summary = "Card 89860000000000000003 has 50 MB left"
	resolved.EndsAt, resolved.Seq = now, 4
	n := New(Options{Name: "am-receiver", URL: ts.URL, Format: FormatAlertmanager, ExternalURL: "https://simwatch.example", Now: func() time.Time { return now }})
	_, err := n.Notify(context.Background(), firing, resolved)
	require.NoError(t, err)

	golden := "testdata/alertmanager_payload.golden.json"
	if *update {
		var indented bytes.Buffer
		require.NoError(t, json.Indent(&indented, body, "", "    "))
		require.NoError(t, os.WriteFile(golden, append(indented.Bytes(), '\n'), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	require.JSONEq(t, string(want), string(body))

	var m amMessageDecoded
	dec := json.NewDecoder(bytesReader(body))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&m), "every field is one Alertmanager knows")
	require.Equal(t, "4", m.Version)
	require.Equal(t, `{}:{alertname="card_low_flow"}`, m.GroupKey)
	require.Equal(t, "am-receiver", m.Receiver)
	require.Equal(t, "firing", m.Status)
	require.Len(t, m.Alerts, 2)
	require.Len(t, m.Alerts.Firing(), 1)
	require.Len(t, m.Alerts.Resolved(), 1)
	require.Equal(t, "card_low_flow", m.GroupLabels["alertname"])
	require.Equal(t, "fleet", m.CommonLabels["team"])
	require.Equal(t, "card_low_flow", m.CommonLabels["alertname"])
	require.NotContains(t, m.CommonLabels, "iccid", "not common to both")
	a := m.Alerts.Firing()[0]
	require.Equal(t, "89860000000000000002", a.Labels["iccid"])
	require.Equal(t, "warning", a.Labels["severity"])
	require.Equal(t, firing.Summary, a.Annotations["summary"])
	require.Equal(t, firing.ID, a.Annotations["event_id"])
	require.Equal(t, "3", a.Annotations["seq"], "seq is an annotation: labels identify the alert")
	require.NotContains(t, a.Labels, "seq")
	require.Equal(t, firing.StartsAt, a.StartsAt)
	require.True(t, a.EndsAt.IsZero())
	require.Len(t, a.Fingerprint, 16)
	r := m.Alerts.Resolved()[0]
	require.Equal(t, now, r.EndsAt)
	require.NotEqual(t, a.Fingerprint, r.Fingerprint)
	require.Equal(t, fingerprint(a.Labels), a.Fingerprint, "fingerprints are stable")
}
