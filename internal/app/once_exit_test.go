package app_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/app"
)

// onceWithin runs `watcher run --once --timeout d`.
func (e *env) onceWithin(d time.Duration) (int, string) {
	e.t.Helper()
	var out bytes.Buffer
	code := app.Main(context.Background(), []string{"run", "--config", e.config, "--once", "--timeout", d.String()}, &out, &out)
	return code, out.String()
}

// Against a receiver that never answers, `run --once` stops at --timeout and
// fails, naming the notifier whose events are still pending.
func TestOnceStopsAtTimeout(t *testing.T) {
	e := newEnv(t, "")
	code, out := e.once()
	require.Zero(t, code, out)
	e.patchCard(5, `{"sim_status": 14}`)
	hold := make(chan struct{})
	e.recv.hold, e.recv.arrived = hold, make(chan struct{}, 1000)
	t.Cleanup(func() { close(hold) }) // runs before the receiver closes
	start := time.Now()
	code, out = e.onceWithin(2 * time.Second)
	elapsed := time.Since(start)
	require.NotZero(t, code, out)
	require.Less(t, elapsed, 2*time.Second+4*time.Second, "bounded by --timeout (plus shutdown)")
	require.Contains(t, out, "--timeout 2s reached")
	require.Regexp(t, `notifier crm \d+ pending`, out)
	require.NotEmpty(t, e.recv.arrived, "the receiver was reached")
}

// A webhook answering 302 is not followed: the event is dead-lettered with
// the target host named, and the run exits non-zero saying so.
func TestOnceRedirectDeadLetters(t *testing.T) {
	e := newEnv(t, "")
	code, out := e.once()
	require.Zero(t, code, out)
	e.patchCard(6, `{"imei": "860000000000001"}`)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("redirect followed")
	}))
	t.Cleanup(other.Close)
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/hook?token=secret-in-query", http.StatusFound)
	}))
	t.Cleanup(redirect.Close)
	raw, err := os.ReadFile(e.config)
	require.NoError(t, err)
	cfg := strings.Replace(string(raw), "url: http://", "url: "+redirect.URL+"#", 1)
	require.NoError(t, os.WriteFile(e.config, []byte(cfg), 0o644))

	code, out = e.once()
	require.NotZero(t, code, out)
	host := strings.TrimPrefix(other.URL, "http://")
	require.Contains(t, out, "notifier crm dead-lettered")
	require.Contains(t, out, "webhook crm: HTTP 302 redirect to "+host+" not followed (check the url)")
	require.NotContains(t, out, "secret-in-query")
}
