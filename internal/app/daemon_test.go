package app_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
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
