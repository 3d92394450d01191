package console

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/api"
	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/poll"
	"github.com/simwatch/simwatch/internal/provider/gsl"
	"github.com/simwatch/simwatch/internal/rules"
	"github.com/simwatch/simwatch/internal/sim"
	"github.com/simwatch/simwatch/internal/store"
)

// h14NewRig is newPageRig with the rules given.
func h14NewRig(t *testing.T, ruleYAML string, cards int, before func(s *sim.Server)) *pageRig {
	t.Helper()
	s := sim.NewServer(sim.Options{Fleet: sim.NewFleet(sim.FleetOptions{Cards: cards, Pools: 3, Seed: 4})})
	if before != nil {
		before(s)
	}
	simSrv := httptest.NewServer(s.Handler())
	t.Cleanup(simSrv.Close)
	c, err := gsl.New(gsl.Options{Name: "hw", Endpoint: simSrv.URL, Token: "t", PageSize: 500, Rate: 1e6, Concurrency: 4})
	require.NoError(t, err)
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	set, err := rules.Parse("r.yaml", []byte(ruleYAML), rules.LoadOptions{})
	require.NoError(t, err)
	r := &pageRig{t: t, sim: s, store: st, now: sim.DefaultStart.Add(4 * time.Hour)}
	r.p = poll.New(poll.Options{Provider: "hw", Source: c, Store: st, Rules: func() *rules.Set { return set }, Now: func() time.Time { return r.now },
		Daily: func(ctx context.Context, month, date string, ids []string) (map[string][]fleet.DayUsage, error) {
			return c.DailyFlow(ctx, gsl.DailyQuery{Month: month, Date: date}, ids)
		}})
	r.api = api.New(api.Options{Store: st, Rules: func() *rules.Set { return set }})
	con := New(Options{Store: st, Access: r.api, Providers: []Provider{{Name: "hw", Type: "gsl", Interval: 10 * time.Minute}},
		Notifiers: []string{"slack"}, Rules: func() *rules.Set { return set }, Now: func() time.Time { return r.now }})
	mux := http.NewServeMux()
	mux.Handle("/api/", r.api.Handler())
	mux.Handle("/", con.Handler())
	r.srv = httptest.NewServer(mux)
	t.Cleanup(r.srv.Close)
	r.cycle()
	return r
}

