package console

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/api"
	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/poll"
	"github.com/simwatch/simwatch/internal/provider/gsl"
	"github.com/simwatch/simwatch/internal/rules"
	"github.com/simwatch/simwatch/internal/sim"
	"github.com/simwatch/simwatch/internal/store"
)

// caRules fire on the simulated fleet at once: cards near their allowance
// (warning), pools in overdraft (critical), and a slow rule that stays
// pending for an hour on every test card.
const caRules = `rules:
  - {name: card_low_flow, on: card, when: 'flow_left < 10', severity: warning}
  - {name: pool_overdraft, on: pool, when: 'flow_left < 0', severity: critical}
  - {name: card_testing, on: card, when: 'status == "test"', for: 1h, severity: info}
`

// caRig is a console over a store filled by a real poll cycle (and its
// daily history update) against the simulator.
type caRig struct {
	t     testing.TB
	sim   *sim.Server
	store *store.Store
	con   *Server
	poll  *poll.Poller
	now   time.Time
}

type caOptions struct {
	cards, pools int
	tokens       []api.Token
	// overdraft shrinks the first pool's allowance so it is in overdraft.
	overdraft bool
}

func newCARig(t testing.TB, o caOptions) *caRig {
	t.Helper()
	s := sim.NewServer(sim.Options{Fleet: sim.NewFleet(sim.FleetOptions{Cards: o.cards, Pools: o.pools, Seed: 9})})
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	if o.overdraft {
		total := 1.0
		require.NoError(t, s.Fleet().PatchPool(s.Fleet().PoolIDs()[0], sim.PoolPatch{FlowTotal: &total}))
	}
	c, err := gsl.New(gsl.Options{Name: "hw", Endpoint: ts.URL, Token: "t", PageSize: 500, Rate: 1e6, Concurrency: 4, Retries: -1,
		Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	require.NoError(t, err)
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	set, err := rules.Parse("r.yaml", []byte(caRules), rules.LoadOptions{})
	require.NoError(t, err)
	r := &caRig{t: t, sim: s, store: st, now: sim.DefaultStart.Add(4 * time.Hour)}
	p := poll.New(poll.Options{Provider: "hw", Source: c, Store: st, Rules: func() *rules.Set { return set },
		Now: func() time.Time { return r.now },
		Daily: func(ctx context.Context, month, date string, ids []string) (map[string][]fleet.DayUsage, error) {
			return c.DailyFlow(ctx, gsl.DailyQuery{Month: month, Date: date}, ids)
		}})
	r.poll = p
	ctx := context.Background()
	_, err = p.Cycle(ctx)
	require.NoError(t, err)
	_, err = p.UpdateHistory(ctx)
	require.NoError(t, err)
	a := api.New(api.Options{Store: st, Tokens: o.tokens})
	r.con = New(Options{Store: st, Access: a, Providers: []Provider{{Name: "hw", Type: "gsl", Interval: 10 * time.Minute}},
		Now: func() time.Time { return r.now }})
	return r
}

// get fetches a console page as a browser on this host would, with a
// bearer token when one is given.
func (r *caRig) get(path, token string) (int, string) {
	r.t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Host = "127.0.0.1:8080"
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	r.con.Handler().ServeHTTP(w, req)
	body, _ := io.ReadAll(w.Result().Body)
	return w.Code, string(body)
}

// text is a page's visible text, roughly: tags dropped, spaces squeezed.
func caText(html string) string {
	html = regexp.MustCompile(`(?s)<[^>]*>`).ReplaceAllString(html, " ")
	return strings.Join(strings.Fields(html), " ")
}

func TestOverviewShowsProvidersStatusesPoolsAndFiring(t *testing.T) {
	r := newCARig(t, caOptions{cards: 60, pools: 3, overdraft: true})
	code, body := r.get("/", "")
	require.Equal(t, http.StatusOK, code, body)
	txt := caText(body)

	// The provider, healthy, with its last cycle and card count.
	require.Contains(t, txt, "hw gsl ok")
	require.Contains(t, body, `id="provider-hw"`)

	// Cards by status: the simulator's fleet of 60 has actives and tests
	// (its generator makes ~87% in use, 5% test, 5% inactive, 3% stopped).
	// (Counted here from every card decoded, as the card page shows it.)
	counts := map[string]int{}
	require.NoError(t, r.store.View(func(tx *store.Tx) error {
		pt, err := tx.Provider("hw")
		if err != nil {
			return err
		}
		return pt.ForEachCard(func(_ string, enc []byte) error {
			c, err := store.DecodeCard(enc)
			st := c.Status
			if st == "" {
				st = store.StatusUnknown
			}
			counts[st]++
			return err
		})
	}))
	require.Positive(t, counts[fleet.StatusSuspended]+counts[fleet.StatusInactive]+counts[fleet.StatusTest], "more than one status to count")
	require.Greater(t, counts[fleet.StatusActive], 30)
	total := 0
	for _, n := range counts {
		total += n
	}
	require.Equal(t, 60, total)
	row := regexp.MustCompile(`hw((?: \d+){6}) 60`).FindStringSubmatch(txt)
	require.NotNil(t, row, "a status row for hw ending in the total 60: %s", txt)
	var want strings.Builder
	for _, st := range ovStatuses {
		want.WriteString(" " + strconv.Itoa(counts[st]))
	}
	require.Equal(t, want.String(), row[1], "columns active, suspended, inactive, test, terminated, unknown")

	// The overdrawn pool is flagged, links to its page, and comes first.
	require.Contains(t, body, `<tr class="overdraft">`)
	require.Regexp(t, `overdraft -\d`, txt)
	require.Contains(t, body, `href="/pools/hw/4940000001"`)
	require.Less(t, strings.Index(body, "/pools/hw/4940000001"), strings.Index(body, "/pools/hw/4940000002"))

	// The firing alerts by severity, each a link to the alerts page.
	require.Regexp(t, `<a class="sev-count sev-critical" href="/alerts\?state=firing&amp;severity=critical"><span class="n">1</span> critical</a>`, body)
	require.Regexp(t, `<span class="n">[1-9]\d*</span> warning`, body)
}

func TestOverviewForecastNeedsHistory(t *testing.T) {
	r := newCARig(t, caOptions{cards: 30, pools: 2})
	_, body := r.get("/", "")
	// The simulator publishes daily usage for the days since the month
	// began, so each pool has a forecast; no pool says "no history yet".
	require.NotContains(t, body, "no history yet")
	require.Regexp(t, `\d+\.\d (MB|GB) \(\d+%\)`, caText(body))

	// With no history at all, the forecast says so rather than guessing.
	h := fleet.History{}
	f, ok := ovForecast(h, 10, r.now)
	require.False(t, ok)
	require.Zero(t, f)

	// 7 complete days of 2 MB and half a month left: used + 2 MB × days left.
	now := time.Date(2026, 11, 15, 16, 0, 0, 0, time.UTC) // 16 November 00:00 in China
	today := fleet.DayOf(now)
	for d := today - 7; d < today; d++ {
		h.Set(d, 2)
	}
	h.Set(today, 50) // today is not complete: not averaged
	f, ok = ovForecast(h, 100, now)
	require.True(t, ok)
	require.InDelta(t, 100+2*15, f, 1e-9)
}

func TestOverviewAndAlertsShowAnOutage(t *testing.T) {
	r := newCARig(t, caOptions{cards: 20, pools: 1})
	r.sim.AddFault(sim.Fault{Kind: sim.FaultError, Path: "sim-cards", Page: 1})
	for range 3 {
		r.now = r.now.Add(10 * time.Minute)
		_, err := r.poll.Cycle(context.Background())
		require.Error(t, err)
	}
	_, body := r.get("/", "")
	txt := caText(body)
	require.Contains(t, txt, "hw gsl unhealthy (3 failed in a row)")
	require.Contains(t, txt, "HTTP 500")
	require.Regexp(t, `<span class="n">1</span> critical`, body, "provider_unhealthy is a critical alert firing")
	_, body = r.get("/alerts", "")
	require.Contains(t, caText(body), "Provider hw is unhealthy: its alerts are as of its last good cycle.")
}

func TestOverviewProviderHealth(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	iv := 10 * time.Minute
	require.Equal(t, "never", ovHealth(store.Meta{}, iv, now))
	require.Equal(t, "ok", ovHealth(store.Meta{LastSuccess: now.Add(-5 * time.Minute), Committed: now.Add(-4 * time.Minute)}, iv, now))
	require.Equal(t, "stale", ovHealth(store.Meta{LastSuccess: now.Add(-time.Hour), Committed: now.Add(-31 * time.Minute)}, iv, now))
	require.Equal(t, "failing", ovHealth(store.Meta{Committed: now.Add(-time.Minute), Failures: 1}, iv, now))
	require.Equal(t, "unhealthy", ovHealth(store.Meta{Committed: now.Add(-time.Minute), Failures: 3, Unhealthy: true}, iv, now))
}
