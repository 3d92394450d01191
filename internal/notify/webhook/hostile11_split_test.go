package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/notify"
)

// Hostile (issue 11, 413 split): a receiver answers 413 to the whole group,
// accepts the first half, and refuses the second half for good (HTTP 400).
// The events of the first half were accepted: the failure must name only
// the second half's events (a notify.PartlyRefusedError), or the dispatcher
// dead-letters events the receiver already has (wrong history, a replay
// posts them twice, `run --once` fails for them).
func TestHostile11SplitPermanentErrorOnSecondHalfSparesFirst(t *testing.T) {
	events := burst(4)
	var mu sync.Mutex
	accepted := map[string]bool{}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var p Payload
		require.NoError(t, json.Unmarshal(body, &p))
		switch {
		case len(p.Events) == 4:
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
		case p.Events[0].ID == events[0].ID:
			mu.Lock()
			for _, e := range p.Events {
				accepted[e.ID] = true
			}
			mu.Unlock()
		default:
			http.Error(w, "bad part", http.StatusBadRequest)
		}
	}))
	defer hook.Close()
	n := New(Options{Name: "crm", URL: hook.URL, Client: &http.Client{}})
	retry, err := n.Notify(context.Background(), events...)
	require.Error(t, err)
	require.False(t, retry)
	require.Len(t, accepted, 2, "the first half was accepted")
	var partly *notify.PartlyRefusedError
	require.True(t, errors.As(err, &partly), "the receiver accepted %d of the 4 events, yet the call fails for all of them: %v", len(accepted), err)
	for _, id := range partly.IDs {
		require.False(t, accepted[id], "accepted event %s reported as refused", id)
	}
}
