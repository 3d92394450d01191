package sim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// usedByICCID lists every card through the GSL API, as a watcher sees it.
func usedByICCID(t *testing.T, h http.Handler) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for page := 1; ; page++ {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, fmt.Sprintf("/v1/sim-cards?offset=%d&limit=500", page), nil))
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		var body struct {
			Count    int `json:"count"`
			SimCards []struct {
				ICCID    string  `json:"iccid"`
				FlowUsed float64 `json:"flow_used"`
			} `json:"sim_cards"`
		}
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
		for _, c := range body.SimCards {
			out[c.ICCID] = c.FlowUsed
		}
		if len(body.SimCards) == 0 || len(out) >= body.Count {
			return out
		}
	}
}

func churn(t *testing.T, h http.Handler, body string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/_sim/churn", strings.NewReader(body)))
	return rec.Code, rec.Body.String()
}

// changedCards is the ICCIDs whose flow_used differs, each by exactly 1 MB.
func changedCards(t *testing.T, before, after map[string]float64) []string {
	t.Helper()
	require.Len(t, after, len(before))
	var out []string
	for iccid, u := range after {
		if u != before[iccid] {
			require.InDelta(t, before[iccid]+1, u, 1e-9, "card %s", iccid)
			out = append(out, iccid)
		}
	}
	return out
}

func TestChurnChangesExactlyThePercentAsked(t *testing.T) {
	for _, tc := range []struct {
		cards   int
		percent string
		want    int
	}{
		{1000, "1", 10},
		{997, "1.5", 15},    // 14.955 rounds to 15
		{1000, "0.04", 0},   // less than half a card: nothing
		{1000, "100", 1000}, // every card, each once
		{7, "50", 4},        // 3.5 rounds up; a fleet smaller than the step
	} {
		t.Run(fmt.Sprintf("%d cards %s%%", tc.cards, tc.percent), func(t *testing.T) {
			h := NewServer(Options{Fleet: NewFleet(FleetOptions{Cards: tc.cards, Pools: 3, Seed: 1})}).Handler()
			before := usedByICCID(t, h)
			code, body := churn(t, h, `{"percent": `+tc.percent+`, "seed": 3}`)
			require.Equal(t, http.StatusOK, code, body)
			require.JSONEq(t, fmt.Sprintf(`{"changed": %d}`, tc.want), body)
			require.Len(t, changedCards(t, before, usedByICCID(t, h)), tc.want)
		})
	}
}

func TestChurnIsDeterministicBySeed(t *testing.T) {
	pick := func(seed int) []string {
		h := NewServer(Options{Fleet: NewFleet(FleetOptions{Cards: 2000, Pools: 3, Seed: 1})}).Handler()
		before := usedByICCID(t, h)
		code, body := churn(t, h, fmt.Sprintf(`{"percent": 2, "seed": %d}`, seed))
		require.Equal(t, http.StatusOK, code, body)
		got := changedCards(t, before, usedByICCID(t, h))
		require.Len(t, got, 40)
		return got
	}
	require.ElementsMatch(t, pick(7), pick(7), "the same seed changes the same cards")
	require.NotElementsMatch(t, pick(7), pick(8), "another seed changes other cards")
}

func TestChurnRefusesNonsense(t *testing.T) {
	h := NewServer(Options{Fleet: NewFleet(FleetOptions{Cards: 100, Pools: 3, Seed: 1})}).Handler()
	before := usedByICCID(t, h)
	for _, body := range []string{`{}`, `{"percent": 0}`, `{"percent": -1}`, `{"percent": 100.5}`, `{"percent": "1"}`, `not json`, ``} {
		code, answer := churn(t, h, body)
		require.Equal(t, http.StatusBadRequest, code, "body %q: %s", body, answer)
	}
	require.Equal(t, before, usedByICCID(t, h), "a refused churn changes nothing")
}
