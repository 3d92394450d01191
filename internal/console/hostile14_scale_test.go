package console

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/api"
	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/store"
)

// A history search that matches nothing reads the whole history; one whose
// value is not plain JSON (a rule with '<') cannot use the byte search and
// decodes every event. Measured (t.Logf), not asserted: the page must
// still answer, with nothing.
func TestHostile14EventSearchFullScan(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	const total, batch = 20_000, 5_000
	t0 := time.Now().Add(-20 * 24 * time.Hour)
	start := time.Now()
	for b := 0; b < total/batch; b++ {
		evs := make([]event.Event, batch)
		for i := range evs {
			n := b*batch + i
			at := t0.Add(time.Duration(n) * 10 * time.Second)
			evs[i] = event.Event{ID: fmt.Sprint("e", n), Kind: event.KindTransition, Rule: "card_status", Severity: "info",
				Summary: "Card changed status from active to suspended", Provider: "hw", Entity: "card", EntityID: fmt.Sprint(n % 20000),
				ICCID: fmt.Sprintf("8986%016d", n%20000), StartsAt: at, ObservedAt: at}
		}
		require.NoError(t, st.Update(func(tx *store.Tx) error { return tx.AppendOutbox(evs) }))
		entries, err := st.Outbox(batch)
		require.NoError(t, err)
		seqs := make([]uint64, len(entries))
		for i, e := range entries {
			seqs[i] = e.Seq
		}
		require.NoError(t, st.DeleteOutbox(seqs...))
	}
	t.Logf("history of %d events built in %v", total, time.Since(start))
	con := New(Options{Store: st, Access: api.New(api.Options{Store: st})})
	for _, p := range []string{"/events", "/events?rule=nomatch", "/events?rule=%3Cnomatch", "/events?iccid=%26x&rule=%3Cy",
		"/events?entity_id=19999&provider=hw", "/events?entity_id=%3C1", "/events?until=2000-01-01", "/events?kind=firing"} {
		req := httptest.NewRequest(http.MethodGet, p, nil)
		req.Host = "127.0.0.1"
		w := httptest.NewRecorder()
		start := time.Now()
		con.Handler().ServeHTTP(w, req)
		t.Logf("%-45s %3d in %v (%d bytes)", p, w.Code, time.Since(start), w.Body.Len())
		require.Equal(t, http.StatusOK, w.Code, p)
	}
}
