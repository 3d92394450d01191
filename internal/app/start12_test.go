package app_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/simwatch/simwatch/internal/app"
	"github.com/simwatch/simwatch/internal/config"
)

// smashPage writes garbage over page id of the bbolt file at path.
func smashPage(t *testing.T, path string, id int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	ps := int64(os.Getpagesize())
	_, err = f.WriteAt(bytes.Repeat([]byte{0xA5}, int(ps)), id*ps)
	require.NoError(t, err)
}

// cardLeafPage finds a leaf page of the bbolt file holding the given card id.
func cardLeafPage(t *testing.T, path, id string) int64 {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	ps := os.Getpagesize()
	db, err := bolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	defer db.Close()
	found := -1
	require.NoError(t, db.View(func(tx *bolt.Tx) error {
		for p := 2; p*ps < len(data) && found < 0; p++ {
			if info, err := tx.Page(p); err == nil && info != nil && info.Type == "leaf" &&
				bytes.Contains(data[p*ps:(p+1)*ps], []byte(id)) {
				found = p
			}
		}
		return nil
	}))
	require.GreaterOrEqual(t, found, 2, "a leaf page holding %s", id)
	return int64(found)
}

func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// TestStart12FailsInOneLine: every start-up failure is one line naming the
// cause and the fix, a non-zero exit, in bounded time, and never a panic.
func TestStart12FailsInOneLine(t *testing.T) {
	for _, tc := range []struct {
		name  string
		extra string
		setup func(t *testing.T, e *env, dataDir string)
		want  []string
		never []string
	}{{
		name: "second watcher on the data_dir",
		setup: func(t *testing.T, e *env, _ string) {
			cfg, err := config.Load(e.config)
			require.NoError(t, err)
			w, err := app.New(context.Background(), cfg, app.Options{Stdout: io.Discard, Logger: slog.New(slog.DiscardHandler)})
			require.NoError(t, err)
			t.Cleanup(w.Close)
		},
		want: []string{"is in use by another watcher (pid " + fmt.Sprint(os.Getpid()) + ")", "stop it first"},
	}, {
		name:  "unreachable nats.url",
		extra: "nats: {url: \"nats://ops:hunter2@" + "%CLOSED%" + "\"}\n",
		want:  []string{"nats.url nats://127.0.0.1:", "is unreachable", "leave nats.url empty"},
		never: []string{"ops", "hunter2"},
	}, {
		name: "corrupt meta pages",
		setup: func(t *testing.T, e *env, dataDir string) {
			code, out := e.once()
			require.Equal(t, 0, code, out)
			db := filepath.Join(dataDir, "simwatch.db")
			smashPage(t, db, 0)
			smashPage(t, db, 1)
		},
		want: []string{"simwatch.db is damaged", "watcher doctor --config", "--repair"},
	}, {
		name: "corrupt data page",
		setup: func(t *testing.T, e *env, dataDir string) {
			code, out := e.once()
			require.Equal(t, 0, code, out)
			db := filepath.Join(dataDir, "simwatch.db")
			smashPage(t, db, cardLeafPage(t, db, e.iccids[30]))
		},
		want: []string{"simwatch.db is damaged", "watcher doctor --config", "--repair"},
	}, {
		name: "data_dir is a file",
		setup: func(t *testing.T, _ *env, dataDir string) {
			require.NoError(t, os.WriteFile(dataDir, []byte("x"), 0o600))
		},
		want: []string{"is not a directory", "point data_dir at a directory"},
	}, {
		name: "data_dir not writable",
		setup: func(t *testing.T, _ *env, dataDir string) {
			require.NoError(t, os.MkdirAll(dataDir, 0o700))
			if os.Geteuid() != 0 {
				require.NoError(t, os.Chmod(dataDir, 0o500))
				t.Cleanup(func() { os.Chmod(dataDir, 0o700) })
				return
			}
			// root writes through any mode: a read-only mount it is.
			if err := syscall.Mount("tmpfs", dataDir, "tmpfs", syscall.MS_RDONLY, "size=1m"); err != nil {
				t.Skipf("cannot mount a read-only tmpfs: %v", err)
			}
			t.Cleanup(func() { syscall.Unmount(dataDir, 0) })
		},
		want: []string{"data_dir ", "point data_dir elsewhere"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			extra := strings.ReplaceAll(tc.extra, "%CLOSED%", closedPort(t))
			e := newEnv(t, extra)
			dataDir := filepath.Join(filepath.Dir(e.config), "data")
			if tc.setup != nil {
				tc.setup(t, e, dataDir)
			}
			var out, errOut bytes.Buffer
			start := time.Now()
			var code int
			require.NotPanics(t, func() {
				code = app.Main(context.Background(), []string{"run", "--config", e.config, "--once", "--timeout", "30s"}, &out, &errOut)
			})
			took := time.Since(start)
			msg := errOut.String()
			t.Logf("exit %d in %s: %s", code, took.Round(time.Millisecond), msg)
			require.Equal(t, 1, code)
			require.Less(t, took, 15*time.Second, "bounded")
			require.Equal(t, 1, strings.Count(msg, "\n"), "one line")
			require.True(t, strings.HasPrefix(msg, "watcher: "), msg)
			require.NotContains(t, msg, "panic")
			for _, w := range tc.want {
				require.Contains(t, msg, w)
			}
			for _, n := range tc.never {
				require.NotContains(t, msg, n)
			}
		})
	}
}
