package app_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/api"
	"github.com/simwatch/simwatch/internal/app"
	"github.com/simwatch/simwatch/internal/bus"
	"github.com/simwatch/simwatch/internal/config"
	"github.com/simwatch/simwatch/internal/poll"
	"github.com/simwatch/simwatch/internal/store"
)

func main12(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := app.Main(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// Every flag is validated before anything is opened, with an error that
// says what is wrong and what is valid.
func TestCLI12FlagValidation(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"events", "--limit", "abc"}, `"abc" is not a whole number`},
		{[]string{"events", "--limit", "-5"}, "out of range 1..10000"},
		{[]string{"events", "--limit", "0"}, "out of range"},
		{[]string{"events", "--kind", "fired"}, "valid kinds: firing, resolved, transition, action"},
		{[]string{"events", "--since", "yesterday"}, "duration back from now (30m, 2h, 7d)"},
		{[]string{"events", "--since", "-2h"}, "positive duration"},
		{[]string{"events", "--rule", ""}, "must not be empty"},
		{[]string{"events", "stray"}, `unexpected argument "stray"`},
		{[]string{"query"}, "give one expression"},
		{[]string{"query", "true", "false"}, "give one expression"},
		{[]string{"silence", "add", "--match", "true", "--for", "forever"}, `"forever" is not a duration`},
		{[]string{"silence", "add", "--match", "true", "--for", "-1h"}, "positive duration"},
		{[]string{"silence", "add", "--for", "2h"}, "--match is required"},
		{[]string{"silence", "add", "--match", "true"}, "--for is required"},
		{[]string{"silence", "add", "--match", "true", "--for", "2h", "extra"}, `unexpected argument "extra"`},
		{[]string{"silence", "list", "--for", "2h"}, "flag provided but not defined: -for"},
		{[]string{"silence", "list", "extra"}, `unexpected argument "extra"`},
		{[]string{"silence", "expire"}, "exactly one silence id"},
		{[]string{"silence", "expire", "a", "b"}, "exactly one silence id"},
		{[]string{"deadletter", "replay"}, "or --all"},
		{[]string{"deadletter", "replay", "--all", "12"}, "either --all or dead-letter ids"},
		{[]string{"deadletter", "list", "12"}, `unexpected argument "12"`},
		{[]string{"deadletter", "list", "--all"}, "flag provided but not defined: -all"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			// The config does not exist: a flag error must come first.
			args := append(c.args[:1:1], append([]string{"--config", filepath.Join(t.TempDir(), "none.yaml")}, c.args[1:]...)...)
			if c.args[0] == "silence" || c.args[0] == "deadletter" {
				args = append(c.args[:2:2], append([]string{"--config", filepath.Join(t.TempDir(), "none.yaml")}, c.args[2:]...)...)
			}
			code, _, stderr := main12(args...)
			require.NotZero(t, code)
			require.Contains(t, stderr, c.want)
			require.NotContains(t, stderr, "none.yaml", "the config was read before the flags were checked")
		})
	}
}

// Every --help says what each flag does.
func TestCLI12Help(t *testing.T) {
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"events", "--help"}, []string{"-limit", "newest first", "-since", "duration back from now", "-kind", "firing, resolved", "-iccid", "-config", "http.tokens"}},
		{[]string{"query", "--help"}, []string{"-pools", "-json", "-config"}},
		{[]string{"silence", "add", "--help"}, []string{"-match", "-for", "7d", "-comment"}},
		{[]string{"deadletter", "replay", "--help"}, []string{"-all", "-notifier"}},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			code, _, stderr := main12(c.args...)
			require.Equal(t, 2, code)
			require.NotContains(t, stderr, "filter by")
			for _, w := range c.want {
				require.Contains(t, stderr, w)
			}
		})
	}
}

// --since takes a relative duration (days too) as well as RFC 3339, through
// the in-process API over the data_dir.
func TestCLI12EventsSinceRelative(t *testing.T) {
	e := newEnv(t, "")
	e.patchCard(10, `{"flow_used": 99995, "flow_total": 100000}`)
	code, out := e.once()
	require.Zero(t, code, out)
	for _, since := range []string{"1h", "90m", "7d", "1d12h", time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)} {
		code, stdout, stderr := main12("events", "--config", e.config, "--since", since, "--kind", "firing", "--limit", "5")
		require.Zero(t, code, stderr)
		require.Contains(t, stdout, e.iccids[10], "--since %s", since)
	}
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	code, stdout, stderr := main12("events", "--config", e.config, "--since", future)
	require.Zero(t, code, stderr)
	require.NotContains(t, stdout, e.iccids[10])
}

