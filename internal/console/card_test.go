package console

import (
	"context"
	"encoding/json"
	"html"
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

// pageRules give the card and pool pages events to show: a device change
// and an overdraft.
const pageRules = `rules:
  - name: sim_swap
    on: card
    when: changed("imei") && prev.imei != ""
    severity: critical
    summary: 'Card {{ .iccid }} moved from IMEI {{ .prev.imei }} to {{ .imei }}'
  - name: pool_overdraft
    on: pool
    when: flow_left < 0
    severity: critical
`

// pageRig is a simulated GSL fleet polled by the real client into a real
// store (cycles and the daily history), behind the console and the API as
// the daemon mounts them.
type pageRig struct {
	t      *testing.T
	sim    *sim.Server
	store  *store.Store
	p      *poll.Poller
	now    time.Time
	api    *api.Server
	srv    *httptest.Server
	tokens []api.Token
}

func newPageRig(t *testing.T, tokens ...api.Token) *pageRig {
	t.Helper()
	s := sim.NewServer(sim.Options{Fleet: sim.NewFleet(sim.FleetOptions{Cards: 120, Pools: 3, Seed: 4})})
	simSrv := httptest.NewServer(s.Handler())
	t.Cleanup(simSrv.Close)
	c, err := gsl.New(gsl.Options{Name: "hw", Endpoint: simSrv.URL, Token: "t", PageSize: 100, Rate: 1000})
	require.NoError(t, err)
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	set, err := rules.Parse("r.yaml", []byte(pageRules), rules.LoadOptions{})
	require.NoError(t, err)
	r := &pageRig{t: t, sim: s, store: st, now: sim.DefaultStart.Add(4 * time.Hour), tokens: tokens}
	r.p = poll.New(poll.Options{Provider: "hw", Source: c, Store: st, Rules: func() *rules.Set { return set }, Now: func() time.Time { return r.now },
		Daily: func(ctx context.Context, month, date string, ids []string) (map[string][]fleet.DayUsage, error) {
			return c.DailyFlow(ctx, gsl.DailyQuery{Month: month, Date: date}, ids)
		}})
	r.api = api.New(api.Options{Store: st, Tokens: tokens})
	con := New(Options{Store: st, Access: r.api, Providers: []Provider{{Name: "hw", Type: "gsl", Interval: 10 * time.Minute}},
		Notifiers: []string{"slack"}, Now: func() time.Time { return r.now }})
	mux := http.NewServeMux()
	mux.Handle("/api/", r.api.Handler())
	mux.Handle("/", con.Handler())
	r.srv = httptest.NewServer(mux)
	t.Cleanup(r.srv.Close)
	r.cycle()
	return r
}

// cycle polls once and updates the daily history, as the daemon does.
func (r *pageRig) cycle() {
	r.t.Helper()
	ctx := context.Background()
	_, err := r.p.Cycle(ctx)
	require.NoError(r.t, err)
	_, err = r.p.UpdateHistory(ctx)
	require.NoError(r.t, err)
}

// later moves the clock on and polls again.
func (r *pageRig) later() {
	r.now = r.now.Add(10 * time.Minute)
	r.cycle()
}

// get fetches a console page as the token (none: the open, loopback
// console) and returns its status and body.
func (r *pageRig) get(path string, token string) (int, string) {
	r.t.Helper()
	req, err := http.NewRequest(http.MethodGet, r.srv.URL+path, nil)
	require.NoError(r.t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(r.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(r.t, err)
	return resp.StatusCode, string(b)
}

// page fetches a page that must render.
func (r *pageRig) page(path string) string {
	r.t.Helper()
	code, body := r.get(path, "")
	require.Equal(r.t, http.StatusOK, code, body)
	return body
}

// stored finds the stored cards that satisfy keep.
func (r *pageRig) stored(keep func(c *fleet.Card) bool) []fleet.Card {
	var out []fleet.Card
	require.NoError(r.t, r.store.View(func(tx *store.Tx) error {
		pt, err := tx.Provider("hw")
		if err != nil {
			return err
		}
		return pt.ForEachCard(func(_ string, enc []byte) error {
			c, err := store.DecodeCard(enc)
			if err == nil && keep(&c) {
				out = append(out, c)
			}
			return err
		})
	}))
	return out
}

var usageDataRE = regexp.MustCompile(`(?s)<script type="application/json" id="usage-data">(.*?)</script>`)

// chartData reads the chart's data block back as charts.js does.
func chartData(t *testing.T, body string) usageChart {
	t.Helper()
	m := usageDataRE.FindStringSubmatch(body)
	require.NotNil(t, m, "the page has a usage-data block")
	var c usageChart
	require.NoError(t, json.Unmarshal([]byte(m[1]), &c), m[1])
	return c
}

func TestCardPageShowsFieldsChartTimelineAndIMEIs(t *testing.T) {
	r := newPageRig(t)
	active := r.stored(func(c *fleet.Card) bool { return c.Status == fleet.StatusActive && c.IMEI != "" && c.PoolID == "" })
	require.NotEmpty(t, active)
	c := active[0]
	first := c.IMEI
	for _, imei := range []string{"860000000000001", "860000000000002"} {
		require.NoError(t, r.sim.Fleet().PatchCard(c.ICCID, sim.CardPatch{IMEI: &imei}))
		r.later()
	}
	body := r.page("/cards/hw/" + c.ID)

	// Every field, by the name rules use.
	for _, want := range []string{c.ICCID, c.MSISDN, c.IMSI, c.Plan, "flow_total", "operator_status", "expire_time", "860000000000002"} {
		require.Contains(t, body, want)
	}
	// The chart's data: the kept history's days, the allowance and a
	// forecast ending at the cycle's end.
	ch := chartData(t, body)
	var h fleet.History
	require.NoError(t, r.store.View(func(tx *store.Tx) error {
		pt, _ := tx.Provider("hw")
		var err error
		h, err = pt.History(store.CardHistoryKey(c.ID))
		return err
	}))
	require.NotEmpty(t, h.Days, "UpdateHistory backfilled the card")
	days := map[int64]float64{}
	for i, x := range ch.X {
		if ch.Daily[i] != nil {
			days[x] = *ch.Daily[i]
		}
		require.NotNil(t, ch.Allowance[i])
		require.Equal(t, c.FlowTotal, *ch.Allowance[i])
	}
	for _, d := range h.Days {
		require.Equal(t, d.MB, days[fleet.DayDate(d.Day).Unix()], "day %s", fleet.DayDate(d.Day))
	}
	require.Len(t, ch.Daily, len(ch.X))
	require.Len(t, ch.Forecast, len(ch.X))
	lastDay := fleet.DayDate(fleet.DayOf(time.Date(2026, 12, 1, 0, 0, 0, 0, fleet.ChinaTime).Add(-time.Hour))).Unix()
	require.Equal(t, lastDay, ch.X[len(ch.X)-1], "the chart runs to the cycle's last day")
	require.NotNil(t, ch.Forecast[len(ch.X)-1])
	require.GreaterOrEqual(t, *ch.Forecast[len(ch.X)-1], c.FlowUsed)
	require.Contains(t, body, `<div class="chart" id="usage-chart"`)
	require.Contains(t, body, `<script src="/static/charts.js"></script>`)

	// The timeline: both device changes, newest first.
	i1 := strings.Index(body, "to 860000000000002")
	i2 := strings.Index(body, "to 860000000000001")
	require.True(t, i1 > 0 && i2 > i1, "newest first")
	// The IMEI history: the first, then each device, in order.
	imeis := body[strings.Index(body, `<ol class="imeis">`):]
	a, b, cc := strings.Index(imeis, first), strings.Index(imeis, "860000000000001"), strings.Index(imeis, "860000000000002")
	require.True(t, a >= 0 && a < b && b < cc, "IMEI history in order: %s", imeis[:300])
	require.Equal(t, 1, strings.Count(imeis[:strings.Index(imeis, "</ol>")], first), "each IMEI once")
}

func TestCardPageShowsUnknownFields(t *testing.T) {
	r := newPageRig(t)
	c := r.stored(func(c *fleet.Card) bool { return c.IMEI != "" })[0]
	require.NoError(t, r.sim.Fleet().PatchCard(c.ICCID, sim.CardPatch{Unset: []string{"imei", "device_status"}}))
	r.later()
	body := r.page("/cards/hw/" + c.ID)
	require.Regexp(t, `<th scope="row">imei</th><td class="unknown muted">unknown</td>`, body)
	require.Regexp(t, `<th scope="row">device_status</th><td class="unknown muted">unknown</td>`, body)
	require.NotContains(t, body[strings.Index(body, "<h2>Fields</h2>"):strings.Index(body, "<h2>Devices")], ">"+c.IMEI+"<",
		"an unknown IMEI is not shown as the last one known")
}

func TestCardAndPoolPages404(t *testing.T) {
	r := newPageRig(t)
	for _, path := range []string{"/cards/hw/no-such-card", "/cards/nope/1", "/pools/hw/999999", "/pools/nope/1", "/cards/hw/%3Cscript%3E"} {
		code, body := r.get(path, "")
		require.Equal(t, http.StatusNotFound, code, path)
		require.Contains(t, body, "not found")
		require.NotContains(t, body, "<script>", "the id is escaped")
	}
}

func TestCardTimelinePages(t *testing.T) {
	r := newPageRig(t)
	c := r.stored(func(c *fleet.Card) bool { return c.Status == fleet.StatusActive && c.IMEI != "" })[0]
	for i := range timelinePage + 3 {
		imei := "8600000000001" + strconv.Itoa(10+i)
		require.NoError(t, r.sim.Fleet().PatchCard(c.ICCID, sim.CardPatch{IMEI: &imei}))
		r.later()
	}
	body := r.page("/cards/hw/" + c.ID)
	require.Equal(t, timelinePage, strings.Count(body, `<li class="tl-`))
	m := regexp.MustCompile(`href="\?before=([0-9a-f]+)" rel="next"`).FindStringSubmatch(body)
	require.NotNil(t, m, "a link to older events")
	older := r.page("/cards/hw/" + c.ID + "?before=" + m[1])
	require.Equal(t, 3, strings.Count(older, `<li class="tl-`), "the 3 oldest changes")
	require.Contains(t, older, "to 860000000000110")
	require.NotContains(t, older, "to 860000000000122")
	code, _ := r.get("/cards/hw/"+c.ID+"?before=zz", "")
	require.Equal(t, http.StatusBadRequest, code)
}

// TestChartDataRoundTrips: the data block stays JSON whatever it holds.
func TestChartDataRoundTrips(t *testing.T) {
	now := time.Date(2026, 11, 23, 4, 0, 0, 0, time.UTC)
	today := fleet.DayOf(now)
	h := fleet.History{Days: []fleet.DayUsage{{Day: today - 2, MB: 1.5}, {Day: today - 1, MB: 3}}}
	u := usageOf(h, 10, 30, true, true, now)
	require.InDelta(t, 2.25, u.Avg7, 1e-9)
	require.InDelta(t, 10+2.25*u.DaysLeft, u.Forecast, 1e-9)
	require.True(t, u.DaysLeft > 7 && u.DaysLeft < 8, "%v", u.DaysLeft)
	tpl := loadPages().byName["card"]
	var sb strings.Builder
	require.NoError(t, tpl.ExecuteTemplate(&sb, "usage", u))
	got := chartData(t, sb.String())
	require.Equal(t, u.Chart, got)
	require.Equal(t, 1.5, *got.Daily[indexOf(got.X, fleet.DayDate(today-2).Unix())])
	// An unknown allowance draws no line; an empty history still charts
	// the cycle.
	u = usageOf(fleet.History{}, 0, 0, false, false, now)
	require.Nil(t, u.Chart.Allowance[0])
	require.NotEmpty(t, u.Chart.X)
	require.False(t, u.OverForecast())
	_ = html.EscapeString
}

func indexOf(xs []int64, x int64) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return -1
}
