package console

import (
	"encoding/json"
	"html"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/api"
	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/mute"
	"github.com/simwatch/simwatch/internal/rules"
	"github.com/simwatch/simwatch/internal/store"
)

var (
	caRowRe  = regexp.MustCompile(`<tr class="alert" data-alert="([^"]+)">`)
	caNextRe = regexp.MustCompile(`<a rel="next" href="([^"]+)">`)
)

// caRows lists the alerts a page shows, by ack key, in page order.
func caRows(body string) []string {
	var out []string
	for _, m := range caRowRe.FindAllStringSubmatch(body, -1) {
		out = append(out, html.UnescapeString(m[1]))
	}
	return out
}

// caStored lists the stored alerts that pass keep, by ack key.
func caStored(t *testing.T, st *store.Store, keep func(a *rules.Alert) bool) []string {
	var out []string
	require.NoError(t, st.View(func(tx *store.Tx) error {
		pt, err := tx.Provider("hw")
		if err != nil {
			return err
		}
		as, err := pt.Alerts()
		for _, a := range as {
			if keep(a) {
				out = append(out, api.AlertKey("hw", a.Rule, a.Entity, a.EntityID))
			}
		}
		return err
	}))
	slices.Sort(out)
	return out
}

func TestAlertsFilters(t *testing.T) {
	r := newCARig(t, caOptions{cards: 80, pools: 3, overdraft: true})
	all := func(a *rules.Alert) bool { return true }
	everything := caStored(t, r.store, all)
	require.Greater(t, len(everything), 10)

	for _, tc := range []struct {
		query string
		keep  func(a *rules.Alert) bool
	}{
		{"", all},
		{"rule=card_testing", func(a *rules.Alert) bool { return a.Rule == "card_testing" }},
		{"state=pending", func(a *rules.Alert) bool { return a.State == rules.StatePending }},
		{"state=firing", func(a *rules.Alert) bool { return a.State == rules.StateFiring }},
		{"severity=critical", func(a *rules.Alert) bool { return a.Rule == "pool_overdraft" }},
		{"severity=warning&state=firing", func(a *rules.Alert) bool { return a.Rule == "card_low_flow" }},
		{"rule=card_low_flow&tag=fleet-a", func(a *rules.Alert) bool {
			return a.Rule == "card_low_flow" && strings.Contains(string(a.Values), `"fleet-a"`)
		}},
		{"provider=hw&rule=pool_overdraft", func(a *rules.Alert) bool { return a.Rule == "pool_overdraft" }},
		{"provider=elsewhere", func(a *rules.Alert) bool { return false }},
		{"rule=no_such_rule", func(a *rules.Alert) bool { return false }},
	} {
		t.Run(tc.query, func(t *testing.T) {
			code, body := r.get("/alerts?limit=500&"+tc.query, "")
			require.Equal(t, http.StatusOK, code, body)
			got := caRows(body)
			slices.Sort(got)
			want := caStored(t, r.store, tc.keep)
			require.Equal(t, want, got)
			if len(want) == 0 {
				require.Contains(t, body, "Nothing is firing or pending that matches these filters.")
			}
		})
	}
	// The filters found something to narrow: each of these is a real subset.
	require.NotEmpty(t, caStored(t, r.store, func(a *rules.Alert) bool { return a.State == rules.StatePending }))
	require.NotEmpty(t, caStored(t, r.store, func(a *rules.Alert) bool {
		return a.Rule == "card_low_flow" && strings.Contains(string(a.Values), `"fleet-a"`)
	}))

	// Each alert links to its entity's page.
	_, body := r.get("/alerts?severity=critical", "")
	require.Contains(t, body, `<a href="/pools/hw/4940000001">pool 4940000001</a>`)
	_, body = r.get("/alerts?rule=card_testing", "")
	require.Regexp(t, `<a href="/cards/hw/49\d+">card 49\d+</a>`, body)
	require.Contains(t, body, "pending")
}

func TestAlertsPagesLoseNoneAndRepeatNone(t *testing.T) {
	r := newCARig(t, caOptions{cards: 80, pools: 3, overdraft: true})
	for _, q := range []string{"limit=1", "limit=3", "limit=7&state=firing", "limit=2&rule=card_testing"} {
		t.Run(q, func(t *testing.T) {
			_, body := r.get("/alerts?"+q, "")
			var seen []string
			pages := 0
			for {
				pages++
				require.Less(t, pages, 200, "paging does not end")
				rows := caRows(body)
				require.NotEmpty(t, rows, "a page with a Next link before it has alerts")
				seen = append(seen, rows...)
				m := caNextRe.FindStringSubmatch(body)
				if m == nil {
					break
				}
				code, next := r.get(html.UnescapeString(m[1]), "")
				require.Equal(t, http.StatusOK, code, next)
				require.True(t, strings.Contains(next, "First page"), "a later page links to the first")
				body = next
			}
			sorted := slices.Clone(seen)
			slices.Sort(sorted)
			require.Equal(t, len(sorted), len(slices.Compact(slices.Clone(sorted))), "an alert shown twice: %v", seen)
			_, filter, _ := strings.Cut(q, "&") // the query without its limit
			_, one := r.get("/alerts?limit=500&"+filter, "")
			want := caRows(one)
			require.Equal(t, want, seen, "the pages, in order, are the one long page")
		})
	}
}

