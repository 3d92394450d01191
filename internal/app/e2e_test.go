package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/app"
	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/notify/webhook"
	"github.com/simwatch/simwatch/internal/sim"
)

const e2eRules = `rules:
  - name: card_low_flow
    on: card
    when: status == "active" && flow_left < 10
    summary: 'Card {{ .iccid }} has {{ .flow_left }} MB left'
    repeat: 24h
  - name: card_suspended
    on: card
    when: prev.status == "active" && status == "suspended"
    severity: critical
    summary: 'Card {{ .iccid }}: {{ .prev.status }} → {{ .status }}'
  - name: sim_swap
    on: card
    when: changed("imei") && prev.imei != ""
    severity: critical
  - name: pool_overdraft
    on: pool
    when: flow_left < 0
    severity: critical
    repeat: 24h
`

const hookSecret = "hook-secret-value"

// receiver is a webhook receiver that verifies every signature, as a careful
// consumer would, and records what it accepted.
type receiver struct {
	t        *testing.T
	mu       sync.Mutex
	accepted []event.Event
	posts    []string       // the group_key of each accepted post
	attempts map[string]int // per Idempotency-Key
	failNext int            // answer 503 to this many posts
	status   int            // when set, answer this status to every post
	hold     chan struct{}  // when set, a post waits for it to close before being accepted
	arrived  chan struct{}  // signalled when a held post arrives
}

func newReceiver(t *testing.T) (*receiver, *httptest.Server) {
	r := &receiver{t: t, attempts: map[string]int{}}
	ts := httptest.NewServer(r)
	t.Cleanup(ts.Close)
	return r, ts
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	ts, sig := req.Header.Get(webhook.HeaderTimestamp), req.Header.Get(webhook.HeaderSignature)
	if !webhook.Verify(hookSecret, ts, sig, body, time.Now(), 5*time.Minute) {
		r.t.Errorf("bad webhook signature %q for timestamp %q", sig, ts)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var p webhook.Payload
	if err := json.Unmarshal(body, &p); err != nil {
		r.t.Errorf("bad webhook body: %v", err)
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	key := req.Header.Get(webhook.HeaderIdempotency)
	if len(p.Events) == 1 && key != p.Events[0].ID {
		r.t.Errorf("Idempotency-Key %q, want the event id %q", key, p.Events[0].ID)
	}
	r.mu.Lock()
	hold := r.hold
	r.mu.Unlock()
	if hold != nil {
		r.arrived <- struct{}{}
		<-hold
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts[key]++
	if r.status != 0 {
		http.Error(w, "nope", r.status)
		return
	}
	if r.failNext > 0 {
		r.failNext--
		http.Error(w, "try later", http.StatusServiceUnavailable)
		return
	}
	require.Equal(r.t, "1", p.Version)
	require.Equal(r.t, "crm", p.Receiver)
	r.accepted = append(r.accepted, p.Events...)
	r.posts = append(r.posts, p.GroupKey)
}

// takePosts returns the group keys of the posts accepted since the last call.
func (r *receiver) takePosts() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.posts
	r.posts = nil
	return out
}

// takeEvents returns the events accepted since the last call.
func (r *receiver) takeEvents() []event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.accepted
	r.accepted = nil
	return out
}

// take returns the events accepted since the last call, as "kind rule iccid-or-id".
func (r *receiver) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.accepted {
		id := e.ICCID
		if id == "" {
			id = e.EntityID
		}
		out = append(out, e.Kind+" "+e.Rule+" "+id)
	}
	r.accepted = nil
	sort.Strings(out)
	return out
}

type env struct {
	t         *testing.T
	sim       *sim.Server
	simURL    string
	recv      *receiver
	config    string
	iccids    []string
	pools     []int64
	kind      string // provider type
	faultPath string // the sim's fault path for this provider's card listing
	failCode  string // the error code an injected 500 carries
}

// provider describes one provider type under test.
type providerCase struct {
	kind      string
	yaml      string // the provider's config entry; %s is the endpoint
	faultPath string
	failCode  string
}

var gslCase = providerCase{
	kind:      "huawei-gsl",
	yaml:      `{name: hw, type: huawei-gsl, endpoint: %s, auth: {ak: e2e-ak, sk: "${E2E_SK}"}, page_size: 25, rate: 100, retries: 1}`,
	faultPath: "sim-cards",
	failCode:  "GSL.00010003",
}

