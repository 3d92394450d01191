package linkcard_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/provider"
	"github.com/simwatch/simwatch/internal/provider/linkcard"
	"github.com/simwatch/simwatch/internal/sim"
)

// raw is sim.Raw, short for the tables below.
func raw(kv ...string) map[string]json.RawMessage { return sim.Raw(kv...) }

func envelope(data string) string {
	return `{"Code":"200","Success":true,"RequestId":"R-1","Data":` + data + `}`
}

func TestHostileListings(t *testing.T) {
	tests := []struct {
		name   string
		faults []sim.Fault
		want   string // the error's start; "" for success
		kind   any
		cards  int // on success
	}{
		{name: "no Data", faults: []sim.Fault{{Kind: sim.FaultBody, Path: "linkcard", Page: 1, Body: `{"Code":"200","Success":true,"RequestId":"R-1"}`}},
			want: "linkcard: ListCardInfo page 1: bad page: Data: missing or null (request id R-1)", kind: &provider.PageError{}},
		{name: "{}", faults: []sim.Fault{{Kind: sim.FaultBody, Path: "linkcard", Page: 1, Body: `{}`}},
			want: "linkcard: ListCardInfo page 1: bad page: Data: missing or null", kind: &provider.PageError{}},
		{name: "no Total", faults: []sim.Fault{{Kind: sim.FaultBody, Path: "linkcard", Page: 2, Body: envelope(`{"PageNo":2,"PageSize":10,"PageCount":3,"List":[]}`)}},
			want: "linkcard: ListCardInfo page 2: bad page: Data.Total: missing or null (request id R-1)", kind: &provider.PageError{}},
		{name: "no PageCount", faults: []sim.Fault{{Kind: sim.FaultBody, Path: "linkcard", Page: 2, Body: envelope(`{"PageNo":2,"PageSize":10,"Total":30,"List":[]}`)}},
			want: "linkcard: ListCardInfo page 2: bad page: Data.PageCount: missing or null", kind: &provider.PageError{}},
		{name: "no List", faults: []sim.Fault{{Kind: sim.FaultBody, Path: "linkcard", Page: 2, Body: envelope(`{"PageNo":2,"PageSize":10,"PageCount":3,"Total":30}`)}},
			want: "linkcard: ListCardInfo page 2: bad page: Data.List: missing", kind: &provider.PageError{}},
		{name: "Total beyond int", faults: []sim.Fault{{Kind: sim.FaultBody, Path: "linkcard", Page: 1, Body: envelope(`{"PageCount":3,"Total":1e30,"List":[]}`)}},
			want: "linkcard: ListCardInfo page 1: bad page: json: cannot unmarshal number 1e30", kind: &provider.PageError{}},
		{name: "List null while Total says 30", faults: []sim.Fault{{Kind: sim.FaultBody, Path: "linkcard", Page: 2, Body: envelope(`{"PageNo":2,"PageSize":10,"PageCount":3,"Total":30,"List":null}`)}},
			want: "linkcard: ListCardInfo: listing inconsistent after 3 attempts: page 2 has 0 cards, want 10 (Total 30)", kind: &provider.ListingError{}},
		{name: "List null and Total 0", faults: []sim.Fault{{Kind: sim.FaultBody, Path: "linkcard", Page: 1, Body: envelope(`{"PageNo":1,"PageSize":10,"PageCount":0,"Total":0,"List":null}`)}}},
		{name: "Total lower than the fleet", faults: []sim.Fault{{Kind: sim.FaultCount, Path: "linkcard", Total: 20}},
			want: "linkcard: ListCardInfo: listing inconsistent after 3 attempts: page 3, past the Total, has 10 cards (Total 20)", kind: &provider.ListingError{}},
		{name: "Total not a page multiple", faults: []sim.Fault{{Kind: sim.FaultCount, Path: "linkcard", Total: 25}},
			want: "linkcard: ListCardInfo: listing inconsistent after 3 attempts: page 3 has 10 cards, want 5 (Total 25)", kind: &provider.ListingError{}},
		{name: "PageCount disagrees with Total", faults: []sim.Fault{{Kind: sim.FaultCount, Path: "linkcard", Total: 30, PageCount: 5}},
			want: "linkcard: ListCardInfo: listing inconsistent after 3 attempts: page 1 says PageCount 5, Total 30 needs 3", kind: &provider.ListingError{}},
		{name: "a page misses a card", faults: []sim.Fault{{Kind: sim.FaultDrop, Path: "linkcard", Page: 2}},
			want: "linkcard: ListCardInfo: listing inconsistent after 3 attempts: page 2 has 9 cards, want 10 (Total 30)", kind: &provider.ListingError{}},
		{name: "an id twice", faults: []sim.Fault{{Kind: sim.FaultDup, Path: "linkcard", Page: 3}},
			want: "linkcard: ListCardInfo: listing inconsistent after 3 attempts: card ICCID20 listed twice (page 3)", kind: &provider.ListingError{}},
		{name: "paging drifts", faults: []sim.Fault{{Kind: sim.FaultDrift, Path: "linkcard", Page: 2, Shift: -1}},
			want: "linkcard: ListCardInfo: listing inconsistent after 3 attempts: card ICCID9 listed twice (pages 1 and 2)", kind: &provider.ListingError{}},
		{name: "paging drifts once", faults: []sim.Fault{{Kind: sim.FaultDrift, Path: "linkcard", Page: 3, Shift: 1, Count: 1}}, cards: 30},
		{name: "redirect", faults: []sim.Fault{{Kind: sim.FaultRedirect, Path: "linkcard", Page: 1}},
			want: "linkcard: ListCardInfo page 1: HTTP 302 redirect to HOST not followed (check the endpoint)", kind: &provider.RedirectError{}},
		{name: "redirect elsewhere", faults: []sim.Fault{{Kind: sim.FaultRedirect, Status: 301, Path: "linkcard", Page: 2, Location: "https://signin.aliyun.example/?Signature=s3cr3t"}},
			want: "linkcard: ListCardInfo page 2: HTTP 301 redirect to signin.aliyun.example not followed (check the endpoint)", kind: &provider.RedirectError{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, url := newSim(t, 30)
			for _, f := range tt.faults {
				s.AddFault(f)
			}
			iccids := s.Fleet().CardICCIDs()
			var logs bytes.Buffer
			snap, err := newClient(t, url, func(o *linkcard.Options) {
				o.PageSize = 10
				o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			}).Fetch(context.Background())
			if tt.want == "" {
				require.NoError(t, err)
				require.Len(t, snap.Cards, tt.cards)
				return
			}
			require.Empty(t, snap.Cards)
			want := strings.Replace(tt.want, "HOST", strings.TrimPrefix(url, "http://"), 1)
			want = strings.Replace(want, "ICCID20", iccids[20], 1)
			want = strings.Replace(want, "ICCID9", iccids[9], 1)
			require.True(t, strings.HasPrefix(err.Error(), want), err.Error())
			require.NotContains(t, err.Error(), "secret-test")
			switch tt.kind.(type) {
			case *provider.PageError:
				var e *provider.PageError
				require.ErrorAs(t, err, &e)
			case *provider.ListingError:
				var e *provider.ListingError
				require.ErrorAs(t, err, &e)
				require.Equal(t, 2, strings.Count(logs.String(), "provider listing inconsistent"))
			case *provider.RedirectError:
				var e *provider.RedirectError
				require.ErrorAs(t, err, &e)
				require.NotContains(t, err.Error(), "s3cr3t")
				require.NotContains(t, err.Error(), "Signature")
				require.Zero(t, s.Stats().ByPath["elsewhere"])
				require.Equal(t, 1, s.Stats().Faults, "not retried")
			}
		})
	}
}

