package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/notify"
)

var update = flag.Bool("update", false, "rewrite golden files")

var now = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func sampleEvents() []event.Event {
	return []event.Event{{
		ID: "0f4e6b1c2d3a4b5c6d7e8f9012345678", Kind: event.KindFiring, Rule: "card_low_flow", Severity: "warning",
		Summary: "Card 89860000000000000002 has 5 MB left", Labels: map[string]string{"team": "fleet"},
		Provider: "hw", Entity: "card", EntityID: "4900000000002", ICCID: "89860000000000000002",
		Values:   json.RawMessage(`{"iccid":"89860000000000000002","flow_left":5}`),
		StartsAt: now.Add(-time.Hour), ObservedAt: now, Notify: []string{"crm"}, Seq: 3,
		Silenced: "silence-1", Inhibited: "provider_unhealthy hw",
	}}
}

func TestPayloadGoldenAndSignature(t *testing.T) {
	var gotBody []byte
	var gotHeader http.Header
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotBody, _ = io.ReadAll(r.Body)
		gotHeader = r.Header
	}))
	defer ts.Close()
	n := New(Options{Name: "crm", URL: ts.URL, Secret: "s3cret", Now: func() time.Time { return now }})
	retry, err := n.Notify(context.Background(), sampleEvents()...)
	require.NoError(t, err)
	require.False(t, retry)

	golden := "testdata/simwatch_payload.golden.json"
	if *update {
		require.NoError(t, os.WriteFile(golden, gotBody, 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	require.JSONEq(t, string(want), string(gotBody))

	require.Equal(t, "0f4e6b1c2d3a4b5c6d7e8f9012345678", gotHeader.Get(HeaderIdempotency))
	require.Equal(t, "1795435200", gotHeader.Get(HeaderTimestamp))
	require.Equal(t, Sign("s3cret", "1795435200", gotBody), gotHeader.Get(HeaderSignature))
	require.True(t, Verify("s3cret", "1795435200", gotHeader.Get(HeaderSignature), gotBody, now, 5*time.Minute))
	require.False(t, Verify("s3cret", "1795435200", gotHeader.Get(HeaderSignature), gotBody, now.Add(time.Hour), 5*time.Minute), "replay rejected")
	require.False(t, Verify("other", "1795435200", gotHeader.Get(HeaderSignature), gotBody, now, 5*time.Minute))
}

func TestSignKnownVector(t *testing.T) {
	// python3 -c 'import hmac,hashlib;print(hmac.new(b"s3cret",b"1795435200.{}",hashlib.sha256).hexdigest())'
	require.Equal(t, "sha256=5f3a4d04e655657365e92c45ddea39e149fe5a121d6400a6beb13674409da776", Sign("s3cret", "1795435200", []byte("{}")))
}

func TestClassification(t *testing.T) {
	tests := []struct {
		status     int
		retryAfter string
		retry      bool
		wait       time.Duration
	}{
		{500, "", true, 0},
		{502, "", true, 0},
		{503, "7", true, 7 * time.Second},
		{408, "", true, 0},
		{429, "120", true, 2 * time.Minute},
		{400, "", false, 0},
		{401, "", false, 0},
		{404, "", false, 0},
		{410, "", false, 0},
	}
	for _, tt := range tests {
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tt.retryAfter != "" {
				w.Header().Set("Retry-After", tt.retryAfter)
			}
			http.Error(w, "answer", tt.status)
		}))
		n := New(Options{Name: "crm", URL: ts.URL})
		retry, err := n.Notify(context.Background(), sampleEvents()...)
		ts.Close()
		require.Error(t, err, tt.status)
		require.Equal(t, tt.retry, retry, tt.status)
		var we *Error
		require.ErrorAs(t, err, &we)
		require.Equal(t, tt.wait, we.RetryAfter(), tt.status)
	}
}

func TestNetworkErrorRetriedWithoutURL(t *testing.T) {
	ts := httptest.NewServer(http.NotFoundHandler())
	url := ts.URL + "/hook?token=very-secret-token"
	ts.Close()
	n := New(Options{Name: "crm", URL: url, Timeout: time.Second})
	retry, err := n.Notify(context.Background(), sampleEvents()...)
	require.Error(t, err)
	require.True(t, retry)
	require.NotContains(t, err.Error(), "very-secret-token")
}

func TestGroupKeyAndStatus(t *testing.T) {
	a, b := sampleEvents()[0], sampleEvents()[0]
	b.ID, b.Kind = "other", event.KindResolved
	require.Equal(t, "firing", status([]event.Event{a, b}))
	require.Equal(t, "resolved", status([]event.Event{b}))
	require.Equal(t, "rule=card_low_flow", groupKey(notify.Group{}, []event.Event{a, b}))
	k1, k2 := IdempotencyKey([]event.Event{a, b}), IdempotencyKey([]event.Event{b, a})
	require.Len(t, k1, 32)
	require.NotEqual(t, k1, k2)
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
