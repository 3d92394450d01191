package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/config"
	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/notify/webhook"
	"github.com/simwatch/simwatch/internal/poll"
	"github.com/simwatch/simwatch/internal/sim"
	"github.com/simwatch/simwatch/internal/store"
)

// The browser tests' rules: a few that fire on the simulated fleet as it is
// generated, and card_watched, which fires only for the cards a test tags
// "watch", so that a test can aim at one alert.
const consoleRules = `rules:
  - name: card_low_flow
    on: card
    when: status == "active" && flow_total > 0 && flow_left < 10
    severity: warning
    summary: 'Card {{ .iccid }} has {{ .flow_left }} MB left'
    repeat: 24h
  - name: card_flow_90pct
    on: card
    when: status == "active" && flow_total > 0 && pct(flow_used, flow_total) >= 90
    severity: info
    summary: 'Card {{ .iccid }} has used {{ .flow_used }} of {{ .flow_total }} MB'
  - name: card_watched
    on: card
    when: '"watch" in tags'
    severity: critical
    summary: 'Card {{ .iccid }} is watched'
  - name: card_suspended
    on: card
    when: prev.status == "active" && status == "suspended"
    severity: critical
    summary: 'Card {{ .iccid }} went {{ .prev.status }} → {{ .status }}'
  - name: pool_overdraft
    on: pool
    when: flow_left < 0
    severity: critical
    repeat: 24h
`

// Tokens for the rig with http.tokens configured.
const (
	rigReadToken  = "read-token-0123456789abcdef"
	rigAdminToken = "admin-token-0123456789abcdef"
)

// consoleRig is a watcher daemon serving the console on loopback, over a
// simulated GSL fleet it polls every pollEvery, notifying a webhook
// receiver that records what went out.
type consoleRig struct {
	t      *testing.T
	w      *Watcher
	sim    *sim.Server
	iccids []string
	pools  []int64
	url    string // the console, http://127.0.0.1:PORT
	hook   *hookLog
	cycles chan error
}

// rigOptions shape a rig; the zero value is an open (loopback, no tokens)
// console over 60 cards.
type rigOptions struct {
	tokens bool
	cards  int
	// patch runs against the fleet before the first cycle, so that what it
	// sets up is firing when the console is first opened.
	patch func(f *sim.Fleet, iccids []string)
}

const pollEvery = 150 * time.Millisecond

func newConsoleRig(t *testing.T, o rigOptions) *consoleRig {
	t.Helper()
	if o.cards == 0 {
		o.cards = 60
	}
	// Not calm: cards with usage and history, so charts have something to draw
	// and a few rules fire at first sight. The same seed gives the same fleet.
	fleet := sim.NewFleet(sim.FleetOptions{Cards: o.cards, Pools: 3, Seed: 7})
	s := sim.NewServer(sim.Options{Fleet: fleet, Keys: map[string]string{"rig-ak": "rig-sk"}})
	simTS := httptest.NewServer(s.Handler())
	t.Cleanup(simTS.Close)
	hook := &hookLog{}
	hookTS := httptest.NewServer(hook)
	t.Cleanup(hookTS.Close)
	if o.patch != nil {
		o.patch(fleet, fleet.CardICCIDs())
	}

	dir := t.TempDir()
	rulesPath := filepath.Join(dir, "rules.yaml")
	require.NoError(t, os.WriteFile(rulesPath, []byte(consoleRules), 0o644))
	tokens := ""
	if o.tokens {
		tokens = fmt.Sprintf("http:\n  tokens:\n    - {name: viewer, token: %s, role: read}\n    - {name: ops, token: %s, role: admin}\n",
			rigReadToken, rigAdminToken)
	}
	cfgText := fmt.Sprintf(`data_dir: %q
rule_files: [%q]
providers:
  - {name: hw, type: huawei-gsl, endpoint: %s, auth: {ak: rig-ak, sk: rig-sk}, page_size: 25, rate: 200, retries: 1}
notifiers:
  - {name: crm, type: webhook, url: %s, secret: rig-hook-secret, backoff: 5ms, max_backoff: 20ms, max_deliver: 4,
      group_wait: 10ms, group_interval: 20ms}
%s`, filepath.Join(dir, "data"), rulesPath, simTS.URL, hookTS.URL, tokens)
	cfgPath := filepath.Join(dir, "watcher.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(cfgText), 0o644))
	cfg, err := config.Load(cfgPath)
	require.NoError(t, err)
	cfg.Providers[0].Interval = config.Duration(pollEvery)

	// The rig binds the port itself, so it knows it before the daemon runs.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cfg.HTTP.Listen = ln.Addr().String()

	r := &consoleRig{t: t, sim: s, iccids: fleet.CardICCIDs(), pools: fleet.PoolIDs(),
		url: "http://" + ln.Addr().String(), hook: hook, cycles: make(chan error, 64)}
	ctx, cancel := context.WithCancel(context.Background())
	w, err := New(ctx, cfg, Options{Stdout: io.Discard, Logger: slog.New(slog.DiscardHandler),
		OnCycle: func(_ string, _ poll.Result, err error) {
			select {
			case r.cycles <- err:
			default: // nobody is counting cycles now
			}
		}})
	if err != nil {
		ln.Close()
		cancel()
		require.NoError(t, err)
	}
	r.w = w
	done := make(chan error, 1)
	go func() { done <- w.serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(15 * time.Second):
			t.Error("the daemon did not stop")
		}
		w.Close()
	})
	// Two cycles: the second starts after the first one's daily history is
	// stored, so the card pages have their charts' data.
	r.waitCycles(2)
	return r
}

