package sim

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFleetDeterministic(t *testing.T) {
	a := NewFleet(FleetOptions{Cards: 50, Pools: 3, Seed: 42})
	b := NewFleet(FleetOptions{Cards: 50, Pools: 3, Seed: 42})
	require.Equal(t, a.Advance(5), b.Advance(5))
	require.Equal(t, a.cards[7], b.cards[7])
}

func TestFleetDynamics(t *testing.T) {
	f := NewFleet(FleetOptions{Cards: 500, Pools: 3, Seed: 1})
	imei := map[string]string{}
	for _, c := range f.cards {
		imei[c.ICCID] = c.IMEI
	}
	used := f.poolStats()[f.pools[0].ID].used
	var changes []string
	for range 10 {
		changes = append(changes, f.Advance(1)...)
	}
	joined := strings.Join(changes, "\n")
	require.Contains(t, joined, "moved to device")
	require.Contains(t, joined, "suspended")
	swapped := 0
	for _, c := range f.cards {
		if imei[c.ICCID] != c.IMEI {
			swapped++
		}
	}
	require.Positive(t, swapped)
	st := f.poolStats()[f.pools[0].ID]
	require.Greater(t, st.used, used, "usage grows")
	require.Greater(t, st.used, f.pools[0].Total, "the short-sold pool is in overdraft")
}

func get(t *testing.T, h http.Handler, url string) (int, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, url, nil))
	var body map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body), rec.Body.String())
	return rec.Code, body
}

func TestListingWireFormat(t *testing.T) {
	h := NewServer(Options{Fleet: NewFleet(FleetOptions{Cards: 23, Pools: 2, Seed: 1})}).Handler()
	code, body := get(t, h, "/v1/sim-cards?offset=3&limit=10")
	require.Equal(t, 200, code)
	require.EqualValues(t, 23, body["count"])
	require.EqualValues(t, 3, body["offset"])
	require.EqualValues(t, 10, body["limit"])
	cards := body["sim_cards"].([]any)
	require.Len(t, cards, 3)
	card := cards[0].(map[string]any)
	for _, field := range []string{"sim_card_id", "account_id", "cid", "sim_pool_id", "imei", "sim_status", "device_status",
		"act_date", "iccid", "flow_left", "flow_used", "operator_status", "msisdn", "imsi", "expire_time", "price_plan_name",
		"customer_attribute1", "real_named", "cut_net_flag", "speed_value"} {
		require.Contains(t, card, field)
	}
	require.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000\+00:00$`, card["act_date"])

	code, body = get(t, h, "/v1/sim-pools?offset=1&limit=10")
	require.Equal(t, 200, code)
	pool := body["pools"].([]any)[0].(map[string]any)
	for _, field := range []string{"id", "pool_name", "flow_total", "flow_used", "flow_left", "quantity", "billing_cycle",
		"activated_sim_quantity", "inactive_sim_quantity", "disassembled_sim_quantity", "expired_time"} {
		require.Contains(t, pool, field)
	}

	code, body = get(t, h, "/v1/sim-cards?offset=1&limit=501")
	require.Equal(t, 400, code)
	require.Equal(t, map[string]any{"error_code": "GSL.00010004", "error_msg": "参数异常"}, body)
}

func TestAuthRequired(t *testing.T) {
	h := NewServer(Options{Keys: map[string]string{"ak": "sk"}}).Handler()
	code, body := get(t, h, "/v1/sim-cards")
	require.Equal(t, 401, code)
	require.Equal(t, "APIGW.0301", body["error_code"])
}
