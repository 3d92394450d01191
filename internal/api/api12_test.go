package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/store"
)

const (
	readSecret  = "read-token-0123456789abcdef"
	adminSecret = "admin-token-0123456789abcdef"
)

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	return st
}

type req12 struct {
	method, path, body string
	header             map[string]string
}

func do12(t *testing.T, ts *httptest.Server, r req12) (int, string) {
	t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr, err := http.NewRequest(r.method, ts.URL+r.path, body)
	require.NoError(t, err)
	for k, v := range r.header {
		if k == "Host" {
			hr.Host = v
			continue
		}
		hr.Header.Set(k, v)
	}
	resp, err := ts.Client().Do(hr)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func bearer(secret string, more ...string) map[string]string {
	h := map[string]string{"Authorization": "Bearer " + secret}
	for i := 0; i+1 < len(more); i += 2 {
		h[more[i]] = more[i+1]
	}
	return h
}

const muteAll = `{"match":"true","for":"8760h"}`

// Every attack of the hostile tester, with tokens configured: each is
// answered with the status and a JSON error, and none leaves a silence.
func TestAPI12TokensAndRoles(t *testing.T) {
	st := openStore(t)
	srv := New(Options{Store: st, Tokens: []Token{{Name: "dash", Secret: readSecret, Role: RoleRead}, {Name: "ops", Secret: adminSecret, Role: RoleAdmin}}})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	jsonCT := "application/json"
	for _, c := range []struct {
		name string
		req  req12
		want int
	}{
		{"read without token", req12{"GET", "/api/v1/alerts", "", nil}, 401},
		{"read with unknown token", req12{"GET", "/api/v1/alerts", "", bearer("nope-nope-nope-nope")}, 401},
		{"read with a prefix of a token", req12{"GET", "/api/v1/alerts", "", bearer(readSecret[:10])}, 401},
		{"read with basic auth", req12{"GET", "/api/v1/alerts", "", map[string]string{"Authorization": "Basic " + readSecret}}, 401},
		{"metrics without token", req12{"GET", "/metrics", "", nil}, 401},
		{"silence without token", req12{"POST", "/api/v1/silences", muteAll, map[string]string{"Content-Type": jsonCT}}, 401},
		{"silence with read token", req12{"POST", "/api/v1/silences", muteAll, bearer(readSecret, "Content-Type", jsonCT)}, 403},
		{"expire with read token", req12{"DELETE", "/api/v1/silences/abc", "", bearer(readSecret)}, 403},
		{"replay with read token", req12{"POST", "/api/v1/deadletters/replay", `{"all":true}`, bearer(readSecret, "Content-Type", jsonCT)}, 403},
		{"text/plain form post with admin token", req12{"POST", "/api/v1/silences", muteAll, bearer(adminSecret, "Content-Type", "text/plain")}, 415},
		{"urlencoded form post with admin token", req12{"POST", "/api/v1/silences", "match=true&for=8760h", bearer(adminSecret, "Content-Type", "application/x-www-form-urlencoded")}, 415},
		{"multipart form post with admin token", req12{"POST", "/api/v1/silences", muteAll, bearer(adminSecret, "Content-Type", "multipart/form-data; boundary=x")}, 415},
		{"no content type with admin token", req12{"POST", "/api/v1/silences", muteAll, bearer(adminSecret)}, 415},
		{"cross-site Origin with admin token", req12{"POST", "/api/v1/silences", muteAll, bearer(adminSecret, "Content-Type", jsonCT, "Origin", "https://evil.example")}, 403},
		{"cross-site Sec-Fetch-Site with admin token", req12{"POST", "/api/v1/silences", muteAll, bearer(adminSecret, "Content-Type", jsonCT, "Sec-Fetch-Site", "cross-site")}, 403},
		{"cross-site DELETE with admin token", req12{"DELETE", "/api/v1/silences/abc", "", bearer(adminSecret, "Origin", "https://evil.example")}, 403},
		{"unknown JSON field with admin token", req12{"POST", "/api/v1/silences", `{"match":"true","for":"1h","until":"never"}`, bearer(adminSecret, "Content-Type", jsonCT)}, 400},
		{"trailing JSON with admin token", req12{"POST", "/api/v1/silences", muteAll + `{}`, bearer(adminSecret, "Content-Type", jsonCT)}, 400},
		{"oversized body with admin token", req12{"POST", "/api/v1/silences", `{"match":"true","for":"1h","comment":"` + strings.Repeat("x", maxBody) + `"}`, bearer(adminSecret, "Content-Type", jsonCT)}, 400},
		{"read with read token", req12{"GET", "/api/v1/alerts", "", bearer(readSecret)}, 200},
		{"metrics with read token", req12{"GET", "/metrics", "", bearer(readSecret)}, 200},
		{"healthz stays open", req12{"GET", "/healthz", "", nil}, 200},
		{"readyz needs no token", req12{"GET", "/readyz", "", nil}, 503}, // SetReady not called
	} {
		t.Run(c.name, func(t *testing.T) {
			code, body := do12(t, ts, c.req)
			require.Equal(t, c.want, code, body)
			if code == 401 || code == 403 || code == 415 || code == 400 {
				var eb ErrorBody
				require.NoError(t, json.Unmarshal([]byte(body), &eb), "error body must be JSON: %s", body)
				require.NotEmpty(t, eb.Error)
				require.NotContains(t, body, readSecret)
				require.NotContains(t, body, adminSecret)
			}
		})
	}
	sl, err := st.Silences()
	require.NoError(t, err)
	require.Empty(t, sl, "a refused request left a silence")

	// The admin token changes things, as JSON from a non-browser client or
	// a same-origin page.
	code, body := do12(t, ts, req12{"POST", "/api/v1/silences", `{"match":"rule == \"x\"","for":"2h"}`, bearer(adminSecret, "Content-Type", "application/json; charset=utf-8")})
	require.Equal(t, 200, code, body)
	var created store.Silence
	require.NoError(t, json.Unmarshal([]byte(body), &created))
	code, body = do12(t, ts, req12{"DELETE", "/api/v1/silences/" + created.ID, "", bearer(adminSecret, "Sec-Fetch-Site", "same-origin")})
	require.Equal(t, 200, code, body)
	code, body = do12(t, ts, req12{"POST", "/api/v1/silences", `{"match":"true","for":"7d"}`, bearer(adminSecret, "Content-Type", "application/json")})
	require.Equal(t, 200, code, body)
}

// With no tokens (loopback only), reads are open, a change is taken only
// as JSON from a non-cross-site client, and only under a loopback Host.
func TestAPI12NoTokens(t *testing.T) {
	st := openStore(t)
	ts := httptest.NewServer(New(Options{Store: st}).Handler())
	t.Cleanup(ts.Close)
	jsonCT := map[string]string{"Content-Type": "application/json"}
	for _, c := range []struct {
		name string
		req  req12
		want int
	}{
		{"the tester's text/plain post", req12{"POST", "/api/v1/silences", muteAll, map[string]string{"Content-Type": "text/plain"}}, 415},
		{"form post", req12{"POST", "/api/v1/silences", "match=true&for=8760h", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, 415},
		{"cross-site JSON post", req12{"POST", "/api/v1/silences", muteAll, map[string]string{"Content-Type": "application/json", "Origin": "https://evil.example"}}, 403},
		{"DNS rebinding Host", req12{"POST", "/api/v1/silences", muteAll, map[string]string{"Content-Type": "application/json", "Host": "evil.example:8080"}}, 421},
		{"DNS rebinding read", req12{"GET", "/api/v1/alerts", "", map[string]string{"Host": "evil.example"}}, 421},
		{"read", req12{"GET", "/api/v1/alerts", "", nil}, 200},
		{"metrics", req12{"GET", "/metrics", "", nil}, 200},
		{"CLI JSON post", req12{"POST", "/api/v1/silences", `{"match":"rule == \"x\"","for":"2h"}`, jsonCT}, 200},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, body := do12(t, ts, c.req)
			require.Equal(t, c.want, code, body)
		})
	}
	sl, err := st.Silences()
	require.NoError(t, err)
	require.Len(t, sl, 1, "only the CLI's silence")
	require.Equal(t, `rule == "x"`, sl[0].Match)
}