var linkcardCase = providerCase{
	kind:      "aliyun-linkcard",
	yaml:      `{name: hw, type: aliyun-linkcard, endpoint: %s, auth: {access_key_id: e2e-ak, access_key_secret: "${E2E_SK}"}, page_size: 40, rate: 100, retries: 1}`,
	faultPath: "linkcard",
	failCode:  "InternalError",
}

func newEnv(t *testing.T, extraConfig string) *env { return newProviderEnv(t, gslCase, extraConfig) }

func newProviderEnv(t *testing.T, pc providerCase, extraConfig string) *env {
	t.Helper()
	return newFleetEnv(t, pc, 60, extraConfig)
}

// newFleetEnv is newProviderEnv with a fleet of cards cards.
func newFleetEnv(t *testing.T, pc providerCase, cards int, extraConfig string) *env {
	t.Helper()
	fleet := sim.NewFleet(sim.FleetOptions{Cards: cards, Pools: 2, Seed: 3, Calm: true})
	s := sim.NewServer(sim.Options{Fleet: fleet, Keys: map[string]string{"e2e-ak": "e2e-sk"}})
	simTS := httptest.NewServer(s.Handler())
	t.Cleanup(simTS.Close)
	recv, hookTS := newReceiver(t)

	dir := t.TempDir()
	rulesPath := filepath.Join(dir, "rules.yaml")
	require.NoError(t, os.WriteFile(rulesPath, []byte(e2eRules), 0o644))
	t.Setenv("E2E_SK", "e2e-sk")
	t.Setenv("E2E_HOOK_SECRET", hookSecret)
	cfg := fmt.Sprintf(`data_dir: %q
rule_files: [%q]
providers:
  - %s
notifiers:
  - {name: crm, type: webhook, url: %s, secret: "${E2E_HOOK_SECRET}", backoff: 5ms, max_backoff: 20ms, max_deliver: 4,
      group_wait: 50ms, group_interval: 200ms}
%s`, filepath.Join(dir, "data"), rulesPath, fmt.Sprintf(pc.yaml, simTS.URL), hookTS.URL, extraConfig)
	cfgPath := filepath.Join(dir, "watcher.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(cfg), 0o644))
	return &env{t: t, sim: s, simURL: simTS.URL, recv: recv, config: cfgPath, iccids: fleet.CardICCIDs(), pools: fleet.PoolIDs(),
		kind: pc.kind, faultPath: pc.faultPath, failCode: pc.failCode}
}

// once runs `watcher run --config F --once` in process and returns its exit
// status and output.
func (e *env) once() (int, string) {
	e.t.Helper()
	var out, errOut bytes.Buffer
	code := app.Main(context.Background(), []string{"run", "--config", e.config, "--once", "--timeout", "30s"}, &out, &errOut)
	return code, out.String() + errOut.String()
}

func (e *env) patchCard(i int, patch string) {
	e.t.Helper()
	var p sim.CardPatch
	require.NoError(e.t, json.Unmarshal([]byte(patch), &p))
	require.NoError(e.t, e.sim.Fleet().PatchCard(e.iccids[i], p))
}

// The same rules fire, resolve and transition the same way whichever
// provider the fleet is at.
func TestOnceCycleAfterCycle(t *testing.T) {
	for _, pc := range []providerCase{gslCase, linkcardCase} {
		t.Run(pc.kind, func(t *testing.T) { cycleAfterCycle(t, newProviderEnv(t, pc, "")) })
	}
}

func cycleAfterCycle(t *testing.T, e *env) {
	// Pool ids: GSL lists its pools; LinkCard's are derived from the cards'
	// shared CredentialNo.
	pool := fmt.Sprint(e.pools[0])
	if e.kind == linkcardCase.kind {
		pool = "CM-POOL-" + pool
	}
	steps := []struct {
		name    string
		act     func()
		want    []string
		code    int
		gslOnly bool // LinkCard lists no IMEI
	}{
		{name: "first sight fires nothing", want: nil},
		{name: "low flow fires", act: func() { e.patchCard(1, `{"flow_used": 99995, "flow_total": 100000}`) },
			want: []string{"firing card_low_flow " + e.iccids[1]}},
		{name: "still low: no repeat within 24h", want: nil},
		{name: "suspended: one transition", act: func() { e.patchCard(2, `{"sim_status": 14, "operator_status": 5}`) },
			want: []string{"transition card_suspended " + e.iccids[2]}},
		{name: "IMEI change: one transition", act: func() { e.patchCard(3, `{"imei": "869999999999999"}`) },
			want: []string{"transition sim_swap " + e.iccids[3]}, gslOnly: true},
		{name: "topped up: resolved", act: func() { e.patchCard(1, `{"flow_used": 0}`) },
			want: []string{"resolved card_low_flow " + e.iccids[1]}},
		{name: "pool overdraft fires", act: func() {
			// A member of the first pool, not active, uses far more than the pool holds.
			e.patchCard(0, `{"sim_status": 11, "flow_used": 1000000}`)
		}, want: []string{"firing pool_overdraft " + pool}},
		{name: "overdraft does not repeat within repeat", want: nil},
		{name: "provider fails mid-listing: no events, non-zero exit", act: func() {
			e.sim.AddFault(sim.Fault{Kind: sim.FaultError, Path: e.faultPath, Page: 2})
			e.patchCard(4, `{"flow_used": 99995, "flow_total": 100000}`)
			e.patchCard(1, `{"flow_used": 99995}`)
			e.patchCard(0, `{"flow_used": 0}`)
		}, code: 1},
		{name: "next good cycle carries on", act: func() { e.sim.ClearFaults() }, want: []string{
			"firing card_low_flow " + e.iccids[1],
			"firing card_low_flow " + e.iccids[4],
			"resolved pool_overdraft " + pool,
		}},
		{name: "throttled, then answered", act: func() {
			e.sim.AddFault(sim.Fault{Kind: sim.FaultThrottle, Path: e.faultPath, Count: 1})
			e.patchCard(5, `{"sim_status": 14, "operator_status": 1}`)
		}, want: []string{"transition card_suspended " + e.iccids[5]}},
		{name: "nothing changed: nothing emitted", want: nil},
	}
	for _, st := range steps {
		if st.act != nil {
			st.act()
		}
		code, out := e.once()
		require.Equal(t, st.code, code, "%s: exit status; output:\n%s", st.name, out)
		got := e.recv.take()
		want := slices.Clone(st.want)
		if st.gslOnly && e.kind != gslCase.kind {
			want = nil
		}
		sort.Strings(want)
		require.Equal(t, want, got, st.name)
		if st.code != 0 {
			require.Contains(t, out, e.failCode, st.name)
			require.Contains(t, out, "page 2", st.name)
		}
		require.NotContains(t, out, "e2e-sk", "secret in output")
		require.NotContains(t, out, hookSecret, "secret in output")
	}
	require.Zero(t, e.sim.Stats().Rejected, "every request correctly signed")
}

// One watcher watches accounts at both providers.
func TestOnceTwoProviders(t *testing.T) {
	e := newEnv(t, "")
	ali := sim.NewServer(sim.Options{Fleet: sim.NewFleet(sim.FleetOptions{Cards: 50, Pools: 1, Seed: 11, Calm: true}),
		Keys: map[string]string{"ali-ak": "ali-sk"}})
	aliTS := httptest.NewServer(ali.Handler())
	defer aliTS.Close()
	raw, err := os.ReadFile(e.config)
	require.NoError(t, err)
	cfg := strings.Replace(string(raw), "notifiers:", "  - {name: ali, type: aliyun-linkcard, endpoint: "+aliTS.URL+
		", auth: {access_key_id: ali-ak, access_key_secret: ali-sk}}\nnotifiers:", 1)
	require.NoError(t, os.WriteFile(e.config, []byte(cfg), 0o644))

	code, out := e.once()
	require.Zero(t, code, out)
	aliCard := ali.Fleet().CardICCIDs()[7]
	e.patchCard(7, `{"sim_status": 14}`)
	require.NoError(t, ali.Fleet().PatchCard(aliCard, sim.CardPatch{SimStatus: ptr(14)}))
	code, out = e.once()
	require.Zero(t, code, out)
	got := e.recv.take()
	require.ElementsMatch(t, []string{"transition card_suspended " + e.iccids[7], "transition card_suspended " + aliCard}, got)
	require.Zero(t, ali.Stats().Rejected)
}

func ptr[T any](v T) *T { return &v }

func TestOnceReceiverOutageRetriesSameID(t *testing.T) {
	e := newEnv(t, "")
	code, out := e.once()
	require.Zero(t, code, out)
	e.patchCard(5, `{"sim_status": 14}`)
	e.recv.failNext = 2
	code, out = e.once()
	require.Zero(t, code, out)
	require.Equal(t, []string{"transition card_suspended " + e.iccids[5]}, e.recv.take())
	require.Len(t, e.recv.attempts, 1, "every attempt carried the same Idempotency-Key")
	for _, n := range e.recv.attempts {
		require.Equal(t, 3, n)
	}
}

func TestOnceReceiverRejectsDeadLetters(t *testing.T) {
	e := newEnv(t, "")
	code, out := e.once()
	require.Zero(t, code, out)
	e.patchCard(6, `{"imei": "860000000000001"}`)
	e.recv.status = http.StatusBadRequest // permanent: not retried
	code, out = e.once()
	require.NotZero(t, code, "a run that dead-lettered an event fails")
	require.Contains(t, out, "notifier crm dead-lettered 1 event(s): permanent error: webhook: HTTP 400")
	require.Empty(t, e.recv.take())
	require.Len(t, e.recv.attempts, 1)
	for _, n := range e.recv.attempts {
		require.Equal(t, 1, n, "a 400 is not retried")
	}
	require.Contains(t, out, "event dead-lettered")
	require.Contains(t, out, "permanent error: webhook: HTTP 400")

	// The dead letter does not come back on the next run.
	e.recv.status = 0
	code, out = e.once()
	require.Zero(t, code, out)
	require.Empty(t, e.recv.take())

	// It is listed with its reason, and replayed on request.
	code, out = e.cli("deadletter", "list")
	require.Zero(t, code, out)
	require.Contains(t, out, "transition")
	require.Contains(t, out, "sim_swap")
	require.Contains(t, out, "card "+e.iccids[6])
	require.Contains(t, out, "permanent error: webhook: HTTP 400")
	code, out = e.cli("deadletter", "replay", "--all")
	require.Zero(t, code, out)
	require.Contains(t, out, "replayed 1 dead letters")
	code, out = e.once()
	require.Zero(t, code, out)
	require.Equal(t, []string{"transition sim_swap " + e.iccids[6]}, e.recv.take())
	code, out = e.cli("deadletter", "list")
	require.Zero(t, code, out)
	require.Contains(t, out, "no dead letters")
}

// cli runs a watcher subcommand with this env's config.
func (e *env) cli(args ...string) (int, string) {
	e.t.Helper()
	var out bytes.Buffer
	words := 1 // the subcommand, then --config, then the rest
	if args[0] == "silence" || args[0] == "deadletter" {
		words = 2
	}
	full := append(append(append([]string{}, args[:words]...), "--config", e.config), args[words:]...)
	code := app.Main(context.Background(), full, &out, &out)
	return code, out.String()
}

func TestBadConfigRefusesToStart(t *testing.T) {
	e := newEnv(t, "")
	raw, err := os.ReadFile(e.config)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(e.config, []byte(strings.Replace(string(raw), "page_size: 25", "page_size: 5", 1)), 0o644))
	code, out := e.once()
	require.Equal(t, 1, code)
	require.Contains(t, out, "watcher.yaml:4:")
	require.Contains(t, out, "providers[0].page_size: 5 is out of range")
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o644) }

func TestOnceWithExternalNATS(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	require.NoError(t, err)
	srv.Start()
	require.True(t, srv.ReadyForConnections(5*time.Second))
	defer srv.Shutdown()
	e := newEnv(t, "nats: {url: \""+srv.ClientURL()+"\"}\n")
	code, out := e.once()
	require.Zero(t, code, out)
	e.patchCard(8, `{"sim_status": 14}`)
	code, out = e.once()
	require.Zero(t, code, out)
	require.Equal(t, []string{"transition card_suspended " + e.iccids[8]}, e.recv.take())
}