// waitCycles waits until n cycles have ended that began after the call
// (the first one seen may have begun before: it is not counted).
func (r *consoleRig) waitCycles(n int) {
	r.t.Helper()
	for len(r.cycles) > 0 {
		<-r.cycles
	}
	deadline := time.After(20 * time.Second)
	for i := 0; i <= n; i++ {
		select {
		case err := <-r.cycles:
			require.NoError(r.t, err, "poll cycle")
		case <-deadline:
			r.t.Fatalf("waited 20s for %d poll cycles, saw %d", n+1, i)
		}
	}
}

// patchCard changes the i-th simulated card, as the provider would.
func (r *consoleRig) patchCard(i int, patch string) {
	r.t.Helper()
	var p sim.CardPatch
	require.NoError(r.t, json.Unmarshal([]byte(patch), &p))
	require.NoError(r.t, r.sim.Fleet().PatchCard(r.iccids[i], p))
}

// store is the daemon's store, for assertions on what it recorded.
func (r *consoleRig) store() *store.Store { return r.w.store }

// cards are the cards the watcher has stored, as the console reads them.
func (r *consoleRig) cards() []fleet.Card {
	r.t.Helper()
	var out []fleet.Card
	require.NoError(r.t, r.store().View(func(tx *store.Tx) error {
		pt, err := tx.Provider("hw")
		if err != nil {
			return err
		}
		return pt.ForEachCard(func(_ string, b []byte) error {
			c, err := store.DecodeCard(b)
			out = append(out, c)
			return err
		})
	}))
	return out
}

// card is the stored card of the i-th simulated card.
func (r *consoleRig) card(i int) fleet.Card {
	r.t.Helper()
	for _, c := range r.cards() {
		if c.ICCID == r.iccids[i] {
			return c
		}
	}
	r.t.Fatalf("card %s is not stored", r.iccids[i])
	return fleet.Card{}
}

// activeCard is the index of an active card other than those given.
func (r *consoleRig) activeCard(except ...int) int {
	r.t.Helper()
	for i := range r.iccids {
		if !slices.Contains(except, i) && r.card(i).Status == "active" {
			return i
		}
	}
	r.t.Fatal("no active card in the fleet")
	return -1
}

// hookLog is a webhook receiver that records every event delivered to it.
type hookLog struct {
	mu     sync.Mutex
	events []event.Event
}

func (h *hookLog) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var p webhook.Payload
	if err := json.NewDecoder(req.Body).Decode(&p); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	h.events = append(h.events, p.Events...)
	h.mu.Unlock()
}