// h14API sends a JSON body to the rig's API (open, loopback).
func h14API(t *testing.T, r *pageRig, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, r.srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

const (
	h14Img    = `"><img src=x onerror=alert(1)>`
	h14Script = `</script><script>alert(2)</script>`
	h14JS     = `javascript:alert(3)`
)

var (
	h14ScriptTag = regexp.MustCompile(`(?i)<script\b[^>]*>`)
	h14Handlers  = regexp.MustCompile(`(?i)<[a-z][^>]*\son[a-z]+\s*=`)
	h14Hrefs     = regexp.MustCompile(`(?i)\s(?:href|src|action|formaction|data-api)\s*=\s*"([^"]*)"`)
)

// h14Safe asserts a page carries the payloads only as text: no element,
// script or handler of theirs, no javascript: link, and every data block
// still parses as JSON.
func h14Safe(t *testing.T, where, body string) {
	t.Helper()
	require.NotContains(t, body, "<img src=x", where)
	require.NotContains(t, body, "<script>alert", where)
	require.False(t, h14Handlers.MatchString(body), "%s: an inline event handler: %s", where, h14Handlers.FindString(body))
	for _, tag := range h14ScriptTag.FindAllString(body, -1) {
		ok := strings.Contains(tag, `src="/static/`) || strings.Contains(tag, `type="application/json"`)
		require.True(t, ok, "%s: a script that is neither a static file nor a data block: %s", where, tag)
	}
	for _, m := range h14Hrefs.FindAllStringSubmatch(body, -1) {
		u := strings.ToLower(strings.TrimSpace(m[1]))
		require.False(t, strings.HasPrefix(u, "javascript:") || strings.HasPrefix(u, "data:text"), "%s: link %q", where, m[1])
	}
	for _, m := range regexp.MustCompile(`(?s)<script type="application/json"[^>]*>(.*?)</script>`).FindAllStringSubmatch(body, -1) {
		require.True(t, json.Valid([]byte(m[1])), "%s: data block is not JSON: %s", where, m[1])
	}
}

// Provider data, rule summaries, silence and ack comments full of markup
// land in every page as text.
func TestHostile14NoMarkupFromDataInPages(t *testing.T) {
	const ruleYAML = `rules:
  - name: xss_plan
    on: card
    when: 'plan != "" && flow_used >= 0'
    severity: warning
    summary: 'plan {{ .plan }} tags {{ .tags }} iccid {{ .iccid }}'
  - name: pool_any
    on: pool
    when: 'flow_total >= 0'
    severity: critical
    summary: 'pool {{ .name }}'
`
	var iccid string
	var poolID int64
	r := h14NewRig(t, ruleYAML, 20, func(s *sim.Server) {
		iccid = s.Fleet().CardICCIDs()[0]
		plan, _ := json.Marshal(h14Script + h14Img + "\u2028\u2029")
		tags := h14Img + "," + h14JS + "," + h14Script
		attr := h14Img + h14Script
		imei, _ := json.Marshal("86" + h14Img)
		require.NoError(t, s.Fleet().PatchCard(iccid, sim.CardPatch{Tags: &tags, Attr1: &attr,
			Raw: map[string]json.RawMessage{"price_plan_name": plan, "imei": imei, "device_model": plan, "network_type": plan, "signal_level": plan}}))
		poolID = s.Fleet().PoolIDs()[0]
		name, _ := json.Marshal(h14Script + h14Img)
		require.NoError(t, s.Fleet().PatchPool(poolID, sim.PoolPatch{Raw: map[string]json.RawMessage{"pool_name": name, "price_plan_name": name, "billing_cycle": name}}))
	})
	// The card as stored: the payloads made it through the client.
	var card fleet.Card
	require.NoError(t, r.store.View(func(tx *store.Tx) error {
		pt, err := tx.Provider("hw")
		if err != nil {
			return err
		}
		return pt.ForEachCard(func(_ string, enc []byte) error {
			c, err := store.DecodeCard(enc)
			if c.ICCID == iccid {
				card = c
			}
			return err
		})
	}))
	require.Contains(t, card.Plan, "<script>", "the card kept its plan: %+v", card)

	payload := h14Img + " " + h14Script + " \u2028 " + h14JS
	code, body := h14API(t, r, http.MethodPost, "/api/v1/silences", `{"match": "rule == \"nothing\"", "for": "2h", "comment": `+quoteJSON(payload)+`}`)
	require.Equal(t, http.StatusOK, code, body)
	key := api.AlertKey("hw", "xss_plan", "card", card.ID)
	code, body = h14API(t, r, http.MethodPost, "/api/v1/alerts/ack", `{"alert": `+quoteJSON(key)+`, "comment": `+quoteJSON(payload)+`}`)
	require.Equal(t, http.StatusOK, code, body)
	r.later()

	pages := []string{"/", "/alerts", "/alerts?rule=xss_plan&limit=500", "/alerts?tag=" + h14JS, "/events", "/events?rule=xss_plan&limit=500",
		"/events?kind=acknowledged", "/silences", "/deadletters", "/actions",
		"/cards/hw/" + card.ID, "/pools/hw/" + strings.TrimSpace(strings.Trim(jsonInt(poolID), `"`)),
		"/alerts?rule=" + h14Script, "/events?rule=%3C/script%3E&iccid=%22%3E%3Cimg%20src=x%3E", "/cards/hw/%3Cscript%3E", "/login?next=" + h14JS}
	for _, p := range pages {
		code, body := r.get(p, "")
		require.Contains(t, []int{200, 404}, code, "%s: %s", p, body)
		h14Safe(t, p, body)
	}
	// The payloads are there, as text the user can read.
	_, body = r.get("/cards/hw/"+card.ID, "")
	require.Contains(t, body, "&lt;/script&gt;&lt;script&gt;alert(2)&lt;/script&gt;")
	_, body = r.get("/alerts?rule=xss_plan&limit=500", "")
	require.Contains(t, body, "Acknowledged by")
	require.Contains(t, body, "&lt;img src=x onerror=alert(1)&gt;")
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }
