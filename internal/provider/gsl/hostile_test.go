package gsl_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/provider"
	"github.com/simwatch/simwatch/internal/provider/gsl"
	"github.com/simwatch/simwatch/internal/sim"
)

// raw is sim.Raw, short for the tables below.
func raw(kv ...string) map[string]json.RawMessage { return sim.Raw(kv...) }

// cardID is the sim_card_id of the simulated fleet's i-th card.
func cardID(i int) string { return strconv.FormatInt(4900000000001+int64(i), 10) }

// Each odd listing the simulator can give fails the fetch, naming what was
// wrong; a listing that drifted once is fetched again and is complete.
func TestHostileListings(t *testing.T) {
	const pageBody = `{"limit":10,"offset":2,"count":50,"sim_cards":%s}`
	tests := []struct {
		name   string
		faults []sim.Fault
		want   string // the whole error; "" for success
		kind   any    // the error type: *provider.PageError, *provider.ListingError, *provider.RedirectError
	}{
		{name: "page 1 is {}", faults: []sim.Fault{{Kind: sim.FaultBody, Path: "sim-cards", Page: 1, Body: `{}`}},
			want: "gsl: GET /v1/sim-cards page 1: bad page: count: missing or null", kind: &provider.PageError{}},
		{name: "count null", faults: []sim.Fault{{Kind: sim.FaultBody, Path: "sim-cards", Page: 1, Body: `{"count":null,"sim_cards":[]}`}},
			want: "gsl: GET /v1/sim-cards page 1: bad page: count: missing or null", kind: &provider.PageError{}},
		{name: "sim_cards missing", faults: []sim.Fault{{Kind: sim.FaultBody, Path: "sim-cards", Page: 2, Body: `{"limit":10,"offset":2,"count":50}`}},
			want: "gsl: GET /v1/sim-cards page 2: bad page: sim_cards: missing", kind: &provider.PageError{}},
		{name: "count beyond int64", faults: []sim.Fault{{Kind: sim.FaultBody, Path: "sim-cards", Page: 1, Body: `{"count":99999999999999999999,"sim_cards":[]}`}},
			want: "gsl: GET /v1/sim-cards page 1: bad page: json: cannot unmarshal number 99999999999999999999 into Go struct field cardPage.count of type int64", kind: &provider.PageError{}},
		{name: "sim_cards null on a later page", faults: []sim.Fault{{Kind: sim.FaultBody, Path: "sim-cards", Page: 2, Body: strings.Replace(pageBody, "%s", "null", 1)}},
			want: "gsl: GET /v1/sim-cards: listing inconsistent after 3 attempts: page 2 has 0 cards, want 10 (count 50)", kind: &provider.ListingError{}},
		{name: "sim_cards [] on a later page", faults: []sim.Fault{{Kind: sim.FaultBody, Path: "sim-cards", Page: 2, Body: strings.Replace(pageBody, "%s", "[]", 1)}},
			want: "gsl: GET /v1/sim-cards: listing inconsistent after 3 attempts: page 2 has 0 cards, want 10 (count 50)", kind: &provider.ListingError{}},
		{name: "count lower than the fleet", faults: []sim.Fault{{Kind: sim.FaultCount, Path: "sim-cards", Total: 45}},
			want: "gsl: GET /v1/sim-cards: listing inconsistent after 3 attempts: page 5 has 10 cards, want 5 (count 45)", kind: &provider.ListingError{}},
		{name: "count lower than the fleet, filling its pages", faults: []sim.Fault{{Kind: sim.FaultCount, Path: "sim-cards", Total: 40}},
			want: "gsl: GET /v1/sim-cards: listing inconsistent after 3 attempts: page 5, past the count, has 10 cards (count 40)", kind: &provider.ListingError{}},
		{name: "count higher than the fleet", faults: []sim.Fault{{Kind: sim.FaultCount, Path: "sim-cards", Total: 55}},
			want: "gsl: GET /v1/sim-cards: listing inconsistent after 3 attempts: page 6 has 0 cards, want 5 (count 55)", kind: &provider.ListingError{}},
		{name: "count changes on the last page", faults: []sim.Fault{{Kind: sim.FaultCount, Path: "sim-cards", Page: 5, Total: 51}},
			want: "gsl: GET /v1/sim-cards: listing inconsistent after 3 attempts: page 5 says count 51, page 1 said 50", kind: &provider.ListingError{}},
		{name: "a page misses a card", faults: []sim.Fault{{Kind: sim.FaultDrop, Path: "sim-cards", Page: 2}},
			want: "gsl: GET /v1/sim-cards: listing inconsistent after 3 attempts: page 2 has 9 cards, want 10 (count 50)", kind: &provider.ListingError{}},
		{name: "an id twice on a page", faults: []sim.Fault{{Kind: sim.FaultDup, Path: "sim-cards", Page: 3}},
			want: "gsl: GET /v1/sim-cards: listing inconsistent after 3 attempts: card " + cardID(20) + " listed twice (page 3)", kind: &provider.ListingError{}},
		{name: "paging drifts back on every try", faults: []sim.Fault{{Kind: sim.FaultDrift, Path: "sim-cards", Page: 2, Shift: -1}},
			want: "gsl: GET /v1/sim-cards: listing inconsistent after 3 attempts: card " + cardID(9) + " listed twice (pages 1 and 2)", kind: &provider.ListingError{}},
		{name: "paging drifts forward on every try", faults: []sim.Fault{{Kind: sim.FaultDrift, Path: "sim-cards", Page: 2, Shift: 1}},
			want: "gsl: GET /v1/sim-cards: listing inconsistent after 3 attempts: card " + cardID(20) + " listed twice (pages 2 and 3)", kind: &provider.ListingError{}},
		{name: "paging drifts once", faults: []sim.Fault{{Kind: sim.FaultDrift, Path: "sim-cards", Page: 2, Shift: -1, Count: 1}}},
		{name: "a page misses a card once", faults: []sim.Fault{{Kind: sim.FaultDrop, Path: "sim-cards", Page: 4, Count: 1}}},
		{name: "count wrong once", faults: []sim.Fault{{Kind: sim.FaultCount, Path: "sim-cards", Total: 49, Count: 1}}},
		{name: "redirect to a page that answers 200", faults: []sim.Fault{{Kind: sim.FaultRedirect, Path: "sim-cards", Page: 1}},
			want: "gsl: GET /v1/sim-cards page 1: HTTP 302 redirect to HOST not followed (check the endpoint)", kind: &provider.RedirectError{}},
		{name: "redirect elsewhere, signed", faults: []sim.Fault{{Kind: sim.FaultRedirect, Status: 307, Path: "sim-cards", Page: 3, Location: "https://login.example/sso?Signature=s3cr3t&AccessKeyId=AK1"}},
			want: "gsl: GET /v1/sim-cards page 3: HTTP 307 redirect to login.example not followed (check the endpoint)", kind: &provider.RedirectError{}},
		{name: "pools page 1 is {}", faults: []sim.Fault{{Kind: sim.FaultBody, Path: "sim-pools", Page: 1, Body: `{}`}},
			want: "gsl: GET /v1/sim-pools page 1: bad page: count: missing or null", kind: &provider.PageError{}},
		{name: "pools missing", faults: []sim.Fault{{Kind: sim.FaultBody, Path: "sim-pools", Page: 1, Body: `{"count":3}`}},
			want: "gsl: GET /v1/sim-pools page 1: bad page: pools: missing", kind: &provider.PageError{}},
		{name: "pools null", faults: []sim.Fault{{Kind: sim.FaultBody, Path: "sim-pools", Page: 1, Body: `{"count":3,"pools":null}`}},
			want: "gsl: GET /v1/sim-pools: listing inconsistent after 3 attempts: page 1 has 0 pools, want 3 (count 3)", kind: &provider.ListingError{}},
		{name: "pool count higher", faults: []sim.Fault{{Kind: sim.FaultCount, Path: "sim-pools", Total: 4}},
			want: "gsl: GET /v1/sim-pools: listing inconsistent after 3 attempts: page 1 has 3 pools, want 4 (count 4)", kind: &provider.ListingError{}},
		{name: "pool twice", faults: []sim.Fault{{Kind: sim.FaultDup, Path: "sim-pools"}},
			want: "gsl: GET /v1/sim-pools: listing inconsistent after 3 attempts: pool POOL listed twice (page 1)", kind: &provider.ListingError{}},
		{name: "pools redirect", faults: []sim.Fault{{Kind: sim.FaultRedirect, Path: "sim-pools", Location: "http://other.example:8080/"}},
			want: "gsl: GET /v1/sim-pools page 1: HTTP 302 redirect to other.example:8080 not followed (check the endpoint)", kind: &provider.RedirectError{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ts := newSim(t, 50, 3, sim.Options{Keys: keys})
			for _, f := range tt.faults {
				s.AddFault(f)
			}
			var logs bytes.Buffer
			c := newClient(t, gsl.Options{Endpoint: ts.URL, AK: "AK1", SK: "SK1", PageSize: 10,
				Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			snap, err := c.Fetch(context.Background())
			if tt.want == "" {
				require.NoError(t, err)
				require.Len(t, snap.Cards, 50)
				require.Len(t, snap.Pools, 3)
				seen := map[string]bool{}
				for _, card := range snap.Cards {
					require.False(t, seen[card.ID])
					seen[card.ID] = true
				}
				require.Contains(t, logs.String(), "provider listing inconsistent, fetching it again")
				return
			}
			require.Empty(t, snap.Cards, "no partial listing")
			require.Empty(t, snap.Pools)
			want := strings.Replace(tt.want, "HOST", strings.TrimPrefix(ts.URL, "http://"), 1)
			want = strings.Replace(want, "POOL", strconv.FormatInt(s.Fleet().PoolIDs()[0], 10), 1)
			require.ErrorContains(t, err, want) // PageErrors add the request id
			require.True(t, strings.HasPrefix(err.Error(), want), err.Error())
			switch tt.kind.(type) {
			case *provider.PageError:
				var e *provider.PageError
				require.ErrorAs(t, err, &e)
			case *provider.ListingError:
				var e *provider.ListingError
				require.ErrorAs(t, err, &e)
				require.Equal(t, 3, e.Attempts)
				require.Equal(t, 2, strings.Count(logs.String(), "provider listing inconsistent, fetching it again"))
			case *provider.RedirectError:
				var e *provider.RedirectError
				require.ErrorAs(t, err, &e)
				require.NotContains(t, err.Error(), "s3cr3t")
				require.NotContains(t, err.Error(), "Signature")
				require.Zero(t, s.Stats().ByPath["elsewhere"], "the redirect was not followed")
				require.Equal(t, 1, s.Stats().Faults, "a redirect is not retried")
			}
		})
	}
}

// A card added or removed between page fetches: offset paging shows one card
// twice or misses one; the next fetch is complete.
func TestFleetChangingBetweenPages(t *testing.T) {
	s, ts := newSim(t, 50, 3, sim.Options{})
	added := false
	c := newClient(t, gsl.Options{Endpoint: ts.URL, Token: "t", PageSize: 10, Concurrency: 1,
		HTTPClient: &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
			if !added && r.URL.Query().Get("offset") == "3" {
				added = true
				require.NoError(t, s.Fleet().RemoveCard(s.Fleet().CardICCIDs()[0]))
			}
			return http.DefaultTransport.RoundTrip(r)
		})}})
	snap, err := c.Fetch(context.Background())
	require.NoError(t, err)
	require.Len(t, snap.Cards, 49)
	require.True(t, added)
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// The configured *http.Client is copied, not changed, and its copy does not
// follow redirects.
func TestConfiguredHTTPClientKept(t *testing.T) {
	_, ts := newSim(t, 10, 1, sim.Options{})
	hc := &http.Client{}
	c := newClient(t, gsl.Options{Endpoint: ts.URL, Token: "t", HTTPClient: hc})
	_, err := c.Fetch(context.Background())
	require.NoError(t, err)
	require.Nil(t, hc.CheckRedirect)
}

