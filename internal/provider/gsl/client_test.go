package gsl_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/provider/gsl"
	"github.com/simwatch/simwatch/internal/sim"
)

func newSim(t *testing.T, cards, pools int, o sim.Options) (*sim.Server, *httptest.Server) {
	t.Helper()
	o.Fleet = sim.NewFleet(sim.FleetOptions{Cards: cards, Pools: pools, Seed: 7})
	s := sim.NewServer(o)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return s, ts
}

func newClient(t *testing.T, o gsl.Options) *gsl.Client {
	t.Helper()
	o.Name = "hw"
	if o.Backoff == 0 {
		o.Backoff = time.Millisecond
		o.MaxBackoff = 5 * time.Millisecond
	}
	if o.Rate == 0 {
		o.Rate = 1000
	}
	c, err := gsl.New(o)
	require.NoError(t, err)
	return c
}

var keys = map[string]string{"AK1": "SK1"}

func TestFetchPaginatesSigned(t *testing.T) {
	s, ts := newSim(t, 1234, 3, sim.Options{Keys: keys})
	c := newClient(t, gsl.Options{Endpoint: ts.URL, AK: "AK1", SK: "SK1", PageSize: 100})
	snap, err := c.Fetch(context.Background())
	require.NoError(t, err)
	require.Len(t, snap.Cards, 1234)
	require.Len(t, snap.Pools, 3)
	seen := map[string]bool{}
	for _, card := range snap.Cards {
		require.False(t, seen[card.ID], "duplicate %s", card.ID)
		seen[card.ID] = true
		require.Equal(t, "hw", card.Provider)
		require.NotEmpty(t, card.ICCID)
	}
	st := s.Stats()
	require.Equal(t, 13, st.ByPath["sim-cards"]) // ceil(1234/100)
	require.Equal(t, 1, st.ByPath["sim-pools"])
	require.Zero(t, st.Rejected)
}

func TestFetchWrongSecretNotRetried(t *testing.T) {
	s, ts := newSim(t, 20, 1, sim.Options{Keys: keys})
	c := newClient(t, gsl.Options{Endpoint: ts.URL, AK: "AK1", SK: "wrong"})
	_, err := c.Fetch(context.Background())
	var apiErr *gsl.APIError
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, 401, apiErr.Status)
	require.Equal(t, "APIGW.0301", apiErr.Code)
	require.Contains(t, err.Error(), "verify aksk signature fail")
	require.NotContains(t, err.Error(), "wrong")
	require.NotEmpty(t, apiErr.RequestID)
	require.Equal(t, 1, s.Stats().Requests)
}

func TestFetchStaticToken(t *testing.T) {
	_, ts := newSim(t, 25, 1, sim.Options{Tokens: []string{"tok-1"}})
	c := newClient(t, gsl.Options{Endpoint: ts.URL, Token: "tok-1", PageSize: 10})
	snap, err := c.Fetch(context.Background())
	require.NoError(t, err)
	require.Len(t, snap.Cards, 25)

	bad := newClient(t, gsl.Options{Endpoint: ts.URL, Token: "tok-2"})
	_, err = bad.Fetch(context.Background())
	require.ErrorContains(t, err, "HTTP 401 APIGW.0307")
}

func TestFetchIAMTokenCachedAndRefreshed(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	s, ts := newSim(t, 30, 1, sim.Options{IAMDomain: "acme", IAMUser: "ops", IAMPassword: "pw", Now: clock})
	iam := &gsl.IAMAuth{Endpoint: ts.URL, Domain: "acme", User: "ops", Password: "pw", Project: "cn-north-4"}
	c := newClient(t, gsl.Options{Endpoint: ts.URL, IAM: iam, Now: clock})
	for range 3 {
		_, err := c.Fetch(context.Background())
		require.NoError(t, err)
	}
	require.Equal(t, 1, s.IssuedTokens(), "token is cached across fetches")
	now = now.Add(23*time.Hour + time.Minute) // within the refresh margin
	_, err := c.Fetch(context.Background())
	require.NoError(t, err)
	require.Equal(t, 2, s.IssuedTokens(), "token refreshed before expiry")

	badIAM := *iam
	badIAM.Password = "nope"
	bad := newClient(t, gsl.Options{Endpoint: ts.URL, IAM: &badIAM, Now: clock})
	_, err = bad.Fetch(context.Background())
	require.ErrorContains(t, err, "HTTP 401")
	require.NotContains(t, err.Error(), "nope")
}

func TestFetchRetriesTransientFaults(t *testing.T) {
	tests := []struct {
		name  string
		fault sim.Fault
	}{
		{"system busy", sim.Fault{Kind: sim.FaultError, Path: "sim-cards", Page: 2, Count: 2}},
		{"502", sim.Fault{Kind: sim.FaultError, Status: 502, Path: "sim-cards", Page: 3, Count: 1}},
		{"throttled", sim.Fault{Kind: sim.FaultThrottle, Path: "sim-cards", Count: 3}},
		{"malformed page", sim.Fault{Kind: sim.FaultMalformed, Path: "sim-cards", Page: 2, Count: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ts := newSim(t, 50, 1, sim.Options{Keys: keys})
			s.AddFault(tt.fault)
			c := newClient(t, gsl.Options{Endpoint: ts.URL, AK: "AK1", SK: "SK1", PageSize: 10})
			snap, err := c.Fetch(context.Background())
			require.NoError(t, err)
			require.Len(t, snap.Cards, 50)
			require.Positive(t, s.Stats().Faults)
		})
	}
}

