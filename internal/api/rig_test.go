package api

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/poll"
	"github.com/simwatch/simwatch/internal/provider/gsl"
	"github.com/simwatch/simwatch/internal/rules"
	"github.com/simwatch/simwatch/internal/sim"
	"github.com/simwatch/simwatch/internal/store"
)

// alertRules: every low card fires card_low_flow (warning, team radio) at
// once; a nearly empty one is also pending card_empty (critical) for an
// hour; a drained one fires card_drained once per billing cycle.
const alertRules = `rules:
  - {name: card_low_flow, on: card, when: 'flow_left < 10', severity: warning, labels: {team: radio}}
  - {name: card_empty, on: card, when: 'flow_left < 3', for: 1h, severity: critical, labels: {team: core}}
  - {name: card_drained, on: card, when: 'flow_left < 0.5', severity: info, rearm: cycle}
`

// alertRig is a store filled by real poll cycles of two providers (hw, lc)
// against the simulator.
type alertRig struct {
	t      *testing.T
	store  *store.Store
	set    *rules.Set
	now    time.Time
	sims   map[string]*sim.Server
	polls  map[string]*poll.Poller
	iccids map[string][]string
}

func newAlertRig(t *testing.T) *alertRig {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	set, err := rules.Parse("r.yaml", []byte(alertRules), rules.LoadOptions{})
	require.NoError(t, err)
	r := &alertRig{t: t, store: st, set: set, now: time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC),
		sims: map[string]*sim.Server{}, polls: map[string]*poll.Poller{}, iccids: map[string][]string{}}
	for i, name := range []string{"hw", "lc"} {
		s := sim.NewServer(sim.Options{Fleet: sim.NewFleet(sim.FleetOptions{Cards: 30, Pools: 1, Seed: uint64(7 + i), Calm: true})})
		ts := httptest.NewServer(s.Handler())
		t.Cleanup(ts.Close)
		c, err := gsl.New(gsl.Options{Name: name, Endpoint: ts.URL, Token: "t", PageSize: 50, Rate: 1000, Retries: -1})
		require.NoError(t, err)
		r.sims[name], r.iccids[name] = s, s.Fleet().CardICCIDs()
		r.polls[name] = poll.New(poll.Options{Provider: name, Source: c, Store: st, Rules: func() *rules.Set { return r.set },
			UnhealthyAfter: 2, Now: func() time.Time { return r.now }})
	}
	return r
}

// left sets card i of a provider to have this many MB of 100 left.
func (r *alertRig) left(provider string, i int, left float64) {
	used, total := 100-left, 100.0
	require.NoError(r.t, r.sims[provider].Fleet().PatchCard(r.iccids[provider][i], sim.CardPatch{FlowUsed: &used, FlowTotal: &total}))
}

func (r *alertRig) tag(provider string, i int, tags string) {
	require.NoError(r.t, r.sims[provider].Fleet().PatchCard(r.iccids[provider][i], sim.CardPatch{Tags: &tags}))
}

// cycle polls every provider once, a minute later than the last time.
func (r *alertRig) cycle() {
	r.now = r.now.Add(time.Minute)
	for _, name := range []string{"hw", "lc"} {
		_, err := r.polls[name].Cycle(context.Background())
		require.NoError(r.t, err)
	}
}

// outbox returns and clears the events committed so far.
func (r *alertRig) outbox() []event.Event {
	entries, err := r.store.Outbox(10000)
	require.NoError(r.t, err)
	var out []event.Event
	var seqs []uint64
	for _, e := range entries {
		require.NoError(r.t, e.Err)
		out = append(out, e.Event)
		seqs = append(seqs, e.Seq)
	}
	require.NoError(r.t, r.store.DeleteOutbox(seqs...))
	return out
}

// alertsAnswer is the answer of /api/v1/alerts.
type alertsAnswer struct {
	Alerts []alertItem `json:"alerts"`
	Next   string      `json:"next"`
}

type alertItem struct {
	Provider string            `json:"provider"`
	Key      string            `json:"key"`
	Rule     string            `json:"rule"`
	EntityID string            `json:"entity_id"`
	ICCID    string            `json:"iccid"`
	State    string            `json:"state"`
	Severity string            `json:"severity"`
	Labels   map[string]string `json:"labels"`
	Ack      *AckView          `json:"ack"`
}

func (a alertsAnswer) keys() []string {
	var out []string
	for _, x := range a.Alerts {
		out = append(out, x.Key)
	}
	return out
}

// getAlerts asks /api/v1/alerts with query q (no tokens) and wants 200.
func getAlerts(t *testing.T, ts *httptest.Server, q url.Values) alertsAnswer {
	t.Helper()
	code, body := do12(t, ts, req12{method: "GET", path: "/api/v1/alerts?" + q.Encode()})
	require.Equal(t, 200, code, body)
	var a alertsAnswer
	require.NoError(t, json.Unmarshal([]byte(body), &a))
	return a
}