func TestIAMRedirectNotFollowed(t *testing.T) {
	s, ts := newSim(t, 10, 1, sim.Options{IAMDomain: "acme", IAMUser: "ops", IAMPassword: "pw"})
	iam := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, ts.URL+"/v3/auth/tokens?sig=SECRET", http.StatusTemporaryRedirect)
	}))
	defer iam.Close()
	c := newClient(t, gsl.Options{Endpoint: ts.URL, IAM: &gsl.IAMAuth{Endpoint: iam.URL, Domain: "acme", User: "ops", Password: "pw"}})
	_, err := c.Fetch(context.Background())
	require.EqualError(t, err, "gsl: iam POST /v3/auth/tokens: HTTP 307 redirect to "+strings.TrimPrefix(ts.URL, "http://")+" not followed (check the endpoint)")
	require.Zero(t, s.IssuedTokens())
}

// cardValue fetches the fleet with one card's wire rendering patched.
func cardValue(t *testing.T, patch sim.CardPatch) (fleet.Card, error) {
	t.Helper()
	s, ts := newSim(t, 12, 1, sim.Options{})
	iccid := s.Fleet().CardICCIDs()[1]
	require.NoError(t, s.Fleet().PatchCard(iccid, sim.CardPatch{Raw: raw("imei", `"867530900000002"`)})) // a device, unless the case says otherwise
	require.NoError(t, s.Fleet().PatchCard(iccid, patch))
	c := newClient(t, gsl.Options{Endpoint: ts.URL, Token: "t", PageSize: 10, Retries: -1})
	snap, err := c.Fetch(context.Background())
	if err != nil {
		require.Empty(t, snap.Cards)
		return fleet.Card{}, err
	}
	require.Len(t, snap.Cards, 12)
	require.Equal(t, cardID(1), snap.Cards[1].ID)
	return snap.Cards[1], nil
}

