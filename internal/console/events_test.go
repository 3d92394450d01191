package console

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/api"
	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/sim"
	"github.com/simwatch/simwatch/internal/store"
)

// swapTwo moves two cards to new devices and a pool into overdraft, a
// cycle apart: events of two rules, two cards and a pool.
func swapTwo(t *testing.T, r *pageRig) (a, b fleet.Card) {
	cards := r.stored(func(c *fleet.Card) bool { return c.Status == fleet.StatusActive && c.IMEI != "" })
	a, b = cards[0], cards[1]
	for i, c := range []fleet.Card{a, b} {
		imei := "86000000000009" + string(rune('0'+i))
		require.NoError(t, r.sim.Fleet().PatchCard(c.ICCID, sim.CardPatch{IMEI: &imei}))
		r.later()
	}
	one := 1.0
	require.NoError(t, r.sim.Fleet().PatchPool(r.sim.Fleet().PoolIDs()[0], sim.PoolPatch{FlowTotal: &one}))
	r.later()
	return a, b
}

func TestEventsSearchFilters(t *testing.T) {
	r := newPageRig(t)
	a, b := swapTwo(t, r)

	all := r.page("/events")
	require.Contains(t, all, "sim_swap")
	require.Contains(t, all, "pool_overdraft")
	require.Contains(t, all, `href="/cards/hw/`+a.ID+`"`, "an event links to its card")

	byRule := r.page("/events?rule=pool_overdraft")
	require.Contains(t, byRule, "pool_overdraft")
	require.NotContains(t, byRule, `<td class="sev-critical">sim_swap</td>`)

	byCard := r.page("/events?entity_id=" + b.ID)
	require.Contains(t, byCard, b.ICCID)
	require.NotContains(t, byCard, a.ICCID)
	require.NotContains(t, byCard, `<td class="sev-critical">pool_overdraft</td>`)

	byICCID := r.page("/events?iccid=" + a.ICCID)
	require.Contains(t, byICCID, `href="/cards/hw/`+a.ID+`"`)
	require.NotContains(t, byICCID, b.ICCID)

	// Time range: until before the first swap finds nothing; since after
	// the second swap finds only the overdraft.
	none := r.page("/events?until=" + sim.DefaultStart.Format(time.RFC3339))
	require.Contains(t, none, "No events match")
	late := r.page("/events?since=" + r.now.Add(-time.Minute).UTC().Format(time.RFC3339))
	require.Contains(t, late, "pool_overdraft")
	require.NotContains(t, late, `<td class="sev-critical">sim_swap</td>`)

	// Paging: one event a page, every event once.
	first := r.page("/events?limit=1&rule=sim_swap")
	require.Contains(t, first, b.ICCID, "newest first")
	m := strings.Index(first, `rel="next"`)
	require.Positive(t, m)
	href := first[strings.LastIndex(first[:m], `href="`)+6 : m-2]
	second := r.page(strings.ReplaceAll(href, "&amp;", "&"))
	require.Contains(t, second, a.ICCID)
	require.NotContains(t, second, b.ICCID)
	require.Contains(t, second, `value="sim_swap"`, "the next page keeps the search")

	for _, bad := range []string{"/events?kind=nope", "/events?since=yesterday", "/events?limit=0", "/events?limit=100000", "/events?before=xyz"} {
		code, _ := r.get(bad, "")
		require.Equal(t, http.StatusBadRequest, code, bad)
	}
}

func TestSilencesListCreatedAndExpired(t *testing.T) {
	r := newPageRig(t)
	post := func(method, path, body string) int {
		req, err := http.NewRequest(method, r.srv.URL+path, bytes.NewBufferString(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusOK, post(http.MethodPost, "/api/v1/silences", `{"match":"rule == \"pool_overdraft\"","for":"2h","comment":"maintenance <b>window</b>"}`))
	require.Equal(t, http.StatusOK, post(http.MethodPost, "/api/v1/silences", `{"match":"rule == \"sim_swap\"","for":"1h","comment":"old one"}`))
	sl, err := r.store.Silences()
	require.NoError(t, err)
	var old store.Silence
	for _, s := range sl {
		if s.Comment == "old one" {
			old = s
		}
	}
	require.Equal(t, http.StatusOK, post(http.MethodDelete, "/api/v1/silences/"+old.ID, ""))
	// The console's clock is the rig's; the API ended the silence at the
	// wall clock's now.
	r.now = time.Now().Add(time.Second)

	body := r.page("/silences")
	active := body[strings.Index(body, "<h2>Active"):strings.Index(body, "<h2>Expired")]
	expired := body[strings.Index(body, "<h2>Expired"):]
	require.Contains(t, active, "maintenance &lt;b&gt;window&lt;/b&gt;", "the comment, escaped")
	require.Contains(t, active, `rule == &#34;pool_overdraft&#34;`)
	require.NotContains(t, active, "old one")
	require.Contains(t, expired, "old one")
	// Open console: everyone is admin, so the forms are there.
	require.Contains(t, body, `data-api="/api/v1/silences" data-method="POST"`)
	require.Contains(t, active, `data-method="DELETE"`)
}

func TestFormsOnlyForAdmins(t *testing.T) {
	r := newPageRig(t, api.Token{Name: "ops", Secret: "read-secret", Role: api.RoleRead}, api.Token{Name: "boss", Secret: "admin-secret", Role: api.RoleAdmin})
	require.NoError(t, r.store.PutSilence(store.Silence{ID: "s1", Match: `rule == "x"`, Comment: "c", CreatedAt: r.now, EndsAt: r.now.Add(time.Hour)}))
	for _, path := range []string{"/silences", "/deadletters", "/events", "/actions"} {
		code, body := r.get(path, "read-secret")
		require.Equal(t, http.StatusOK, code, path)
		require.NotContains(t, body, "data-api", "%s: a read token sees no forms", path)
	}
	_, body := r.get("/silences", "admin-secret")
	require.Contains(t, body, `data-api="/api/v1/silences" data-method="POST"`)
	require.Contains(t, body, `data-api="/api/v1/silences/s1" data-method="DELETE"`)
	code, _ := r.get("/silences", "")
	require.Equal(t, http.StatusOK, code, "the redirect to /login is followed")
}

func TestDeadLettersWithoutBusAndActionsJournal(t *testing.T) {
	r := newPageRig(t)
	body := r.page("/deadletters")
	require.Contains(t, body, "keeps no dead letters")

	c := r.stored(func(c *fleet.Card) bool { return true })[0]
	for i, op := range []string{"stop", "resume"} {
		require.NoError(t, r.store.RecordAction(store.ActionRecord{Notifier: "stopper", EventID: "e" + op, Rule: "sim_swap", Provider: "hw",
			CardID: c.ID, ICCID: c.ICCID, Operation: op, DryRun: i == 1, Started: true, WorkOrderID: 77, At: r.now.Add(time.Duration(i) * time.Minute)}, nil))
	}
	body = r.page("/actions")
	require.Contains(t, body, `href="/cards/hw/`+c.ID+`"`)
	require.Less(t, strings.Index(body, "<td>resume "), strings.Index(body, "<td>stop<"), "newest first: %s", body)
	require.Contains(t, body, "work order 77")
	require.Contains(t, body, "(dry run)")
	require.Contains(t, r.page("/actions?notifier=other"), "No actions")
	_ = json.Valid
}