// pooled returns the simulator, its URL, and the ICCID of a card that draws
// on a pool.
func pooled(t *testing.T) (*sim.Server, string, string) {
	t.Helper()
	s, url := newSim(t, 30)
	snap, err := newClient(t, url, nil).Fetch(context.Background())
	require.NoError(t, err)
	for _, c := range snap.Cards {
		if c.PoolID != "" {
			return s, url, c.ICCID
		}
	}
	t.Fatal("no pooled card")
	return nil, "", ""
}

func TestCardValues(t *testing.T) {
	card := fleet.CardFields
	pool := fleet.PoolFields
	tests := []struct {
		name  string
		patch sim.CardPatch
		card  fleet.Unknown
		pool  fleet.Unknown
		check func(t *testing.T, c fleet.Card, p fleet.Pool)
	}{
		{name: "as simulated", check: func(t *testing.T, c fleet.Card, p fleet.Pool) {
			require.Positive(t, c.FlowTotal)
			require.Positive(t, p.FlowTotal)
		}},
		{name: "PeriodRestFlow missing", patch: sim.CardPatch{Unset: []string{"PeriodRestFlow"}}, card: card("flow_left")},
		{name: "PeriodRestFlow null", patch: sim.CardPatch{Raw: raw("PeriodRestFlow", "null")}, card: card("flow_left")},
		{name: "PeriodRestFlow empty", patch: sim.CardPatch{Raw: raw("PeriodRestFlow", `""`)}, card: card("flow_left")},
		{name: "PeriodAddFlow null", patch: sim.CardPatch{Raw: raw("PeriodAddFlow", "null")}, card: card("flow_used"), pool: pool("flow_used", "flow_left"),
			check: func(t *testing.T, c fleet.Card, p fleet.Pool) {
				require.Zero(t, p.FlowUsed, "no partial sum")
				require.Zero(t, p.FlowLeft)
				require.Positive(t, p.FlowTotal)
			}},
		{name: "DataLevel missing", patch: sim.CardPatch{Unset: []string{"DataLevel"}}, card: card("flow_total"), pool: pool("flow_total", "flow_left")},
		{name: "unlisted Status", patch: sim.CardPatch{Raw: raw("Status", `"77"`)}, card: card("status"), pool: pool("activated", "inactive", "disassembled"),
			check: func(t *testing.T, c fleet.Card, p fleet.Pool) {
				require.Equal(t, "", c.Status)
				require.Equal(t, 77, c.StatusCode)
				require.Positive(t, p.Quantity, "members are still counted")
			}},
		{name: "ExpireTime missing", patch: sim.CardPatch{Unset: []string{"ExpireTime"}}, card: card("expire_time"), pool: pool("expired_time")},
		{name: "ActiveTime empty", patch: sim.CardPatch{Raw: raw("ActiveTime", `""`)}, card: card("act_date")},
		{name: "OsStatus missing", patch: sim.CardPatch{Unset: []string{"OsStatus"}}, card: card("operator_status")},
		{name: "OsStatus null", patch: sim.CardPatch{Raw: raw("OsStatus", "null")}, card: card("operator_status")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, url, iccid := pooled(t)
			require.NoError(t, s.Fleet().PatchCard(iccid, tt.patch))
			snap, err := newClient(t, url, nil).Fetch(context.Background())
			require.NoError(t, err)
			var c fleet.Card
			for _, x := range snap.Cards {
				if x.ID == iccid {
					c = x
				}
			}
			require.Equal(t, tt.card, c.Unknown, "%v", fleet.UnknownNames(fleet.EntityCard, c.Unknown))
			var p fleet.Pool
			for _, x := range snap.Pools {
				require.NoError(t, x.Validate())
				if x.ID == c.PoolID {
					p = x
				} else {
					require.Zero(t, x.Unknown)
				}
			}
			require.Equal(t, tt.pool, p.Unknown, "%v", fleet.UnknownNames(fleet.EntityPool, p.Unknown))
			if tt.check != nil {
				tt.check(t, c, p)
			}
		})
	}
}

