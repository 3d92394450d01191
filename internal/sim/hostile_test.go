package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// answer is one HTTP answer from the simulator.
type answer struct {
	code   int
	header http.Header
	body   []byte
}

func do(t *testing.T, h http.Handler, method, url, body string) answer {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, url, strings.NewReader(body)))
	return answer{rec.Code, rec.Header(), rec.Body.Bytes()}
}

// obj decodes the answer generically, numbers as json.Number so that any
// value the wire carries (1e400 included) survives.
func (a answer) obj(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(a.body))
	d.UseNumber()
	require.NoError(t, d.Decode(&m), string(a.body))
	return m
}

func listingURL(path string, page int) string {
	switch path {
	case "sim-cards", "sim-pools":
		return fmt.Sprintf("/v1/%s?offset=%d&limit=10", path, page)
	default:
		return fmt.Sprintf("/?Action=ListCardInfo&Version=2021-05-20&PageNo=%d&PageSize=10", page)
	}
}

// page is a decoded listing page: its ids in order, its count, and for
// LinkCard its PageCount.
type page struct {
	ids       []string
	count     string
	pageCount string
	items     []map[string]any
}

func getPage(t *testing.T, h http.Handler, path string, n int) page {
	t.Helper()
	a := do(t, h, http.MethodGet, listingURL(path, n), "")
	require.Equal(t, http.StatusOK, a.code, string(a.body))
	m := a.obj(t)
	var p page
	var list []any
	switch path {
	case "sim-cards":
		list, p.count = m["sim_cards"].([]any), m["count"].(json.Number).String()
	case "sim-pools":
		list, p.count = m["pools"].([]any), m["count"].(json.Number).String()
	default:
		d := m["Data"].(map[string]any)
		list, p.count, p.pageCount = d["List"].([]any), d["Total"].(json.Number).String(), d["PageCount"].(json.Number).String()
	}
	p.ids = []string{}
	for _, it := range list {
		item := it.(map[string]any)
		p.items = append(p.items, item)
		switch path {
		case "sim-cards":
			p.ids = append(p.ids, item["iccid"].(string))
		case "sim-pools":
			p.ids = append(p.ids, item["id"].(json.Number).String())
		default:
			p.ids = append(p.ids, item["Iccid"].(string))
		}
	}
	return p
}

// hostileServer has 23 cards and 23 pools: pages of 10, 10 and 3.
func hostileServer() *Server {
	return NewServer(Options{Fleet: NewFleet(FleetOptions{Cards: 23, Pools: 23, Seed: 1})})
}

func allIDs(s *Server, path string) []string {
	if path == "sim-pools" {
		var out []string
		for _, id := range s.Fleet().PoolIDs() {
			out = append(out, strconv.FormatInt(id, 10))
		}
		return out
	}
	return s.Fleet().CardICCIDs()
}

func cat(parts ...[]string) []string {
	out := []string{}
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestListingMutationFaults(t *testing.T) {
	cases := []struct {
		name      string
		fault     string // as POSTed to /_sim/faults, without path
		page      int
		want      func(all []string) []string
		count     string
		pageCount string // LinkCard only
	}{
		{"drift -1 repeats the previous page's last card", `{"kind":"drift","shift":-1}`, 2,
			func(a []string) []string { return a[9:19] }, "23", "3"},
		{"drift +1 skips a card", `{"kind":"drift","shift":1}`, 2,
			func(a []string) []string { return a[11:21] }, "23", "3"},
		{"drift clamps at the start", `{"kind":"drift","shift":-1}`, 1,
			func(a []string) []string { return a[0:9] }, "23", "3"},
		{"drift clamps at the end", `{"kind":"drift","shift":2}`, 3,
			func(a []string) []string { return a[22:23] }, "23", "3"},
		{"drop defaults to one", `{"kind":"drop"}`, 2,
			func(a []string) []string { return a[10:19] }, "23", "3"},
		{"drop more than the page", `{"kind":"drop","drop":5}`, 3,
			func(a []string) []string { return []string{} }, "23", "3"},
		{"dup", `{"kind":"dup"}`, 2,
			func(a []string) []string { return cat(a[10:19], a[10:11]) }, "23", "3"},
		{"count above", `{"kind":"count","total":25}`, 1,
			func(a []string) []string { return a[0:10] }, "25", "3"},
		{"count zero", `{"kind":"count","total":0}`, 1,
			func(a []string) []string { return a[0:10] }, "0", "0"},
		{"count with page_count", `{"kind":"count","total":23,"page_count":7}`, 3,
			func(a []string) []string { return a[20:23] }, "23", "7"},
		{"another page is untouched", `{"kind":"dup","page":1}`, 2,
			func(a []string) []string { return a[10:20] }, "23", "3"},
	}
	for _, path := range []string{"sim-cards", "sim-pools", "linkcard"} {
		for _, tc := range cases {
			t.Run(path+"/"+tc.name, func(t *testing.T) {
				s := hostileServer()
				h := s.Handler()
				f := strings.TrimSuffix(tc.fault, "}") + `,"path":"` + path + `","count":1}`
				require.Equal(t, http.StatusNoContent, do(t, h, http.MethodPost, "/_sim/faults", f).code)
				all := allIDs(s, path)
				p := getPage(t, h, path, tc.page)
				require.Equal(t, tc.want(all), p.ids)
				require.Equal(t, tc.count, p.count)
				if path == "linkcard" {
					require.Equal(t, tc.pageCount, p.pageCount)
				}
				// Count 1: the fault has cleared itself (unless it never matched).
				again := getPage(t, h, path, tc.page)
				lo, hi := window(len(all), tc.page, 10)
				require.Equal(t, cat(all[lo:hi]), again.ids)
				require.Equal(t, "23", again.count)
			})
		}
	}
}

func TestListingMutationsSkipOtherPaths(t *testing.T) {
	s := hostileServer()
	h := s.Handler()
	s.AddFault(Fault{Kind: FaultDrop, Count: 1})
	a := do(t, h, http.MethodPost, "/v1/sim-cards/batch-daily-flow", `{"date":20261119,"iccids":["89860000000000000001"]}`)
	require.Equal(t, http.StatusOK, a.code, string(a.body))
	require.Zero(t, s.Stats().Faults, "a listing mutation does not match the daily API")
	require.Len(t, getPage(t, h, "sim-cards", 1).ids, 9, "and is still there for the listing")
	require.Len(t, getPage(t, h, "sim-cards", 1).ids, 10)
}

func TestBodyAndRedirectFaults(t *testing.T) {
	type req struct{ method, url, body string }
	reqs := map[string]req{
		"sim-cards":        {http.MethodGet, listingURL("sim-cards", 1), ""},
		"sim-pools":        {http.MethodGet, listingURL("sim-pools", 1), ""},
		"linkcard":         {http.MethodGet, listingURL("linkcard", 1), ""},
		"batch-daily-flow": {http.MethodPost, "/v1/sim-cards/batch-daily-flow", `{"month":"202611","iccids":["89860000000000000001"]}`},
		"stop":             {http.MethodPost, "/v1/sim-cards/0/stop", `{"down_up_switch":2,"iccid":"89860000000000000001"}`},
	}
	cases := []struct {
		name     string
		fault    string
		code     int
		body     string // exact body, when not empty
		location string // "" for none; "default" for the /_sim/elsewhere one
	}{
		{"empty object", `{"kind":"body","body":"{}"}`, 200, "{}", ""},
		{"null list", `{"kind":"body","body":"{\"limit\":10,\"offset\":2,\"count\":25,\"sim_cards\":null}"}`, 200,
			`{"limit":10,"offset":2,"count":25,"sim_cards":null}`, ""},
		{"html with a status", `{"kind":"body","status":503,"body":"<html>maintenance</html>"}`, 503, "<html>maintenance</html>", ""},
		{"redirect", `{"kind":"redirect"}`, 302, "", "default"},
		{"redirect elsewhere", `{"kind":"redirect","status":301,"location":"https://login.example.com/"}`, 301, "", "https://login.example.com/"},
	}
	for path, rq := range reqs {
		for _, tc := range cases {
			t.Run(path+"/"+tc.name, func(t *testing.T) {
				s := hostileServer()
				h := s.Handler()
				f := strings.TrimSuffix(tc.fault, "}") + `,"path":"` + path + `"}`
				require.Equal(t, http.StatusNoContent, do(t, h, http.MethodPost, "/_sim/faults", f).code)
				a := do(t, h, rq.method, rq.url, rq.body)
				require.Equal(t, tc.code, a.code)
				if tc.body != "" {
					require.Equal(t, tc.body, string(a.body))
					require.Contains(t, a.header.Get("Content-Type"), "application/json")
				}
				switch tc.location {
				case "":
					require.Empty(t, a.header.Get("Location"))
				case "default":
					loc := a.header.Get("Location")
					require.Equal(t, "/_sim/elsewhere"+strings.SplitN(rq.url, "?", 2)[0], strings.SplitN(loc, "?", 2)[0])
					require.True(t, strings.HasSuffix(rq.url, strings.TrimPrefix(loc, "/_sim/elsewhere")))
					// The login page that looks fine, whatever the method.
					for _, m := range []string{http.MethodGet, http.MethodPost} {
						e := do(t, h, m, loc, rq.body)
						require.Equal(t, http.StatusOK, e.code)
						require.Equal(t, map[string]any{}, e.obj(t))
					}
					require.Equal(t, 2, s.Stats().ByPath["elsewhere"])
				default:
					require.Equal(t, tc.location, a.header.Get("Location"))
				}
			})
		}
	}
}

func TestExistingFaultsOnEveryPath(t *testing.T) {
	paths := map[string]func(h http.Handler, t *testing.T) answer{
		"sim-cards": func(h http.Handler, t *testing.T) answer {
			return do(t, h, http.MethodGet, listingURL("sim-cards", 1), "")
		},
		"sim-pools": func(h http.Handler, t *testing.T) answer {
			return do(t, h, http.MethodGet, listingURL("sim-pools", 1), "")
		},
		"linkcard": func(h http.Handler, t *testing.T) answer {
			return do(t, h, http.MethodGet, listingURL("linkcard", 1), "")
		},
		"batch-daily-flow": func(h http.Handler, t *testing.T) answer {
			return do(t, h, http.MethodPost, "/v1/sim-cards/batch-daily-flow", `{"month":"202611","iccids":["89860000000000000001"]}`)
		},
	}
	cases := []struct {
		kind     string
		gsl, ali int // status at GSL paths and at LinkCard
		aliCode  string
	}{
		{FaultError, 500, 500, "InternalError"},
		{FaultThrottle, 403, 400, "Throttling.User"},
		{FaultMalformed, 200, 200, ""},
		{FaultFail, 500, 200, "SystemError"}, // fail is LinkCard's; GSL paths answer it as an error
		{FaultSlow, 200, 200, ""},
	}
	for path, call := range paths {
		for _, tc := range cases {
			t.Run(path+"/"+tc.kind, func(t *testing.T) {
				s := hostileServer()
				s.AddFault(Fault{Kind: tc.kind, Path: path, Count: 1})
				a := call(s.Handler(), t)
				want := tc.gsl
				if path == "linkcard" {
					want = tc.ali
				}
				require.Equal(t, want, a.code, string(a.body))
				require.Equal(t, 1, s.Stats().Faults)
				if tc.kind == FaultMalformed {
					require.False(t, json.Valid(a.body))
				} else {
					require.True(t, json.Valid(a.body), string(a.body))
				}
				if path == "linkcard" && tc.aliCode != "" {
					require.Equal(t, tc.aliCode, a.obj(t)["Code"])
				}
			})
		}
	}
}

func TestPostFaultRejectsUnknownKind(t *testing.T) {
	h := hostileServer().Handler()
	require.Equal(t, http.StatusBadRequest, do(t, h, http.MethodPost, "/_sim/faults", `{"kind":"dupe"}`).code)
	require.Equal(t, http.StatusNoContent, do(t, h, http.MethodPost, "/_sim/faults", `{"kind":"dup"}`).code)
}

func TestRawOverrides(t *testing.T) {
	huge := strings.Repeat("x", 1200*1024)
	const iccid = "89860000000000000012" // on page 2 of both listings
	cases := []struct {
		name  string
		patch string
		gsl   func(t *testing.T, card map[string]any)
		ali   func(t *testing.T, card map[string]any)
	}{
		{"null", `{"raw":{"flow_left":null}}`,
			func(t *testing.T, c map[string]any) {
				require.Contains(t, c, "flow_left")
				require.Nil(t, c["flow_left"])
			},
			func(t *testing.T, c map[string]any) { require.Contains(t, c, "flow_left") }},
		{"huge float", `{"raw":{"flow_used":1.7e308}}`,
			func(t *testing.T, c map[string]any) { require.Equal(t, json.Number("1.7e308"), c["flow_used"]) }, nil},
		{"beyond float64", `{"raw":{"flow_used":1e400}}`,
			func(t *testing.T, c map[string]any) { require.Equal(t, json.Number("1e400"), c["flow_used"]) }, nil},
		{"unknown status", `{"raw":{"sim_status":99,"Status":"99"}}`,
			func(t *testing.T, c map[string]any) { require.Equal(t, json.Number("99"), c["sim_status"]) },
			func(t *testing.T, c map[string]any) { require.Equal(t, "99", c["Status"]) }},
		{"unset", `{"unset":["flow_left","PeriodRestFlow"]}`,
			func(t *testing.T, c map[string]any) { require.NotContains(t, c, "flow_left") },
			func(t *testing.T, c map[string]any) { require.NotContains(t, c, "PeriodRestFlow") }},
		{"absurd data level", `{"raw":{"DataLevel":"1000000000000000000000TB"}}`,
			func(t *testing.T, c map[string]any) { require.Equal(t, "1000000000000000000000TB", c["DataLevel"]) },
			func(t *testing.T, c map[string]any) { require.Equal(t, "1000000000000000000000TB", c["DataLevel"]) }},
		{"huge string", `{"raw":{"customer_attribute1":"` + huge + `"}}`,
			func(t *testing.T, c map[string]any) { require.Equal(t, huge, c["customer_attribute1"]) }, nil},
		{"with a normal field", `{"sim_status":14,"raw":{"device_status":7}}`,
			func(t *testing.T, c map[string]any) {
				require.Equal(t, json.Number("14"), c["sim_status"])
				require.Equal(t, json.Number("7"), c["device_status"])
			},
			func(t *testing.T, c map[string]any) { require.Equal(t, "35", c["Status"]) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := hostileServer()
			h := s.Handler()
			before := map[string]page{"sim-cards": getPage(t, h, "sim-cards", 2), "linkcard": getPage(t, h, "linkcard", 2)}
			require.Equal(t, http.StatusNoContent, do(t, h, http.MethodPost, "/_sim/cards/"+iccid, tc.patch).code)
			for path, check := range map[string]func(*testing.T, map[string]any){"sim-cards": tc.gsl, "linkcard": tc.ali} {
				p := getPage(t, h, path, 2)
				require.Equal(t, before[path].ids, p.ids)
				for i, item := range p.items {
					if p.ids[i] != iccid {
						require.Equal(t, before[path].items[i], item, "other cards are untouched")
					} else if check != nil {
						check(t, item)
					}
				}
			}
			// Explicitly empty raw and unset clear the overrides.
			if !strings.Contains(tc.patch, "sim_status\":14") {
				require.Equal(t, http.StatusNoContent, do(t, h, http.MethodPost, "/_sim/cards/"+iccid, `{"raw":{},"unset":[]}`).code)
				require.Equal(t, before["sim-cards"], getPage(t, h, "sim-cards", 2))
				require.Equal(t, before["linkcard"], getPage(t, h, "linkcard", 2))
			}
		})
	}
}

func TestRawOverridesMerge(t *testing.T) {
	s := hostileServer()
	h := s.Handler()
	card := func() map[string]any { return getPage(t, h, "sim-cards", 1).items[0] }
	iccid := s.Fleet().CardICCIDs()[0]
	patch := func(p string) {
		require.Equal(t, http.StatusNoContent, do(t, h, http.MethodPost, "/_sim/cards/"+iccid, p).code)
	}
	patch(`{"raw":{"flow_left":-1}}`)
	patch(`{"raw":{"flow_used":-2}}`)
	require.Equal(t, json.Number("-1"), card()["flow_left"], "raw keys merge")
	require.Equal(t, json.Number("-2"), card()["flow_used"])
	patch(`{"unset":["flow_left"]}`)
	require.NotContains(t, card(), "flow_left", "the later unset wins")
	patch(`{"raw":{"flow_left":"3"}}`)
	require.Equal(t, "3", card()["flow_left"], "the later raw wins")
	patch(`{"unset":[]}`)
	require.Equal(t, "3", card()["flow_left"], "clearing unset keeps raw")
	patch(`{"raw":{}}`)
	require.IsType(t, json.Number(""), card()["flow_left"])

	require.Error(t, s.Fleet().PatchCard(iccid, CardPatch{Raw: map[string]json.RawMessage{"x": json.RawMessage("nope")}}))
	require.Equal(t, http.StatusBadRequest, do(t, h, http.MethodPost, "/_sim/cards/"+iccid, `{"raw":{"x":nope}}`).code)
}

func TestPoolRawOverrides(t *testing.T) {
	s := hostileServer()
	h := s.Handler()
	id := s.Fleet().PoolIDs()[1]
	before := getPage(t, h, "sim-pools", 1)
	require.Equal(t, http.StatusNoContent,
		do(t, h, http.MethodPost, fmt.Sprintf("/_sim/pools/%d", id), `{"raw":{"flow_left":null,"quantity":-5},"unset":["flow_total"]}`).code)
	p := getPage(t, h, "sim-pools", 1)
	require.Equal(t, before.items[0], p.items[0])
	pl := p.items[1]
	require.Nil(t, pl["flow_left"])
	require.Contains(t, pl, "flow_left")
	require.Equal(t, json.Number("-5"), pl["quantity"])
	require.NotContains(t, pl, "flow_total")
	require.Equal(t, http.StatusNoContent, do(t, h, http.MethodPost, fmt.Sprintf("/_sim/pools/%d", id), `{"raw":{},"unset":[]}`).code)
	require.Equal(t, before, getPage(t, h, "sim-pools", 1))
}

func TestAddCard(t *testing.T) {
	s := hostileServer()
	h := s.Handler()
	f := s.Fleet()

	iccid := f.AddCard(500)
	require.Equal(t, "89860000000000000024", iccid)
	p := getPage(t, h, "sim-cards", 3)
	require.Equal(t, "24", p.count)
	require.Equal(t, iccid, p.ids[3])
	c := p.items[3]
	require.Equal(t, json.Number("4900000000024"), c["sim_card_id"])
	require.Equal(t, json.Number("20"), c["sim_status"])
	require.Equal(t, json.Number("0"), c["flow_used"])
	require.Equal(t, json.Number("500"), c["flow_left"])
	require.Equal(t, "IoT 500MB monthly", c["price_plan_name"])
	lp := getPage(t, h, "linkcard", 3)
	require.Equal(t, "24", lp.count)
	require.Equal(t, "30", lp.items[3]["Status"])

	// Ids are never reused.
	require.NoError(t, f.RemoveCard(iccid))
	a := do(t, h, http.MethodPost, "/_sim/cards", `{"flow_total":30}`)
	require.Equal(t, http.StatusCreated, a.code)
	require.Equal(t, map[string]any{"iccid": "89860000000000000025"}, a.obj(t))
	a = do(t, h, http.MethodPost, "/_sim/cards", "")
	require.Equal(t, http.StatusCreated, a.code, "no body: a 100 MB plan")
	require.Equal(t, "89860000000000000026", a.obj(t)["iccid"])
	require.Equal(t, json.Number("100"), getPage(t, h, "sim-cards", 3).items[4]["flow_left"])
	require.Equal(t, http.StatusBadRequest, do(t, h, http.MethodPost, "/_sim/cards", `{"flow_total":-1}`).code)

	// A fleet growing mid-listing: page 3 now holds cards page 1 counted without.
	require.Equal(t, "25", getPage(t, h, "sim-cards", 1).count)

	// Its daily usage starts on the day it was added, and adds up.
	f.Advance(2)
	p = getPage(t, h, "sim-cards", 3)
	used, _ := p.items[3]["flow_used"].(json.Number).Float64()
	require.Positive(t, used)
	days := dailyFlow(t, h, "202611", "89860000000000000025")
	var sum float64
	for _, d := range days {
		if d.date < "20261120" {
			require.Zero(t, d.flow, d.date)
		}
		sum += d.flow
	}
	require.InDelta(t, used, sum, 0.005)
}

type dayFigure struct {
	date string
	flow float64
}

func dailyFlow(t *testing.T, h http.Handler, month, iccid string) []dayFigure {
	t.Helper()
	a := do(t, h, http.MethodPost, "/v1/sim-cards/batch-daily-flow", `{"month":"`+month+`","iccids":["`+iccid+`"]}`)
	require.Equal(t, http.StatusOK, a.code, string(a.body))
	var days []struct {
		Date    string `json:"date"`
		SimFlow []struct {
			Flow float64 `json:"flow"`
		} `json:"sim_flow"`
	}
	require.NoError(t, json.Unmarshal(a.body, &days))
	out := []dayFigure{}
	for _, d := range days {
		require.Len(t, d.SimFlow, 1)
		out = append(out, dayFigure{d.Date, d.SimFlow[0].Flow})
	}
	return out
}

func TestDailyLag(t *testing.T) {
	cases := []struct {
		lag  int
		last string // the last day published at day 0 (the start is 2026-11-20)
	}{
		{0, "20261119"},
		{1, "20261118"},
		{3, "20261116"},
	}
	for _, tc := range cases {
		t.Run(strconv.Itoa(tc.lag), func(t *testing.T) {
			f := NewFleet(FleetOptions{Cards: 23, Pools: 2, Seed: 1, DailyLag: tc.lag})
			h := NewServer(Options{Fleet: f}).Handler()
			// An active card well within its allowance, for the sums.
			var iccid string
			for _, c := range f.cards[:10] {
				if c.Status == gslInUse && c.Used < c.Total/2 {
					iccid = c.ICCID
					break
				}
			}
			require.NotEmpty(t, iccid)
			usedAt := func() float64 {
				for _, c := range getPage(t, h, "sim-cards", 1).items {
					if c["iccid"] == iccid {
						v, _ := c["flow_used"].(json.Number).Float64()
						return v
					}
				}
				t.Fatal("card not on page 1")
				return 0
			}
			used0 := usedAt()
			days := dailyFlow(t, h, "202611", iccid)
			require.Equal(t, tc.last, days[len(days)-1].date)

			// Advance the lag: the days as of the start are all published
			// now, and add up to the listing's flow_used then.
			f.Advance(tc.lag)
			days = dailyFlow(t, h, "202611", iccid)
			require.Equal(t, "20261119", days[len(days)-1].date)
			var sum float64
			for _, d := range days {
				sum += d.flow
			}
			require.InDelta(t, used0, sum, 0.005)

			// A single date not yet published answers an empty list.
			a := do(t, h, http.MethodPost, "/v1/sim-cards/batch-daily-flow", `{"date":20261120,"iccids":["`+iccid+`"]}`)
			require.Equal(t, "[]\n", string(a.body))
		})
	}
}

func TestCalmFleetDailyAfterAdvance(t *testing.T) {
	f := NewFleet(FleetOptions{Cards: 5, Seed: 1, Calm: true})
	h := NewServer(Options{Fleet: f}).Handler()
	iccid := f.CardICCIDs()[0]
	require.Empty(t, dailyFlow(t, h, "202612", iccid))
	f.Advance(1)
	days := dailyFlow(t, h, "202611", iccid)
	require.Equal(t, "20261120", days[len(days)-1].date)
	var sum float64
	for _, d := range days {
		sum += d.flow
	}
	used, _ := getPage(t, h, "sim-cards", 1).items[0]["flow_used"].(json.Number).Float64()
	require.Positive(t, used)
	require.InDelta(t, used, sum, 0.005, "a calm fleet's usage after the start is in the daily API too")
}