// got reports whether an event of this kind and rule about this card was
// delivered.
func (h *hookLog) got(kind, rule, iccid string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range h.events {
		if e.Kind == kind && e.Rule == rule && e.ICCID == iccid {
			return true
		}
	}
	return false
}

// chromiumPath finds Debian's chromium (or another Chromium on PATH).
func chromiumPath() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// browser is one headless Chromium shared by a test's subtests; each
// subtest opens its own tab (newTab).
type browser struct {
	ctx context.Context
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		// A browser test that cannot run proves nothing: without chromium
		// it fails, unless skipping is asked for by name.
		if os.Getenv("SIMWATCH_SKIP_BROWSER") == "1" {
			t.Skip("SIMWATCH_SKIP_BROWSER=1: the console's browser tests are not run")
		}
		t.Fatal("no chromium on PATH: install Debian's chromium (apt-get install chromium; .ci/run does), or set SIMWATCH_SKIP_BROWSER=1 to skip the browser tests")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run as root with its sandbox
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	// Start the browser now, so that a broken install fails here, once.
	require.NoError(t, chromedp.Do(bctx, chromedp.Navigate("about:blank")), "starting %s", path)
	return &browser{ctx: bctx}
}

// tab is one browser tab (in a fresh browser context, so with its own
// cookies when isolated) that records every console error, warning and
// uncaught exception of the pages it shows.
type tab struct {
	t    *testing.T
	ctx  context.Context
	base string

	mu       sync.Mutex
	messages []string
}

// newTab opens a tab on rig's console. The test fails at its end if any
// page logged an error or a warning.
func (b *browser) newTab(t *testing.T, r *consoleRig) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	ctx, cancelTimeout := context.WithTimeout(ctx, 30*time.Second)
	tb := &tab{t: t, ctx: ctx, base: r.url}
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("about:blank")))
	msgs := chromedp.Console(ctx)
	listening := make(chan struct{})
	go func() {
		defer close(listening)
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning || m.IsException() {
				tb.mu.Lock()
				tb.messages = append(tb.messages, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line))
				tb.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		cancelTimeout()
		cancel()
		<-listening
		tb.mu.Lock()
		defer tb.mu.Unlock()
		for _, m := range tb.messages {
			t.Errorf("browser console: %s", m)
		}
	})
	return tb
}

// open navigates to path on the console and waits for the page to load.
func (tb *tab) open(path string) {
	tb.t.Helper()
	require.NoError(tb.t, chromedp.Do(tb.ctx, chromedp.Navigate(tb.base+path)), "open %s", path)
}

// eval runs a JavaScript expression in the page and returns its value.
func eval[T any](tb *tab, expr string) T {
	tb.t.Helper()
	v, err := chromedp.Run(tb.ctx, chromedp.Evaluate[T](expr))
	require.NoError(tb.t, err, "evaluating %s", expr)
	return v
}

// text is the page's visible text.
func (tb *tab) text() string { return eval[string](tb, `document.body.innerText`) }

// consoleMessages are the errors and warnings logged so far.
func (tb *tab) consoleMessages() []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return append([]string(nil), tb.messages...)
}

// forgive drops the messages logged so far that contain what: ones the
// test caused on purpose.
func (tb *tab) forgive(what string) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	kept := tb.messages[:0]
	for _, m := range tb.messages {
		if !strings.Contains(m, what) {
			kept = append(kept, m)
		}
	}
	tb.messages = kept
}

// waitFor waits (in the page, up to 10s) until a JavaScript condition holds.
func (tb *tab) waitFor(what, cond string) {
	tb.t.Helper()
	_, err := chromedp.Run(tb.ctx, chromedp.Poll[bool](`!!(`+cond+`)`, chromedp.WithPollingTimeout(10*time.Second),
		chromedp.WithPollingInterval(20*time.Millisecond)))
	if err != nil {
		tb.t.Fatalf("waited for %s (%s): %v; page:\n%s", what, cond, err, clip(tb.text(), 2000))
	}
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return strings.TrimSpace(s)
}