func putCards(t *testing.T, st *store.Store, n int) {
	t.Helper()
	require.NoError(t, st.Update(func(tx *store.Tx) error {
		pt, err := tx.Provider("hw")
		if err != nil {
			return err
		}
		for i := range n {
			c := fleet.Card{Provider: "hw", ID: fmt.Sprint(i), ICCID: fmt.Sprint(89860000 + i), Status: "active", FlowTotal: 100}
			if err := pt.PutCard(c.ID, fleet.EncodeCard(nil, &c)); err != nil {
				return err
			}
		}
		return nil
	}))
}

// A query whose client leaves stops at the next entity: the handler
// returns, having looked at no further card.
func TestAPI12QueryStopsWhenClientLeaves(t *testing.T) {
	st := openStore(t)
	putCards(t, st, 500)
	srv := New(Options{Store: st})
	var seen atomic.Int32
	started := make(chan struct{})
	srv.onEntity = func(ctx context.Context) {
		if seen.Add(1) == 1 {
			close(started)
			select { // held until the server notices the client is gone
			case <-ctx.Done():
			case <-time.After(20 * time.Second):
			}
		}
	}
	returned := make(chan struct{})
	h := srv.Handler()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(returned)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/api/v1/cards?q=true", nil)
		resp, err := ts.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-started
	cancel()
	require.ErrorIs(t, <-errc, context.Canceled)
	select {
	case <-returned:
	case <-time.After(15 * time.Second):
		t.Fatal("the query handler did not return after its client left")
	}
	require.EqualValues(t, 1, seen.Load(), "the query went on after the client left")
}

