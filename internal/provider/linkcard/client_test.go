package linkcard_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/provider/linkcard"
	"github.com/simwatch/simwatch/internal/sim"
)

var keys = map[string]string{"LTAI-test": "secret-test"}

func newSim(t *testing.T, cards int) (*sim.Server, string) {
	t.Helper()
	s := sim.NewServer(sim.Options{Fleet: sim.NewFleet(sim.FleetOptions{Cards: cards, Pools: 2, Seed: 5}), Keys: keys})
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return s, ts.URL
}

func newClient(t *testing.T, endpoint string, mut func(*linkcard.Options)) *linkcard.Client {
	t.Helper()
	o := linkcard.Options{Name: "ali", Endpoint: endpoint, AccessKeyID: "LTAI-test", AccessKeySecret: "secret-test",
		Rate: 1000, Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}
	if mut != nil {
		mut(&o)
	}
	c, err := linkcard.New(o)
	require.NoError(t, err)
	return c
}

func TestFetchPaginatesAndDerivesPools(t *testing.T) {
	s, url := newSim(t, 130)
	snap, err := newClient(t, url, nil).Fetch(context.Background())
	require.NoError(t, err)
	require.Len(t, snap.Cards, 130)
	require.Equal(t, 4, s.Stats().ByPath["linkcard"], "ceil(130/40) pages")
	require.Zero(t, s.Stats().Rejected, "every request correctly signed")
	members := map[string]int{}
	used := map[string]float64{}
	for _, c := range snap.Cards {
		require.Equal(t, c.ICCID, c.ID)
		require.Equal(t, "CMCC", c.Vendor)
		require.Equal(t, "cmiot", c.APN)
		if c.PoolID != "" {
			members[c.PoolID]++
			used[c.PoolID] += c.FlowUsed
		}
	}
	require.Len(t, snap.Pools, 2)
	for _, p := range snap.Pools {
		require.Equal(t, members[p.ID], p.Quantity)
		require.InDelta(t, used[p.ID], p.FlowUsed, 1e-6)
		require.InDelta(t, p.FlowTotal-p.FlowUsed, p.FlowLeft, 1e-6)
	}
}

func TestFetchRecoversFromTransientAnswers(t *testing.T) {
	tests := []struct {
		name  string
		fault sim.Fault
	}{
		{"Throttling.User", sim.Fault{Kind: sim.FaultThrottle, Path: "linkcard", Count: 3}},
		{"ServiceUnavailable 503", sim.Fault{Kind: sim.FaultThrottle, Status: 503, Path: "linkcard", Page: 2, Count: 2}},
		{"malformed JSON", sim.Fault{Kind: sim.FaultMalformed, Path: "linkcard", Page: 2, Count: 1}},
		{"500", sim.Fault{Kind: sim.FaultError, Path: "linkcard", Count: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, url := newSim(t, 90)
			s.AddFault(tt.fault)
			snap, err := newClient(t, url, nil).Fetch(context.Background())
			require.NoError(t, err)
			require.Len(t, snap.Cards, 90)
			require.Positive(t, s.Stats().Faults)
			require.Zero(t, s.Stats().Rejected, "retries are signed afresh, with new nonces")
		})
	}
}

func TestFetchErrors(t *testing.T) {
	tests := []struct {
		name     string
		fault    *sim.Fault
		mut      func(*linkcard.Options)
		want     []string
		requests int
	}{
		{name: "Success false under HTTP 200", fault: &sim.Fault{Kind: sim.FaultFail, Path: "linkcard", Code: "SystemError"},
			want: []string{"linkcard: ListCardInfo page 1: HTTP 200 SystemError", "(request id "}, requests: 1},
		{name: "wrong secret", mut: func(o *linkcard.Options) { o.AccessKeySecret = "wrong-secret" },
			want: []string{"HTTP 400 SignatureDoesNotMatch: the request signature does not match: check access_key_secret"}, requests: 1},
		{name: "unknown key", mut: func(o *linkcard.Options) { o.AccessKeyID = "LTAI-nope" },
			want: []string{"HTTP 404 InvalidAccessKeyId.NotFound: the access key id is not known"}, requests: 1},
		{name: "clock skew", mut: func(o *linkcard.Options) { o.Now = func() time.Time { return time.Now().Add(-time.Hour) } },
			want: []string{"InvalidTimeStamp.Expired"}, requests: 1},
		{name: "persistent throttling", fault: &sim.Fault{Kind: sim.FaultThrottle, Path: "linkcard"},
			mut: func(o *linkcard.Options) { o.Retries = 2 }, want: []string{"Throttling.User"}, requests: 3},
		{name: "persistent garbage page", fault: &sim.Fault{Kind: sim.FaultMalformed, Path: "linkcard"},
			mut: func(o *linkcard.Options) { o.Retries = 1 }, want: []string{"bad page"}, requests: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, url := newSim(t, 30)
			if tt.fault != nil {
				s.AddFault(*tt.fault)
			}
			snap, err := newClient(t, url, tt.mut).Fetch(context.Background())
			require.Error(t, err)
			require.Empty(t, snap.Cards)
			for _, w := range tt.want {
				require.Contains(t, err.Error(), w)
			}
			require.NotContains(t, err.Error(), "secret-test")
			require.NotContains(t, err.Error(), "wrong-secret")
			require.Equal(t, tt.requests, s.Stats().ByPath["linkcard"])
		})
	}
}

func TestNonceReuseRejected(t *testing.T) {
	_, url := newSim(t, 30)
	c := newClient(t, url, func(o *linkcard.Options) { o.Nonce = func() string { return "same" }; o.Retries = -1 })
	_, err := c.Fetch(context.Background())
	require.NoError(t, err)
	_, err = c.Fetch(context.Background())
	require.ErrorContains(t, err, "SignatureNonceUsed")
}

func TestBadPageSize(t *testing.T) {
	_, err := linkcard.New(linkcard.Options{Endpoint: "https://x", AccessKeyID: "a", AccessKeySecret: "b", PageSize: 50})
	require.ErrorContains(t, err, "accepts 10, 15, 25 or 40")
}

// The seed's own example answer decodes to the documented values.
func TestDecodeSeedExample(t *testing.T) {
	body, err := os.ReadFile("testdata/seed002_list_card_info.json")
	require.NoError(t, err)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "ListCardInfo", r.URL.Query().Get("Action"))
		require.Equal(t, "2021-05-20", r.URL.Query().Get("Version"))
		require.NotEmpty(t, r.URL.Query().Get("Signature"))
		_, _ = w.Write(body)
	}))
	defer ts.Close()
	now := time.Date(2026, 11, 23, 20, 0, 0, 0, time.UTC) // already the 24th in China
	c := newClient(t, ts.URL, func(o *linkcard.Options) { o.PageSize = 10; o.Now = func() time.Time { return now } })
	// The example claims 20 pages but holds one card: decode that page.
	card := mustFirstCard(t, c)
	require.Equal(t, fleet.Card{
		Provider: "ali", ID: "89860321******15668", ICCID: "89860321******15668",
		MSISDN: "1440993******", IMSI: "460081937******", Status: fleet.StatusSuspended, StatusCode: 35,
		OperatorStatus: 300, FlowUsed: 0, FlowLeft: 130, FlowTotal: 30, PoolID: "CM-***-*-2-**M",
		Plan: "CM-***-*-2-**M", ExpireTime: time.Date(2022, 4, 30, 15, 59, 59, 0, time.UTC),
		ActDate: time.Date(2021, 11, 16, 8, 35, 50, 0, time.UTC), Tags: []string{"测试标签"},
		Attributes: map[string]string{"data_type": "sameflowcard", "sim_type": "nano", "remark": "备注信息"},
		Vendor:     "CMCC", APN: "cmiot",
	}, card)
}

func mustFirstCard(t *testing.T, c *linkcard.Client) fleet.Card {
	t.Helper()
	cards, err := linkcard.FetchPage(context.Background(), c, 1)
	require.NoError(t, err)
	require.Len(t, cards, 1)
	return cards[0]
}
