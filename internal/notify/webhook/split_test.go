package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/notify"
)

// burst is n firing events of one rule, seq 1 each, in order.
func burst(n int) []event.Event {
	out := make([]event.Event, n)
	for i := range out {
		e := sampleEvents()[0]
		e.ID = fmt.Sprintf("ev%04d", i)
		e.EntityID = fmt.Sprintf("49%011d", i)
		e.Seq = uint64(i%3 + 1)
		out[i] = e
	}
	return out
}

type received struct {
	body   []byte
	header http.Header
}

// limited is a receiver that answers 413 to bodies over limit bytes, or
// fails with status while failing > 0.
type limited struct {
	mu      sync.Mutex
	limit   int
	got     []received // accepted
	refused int
	failing int
	status  int
}

func (l *limited) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(body) > l.limit {
		l.refused++
		http.Error(w, "too large", http.StatusRequestEntityTooLarge)
		return
	}
	if l.failing > 0 {
		l.failing--
		http.Error(w, "down", l.status)
		return
	}
	l.got = append(l.got, received{body, r.Header.Clone()})
}

func TestGroupKeyFromContext(t *testing.T) {
	var bodies [][]byte
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies = append(bodies, b)
	}))
	defer ts.Close()
	g := notify.Group{Key: `provider=hw,rule=card_low_flow,labels.team=fleet`, Labels: map[string]string{"rule": "card_low_flow", "provider": "hw", "labels.team": "fleet"}, Receiver: "crm"}
	ctx := notify.WithGroup(context.Background(), g)

	_, err := New(Options{Name: "crm", URL: ts.URL}).Notify(ctx, burst(2)...)
	require.NoError(t, err)
	var p Payload
	require.NoError(t, json.Unmarshal(bodies[0], &p))
	require.Equal(t, g.Key, p.GroupKey)
	require.Zero(t, p.Part, "not split")
	require.NotContains(t, string(bodies[0]), `"part"`)

	_, err = New(Options{Name: "crm", URL: ts.URL, Format: FormatAlertmanager}).Notify(ctx, burst(2)...)
	require.NoError(t, err)
	var m amMessageDecoded
	require.NoError(t, json.Unmarshal(bodies[1], &m))
	require.Equal(t, `{}:{alertname="card_low_flow", provider="hw", team="fleet"}`, m.GroupKey, "Alertmanager's own form")
	require.Equal(t, map[string]string{"alertname": "card_low_flow", "provider": "hw", "team": "fleet"}, map[string]string(m.GroupLabels))
	require.NotContains(t, m.CommonLabels, "entity_id", "differs between the alerts")
	require.Equal(t, "card_low_flow", m.CommonLabels["alertname"])

	// Without a group: the rule.
	_, err = New(Options{Name: "crm", URL: ts.URL}).Notify(context.Background(), burst(1)...)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(bodies[2], &p))
	require.Equal(t, "rule=card_low_flow", p.GroupKey)
}

func TestSeqOnTheWireInternalFieldsNot(t *testing.T) {
	var bodies [][]byte
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies = append(bodies, b)
	}))
	defer ts.Close()
	events := burst(3)
	for i := range events {
		events[i].Silenced, events[i].Inhibited, events[i].Notify = "sil", "provider_unhealthy hw", []string{"crm"}
	}
	_, err := New(Options{Name: "crm", URL: ts.URL}).Notify(context.Background(), events...)
	require.NoError(t, err)
	_, err = New(Options{Name: "crm", URL: ts.URL, Format: FormatAlertmanager}).Notify(context.Background(), events...)
	require.NoError(t, err)
	for _, b := range bodies {
		for _, bad := range []string{"silenced", "inhibited", "notify", `"sil"`, "provider_unhealthy"} {
			require.NotContains(t, string(b), bad)
		}
	}
	var p Payload
	require.NoError(t, json.Unmarshal(bodies[0], &p))
	require.Len(t, p.Events, 3)
	for i, e := range p.Events {
		require.Equal(t, events[i].ID, e.ID, "order kept")
		require.Equal(t, events[i].Seq, e.Seq)
	}
	var m amMessageDecoded
	require.NoError(t, json.Unmarshal(bodies[1], &m))
	require.Equal(t, "1", m.Alerts[0].Annotations["seq"])
	require.Equal(t, "3", m.Alerts[2].Annotations["seq"])
}