// A value the provider left out or gave as null is unknown, never 0.
func TestCardValuesUnknown(t *testing.T) {
	bits := fleet.CardFields
	tests := []struct {
		name  string
		patch sim.CardPatch
		want  fleet.Unknown
		check func(t *testing.T, c fleet.Card)
	}{
		{"as simulated", sim.CardPatch{}, bits("device_status"), func(t *testing.T, c fleet.Card) {
			require.Equal(t, fleet.StatusActive, c.Status)
			require.Equal(t, c.FlowUsed+c.FlowLeft, c.FlowTotal)
			require.Positive(t, c.FlowTotal)
		}},
		{"flow_left null", sim.CardPatch{Raw: raw("flow_left", "null")}, bits("device_status", "flow_left", "flow_total"), func(t *testing.T, c fleet.Card) {
			require.Zero(t, c.FlowLeft)
			require.Zero(t, c.FlowTotal)
			require.Positive(t, c.FlowUsed)
		}},
		{"flow_left missing", sim.CardPatch{Unset: []string{"flow_left"}}, bits("device_status", "flow_left", "flow_total"), nil},
		{"flow_used null", sim.CardPatch{Raw: raw("flow_used", "null")}, bits("device_status", "flow_used", "flow_total"), nil},
		{"both flows null", sim.CardPatch{Raw: raw("flow_used", "null", "flow_left", "null")}, bits("device_status", "flow_used", "flow_left", "flow_total"), nil},
		{"unlisted sim_status", sim.CardPatch{Raw: raw("sim_status", "99")}, bits("device_status", "status"), func(t *testing.T, c fleet.Card) {
			require.Equal(t, "", c.Status)
			require.Equal(t, 99, c.StatusCode)
		}},
		{"sim_status 12 (not in the table)", sim.CardPatch{Raw: raw("sim_status", "12")}, bits("device_status", "status"), nil},
		{"operator_status null", sim.CardPatch{Raw: raw("operator_status", "null")}, bits("device_status", "operator_status"), func(t *testing.T, c fleet.Card) {
			require.Zero(t, c.OperatorStatus, "not -1: unknown")
		}},
		{"operator_status missing", sim.CardPatch{Unset: []string{"operator_status"}}, bits("device_status", "operator_status"), nil},
		{"device_status given", sim.CardPatch{Raw: raw("device_status", "3")}, 0, func(t *testing.T, c fleet.Card) {
			require.Equal(t, 3, c.DeviceStatus)
		}},
		{"imei null", sim.CardPatch{Raw: raw("imei", "null")}, bits("device_status", "imei"), func(t *testing.T, c fleet.Card) {
			require.Empty(t, c.IMEI)
		}},
		{"imei missing", sim.CardPatch{Unset: []string{"imei"}}, bits("device_status", "imei"), nil},
		{"imei given", sim.CardPatch{Raw: raw("imei", `"867530900000001"`)}, bits("device_status"), func(t *testing.T, c fleet.Card) {
			require.Equal(t, "867530900000001", c.IMEI)
		}},
		{"act_date null", sim.CardPatch{Raw: raw("act_date", "null", "imei", `"1"`)}, bits("device_status", "act_date"), func(t *testing.T, c fleet.Card) {
			require.True(t, c.ActDate.IsZero())
		}},
		{"expire_time missing", sim.CardPatch{Unset: []string{"expire_time"}, Raw: raw("imei", `"1"`)}, bits("device_status", "expire_time"), nil},
		{"overdrawn card", sim.CardPatch{Raw: raw("flow_used", "120", "flow_left", "-20")}, bits("device_status"), func(t *testing.T, c fleet.Card) {
			require.Equal(t, 100.0, c.FlowTotal)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := cardValue(t, tt.patch)
			require.NoError(t, err)
			require.Equal(t, tt.want, c.Unknown, "%v", fleet.UnknownNames(fleet.EntityCard, c.Unknown))
			require.NoError(t, c.Validate())
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

// Absurd or missing identifying values fail the page, naming the record,
// its id and the field.
func TestCardValuesRejected(t *testing.T) {
	const at = "gsl: GET /v1/sim-cards page 1: bad page: sim_cards[1] (sim_card_id 4900000000002): "
	tests := []struct {
		name  string
		patch sim.CardPatch
		want  string
	}{
		{"flow_used 1.7e308", sim.CardPatch{Raw: raw("flow_used", "1.7e308")}, at + "flow_used: 1.7e+308 MB is beyond any real figure (limit 1e+10 MB)"},
		{"flow_left 1.7e308", sim.CardPatch{Raw: raw("flow_left", "1.7e308")}, at + "flow_left: 1.7e+308 MB is beyond any real figure (limit 1e+10 MB)"},
		{"flow_left -1.7e308", sim.CardPatch{Raw: raw("flow_left", "-1.7e308")}, at + "flow_left: -1.7e+308 MB is beyond any real figure (limit 1e+10 MB)"},
		{"flows each possible, total not", sim.CardPatch{Raw: raw("flow_used", "6e9", "flow_left", "6e9")}, at + "flow_total: 1.2e+10 MB is beyond any real figure (limit 1e+10 MB)"},
		{"flow_used negative", sim.CardPatch{Raw: raw("flow_used", "-3")}, at + "flow_used: -3 MB is negative"},
		{"flow_left beyond float64", sim.CardPatch{Raw: raw("flow_left", "1e400")}, "gsl: GET /v1/sim-cards page 1: bad page: json: cannot unmarshal number 1e400 into Go struct field simDevice.sim_cards.flow_left of type float64"},
		{"flow_used a string", sim.CardPatch{Raw: raw("flow_used", `"12"`)}, "gsl: GET /v1/sim-cards page 1: bad page: json: cannot unmarshal string into Go struct field simDevice.sim_cards.flow_used of type float64"},
		{"sim_status null", sim.CardPatch{Raw: raw("sim_status", "null")}, at + "sim_status: missing or null"},
		{"sim_status missing", sim.CardPatch{Unset: []string{"sim_status"}}, at + "sim_status: missing or null"},
		{"sim_status beyond int", sim.CardPatch{Raw: raw("sim_status", "99999999999999999999")}, "sim_status of type int"},
		{"sim_card_id missing", sim.CardPatch{Unset: []string{"sim_card_id"}}, "gsl: GET /v1/sim-cards page 1: bad page: sim_cards[1]: sim_card_id: missing or null"},
		{"sim_card_id null", sim.CardPatch{Raw: raw("sim_card_id", "null")}, "gsl: GET /v1/sim-cards page 1: bad page: sim_cards[1]: sim_card_id: missing or null"},
		{"sim_card_id 0", sim.CardPatch{Raw: raw("sim_card_id", "0")}, "gsl: GET /v1/sim-cards page 1: bad page: sim_cards[1] (sim_card_id 0): sim_card_id: 0 is not a card id"},
		{"sim_card_id beyond int64", sim.CardPatch{Raw: raw("sim_card_id", "99999999999999999999")}, "json: cannot unmarshal number 99999999999999999999 into Go struct field simDevice.sim_cards.sim_card_id of type int64"},
		{"expire_time not a time", sim.CardPatch{Raw: raw("expire_time", `"yesterday"`)}, at + `expire_time: "yesterday" is not a timestamp`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := cardValue(t, tt.patch)
			var pe *provider.PageError
			require.ErrorAs(t, err, &pe)
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestPoolValues(t *testing.T) {
	bits := func(names ...string) (u fleet.Unknown) {
		for _, n := range names {
			u |= fleet.PoolField(n)
		}
		return u
	}
	tests := []struct {
		name string
		raw  map[string]json.RawMessage
		kill []string
		want fleet.Unknown
		err  string // after "gsl: GET /v1/sim-pools page 1: bad page: pools[0] (id N): "
	}{
		{name: "as simulated"},
		{name: "flows null", raw: raw("flow_total", "null", "flow_used", "null", "flow_left", "null"), want: bits("flow_total", "flow_used", "flow_left")},
		{name: "counts null", raw: raw("quantity", "null", "activated_sim_quantity", "null", "inactive_sim_quantity", "null", "disassembled_sim_quantity", "null"),
			want: bits("quantity", "activated", "inactive", "disassembled")},
		{name: "counts missing", kill: []string{"quantity", "inactive_sim_quantity"}, want: bits("quantity", "inactive")},
		{name: "overdraft", raw: raw("flow_total", "60", "flow_used", "102.59", "flow_left", "-42.59")},
		{name: "flow_used 1e17", raw: raw("flow_used", "1e17"), err: "flow_used: 1e+17 MB is beyond any real figure (limit 1e+16 MB)"},
		{name: "flow_total negative", raw: raw("flow_total", "-1"), err: "flow_total: -1 MB is negative"},
		{name: "quantity negative", raw: raw("quantity", "-1"), err: "quantity: -1 is negative"},
		{name: "id missing", kill: []string{"id"}, err: "id: missing or null"},
		{name: "quantity beyond int", raw: raw("quantity", "1e30"), err: "json: cannot unmarshal number 1e30"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ts := newSim(t, 20, 2, sim.Options{})
			id := s.Fleet().PoolIDs()[0]
			require.NoError(t, s.Fleet().PatchPool(id, sim.PoolPatch{Raw: tt.raw, Unset: tt.kill}))
			c := newClient(t, gsl.Options{Endpoint: ts.URL, Token: "t", Retries: -1})
			snap, err := c.Fetch(context.Background())
			if tt.err != "" {
				var pe *provider.PageError
				require.ErrorAs(t, err, &pe)
				at := "gsl: GET /v1/sim-pools page 1: bad page: pools[0] (id " + strconv.FormatInt(id, 10) + "): "
				if strings.HasPrefix(tt.err, "id:") {
					at = "gsl: GET /v1/sim-pools page 1: bad page: pools[0]: "
				}
				if strings.HasPrefix(tt.err, "json:") {
					at = "gsl: GET /v1/sim-pools page 1: bad page: "
				}
				require.ErrorContains(t, err, at+tt.err)
				return
			}
			require.NoError(t, err)
			require.Len(t, snap.Pools, 2)
			p := snap.Pools[0]
			require.Equal(t, tt.want, p.Unknown, "%v", fleet.UnknownNames(fleet.EntityPool, p.Unknown))
			require.NoError(t, p.Validate())
			if tt.want.Has(fleet.PoolField("flow_total")) {
				require.Zero(t, p.FlowTotal)
			}
		})
	}
}

// Retried page errors stay Temporary and keep their retries.
func TestBadPageRetriedThenFixed(t *testing.T) {
	s, ts := newSim(t, 20, 1, sim.Options{})
	s.AddFault(sim.Fault{Kind: sim.FaultBody, Path: "sim-cards", Page: 2, Body: `{}`, Count: 2})
	c := newClient(t, gsl.Options{Endpoint: ts.URL, Token: "t", PageSize: 10, Retries: 2, Backoff: time.Millisecond})
	snap, err := c.Fetch(context.Background())
	require.NoError(t, err)
	require.Len(t, snap.Cards, 20)
	require.Equal(t, 2, s.Stats().Faults)
}