// fakeDaemon is the real API with tokens, recording what each request sent.
type fakeDaemon struct {
	mu      sync.Mutex
	auth    map[string]string // "METHOD path" → Authorization
	replays atomic.Int32
}

func (f *fakeDaemon) ListDeadLetters(context.Context, string) ([]bus.DeadLetter, error) {
	return nil, nil
}

func (f *fakeDaemon) ReplayDeadLetters(_ context.Context, _ string, _ []string, all bool) (int, error) {
	f.replays.Add(1)
	return 3, nil
}

const (
	cliRead  = "cli-read-token-0123456789"
	cliAdmin = "cli-admin-token-0123456789"
)

func startFakeDaemon(t *testing.T) (*fakeDaemon, string) {
	st, err := store.Open(filepath.Join(t.TempDir(), "d.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	f := &fakeDaemon{auth: map[string]string{}}
	h := api.New(api.Options{Store: st, DeadLetters: f, Tokens: []api.Token{
		{Name: "dash", Secret: cliRead, Role: api.RoleRead}, {Name: "ops", Secret: cliAdmin, Role: api.RoleAdmin}}}).Handler()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.auth[r.Method+" "+r.URL.Path] = r.Header.Get("Authorization")
		f.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	return f, strings.TrimPrefix(ts.URL, "http://")
}

// The CLI sends the configured token: a read one for reads, an admin one
// for changes; with no admin token it refuses a change itself.
func TestCLI12SendsConfiguredToken(t *testing.T) {
	f, addr := startFakeDaemon(t)
	t.Setenv("CLI12_READ", cliRead)
	t.Setenv("CLI12_ADMIN", cliAdmin)
	e := newEnv(t, fmt.Sprintf(`http:
  listen: %q
  tokens:
    - {name: dash, token: "${CLI12_READ}", role: read}
    - {name: ops, token: "${CLI12_ADMIN}", role: admin}
`, addr))
	for _, c := range []struct {
		args []string
		key  string
		want string
	}{
		{[]string{"events", "--since", "2h"}, "GET /api/v1/events", cliRead},
		{[]string{"query", "true"}, "GET /api/v1/cards", cliRead},
		{[]string{"silence", "list"}, "GET /api/v1/silences", cliRead},
		{[]string{"silence", "add", "--match", `rule == "x"`, "--for", "2h"}, "POST /api/v1/silences", cliAdmin},
		{[]string{"deadletter", "list"}, "GET /api/v1/deadletters", cliRead},
		{[]string{"deadletter", "replay", "--all"}, "POST /api/v1/deadletters/replay", cliAdmin},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			n := 1
			if c.args[0] == "silence" || c.args[0] == "deadletter" {
				n = 2
			}
			args := append(append(c.args[:n:n], "--config", e.config), c.args[n:]...)
			code, _, stderr := main12(args...)
			require.Zero(t, code, stderr)
			f.mu.Lock()
			got := f.auth[c.key]
			f.mu.Unlock()
			require.Equal(t, "Bearer "+c.want, got)
		})
	}
	require.EqualValues(t, 1, f.replays.Load())

	// Only a read token: a change is refused before it is sent, and a
	// daemon error reaches the user without any token in it.
	ro := newEnv(t, fmt.Sprintf("http:\n  listen: %q\n  tokens: [{name: dash, token: \"${CLI12_READ}\", role: read}]\n", addr))
	code, _, stderr := main12("deadletter", "replay", "--config", ro.config, "--all")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "needs an admin token")
	require.EqualValues(t, 1, f.replays.Load())
	require.NotContains(t, stderr, cliRead)
}

