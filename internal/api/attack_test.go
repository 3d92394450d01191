package api

// Promise 5 end to end: GET /api/v1/cards?q= evaluates an expression as the
// daemon's rules do, over the stored snapshot, history (with the last day
// the provider published) and first IMEIs. At commit 2ad5be5 the handler
// passed neither (usage_last counted unpublished days as zero; first_imei()
// was always ""); the handler was being fixed concurrently when this test
// was written.

import (
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/rules"
	"github.com/simwatch/simwatch/internal/store"
)

func TestAttackQueryAPIEvaluatesAsTheDaemon(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	now := time.Now().UTC()
	today := fleet.DayOf(now)
	through := today - 3 // GSL has not published the last two days yet

	cards := []fleet.Card{
		{Provider: "hw", ID: "1", ICCID: "89861", Status: "active", StatusCode: 20, FlowLeft: 50, FlowUsed: 50, FlowTotal: 100, IMEI: "222"},
		{Provider: "hw", ID: "2", ICCID: "89862", Status: "active", StatusCode: 20, FlowLeft: 50, FlowUsed: 50, FlowTotal: 100, IMEI: "333"},
	}
	hist := map[string]fleet.History{}
	for _, c := range cards {
		h := fleet.History{Source: fleet.HistoryDaily}
		for d := today - 10; d <= through; d++ {
			h.Set(d, 40)
		}
		hist[c.ID] = h
	}
	first := map[string]string{"1": "111", "2": "333"}
	require.NoError(t, st.Update(func(tx *store.Tx) error {
		pt, err := tx.Provider("hw")
		if err != nil {
			return err
		}
		for _, c := range cards {
			if err := pt.PutCard(c.ID, fleet.EncodeCard(nil, &c)); err != nil {
				return err
			}
			if err := pt.PutHistory(store.CardHistoryKey(c.ID), hist[c.ID], today); err != nil {
				return err
			}
			if err := pt.NoteIMEI(c.ID, first[c.ID]); err != nil {
				return err
			}
		}
		meta, err := pt.Meta()
		if err != nil {
			return err
		}
		meta.HistoryThrough = through
		return pt.PutMeta(meta)
	}))
	ts := httptest.NewServer(New(Options{Store: st}).Handler())
	t.Cleanup(ts.Close)

	for _, expr := range []string{
		`usage_last("24h") > 30`,
		`usage_last("72h") >= 120`,
		`imei != "" && first_imei() != "" && imei != first_imei()`,
		`daily_avg(7) > 30`,
	} {
		t.Run(expr, func(t *testing.T) {
			set, err := rules.Parse("r.yaml", []byte("rules:\n  - {name: r, on: card, when: '"+expr+"'}\n"), rules.LoadOptions{})
			require.NoError(t, err)
			in := rules.Input{Provider: "hw", Now: now, HistoryThrough: through,
				History:   func(_, id string) fleet.History { return hist[id] },
				FirstIMEI: func(id string) string { return first[id] }}
			var changed []rules.Change[fleet.Card]
			for i := range cards {
				changed = append(changed, rules.Change[fleet.Card]{Cur: &cards[i]})
			}
			in.Cards.Changed = slices.Values(changed)
			var want []string
			for _, e := range set.Evaluate(in).Events {
				want = append(want, e.EntityID)
			}
			resp, err := ts.Client().Get(ts.URL + "/api/v1/cards?q=" + url.QueryEscape(expr))
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, 200, resp.StatusCode)
			var res QueryResult
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&res))
			var got []string
			for _, c := range res.Cards {
				got = append(got, c.ID)
			}
			require.ElementsMatch(t, want, got, "the daemon's rule matched %v, the query %v", want, got)
			require.NotEmpty(t, want, "the case must match something")
		})
	}
}