// A group of any size is one post; only a 413 splits it, in halves, each
// part numbered, signed and keyed on its own, covering every event once
// and in order.
func TestSplitOn413(t *testing.T) {
	for _, format := range []string{FormatSimwatch, FormatAlertmanager} {
		t.Run(format, func(t *testing.T) {
			events := burst(16)
			one, err := json.Marshal(Payload{Events: wireEvents(events[:1])})
			require.NoError(t, err)
			// room for about 5 events: the whole (16) and the halves (8) are
			// refused, the quarters (4) go.
			l := &limited{limit: 5 * len(one)}
			ts := httptest.NewServer(l)
			defer ts.Close()
			n := New(Options{Name: "crm", URL: ts.URL, Secret: "s3cret", Format: format, Now: func() time.Time { return now }})

			retry, err := n.Notify(context.Background(), events...)
			require.NoError(t, err)
			require.False(t, retry)
			require.Equal(t, 3, l.refused, "the whole and its two halves")
			require.Len(t, l.got, 4)
			var ids []string
			for i, r := range l.got {
				require.Equal(t, fmt.Sprintf("%d/4", i+1), r.header.Get(HeaderPart))
				ts := r.header.Get(HeaderTimestamp)
				require.True(t, Verify("s3cret", ts, r.header.Get(HeaderSignature), r.body, now, time.Minute), "each part signed")
				var partIDs []string
				if format == FormatSimwatch {
					var p Payload
					require.NoError(t, json.Unmarshal(r.body, &p))
					require.Equal(t, i+1, p.Part)
					require.Equal(t, 4, p.Parts)
					for _, e := range p.Events {
						partIDs = append(partIDs, e.ID)
					}
				} else {
					var m amMessageDecoded
					dec := json.NewDecoder(strings.NewReader(string(r.body)))
					dec.DisallowUnknownFields()
					require.NoError(t, dec.Decode(&m))
					for _, a := range m.Alerts {
						partIDs = append(partIDs, a.Annotations["event_id"])
					}
				}
				var partEvents []event.Event
				for _, id := range partIDs {
					partEvents = append(partEvents, event.Event{ID: id})
				}
				require.Equal(t, IdempotencyKey(partEvents), r.header.Get(HeaderIdempotency))
				ids = append(ids, partIDs...)
			}
			var want []string
			for _, e := range events {
				want = append(want, e.ID)
			}
			require.Equal(t, want, ids, "every event once, in order")
		})
	}
}

// Only the half that is still too large is split again.
func TestSplitUnevenDepth(t *testing.T) {
	events := burst(4)
	events[3].Summary = strings.Repeat("x", 2000)
	big, _ := json.Marshal(Payload{Events: wireEvents(events[3:])})
	l := &limited{limit: len(big) + 200} // two small events fit; the big one only alone
	ts := httptest.NewServer(l)
	defer ts.Close()
	_, err := New(Options{Name: "crm", URL: ts.URL}).Notify(context.Background(), events...)
	require.NoError(t, err)
	var parts []string
	for _, r := range l.got {
		parts = append(parts, r.header.Get(HeaderPart))
	}
	require.Equal(t, []string{"1/2", "3/4", "4/4"}, parts)
}

func TestOversizedEventIsPermanentOthersStillGo(t *testing.T) {
	events := burst(4)
	events[1].Summary = strings.Repeat("x", 5000)
	one, _ := json.Marshal(Payload{Events: wireEvents(events[:1])})
	l := &limited{limit: 2 * len(one)}
	ts := httptest.NewServer(l)
	defer ts.Close()
	retry, err := New(Options{Name: "crm", URL: ts.URL}).Notify(context.Background(), events...)
	require.Error(t, err)
	require.False(t, retry, "no retry heals an event too large alone")
	var tl *TooLargeError
	require.ErrorAs(t, err, &tl)
	require.Equal(t, events[1].ID, tl.EventID)
	var pr *notify.PartlyRefusedError
	require.ErrorAs(t, err, &pr, "the dispatcher learns that only this event failed")
	require.Equal(t, []string{events[1].ID}, pr.IDs)
	require.Greater(t, tl.Bytes, 5000)
	require.Contains(t, err.Error(), "413")
	require.Contains(t, err.Error(), events[1].ID)
	var sent []string
	for _, r := range l.got {
		var p Payload
		require.NoError(t, json.Unmarshal(r.body, &p))
		for _, e := range p.Events {
			sent = append(sent, e.ID)
		}
	}
	require.Equal(t, []string{events[0].ID, events[2].ID, events[3].ID}, sent, "the others are delivered")
}

// A part that fails is retried with the whole call; parts already accepted
// are not sent again.
func TestSplitPartFailureThenRetry(t *testing.T) {
	events := burst(8)
	one, _ := json.Marshal(Payload{Events: wireEvents(events[:1])})
	l := &limited{limit: 5 * len(one)}
	ts := httptest.NewServer(l)
	defer ts.Close()
	n := New(Options{Name: "crm", URL: ts.URL})
	l.limit, l.failing, l.status = 5*len(one), 0, 0
	// the first half goes, then the receiver fails
	first := true
	l2 := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		if len(l.got) == 1 && first {
			first = false
			l.failing, l.status = 1, http.StatusServiceUnavailable
		}
		l.mu.Unlock()
		l.ServeHTTP(w, r)
	})
	ts.Config.Handler = l2
	retry, err := n.Notify(context.Background(), events...)
	require.Error(t, err)
	require.True(t, retry)
	require.Contains(t, err.Error(), "part 2 of 2")
	require.Contains(t, err.Error(), "413")
	require.Len(t, l.got, 1)

	retry, err = n.Notify(context.Background(), events...)
	require.NoError(t, err)
	require.False(t, retry)
	require.Len(t, l.got, 2, "the accepted half is not resent")
	require.Equal(t, "1/2", l.got[0].header.Get(HeaderPart))
	require.Equal(t, "2/2", l.got[1].header.Get(HeaderPart))
}

// 599 events are one post when the receiver takes them.
func TestBurstIsOnePost(t *testing.T) {
	l := &limited{limit: 1 << 30}
	ts := httptest.NewServer(l)
	defer ts.Close()
	_, err := New(Options{Name: "crm", URL: ts.URL}).Notify(context.Background(), burst(599)...)
	require.NoError(t, err)
	require.Len(t, l.got, 1)
	require.Empty(t, l.got[0].header.Get(HeaderPart))
	var p Payload
	require.NoError(t, json.Unmarshal(l.got[0].body, &p))
	require.Len(t, p.Events, 599)
}