// With a daemon holding the data_dir and no API to reach it, every command
// is refused with what to do, and opens nothing: no store, no second NATS.
func TestCLI12RefusedWhileDaemonHoldsDataDir(t *testing.T) {
	for _, listen := range []string{"", freeAddr(t)} { // none, or set but not answering
		e := newEnv(t, "")
		cfg, err := config.Load(e.config)
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(cfg.DataDir, 0o700))
		// Stands in for the daemon, which holds this lock while it runs.
		release, err := store.LockDir(cfg.DataDir)
		require.NoError(t, err)
		if listen != "" {
			raw, err := os.ReadFile(e.config)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(e.config, append(raw, fmt.Sprintf("\nhttp: {listen: %q}\n", listen)...), 0o600))
		}
		for _, args := range [][]string{
			{"deadletter", "replay", "--config", e.config, "--all"},
			{"deadletter", "list", "--config", e.config},
			{"silence", "add", "--config", e.config, "--match", "true", "--for", "1h"},
			{"events", "--config", e.config},
			{"query", "--config", e.config, "true"},
		} {
			code, _, stderr := main12(args...)
			require.Equal(t, 1, code, "%v: %s", args, stderr)
			require.Contains(t, stderr, fmt.Sprintf("is in use by a running watcher (pid %d)", os.Getpid()), args)
			require.Contains(t, stderr, "set http.listen in its config", args)
			require.Contains(t, stderr, "or stop it", args)
			require.Equal(t, 1, strings.Count(strings.TrimSpace(stderr), "\n")+1, "one line: %s", stderr)
		}
		entries, err := os.ReadDir(cfg.DataDir)
		require.NoError(t, err)
		var names []string
		for _, de := range entries {
			names = append(names, de.Name())
		}
		require.Equal(t, []string{store.LockFile}, names, "the refused commands opened something")
		require.NoError(t, release())
	}
}

// Without tokens the daemon refuses to serve the API beyond loopback, in
// one line that says to configure http.tokens.
func TestCLI12NoTokensNonLoopbackRefused(t *testing.T) {
	for _, listen := range []string{"0.0.0.0:0", ":0", "[::]:0"} {
		t.Run(listen, func(t *testing.T) {
			e := newEnv(t, fmt.Sprintf("http: {listen: %q}\n", listen))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var out, errOut bytes.Buffer
			code := app.Main(ctx, []string{"run", "--config", e.config}, &out, &errOut)
			require.Equal(t, 1, code, errOut.String())
			require.NoError(t, ctx.Err(), "the daemon started instead of refusing")
			last := strings.TrimSpace(errOut.String())
			last = last[strings.LastIndex(last, "\n")+1:]
			require.Contains(t, last, "watcher: http.listen")
			require.Contains(t, last, "configure http.tokens")
		})
	}
}

// A provider whose endpoint fails keeps /readyz failing once three of its
// intervals pass without a committed cycle, on the daemon's own listener.
func TestCLI12ReadyzFailsWithoutCommittedCycles(t *testing.T) {
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusInternalServerError)
	}))
	t.Cleanup(broken.Close)
	e := newEnv(t, "")
	cfg, err := config.Load(e.config)
	require.NoError(t, err)
	cfg.HTTP.Listen = freeAddr(t)
	cfg.Providers[0].Endpoint = broken.URL
	const interval = 50 * time.Millisecond
	cfg.Providers[0].Interval = config.Duration(interval)

	var mu sync.Mutex
	fake := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return fake }
	advance := func(d time.Duration) { mu.Lock(); fake = fake.Add(d); mu.Unlock() }
	var failed atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w, err := app.New(ctx, cfg, app.Options{Stdout: io.Discard, Logger: slog.New(slog.DiscardHandler), Now: now,
		OnCycle: func(_ string, _ poll.Result, err error) {
			if err != nil {
				failed.Add(1)
			}
		}})
	require.NoError(t, err)
	t.Cleanup(func() { w.Close() })
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()

	readyz := func() (int, string) {
		resp, err := http.Get("http://" + cfg.HTTP.Listen + "/readyz")
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// Fresh: ready within its first three intervals, though cycles fail.
	require.Eventually(t, func() bool { c, _ := readyz(); return c == 200 && failed.Load() >= 2 }, 10*time.Second, 10*time.Millisecond)
	advance(3 * interval)
	for range 5 {
		code, body := readyz()
		require.Equal(t, http.StatusServiceUnavailable, code, body)
		require.Contains(t, body, "provider hw: no committed cycle yet")
		advance(interval)
	}
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(15 * time.Second):
		t.Fatal("daemon did not stop")
	}
}