// A query past its deadline answers 503 with a JSON error; so do events.
func TestAPI12QueryDeadline(t *testing.T) {
	st := openStore(t)
	putCards(t, st, 10)
	ts := httptest.NewServer(New(Options{Store: st, QueryTimeout: time.Nanosecond}).Handler())
	t.Cleanup(ts.Close)
	for _, path := range []string{"/api/v1/cards?q=true", "/api/v1/pools", "/api/v1/events"} {
		t.Run(path, func(t *testing.T) {
			code, body := do12(t, ts, req12{"GET", path, "", nil})
			require.Equal(t, http.StatusServiceUnavailable, code, body)
			var eb ErrorBody
			require.NoError(t, json.Unmarshal([]byte(body), &eb))
			require.Contains(t, eb.Error, "longer than 1ns")
		})
	}
}

// The events endpoint validates its parameters and takes a relative since.
func TestAPI12EventsParameters(t *testing.T) {
	st := openStore(t)
	now := time.Now().UTC()
	ev := func(id string, ago time.Duration) event.Event {
		return event.Event{ID: id, Kind: event.KindFiring, Rule: "r", Provider: "hw", Entity: "card", EntityID: id, ObservedAt: now.Add(-ago)}
	}
	require.NoError(t, st.Update(func(tx *store.Tx) error {
		return tx.AppendOutbox([]event.Event{ev("old", 3*time.Hour), ev("new", 10*time.Minute), ev("week", 6*24*time.Hour)})
	}))
	ts := httptest.NewServer(New(Options{Store: st}).Handler())
	t.Cleanup(ts.Close)
	for _, c := range []struct {
		query string
		want  int
		ids   []string
	}{
		{"since=1h", 200, []string{"new"}},
		{"since=30m", 200, []string{"new"}},
		{"since=4h", 200, []string{"new", "old"}},
		{"since=7d", 200, []string{"new", "old", "week"}},
		{"since=" + now.Add(-time.Hour).Format(time.RFC3339), 200, []string{"new"}},
		{"since=yesterday", 400, nil},
		{"since=-2h", 400, nil},
		{"limit=abc", 400, nil},
		{"limit=-1", 400, nil},
		{"limit=1", 200, []string{"new"}},
		{"kind=bogus", 400, nil},
		{"kind=resolved", 200, nil},
	} {
		t.Run(c.query, func(t *testing.T) {
			code, body := do12(t, ts, req12{"GET", "/api/v1/events?" + c.query, "", nil})
			require.Equal(t, c.want, code, body)
			if code != 200 {
				return
			}
			var res struct{ Events []event.Event }
			require.NoError(t, json.Unmarshal([]byte(body), &res))
			var ids []string
			for _, e := range res.Events {
				ids = append(ids, e.EntityID)
			}
			require.ElementsMatch(t, c.ids, ids)
		})
	}
}

type fakeClock struct{ t atomic.Pointer[time.Time] }

func (c *fakeClock) now() time.Time      { return *c.t.Load() }
func (c *fakeClock) set(t time.Time)     { c.t.Store(&t) }
func (c *fakeClock) add(d time.Duration) { c.set(c.now().Add(d)) }
func newClock(t0 time.Time) *fakeClock   { c := &fakeClock{}; c.set(t0); return c }
func commit(t *testing.T, st *store.Store, provider string, at time.Time) {
	t.Helper()
	require.NoError(t, st.Update(func(tx *store.Tx) error {
		pt, err := tx.Provider(provider)
		if err != nil {
			return err
		}
		m, err := pt.Meta()
		if err != nil {
			return err
		}
		m.LastSuccess = at
		return pt.PutMeta(m)
	}))
}

type failingProbe struct{}

func (failingProbe) Probe() error { return errors.New("store: write probe: no space left on device") }

