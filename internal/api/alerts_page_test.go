package api

import (
	"cmp"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/rules"
)

// fillAlerts makes 12 alerts: card_low_flow firing on hw cards 0-5 and lc
// cards 0-2, card_empty pending on hw cards 0-1 and lc card 0; hw cards 2
// and 3 are tagged vip.
func fillAlerts(r *alertRig) {
	for i := range 6 {
		r.left("hw", i, 5)
	}
	for i := range 3 {
		r.left("lc", i, 5)
	}
	r.left("hw", 0, 1)
	r.left("hw", 1, 1)
	r.left("lc", 0, 1)
	r.tag("hw", 2, "vip,blue")
	r.tag("hw", 3, "vip")
	r.tag("hw", 4, "vipx")
	r.cycle()
}

func rigServer(t *testing.T, r *alertRig, withRules bool) *httptest.Server {
	o := Options{Store: r.store}
	if withRules {
		o.Rules = func() *rules.Set { return r.set }
	}
	ts := httptest.NewServer(New(o).Handler())
	t.Cleanup(ts.Close)
	return ts
}

func TestAlertsFilters(t *testing.T) {
	r := newAlertRig(t)
	fillAlerts(r)
	ts := rigServer(t, r, true)

	all := getAlerts(t, ts, nil)
	require.Len(t, all.Alerts, 12)
	require.Empty(t, all.Next, "one page holds them all")
	require.True(t, slices.IsSortedFunc(all.Alerts, func(a, b alertItem) int {
		return cmp.Or(cmp.Compare(a.Provider, b.Provider), cmp.Compare(a.Rule, b.Rule), cmp.Compare(a.EntityID, b.EntityID))
	}), "ordered by provider, rule, entity id")

	var a alertsAnswer
	get := func(q string) alertsAnswer {
		v, err := url.ParseQuery(q)
		require.NoError(t, err)
		a = getAlerts(t, ts, v)
		return a
	}
	get("rule=card_empty")
	require.Len(t, a.Alerts, 3)
	for _, x := range a.Alerts {
		require.Equal(t, "card_empty", x.Rule)
		require.Equal(t, rules.StatePending, x.State)
		require.Equal(t, "critical", x.Severity)
		require.Equal(t, map[string]string{"team": "core"}, x.Labels)
	}
	get("severity=warning")
	require.Len(t, a.Alerts, 9)
	for _, x := range a.Alerts {
		require.Equal(t, "card_low_flow", x.Rule)
	}
	get("provider=lc")
	require.Len(t, a.Alerts, 4)
	for _, x := range a.Alerts {
		require.Equal(t, "lc", x.Provider)
	}
	require.Len(t, get("state=pending").Alerts, 3)
	require.Len(t, get("state=firing").Alerts, 9)
	require.Empty(t, get("state=resolved").Alerts)
	get("tag=vip")
	require.Len(t, a.Alerts, 2, "cards 2 and 3 carry vip; vipx is another tag")
	require.ElementsMatch(t, []string{r.iccids["hw"][2], r.iccids["hw"][3]}, []string{a.Alerts[0].ICCID, a.Alerts[1].ICCID})
	require.Len(t, get("tag=blue").Alerts, 1)
	require.Len(t, get("label.team=core").Alerts, 3)
	require.Empty(t, get("label.team=nobody").Alerts)
	require.Empty(t, get("label.absent=x").Alerts)
	require.Len(t, get("provider=hw&severity=critical").Alerts, 2)
	require.Len(t, get("provider=hw&rule=card_low_flow&tag=vip&state=firing&label.team=radio").Alerts, 2)
	require.Empty(t, get("provider=lc&tag=vip").Alerts)
}

// Without the rule set, severity and labels come from each alert's firing
// event: a pending alert has none, and matches no severity.
func TestAlertsSeverityWithoutRuleSet(t *testing.T) {
	r := newAlertRig(t)
	fillAlerts(r)
	ts := rigServer(t, r, false)
	require.Len(t, getAlerts(t, ts, url.Values{"severity": {"warning"}}).Alerts, 9)
	require.Empty(t, getAlerts(t, ts, url.Values{"severity": {"critical"}}).Alerts, "pending alerts have not notified a severity yet")
	require.Len(t, getAlerts(t, ts, url.Values{"label.team": {"radio"}}).Alerts, 9)
	// Without the rule set, a rule name cannot be checked: no match, no error.
	require.Empty(t, getAlerts(t, ts, url.Values{"rule": {"card_gone"}}).Alerts)
}

// Paging by the last key gives every alert once, in order, whatever the
// page size, with and without a filter.
func TestAlertsPagingNoLossNoRepeat(t *testing.T) {
	r := newAlertRig(t)
	fillAlerts(r)
	ts := rigServer(t, r, true)
	all := getAlerts(t, ts, nil).keys()
	pageAll := func(q url.Values, limit int) (keys []string, pages int) {
		q.Set("limit", strconv.Itoa(limit))
		for {
			a := getAlerts(t, ts, q)
			pages++
			require.LessOrEqual(t, len(a.Alerts), limit)
			keys = append(keys, a.keys()...)
			if a.Next == "" {
				require.Less(t, len(a.Alerts), limit, "a full page says where to go on")
				return keys, pages
			}
			require.Len(t, a.Alerts, limit)
			require.Equal(t, a.Alerts[len(a.Alerts)-1].Key, a.Next)
			q.Set("after", a.Next)
			require.Less(t, pages, 20)
		}
	}
	for _, limit := range []int{1, 5, 7, 11, 12, 13, 1000} {
		keys, pages := pageAll(url.Values{}, limit)
		require.Equal(t, all, keys, "limit %d", limit)
		require.Equal(t, 12/limit+1, pages, "limit %d", limit)
	}
	keys, _ := pageAll(url.Values{"severity": {"warning"}}, 2)
	require.Equal(t, getAlerts(t, ts, url.Values{"severity": {"warning"}}).keys(), keys)
	require.Len(t, keys, 9)

	// Alerts come and go between pages: every alert there all along is
	// listed once, none twice.
	first := getAlerts(t, ts, url.Values{"limit": {"4"}})
	r.left("hw", 2, 80) // its card_low_flow resolves (listed on page 1 or 2)
	r.left("hw", 10, 5) // a new one
	r.left("lc", 20, 5) // and another on the second provider
	r.cycle()
	seen := first.keys()
	q := url.Values{"limit": {"4"}, "after": {first.Next}}
	for {
		a := getAlerts(t, ts, q)
		seen = append(seen, a.keys()...)
		if a.Next == "" {
			break
		}
		q.Set("after", a.Next)
	}
	now := getAlerts(t, ts, nil).keys()
	for _, k := range all {
		if slices.Contains(now, k) {
			require.Contains(t, seen, k, "an alert there all along is never lost")
		}
	}
	slices.Sort(seen)
	require.Equal(t, len(seen), len(slices.Compact(slices.Clone(seen))), "no alert twice")
}

func TestAlertsBadValues(t *testing.T) {
	r := newAlertRig(t)
	fillAlerts(r)
	ts := rigServer(t, r, true)
	for _, c := range []struct{ q, want string }{
		{"severity=urgent", `severity: \"urgent\" is not one of critical, warning, info`},
		{"severity=Critical", "is not one of critical, warning, info"},
		{"state=resolving", "is not one of firing, pending, resolved"},
		{"provider=nope", `provider: \"nope\" has no stored state; known: hw, lc`},
		{"rule=card_gone", `no rule named \"card_gone\"; rules: card_drained, card_empty, card_low_flow`},
		{"limit=0", "limit: 0 is out of range 1..1000"},
		{"limit=1001", "limit: 1001 is out of range 1..1000"},
		{"limit=-1", "out of range"},
		{"limit=ten", "is not a whole number"},
		{"limit=99999999999999999999", "is not a whole number"},
		{"after=not-a-key", "after: want an alert's key"},
		{"after=a/b/c/d/e", "after: want an alert's key"},
		{"after=a/%25zz/c/d", "after: want an alert's key"},
		{"severity=%zz", "query: invalid URL escape"},
		{"after=a/b/c/%00", "after: want an alert's key"},
		{"sevrity=critical", `unknown parameter \"sevrity\"`},
		{"severity=warning&severity=critical", "given 2 times"},
		{"label.=x", "label.NAME=VALUE"},
	} {
		code, body := do12(t, ts, req12{method: "GET", path: "/api/v1/alerts?" + c.q})
		require.Equal(t, 400, code, c.q)
		require.Contains(t, body, c.want, c.q)
		var e ErrorBody
		require.NoError(t, json.Unmarshal([]byte(body), &e), c.q)
	}
	// A cursor naming an alert that has gone still pages on.
	a := getAlerts(t, ts, url.Values{"after": {AlertKey("hw", "card_low_flow", "card", "0")}})
	require.NotEmpty(t, a.Alerts)
	for _, x := range a.Alerts {
		require.True(t, x.Provider == "lc" || x.Rule == "card_low_flow", x.Key)
	}
}

func TestAlertKeyRoundTrips(t *testing.T) {
	for _, p := range [][4]string{
		{"hw", "card_low_flow", "card", "8986001"},
		{"a/b", "r ule?", "pool", "x/../y"},
		{"ünï", "%2F", "card", ""},
	} {
		k := AlertKey(p[0], p[1], p[2], p[3])
		ref, err := parseAlertKey(k)
		require.NoError(t, err, k)
		require.Equal(t, alertRef{p[0], p[1], p[2], p[3]}, ref)
		u, err := url.Parse("/x?after=" + url.QueryEscape(k))
		require.NoError(t, err)
		require.Equal(t, k, u.Query().Get("after"))
	}
}

func TestEventsPaging(t *testing.T) {
	r := newAlertRig(t)
	fillAlerts(r)
	ts := rigServer(t, r, true)
	type answer struct {
		Events []struct {
			ID string `json:"id"`
		} `json:"events"`
		Next string `json:"next"`
	}
	get := func(q string) answer {
		code, body := do12(t, ts, req12{method: "GET", path: "/api/v1/events?" + q})
		require.Equal(t, 200, code, body)
		var a answer
		require.NoError(t, json.Unmarshal([]byte(body), &a))
		return a
	}
	full := get("limit=1000")
	require.Len(t, full.Events, 9, "nine firings; pending alerts have no event yet")
	var ids []string
	q := "limit=4"
	for range 10 {
		a := get(q)
		for _, e := range a.Events {
			ids = append(ids, e.ID)
		}
		if a.Next == "" {
			break
		}
		q = "limit=4&after=" + a.Next
	}
	var want []string
	for _, e := range full.Events {
		want = append(want, e.ID)
	}
	require.Equal(t, want, ids, "every event once, newest first")
	for _, bad := range []string{"after=zz", "after=00", "after=" + full.Events[0].ID + "00"} {
		code, body := do12(t, ts, req12{method: "GET", path: "/api/v1/events?" + bad})
		require.Equal(t, 400, code, bad)
		require.Contains(t, body, "after:", bad)
	}
	code, body := do12(t, ts, req12{method: "GET", path: "/api/v1/events?kind=acknowledged"})
	require.Equal(t, 200, code, body)
}
