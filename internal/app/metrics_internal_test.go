package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/config"
	"github.com/simwatch/simwatch/internal/sim"
)

const metricsRules = `rules:
  - {name: card_low_flow, on: card, when: 'status == "active" && flow_left < 10'}
  - {name: slow_burn, on: card, when: 'flow_used > 50000', for: 1h}
`

// scrape reads /metrics and returns each series' value by its line's name
// and labels, as written.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	out := map[string]float64{}
	for _, m := range regexp.MustCompile(`(?m)^(simwatch_[^ ]+) ([^ \n]+)$`).FindAllStringSubmatch(string(body), -1) {
		v, err := strconv.ParseFloat(m[2], 64)
		require.NoError(t, err, m[0])
		out[m[1]] = v
	}
	return out
}

// After a cycle against the simulator, /metrics shows the cycle's stage
// times, the alerts by rule and state, and the provider's requests as the
// simulator counted them; a rule removed by a reload leaves no series once
// a cycle has run with the new rules.
func TestMetricsAfterCycles(t *testing.T) {
	for name, provider := range map[string]string{
		"gsl":      `{name: hw, type: huawei-gsl, endpoint: %s, auth: {ak: m-ak, sk: m-sk}, page_size: 25, retries: 1}`,
		"linkcard": `{name: hw, type: aliyun-linkcard, endpoint: %s, auth: {access_key_id: m-ak, access_key_secret: m-sk}, page_size: 25, retries: 1}`,
	} {
		t.Run(name, func(t *testing.T) { metricsAfterCycles(t, provider) })
	}
}

func metricsAfterCycles(t *testing.T, provider string) {
	fleet := sim.NewFleet(sim.FleetOptions{Cards: 60, Pools: 2, Seed: 3, Calm: true})
	s := sim.NewServer(sim.Options{Fleet: fleet, Keys: map[string]string{"m-ak": "m-sk"}})
	simTS := httptest.NewServer(s.Handler())
	t.Cleanup(simTS.Close)
	iccids := fleet.CardICCIDs()
	for _, i := range []int{3, 11} {
		require.NoError(t, fleet.PatchCard(iccids[i], sim.CardPatch{FlowUsed: ptrTo(99995.0), FlowTotal: ptrTo(100000.0)}))
	}

	dir := t.TempDir()
	rulesPath := filepath.Join(dir, "rules.yaml")
	require.NoError(t, os.WriteFile(rulesPath, []byte(metricsRules), 0o644))
	cfgPath := filepath.Join(dir, "watcher.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(fmt.Sprintf(`data_dir: %q
rule_files: [%q]
providers:
  - %s
`, filepath.Join(dir, "data"), rulesPath, fmt.Sprintf(provider, simTS.URL))), 0o644))
	cfg, err := config.Load(cfgPath)
	require.NoError(t, err)
	ctx := context.Background()
	w, err := New(ctx, cfg, Options{Stdout: io.Discard, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	t.Cleanup(func() { w.Close() })
	api := httptest.NewServer(w.api.Handler())
	t.Cleanup(api.Close)

	require.NoError(t, w.RunOnce(ctx, 30*time.Second))
	m := scrape(t, api.URL)
	for _, stage := range []string{"fetch", "diff", "evaluate", "commit", "total"} {
		require.Equal(t, 1.0, m[`simwatch_cycle_duration_seconds_count{provider="hw",stage="`+stage+`"}`], stage)
	}
	require.Greater(t, m[`simwatch_cycle_duration_seconds_sum{provider="hw",stage="total"}`], 0.0)
	require.GreaterOrEqual(t, m[`simwatch_cycle_duration_seconds_sum{provider="hw",stage="total"}`],
		m[`simwatch_cycle_duration_seconds_sum{provider="hw",stage="fetch"}`], "the total covers the fetch")
	require.Equal(t, 2.0, m[`simwatch_alerts{rule="card_low_flow",state="firing"}`])
	require.Equal(t, 2.0, m[`simwatch_alerts{rule="slow_burn",state="pending"}`])
	require.NotContains(t, m, `simwatch_alerts{rule="slow_burn",state="firing"}`)

	st := s.Stats()
	require.Equal(t, float64(st.Requests), m[`simwatch_provider_requests_total{provider="hw"}`], "every request the simulator answered: %v", st.ByPath)
	require.GreaterOrEqual(t, m[`simwatch_provider_pages_total{provider="hw"}`], 3.0, "60 cards in pages of 25")
	require.LessOrEqual(t, m[`simwatch_provider_pages_total{provider="hw"}`], m[`simwatch_provider_requests_total{provider="hw"}`])
	require.Zero(t, m[`simwatch_provider_throttled_total{provider="hw"}`])
	require.Contains(t, m, `simwatch_provider_request_rate{provider="hw"}`)
	require.GreaterOrEqual(t, m[`simwatch_provider_concurrency{provider="hw"}`], 1.0)

	// slow_burn is removed: its series go with the next cycle.
	require.NoError(t, os.WriteFile(rulesPath, []byte(metricsRules[:len(metricsRules)-len("  - {name: slow_burn, on: card, when: 'flow_used > 50000', for: 1h}\n")]), 0o644))
	require.NoError(t, w.Reload())
	require.NoError(t, w.cycle(ctx, w.providers[0]))
	m = scrape(t, api.URL)
	require.Equal(t, 2.0, m[`simwatch_cycle_duration_seconds_count{provider="hw",stage="total"}`])
	require.Equal(t, 2.0, m[`simwatch_alerts{rule="card_low_flow",state="firing"}`])
	for k := range m {
		require.NotContains(t, k, "slow_burn")
	}
	require.Equal(t, float64(s.Stats().Requests), m[`simwatch_provider_requests_total{provider="hw"}`])
}

func ptrTo[T any](v T) *T { return &v }
