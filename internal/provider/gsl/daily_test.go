package gsl_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/provider"
	"github.com/simwatch/simwatch/internal/provider/gsl"
	"github.com/simwatch/simwatch/internal/sim"
)

func day(s string) int32 {
	t, err := time.Parse("20060102", s)
	if err != nil {
		panic(err)
	}
	return int32(t.Unix() / 86400)
}

// dailyServer answers every batch-daily-flow request with body.
func dailyServer(t *testing.T, body string) *gsl.Client {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "/v1/sim-cards/batch-daily-flow", r.URL.Path)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(ts.Close)
	return newClient(t, gsl.Options{Endpoint: ts.URL, Token: "t", Retries: -1})
}

// Seed 001's example answer, with the ids asked for.
const seed001 = `[ { "date" : "20240801", "sim_flow" : [ { "flow" : 0.98, "iccid" : "898600xxxxxxxxxx", "sim_card_id" : 5702790861709056 },
 { "flow" : 1.0, "iccid" : "898601xxxxxxxxxx", "sim_card_id" : 5702790861709057 } ] },
 { "date" : "20240802", "sim_flow" : [ { "flow" : 0.98, "iccid" : "898600xxxxxxxxxx", "sim_card_id" : 5702790861709056 },
 { "flow" : 1.0, "iccid" : "898601xxxxxxxxxx", "sim_card_id" : 5702790861709057 } ] } ]`

var seedIDs = []string{"5702790861709056", "5702790861709057"}

func TestDailyFlowSeed(t *testing.T) {
	got, err := dailyServer(t, seed001).DailyFlow(context.Background(), gsl.DailyQuery{Month: "202408"}, seedIDs)
	require.NoError(t, err)
	require.Equal(t, map[string][]fleet.DayUsage{
		"5702790861709056": {{Day: day("20240801"), MB: 0.98}, {Day: day("20240802"), MB: 0.98}},
		"5702790861709057": {{Day: day("20240801"), MB: 1}, {Day: day("20240802"), MB: 1}},
	}, got)
}