func TestAlertsBadQueries(t *testing.T) {
	r := newCARig(t, caOptions{cards: 10, pools: 1})
	for _, q := range []string{"limit=0", "limit=-1", "limit=abc", "limit=501", "limit=1e3", "state=resolved", "severity=urgent", "after=nonsense", "after=a/b/c", "after=hw/r/card/1/x", "after=hw/%00/card/1", "after=hw//card/1", "after=hw/r/card/%25zz"} {
		code, body := r.get("/alerts?"+q, "")
		require.Equal(t, http.StatusBadRequest, code, q)
		require.Contains(t, body, strings.SplitN(q, "=", 2)[0]+":", q)
	}
	// An after past every alert is the empty last page, not an error.
	code, body := r.get("/alerts?after=zz/zz/zz/zz", "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "No more alerts.")
}

func TestAlertsFormsForAdminsOnly(t *testing.T) {
	tokens := []api.Token{{Name: "ops", Secret: "admin-secret", Role: api.RoleAdmin}, {Name: "viewer", Secret: "read-secret", Role: api.RoleRead}}
	r := newCARig(t, caOptions{cards: 40, pools: 2, overdraft: true, tokens: tokens})

	code, _ := r.get("/alerts", "")
	require.Equal(t, http.StatusSeeOther, code, "no session: to the sign-in page")

	code, body := r.get("/alerts", "read-secret")
	require.Equal(t, http.StatusOK, code)
	require.NotEmpty(t, caRows(body))
	require.False(t, strings.Contains(body, "data-api"), "a read token sees no form")
	require.False(t, strings.Contains(body, "Silence or acknowledge"), "a read token sees no silence form")

	code, body = r.get("/alerts?severity=critical", "admin-secret")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `data-api="/api/v1/silences"`)
	require.Contains(t, body, `data-api="/api/v1/alerts/ack"`)
	require.Contains(t, body, `<input type="hidden" name="alert" value="hw/pool_overdraft/pool/4940000001">`)

	// The silence form's prefilled match, posted to the API as the form
	// would be, makes a silence that mutes this alert's event and no other.
	m := regexp.MustCompile(`<input name="match" value="([^"]+)"`).FindStringSubmatch(body)
	require.NotNil(t, m)
	match := html.UnescapeString(m[1])
	require.NoError(t, mute.CheckMatch(match))
	a := api.New(api.Options{Store: r.store, Tokens: tokens})
	caPost(t, a, "/api/v1/silences", `{"match": `+quoteJSON(match)+`, "for": "2h", "comment": "on it"}`)
	sl, err := r.store.Silences()
	require.NoError(t, err)
	set := mute.Silences(sl, time.Now())
	firing, err := r.store.Firing()
	require.NoError(t, err)
	muted := 0
	for i := range firing {
		e := &firing[i]
		if set.Match(e) != "" {
			muted++
			require.Equal(t, "pool_overdraft", e.Rule)
			require.Equal(t, "4940000001", e.EntityID)
			require.Equal(t, event.KindFiring, e.Kind)
		}
	}
	require.Equal(t, 1, muted)

	// The ack form's alert, posted as the form would be, acknowledges it:
	// everyone sees who, when and why next to the alert.
	caPost(t, a, "/api/v1/alerts/ack", `{"alert": "hw/pool_overdraft/pool/4940000001", "comment": "topping the pool up"}`)
	_, body = r.get("/alerts?severity=critical", "read-secret")
	require.Regexp(t, `Acknowledged by <strong>ops</strong> <span title="[^"]+">[^<]+</span>: topping the pool up`, body)
	_, body = r.get("/alerts?severity=warning&limit=1", "read-secret")
	require.False(t, strings.Contains(body, "Acknowledged by"), "only the acknowledged alert says so")
}

// caPost sends a JSON body to the API as an admin's session would.
func caPost(t *testing.T, a *api.Server, path, body string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer admin-secret")
	req.Header.Set("Content-Type", "application/json")
	req.Host = "127.0.0.1:8080"
	w := httptest.NewRecorder()
	a.Handler().ServeHTTP(w, req)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
}

func quoteJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
