package app_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/app"
)

func sum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return sha256.Sum256(b)
}

// TestFix12DoctorNeverWrites: doctor without --repair leaves simwatch.db's
// bytes as they were, sound or damaged.
func TestFix12DoctorNeverWrites(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, e *env, db string)
		fail   string
	}{
		{name: "sound", damage: func(*testing.T, *env, string) {}},
		{name: "damaged data page", damage: func(t *testing.T, e *env, db string) { smashPage(t, db, cardLeafPage(t, db, e.iccids[30])) },
			fail: "is damaged"},
		{name: "truncated", damage: func(t *testing.T, _ *env, db string) { require.NoError(t, os.Truncate(db, 0)) },
			fail: "is damaged (truncated: 0 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "")
			code, out := e.once()
			require.Equal(t, 0, code, out)
			db := filepath.Join(filepath.Dir(e.config), "data", "simwatch.db")
			tc.damage(t, e, db)
			before := sum(t, db)
			out, err := doctor(t, e, false)
			require.Equal(t, before, sum(t, db), "doctor without --repair wrote to the store")
			if tc.fail == "" {
				require.NoError(t, err)
				require.Contains(t, out, "ok    store")
				return
			}
			require.Error(t, err)
			require.Contains(t, out, "FAIL  store")
			require.Contains(t, out, tc.fail)
			require.Contains(t, out, "--repair")
		})
	}
}

// TestFix12TruncatedStore: a store cut to nothing is not a fresh install: the
// start fails in one line naming doctor, and doctor --repair moves it aside
// so that the next start begins anew. A missing store is still a first start.
func TestFix12TruncatedStore(t *testing.T) {
	e := newEnv(t, "")
	code, out := e.once()
	require.Equal(t, 0, code, out)
	dataDir := filepath.Join(filepath.Dir(e.config), "data")
	db := filepath.Join(dataDir, "simwatch.db")
	require.NoError(t, os.Truncate(db, 0))

	var stdout, stderr bytes.Buffer
	code = app.Main(context.Background(), []string{"run", "--config", e.config, "--once", "--timeout", "30s"}, &stdout, &stderr)
	msg := stderr.String()
	t.Log(msg)
	require.Equal(t, 1, code)
	require.Equal(t, 1, strings.Count(msg, "\n"), "one line")
	require.Contains(t, msg, "simwatch.db is damaged (truncated: 0 bytes")
	require.Contains(t, msg, "watcher doctor --config "+e.config+" --repair")
	fi, err := os.Stat(db)
	require.NoError(t, err)
	require.Zero(t, fi.Size(), "the failed start left the file as it was")

	out, err = doctor(t, e, true)
	require.NoError(t, err)
	require.Contains(t, out, "FIXED store")
	require.Contains(t, out, "simwatch.db.damaged-")
	aside, _ := filepath.Glob(db + ".damaged-*")
	require.Len(t, aside, 1)
	code, out = e.once()
	require.Equal(t, 0, code, out)

	// A missing store is a first start.
	require.NoError(t, os.Remove(db))
	code, out = e.once()
	require.Equal(t, 0, code, out)
}

// TestFix12StoreIsADirectory: one line naming the directory once, and the fix.
func TestFix12StoreIsADirectory(t *testing.T) {
	e := newEnv(t, "")
	db := filepath.Join(filepath.Dir(e.config), "data", "simwatch.db")
	require.NoError(t, os.MkdirAll(db, 0o700))
	var stdout, stderr bytes.Buffer
	code := app.Main(context.Background(), []string{"run", "--config", e.config, "--once", "--timeout", "30s"}, &stdout, &stderr)
	msg := stderr.String()
	t.Log(msg)
	require.Equal(t, 1, code)
	require.Equal(t, 1, strings.Count(msg, "\n"), "one line")
	require.Equal(t, 1, strings.Count(msg, db), "the path once")
	require.Contains(t, msg, "is a directory")
	require.Contains(t, msg, "move it out of the data_dir")

	out, err := doctor(t, e, false)
	require.Error(t, err)
	require.Contains(t, out, "FAIL  store")
	require.Contains(t, out, "move it out of the data_dir")
}