// /readyz fails once a provider has gone three of its intervals without a
// committed cycle (from start, for a fresh watcher), and when the store
// takes no writes.
func TestAPI12Readyz(t *testing.T) {
	st := openStore(t)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := newClock(t0)
	srv := New(Options{Store: st, Readiness: Readiness{
		Intervals: map[string]time.Duration{"hw": time.Minute, "ali": 10 * time.Minute},
		Started:   t0, Now: clock.now,
	}})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	ready := func() (int, string) { return do12(t, ts, req12{"GET", "/readyz", "", nil}) }

	code, body := ready()
	require.Equal(t, 503, code, "not running yet")
	require.Contains(t, body, "watcher not running")
	srv.SetReady(true)
	for _, step := range []struct {
		advance   time.Duration
		commitHW  bool
		commitAli bool
		want      int
		reason    string
	}{
		{0, false, false, 200, ""},
		{2*time.Minute + 59*time.Second, false, false, 200, ""},                 // fresh: counted from start
		{time.Second, false, false, 503, "provider hw: no committed cycle yet"}, // 3 intervals, nothing committed
		{time.Minute, false, false, 503, "provider hw"},                         // and stays failing
		{0, true, false, 200, ""},                                               // a commit makes it ready again
		{3 * time.Minute, false, false, 503, "provider hw: no committed cycle since"},
		{0, true, false, 200, ""},
		{30 * time.Minute, true, false, 503, "provider ali"}, // ali's three 10m intervals from start
	} {
		clock.add(step.advance)
		if step.commitHW {
			commit(t, st, "hw", clock.now())
		}
		code, body := ready()
		require.Equal(t, step.want, code, "at %s: %s", clock.now().Sub(t0), body)
		require.Contains(t, body, step.reason)
		if step.want == 503 && step.reason == "provider ali" {
			require.NotContains(t, body, "provider hw")
		}
	}

	t.Run("a slow cycle counts from its commit", func(t *testing.T) {
		// The cycle began 2m50s ago and committed now: a listing that takes
		// most of the interval is not staleness (the hostile tester saw a
		// healthy daemon flap between ready and not).
		now := clock.now()
		require.NoError(t, st.Update(func(tx *store.Tx) error {
			pt, err := tx.Provider("hw")
			if err != nil {
				return err
			}
			m, err := pt.Meta()
			if err != nil {
				return err
			}
			m.LastSuccess, m.Committed = now.Add(-2*time.Minute-50*time.Second), now
			return pt.PutMeta(m)
		}))
		clock.add(time.Minute)
		_, body := ready()
		require.NotContains(t, body, "provider hw")
	})

	t.Run("store not writable", func(t *testing.T) {
		srv := New(Options{Store: openStore(t)})
		srv.probeStore = failingProbe{}
		srv.SetReady(true)
		ts := httptest.NewServer(srv.Handler())
		t.Cleanup(ts.Close)
		code, body := do12(t, ts, req12{"GET", "/readyz", "", nil})
		require.Equal(t, 503, code)
		require.Contains(t, body, "no space left on device")
	})
	t.Run("store closed", func(t *testing.T) {
		st := openStore(t)
		clock := newClock(t0)
		srv := New(Options{Store: st, Readiness: Readiness{Now: clock.now}})
		srv.SetReady(true)
		ts := httptest.NewServer(srv.Handler())
		t.Cleanup(ts.Close)
		code, _ := do12(t, ts, req12{"GET", "/readyz", "", nil})
		require.Equal(t, 200, code)
		require.NoError(t, st.Close())
		clock.add(defaultProbeEvery) // the probe's answer is kept that long
		code, body := do12(t, ts, req12{"GET", "/readyz", "", nil})
		require.Equal(t, 503, code, body)
		require.Contains(t, body, "store")
	})
}

func TestAPI12ParseSince(t *testing.T) {
	now := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{in: "2h", want: now.Add(-2 * time.Hour)},
		{in: "30m", want: now.Add(-30 * time.Minute)},
		{in: "7d", want: now.Add(-7 * 24 * time.Hour)},
		{in: "1d12h", want: now.Add(-36 * time.Hour)},
		{in: "2026-03-01T00:00:00Z", want: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)},
		{in: "0s", bad: true},
		{in: "-1h", bad: true},
		{in: "-1d", bad: true},
		{in: "d", bad: true},
		{in: "7dd", bad: true},
		{in: "abc", bad: true},
		{in: "", bad: true},
	} {
		got, err := ParseSince(c.in, now)
		if c.bad {
			require.Error(t, err, c.in)
			continue
		}
		require.NoError(t, err, c.in)
		require.Equal(t, c.want, got, c.in)
	}
}