func TestDailyFlowAccepted(t *testing.T) {
	tests := []struct {
		name string
		q    gsl.DailyQuery
		body string
		want map[string][]fleet.DayUsage
	}{
		{"no days yet", gsl.DailyQuery{Month: "202408"}, `[]`, map[string][]fleet.DayUsage{}},
		{"a day with no rows", gsl.DailyQuery{Month: "202408"}, `[{"date":"20240801","sim_flow":[]}]`, map[string][]fleet.DayUsage{}},
		{"one card on one date", gsl.DailyQuery{Date: "20240821"}, `[{"date":"20240821","sim_flow":[{"flow":0,"sim_card_id":5702790861709057}]}]`,
			map[string][]fleet.DayUsage{"5702790861709057": {{Day: day("20240821")}}}},
		{"a row repeated with the same flow", gsl.DailyQuery{Month: "202408"},
			`[{"date":"20240801","sim_flow":[{"flow":2.5,"sim_card_id":5702790861709056},{"flow":2.5,"sim_card_id":5702790861709056}]}]`,
			map[string][]fleet.DayUsage{"5702790861709056": {{Day: day("20240801"), MB: 2.5}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := dailyServer(t, tt.body).DailyFlow(context.Background(), tt.q, seedIDs)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

// Every row is checked: date, card, flow. Anything else fails the batch,
// naming batch, date, card and field.
func TestDailyFlowRejected(t *testing.T) {
	const op = "gsl: POST /v1/sim-cards/batch-daily-flow batch 1: bad page: "
	row := func(date, flows string) string { return `[{"date":"` + date + `","sim_flow":[` + flows + `]}]` }
	tests := []struct {
		name string
		q    gsl.DailyQuery
		body string
		want string
	}{
		{"null", gsl.DailyQuery{Month: "202408"}, `null`, "answer is null, want a list of days"},
		{"an object", gsl.DailyQuery{Month: "202408"}, `{}`, "json: cannot unmarshal object"},
		{"date missing", gsl.DailyQuery{Month: "202408"}, `[{"sim_flow":[]}]`, "days[0]: date: missing or null"},
		{"date not YYYYMMDD", gsl.DailyQuery{Month: "202408"}, row("2024-08-01", ""), `days[0]: date: "2024-08-01" is not YYYYMMDD`},
		{"date not a day", gsl.DailyQuery{Month: "202408"}, row("20240832", ""), `days[0]: date: "20240832" is not YYYYMMDD`},
		{"date a number", gsl.DailyQuery{Month: "202408"}, `[{"date":20240801,"sim_flow":[]}]`, "json: cannot unmarshal number"},
		{"date in another month", gsl.DailyQuery{Month: "202408"}, row("20240901", ""), "date 20240901: not in the requested 202408"},
		{"another date", gsl.DailyQuery{Date: "20240821"}, row("20240822", ""), "date 20240822: not in the requested 20240821"},
		{"sim_flow missing", gsl.DailyQuery{Month: "202408"}, `[{"date":"20240801"}]`, "date 20240801: sim_flow: missing or null"},
		{"sim_flow null", gsl.DailyQuery{Month: "202408"}, `[{"date":"20240801","sim_flow":null}]`, "date 20240801: sim_flow: missing or null"},
		{"card not asked for", gsl.DailyQuery{Month: "202408"}, row("20240801", `{"flow":1,"sim_card_id":4900000000009}`),
			"date 20240801: sim_flow[0] (sim_card_id 4900000000009): sim_card_id: not asked for in this batch"},
		{"card missing", gsl.DailyQuery{Month: "202408"}, row("20240801", `{"flow":1,"iccid":"8986"}`), "date 20240801: sim_flow[0]: sim_card_id: missing or null"},
		{"flow missing", gsl.DailyQuery{Month: "202408"}, row("20240801", `{"sim_card_id":5702790861709056}`),
			"date 20240801: sim_flow[0] (sim_card_id 5702790861709056): flow: missing or null"},
		{"flow null", gsl.DailyQuery{Month: "202408"}, row("20240801", `{"flow":null,"sim_card_id":5702790861709056}`),
			"date 20240801: sim_flow[0] (sim_card_id 5702790861709056): flow: missing or null"},
		{"flow negative", gsl.DailyQuery{Month: "202408"}, row("20240801", `{"flow":-0.5,"sim_card_id":5702790861709056}`),
			"date 20240801: sim_flow[0] (sim_card_id 5702790861709056): flow: -0.5 MB is negative"},
		{"flow absurd", gsl.DailyQuery{Month: "202408"}, row("20240801", `{"flow":1.7e308,"sim_card_id":5702790861709056}`),
			"date 20240801: sim_flow[0] (sim_card_id 5702790861709056): flow: 1.7e+308 MB is beyond any real figure (limit 1e+08 MB)"},
		{"flow beyond float64", gsl.DailyQuery{Month: "202408"}, row("20240801", `{"flow":1e400,"sim_card_id":5702790861709056}`), "json: cannot unmarshal number 1e400"},
		{"a card×day twice, flows differ", gsl.DailyQuery{Month: "202408"},
			`[{"date":"20240801","sim_flow":[{"flow":1,"sim_card_id":5702790861709056}]},{"date":"20240801","sim_flow":[{"flow":2,"sim_card_id":5702790861709056}]}]`,
			"date 20240801: sim_flow[0] (sim_card_id 5702790861709056): flow: given twice, 1 and 2 MB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := dailyServer(t, tt.body).DailyFlow(context.Background(), tt.q, seedIDs)
			require.Nil(t, got)
			var pe *provider.PageError
			require.ErrorAs(t, err, &pe)
			require.True(t, strings.HasPrefix(err.Error(), op), err.Error())
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestDailyFlowBadQuery(t *testing.T) {
	c := dailyServer(t, `[]`)
	for q, want := range map[gsl.DailyQuery]string{
		{}:                                  "give a month or a date",
		{Month: "202408", Date: "20240801"}: "give a month or a date",
		{Month: "2024-08"}:                  `bad month "2024-08" (want YYYYMM)`,
		{Date: "2024081"}:                   `bad date "2024081" (want YYYYMMDD)`,
	} {
		_, err := c.DailyFlow(context.Background(), q, seedIDs)
		require.ErrorContains(t, err, want)
	}
	_, err := c.DailyFlow(context.Background(), gsl.DailyQuery{Month: "202408"}, []string{"8986x"})
	require.ErrorContains(t, err, `card id "8986x" is not a GSL sim_card_id`)
}

// Against the simulator: several batches, ids repeated by the caller, days
// the provider has not published yet simply absent.
func TestDailyFlowSimulator(t *testing.T) {
	s, ts := newSim(t, 150, 2, sim.Options{})
	s.Fleet().Advance(3)
	c := newClient(t, gsl.Options{Endpoint: ts.URL, Token: "t"})
	snap, err := c.Fetch(context.Background())
	require.NoError(t, err)
	ids := make([]string, 0, 151)
	for _, card := range snap.Cards {
		ids = append(ids, card.ID)
	}
	ids = append(ids, ids[0])
	month := sim.DefaultStart.Format("200601")
	got, err := c.DailyFlow(context.Background(), gsl.DailyQuery{Month: month}, ids)
	require.NoError(t, err)
	require.Len(t, got, 150)
	for id, days := range got {
		require.Len(t, days, sim.DefaultStart.Day()-1+3, id) // the month's days before today
	}
	require.Equal(t, 2, s.Stats().ByPath["batch-daily-flow"])
}

// GSL publishes a day at some moment; when it falls between the batches of
// one request, the batch asked before it lacks the day the others have. That
// batch is asked again, so every card has the day.
func TestDailyFlowDayPublishedBetweenBatches(t *testing.T) {
	s, ts := newSim(t, 250, 2, sim.Options{})
	s.Fleet().Advance(1)
	s.AddFault(sim.Fault{Kind: sim.FaultBody, Path: "batch-daily-flow", Count: 1, Body: `[]`})
	c := newClient(t, gsl.Options{Endpoint: ts.URL, Token: "t"})
	ids := make([]string, 250)
	for i := range ids {
		ids[i] = cardID(i)
	}
	got, err := c.DailyFlow(context.Background(), gsl.DailyQuery{Month: sim.DefaultStart.Format("200601")}, ids)
	require.NoError(t, err)
	require.Len(t, got, 250)
	for _, id := range ids {
		require.Len(t, got[id], sim.DefaultStart.Day(), id)
	}
	require.Equal(t, 3+1, s.Stats().ByPath["batch-daily-flow"], "the lagging batch asked again")
}