// TestFix12ListenInUse: a port in use fails the start before "simwatch
// started" is logged, in one line naming the address and the fix.
func TestFix12ListenInUse(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer held.Close()
	addr := held.Addr().String()
	e := newEnv(t, "http: {listen: \""+addr+"\"}\n")
	code, out := e.once() // the bus's streams exist: their creation is logged
	require.Equal(t, 0, code, out)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code = app.Main(ctx, []string{"run", "--config", e.config}, &stdout, &stderr)
	msg := stderr.String()
	t.Logf("exit %d in %s: %s", code, time.Since(start).Round(time.Millisecond), msg)
	require.Equal(t, 1, code)
	require.NoError(t, ctx.Err(), "it failed, not timed out")
	require.NotContains(t, msg, "simwatch started")
	require.Equal(t, 1, strings.Count(msg, "\n"), "one line")
	require.Contains(t, msg, "watcher: http.listen "+addr+": another process listens on "+addr+": stop it or change http.listen")
}

// TestFix12DoctorUnsetVariables: doctor needs no credentials; an unset
// ${VAR} is ignored, and said to be.
func TestFix12DoctorUnsetVariables(t *testing.T) {
	e := newEnv(t, "")
	code, out := e.once()
	require.Equal(t, 0, code, out)
	t.Setenv("E2E_SK", "")
	require.NoError(t, os.Unsetenv("E2E_SK"))
	t.Setenv("E2E_HOOK_SECRET", "")
	require.NoError(t, os.Unsetenv("E2E_HOOK_SECRET"))
	out, err := doctor(t, e, false)
	require.NoError(t, err)
	require.Contains(t, out, "ok    config")
	require.Contains(t, out, "unset environment variables were ignored for these checks (E2E_SK, E2E_HOOK_SECRET)")
	require.Contains(t, out, "ok    store")
	require.Contains(t, out, "ok    nats")
}

// TestFix12FleetCommandUsageErrors: the commands that parse their own flags
// fail a bad command line as the others do: one line, a pointer to --help,
// exit 2.
func TestFix12FleetCommandUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"query", "--nope", "x"}, "watcher query: flag provided but not defined: -nope\nRun 'watcher query --help' for usage.\n"},
		{[]string{"events", "--since", "yesterday-ish"}, "watcher events: invalid value \"yesterday-ish\" for flag -since: "},
		{[]string{"events", "extra"}, "watcher events: unexpected argument \"extra\" (flags go before arguments)\nRun 'watcher events --help' for usage.\n"},
		{[]string{"silence"}, "watcher silence: missing subcommand (want add, list, expire)\nRun 'watcher silence --help' for usage.\n"},
		{[]string{"silence", "mute"}, "watcher silence: unknown silence subcommand \"mute\""},
		{[]string{"silence", "add", "--bogus"}, "watcher silence add: flag provided but not defined: -bogus\nRun 'watcher silence add --help' for usage.\n"},
		{[]string{"silence", "list", "x"}, "watcher silence list: unexpected argument \"x\""},
		{[]string{"deadletter"}, "watcher deadletter: missing subcommand (want list, replay)\n"},
		{[]string{"deadletter", "list", "--json=maybe"}, "watcher deadletter list: invalid boolean value \"maybe\" for -json: "},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := app.Main(context.Background(), tc.args, &stdout, &stderr)
			msg := stderr.String()
			t.Logf("exit %d: %s", code, msg)
			require.Equal(t, 2, code)
			require.Equal(t, 2, strings.Count(msg, "\n"), "one line and the pointer to --help: %q", msg)
			require.True(t, strings.HasPrefix(msg, tc.want) || strings.Contains(msg, tc.want), "%q does not have %q", msg, tc.want)
			require.Contains(t, msg, "Run 'watcher ")
			require.NotContains(t, msg, "usage:")
			require.Empty(t, stdout.String())
		})
	}
	// --help still prints the command's own help (exit 2, as before).
	for _, args := range [][]string{{"query", "--help"}, {"silence", "add", "-h"}, {"deadletter", "list", "--help"}} {
		var stdout, stderr bytes.Buffer
		code := app.Main(context.Background(), args, &stdout, &stderr)
		require.Equal(t, 2, code, stderr.String())
		require.Contains(t, stderr.String(), "usage:")
		require.Contains(t, stderr.String(), "-config")
	}
}
