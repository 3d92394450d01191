package app_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/app"
	"github.com/simwatch/simwatch/internal/config"
)

// syncBuffer is a bytes.Buffer safe for the demo's concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

func TestDaemonDeliversServesHealthAndStopsCleanly(t *testing.T) {
	e := newEnv(t, "")
	cfg, err := config.Load(e.config)
	require.NoError(t, err)
	cfg.HTTP.Listen = freeAddr(t)
	cfg.Providers[0].Interval = config.Duration(50 * time.Millisecond)
	e.patchCard(10, `{"flow_used": 99995, "flow_total": 100000}`)

	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w, err := app.New(ctx, cfg, app.Options{Stdout: io.Discard, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()

	require.Eventually(t, func() bool {
		got := e.recv.take()
		return len(got) == 1 && got[0] == "firing card_low_flow "+e.iccids[10]
	}, 10*time.Second, 20*time.Millisecond)
	// The receiver has the event; the dispatcher records it right after.
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + cfg.HTTP.Listen + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(body), `simwatch_notifier_delivered_total{notifier="crm"} 1`)
	}, 10*time.Second, 20*time.Millisecond)
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/api/v1/alerts"} {
		resp, err := http.Get("http://" + cfg.HTTP.Listen + path)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		if path == "/metrics" {
			require.Contains(t, string(body), `simwatch_notifier_delivered_total{notifier="crm"} 1`)
			require.Contains(t, string(body), `simwatch_notifier_pending_events{notifier="crm"} 0`)
			require.Contains(t, string(body), `simwatch_notifier_latency_seconds_count{notifier="crm"} 1`)
			require.Contains(t, string(body), `simwatch_provider_cards{provider="hw"} 60`)
		}
		if path == "/api/v1/alerts" {
			require.Contains(t, string(body), `"rule": "card_low_flow"`)
		}
	}

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(15 * time.Second):
		t.Fatal("daemon did not stop")
	}
	w.Close()

	// The state is consistent after the shutdown: a --once run carries on.
	e.patchCard(10, `{"flow_used": 0}`)
	code, out := e.once()
	require.Zero(t, code, out)
	require.Equal(t, []string{"resolved card_low_flow " + e.iccids[10]}, e.recv.take())
}

func TestDemoShowsAlerts(t *testing.T) {
	var out syncBuffer
	code := app.Main(context.Background(), []string{"demo", "--duration", "3s", "--listen", "", "--day", "500ms", "--cards", "100"}, &out, io.Discard)
	require.Zero(t, code, out.String())
	s := out.String()
	require.Contains(t, s, "cycle hw day 0: 100 cards")
	require.Contains(t, s, "FIRING")
	require.Contains(t, s, "pool_overdraft")
}

func TestRulesCheckCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	code := app.Main(context.Background(), []string{"rules", "check", "../../rules.example.yaml"}, &out, &errOut)
	require.Zero(t, code, errOut.String())
	require.Contains(t, out.String(), "rules OK")

	bad := strings.Replace(e2eRules, "flow_left < 10", "flow_lft < 10", 1)
	path := t.TempDir() + "/bad.yaml"
	require.NoError(t, writeFile(path, bad))
	out.Reset()
	errOut.Reset()
	code = app.Main(context.Background(), []string{"rules", "check", path}, &out, &errOut)
	require.Equal(t, 1, code)
	require.Contains(t, errOut.String(), path+":4:33: rule card_low_flow: unknown name flow_lft (did you mean flow_left?)")
}

// The daemon reloads its rules when a rule file changes; a bad new set is
// refused with the reasons while the last good set keeps running.
func TestDaemonReloadsRules(t *testing.T) {
	e := newEnv(t, "")
	cfg, err := config.Load(e.config)
	require.NoError(t, err)
	cfg.Providers[0].Interval = config.Duration(50 * time.Millisecond)
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w, err := app.New(ctx, cfg, app.Options{Stdout: io.Discard, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() { cancel(); <-done; w.Close() }()

	// A bad set is refused; the running rules still fire.
	require.NoError(t, os.WriteFile(cfg.RuleFiles[0], []byte("rules:\n  - {name: x, on: card, when: 'flow_lft < 1'}\n"), 0o644))
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "rules reload refused") }, 10*time.Second, 20*time.Millisecond)
	require.Contains(t, logs.String(), "unknown name flow_lft")
	e.patchCard(11, `{"flow_used": 99995, "flow_total": 100000}`)
	require.Eventually(t, func() bool { return slices.Contains(e.recv.take(), "firing card_low_flow "+e.iccids[11]) }, 10*time.Second, 20*time.Millisecond)

	// A good set takes effect, and sees the whole fleet once.
	require.NoError(t, os.WriteFile(cfg.RuleFiles[0], []byte(e2eRules+`  - name: big_spender
    on: card
    when: flow_used > 50000
`), 0o644))
	require.Eventually(t, func() bool { return slices.Contains(e.recv.take(), "firing big_spender "+e.iccids[11]) }, 10*time.Second, 20*time.Millisecond)
	require.Contains(t, logs.String(), "rules reloaded")
}