func TestCardValuesRejected(t *testing.T) {
	tests := []struct {
		name  string
		patch sim.CardPatch
		want  string // after "linkcard: ListCardInfo page 1: bad page: List[i] (Iccid X): "
	}{
		{"DataLevel of 10^21 TB", sim.CardPatch{Raw: raw("DataLevel", `"1000000000000000000000TB"`)}, `DataLevel: "1000000000000000000000TB" is beyond any real figure (limit 1e+16 MB)`},
		{"DataLevel of a thousand digits", sim.CardPatch{Raw: raw("DataLevel", `"1`+strings.Repeat("0", 1000)+`MB"`)}, `DataLevel: "10000000000000000000"…"0000000000MB" is beyond any real figure`},
		{"PeriodAddFlow beyond a card", sim.CardPatch{Raw: raw("PeriodAddFlow", `"20000TB"`)}, "flow_used: 2.097152e+10 MB is beyond any real figure (limit 1e+10 MB)"},
		{"PeriodAddFlow not a flow", sim.CardPatch{Raw: raw("PeriodAddFlow", `"abc"`)}, `PeriodAddFlow: "abc" is not a flow amount`},
		{"PeriodRestFlow NaN", sim.CardPatch{Raw: raw("PeriodRestFlow", `"NaNMB"`)}, `PeriodRestFlow: "NaNMB" is not a flow amount`},
		{"DataLevel negative", sim.CardPatch{Raw: raw("DataLevel", `"-5MB"`)}, "flow_total: -5 MB is negative"},
		{"Status missing", sim.CardPatch{Unset: []string{"Status"}}, "Status: missing or null"},
		{"Status empty", sim.CardPatch{Raw: raw("Status", `""`)}, "Status: missing or null"},
		{"Status not a code", sim.CardPatch{Raw: raw("Status", `"abc"`)}, `Status: "abc" is not a status code`},
		{"OsStatus not a code", sim.CardPatch{Raw: raw("OsStatus", `"x"`)}, `OsStatus: "x" is not a status code`},
		{"ExpireTime not a time", sim.CardPatch{Raw: raw("ExpireTime", `"soon"`)}, `ExpireTime: "soon" is not yyyy-MM-dd HH:mm:ss`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, url := newSim(t, 30)
			iccid := s.Fleet().CardICCIDs()[4]
			require.NoError(t, s.Fleet().PatchCard(iccid, tt.patch))
			_, err := newClient(t, url, func(o *linkcard.Options) { o.Retries = -1 }).Fetch(context.Background())
			var pe *provider.PageError
			require.ErrorAs(t, err, &pe)
			require.ErrorContains(t, err, "linkcard: ListCardInfo page 1: bad page: List[4] (Iccid "+iccid+"): "+tt.want)
		})
	}
	for name, tt := range map[string]struct {
		patch sim.CardPatch
		want  string
	}{
		"Iccid missing":    {sim.CardPatch{Unset: []string{"Iccid"}}, "linkcard: ListCardInfo page 1: bad page: List[4]: Iccid: missing or null"},
		"Status a number":  {sim.CardPatch{Raw: raw("Status", `35`)}, "json: cannot unmarshal number into Go struct field cardDTO.Data.List.Status of type string"},
		"DataLevel number": {sim.CardPatch{Raw: raw("DataLevel", `30`)}, "json: cannot unmarshal number"},
	} {
		t.Run(name, func(t *testing.T) {
			s, url := newSim(t, 30)
			require.NoError(t, s.Fleet().PatchCard(s.Fleet().CardICCIDs()[4], tt.patch))
			_, err := newClient(t, url, func(o *linkcard.Options) { o.Retries = -1 }).Fetch(context.Background())
			var pe *provider.PageError
			require.ErrorAs(t, err, &pe)
			require.ErrorContains(t, err, tt.want)
		})
	}
}