func TestFetchFailsWhole(t *testing.T) {
	tests := []struct {
		name     string
		fault    sim.Fault
		code     string
		attempts int // requests to the failing page
	}{
		{"persistent 500", sim.Fault{Kind: sim.FaultError, Path: "sim-cards", Page: 3}, gsl.CodeSystemBusy, 3},
		{"400 not retried", sim.Fault{Kind: sim.FaultError, Status: 400, Code: gsl.CodeParamInvalid, Path: "sim-cards", Page: 3}, gsl.CodeParamInvalid, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ts := newSim(t, 50, 1, sim.Options{})
			s.AddFault(tt.fault)
			c := newClient(t, gsl.Options{Endpoint: ts.URL, Token: "x", PageSize: 10, Retries: 2, Concurrency: 1})
			snap, err := c.Fetch(context.Background())
			require.Empty(t, snap.Cards, "no partial listing")
			var apiErr *gsl.APIError
			require.ErrorAs(t, err, &apiErr)
			require.Equal(t, tt.code, apiErr.Code)
			require.Contains(t, err.Error(), "page 3")
			require.Equal(t, tt.attempts, s.Stats().Faults)
		})
	}
}

func TestFetchTimeoutRetried(t *testing.T) {
	s, ts := newSim(t, 20, 1, sim.Options{})
	s.AddFault(sim.Fault{Kind: sim.FaultSlow, DelayMS: 2000, Path: "sim-cards", Page: 2, Count: 1})
	c := newClient(t, gsl.Options{Endpoint: ts.URL, Token: "x", PageSize: 10, Timeout: 100 * time.Millisecond})
	snap, err := c.Fetch(context.Background())
	require.NoError(t, err)
	require.Len(t, snap.Cards, 20)
}

func TestFetchCancelled(t *testing.T) {
	_, ts := newSim(t, 20, 1, sim.Options{})
	c := newClient(t, gsl.Options{Endpoint: ts.URL, Token: "x"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Fetch(ctx)
	require.True(t, errors.Is(err, context.Canceled), "%v", err)
}

// The seeds' own examples decode into the documented values.
func TestDecodeSeedExamples(t *testing.T) {
	mux := http.NewServeMux()
	for path, file := range map[string]string{"/v1/sim-cards": "testdata/seed000_sim_cards.json", "/v1/sim-pools": "testdata/seed003_sim_pools.json"} {
		body, err := os.ReadFile(file)
		require.NoError(t, err)
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(body) })
	}
	ts := httptest.NewServer(mux)
	defer ts.Close()
	c := newClient(t, gsl.Options{Endpoint: ts.URL, Token: "x", PageSize: 10})
	snap, err := c.Fetch(context.Background())
	require.NoError(t, err)
	require.Equal(t, []fleet.Card{{
		Provider: "hw", Account: "04eef84xxxxxxxxxxx", ID: "4900000000000", ICCID: "8986xxxxxxxxxxx",
		MSISDN: "86xxxxxxxxx", IMSI: "46xxxxxxxxxx", Status: fleet.StatusSuspended, StatusCode: 14,
		OperatorStatus: 5, FlowUsed: 0, FlowLeft: 30, FlowTotal: 30, PoolID: "4940000000",
		Plan:       "中国联通消费级每月30M联接服务(1年)",
		ExpireTime: time.Date(2023, 8, 26, 15, 59, 59, 0, time.UTC),
		ActDate:    time.Date(2022, 9, 16, 1, 14, 58, 0, time.UTC),
		Unknown:    fleet.CardField("device_status") | fleet.CardField("imei"), // null: a physical card, no device known (seed 000)
	}}, snap.Cards)
	require.Equal(t, []fleet.Pool{{
		Provider: "hw", ID: "1000000000", Name: "流量池名称", Plan: "中国联通消费级每月30M联接服务(1年)",
		FlowTotal: 60, FlowUsed: 102.59, FlowLeft: -42.59, Quantity: 100, Activated: 2, Disassembled: 98,
		BillingCycle: "2022-09", ExpiredTime: time.Date(2022, 9, 26, 15, 59, 59, 0, time.UTC),
	}}, snap.Pools)
}

func TestStatusTable(t *testing.T) {
	for code, want := range map[int]string{10: "test", 11: "inactive", 13: "inactive", 14: "suspended", 20: "active", 30: "terminated", 99: "", 12: "", 0: ""} {
		require.Equal(t, want, gsl.StatusName(code), "code %d", code)
	}
}
