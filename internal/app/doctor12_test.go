package app_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/app"
	"github.com/simwatch/simwatch/internal/config"
)

func doctor(t *testing.T, e *env, repair bool) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := app.Doctor(context.Background(), e.config, repair, &out)
	t.Logf("repair=%v err=%v\n%s", repair, err, out.String())
	return out.String(), err
}

func TestDoctor12(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, e *env, dataDir string)
		fail   []string // lines that start with FAIL, by what they contain
		fixed  []string
	}{{
		name:   "sound",
		damage: func(*testing.T, *env, string) {},
	}, {
		name: "damaged data page",
		damage: func(t *testing.T, e *env, dataDir string) {
			db := filepath.Join(dataDir, "simwatch.db")
			smashPage(t, db, cardLeafPage(t, db, e.iccids[30]))
		},
		fail:  []string{"FAIL  store", "is damaged", "--repair"},
		fixed: []string{"FIXED store", "salvaged", "damaged file is kept as", "simwatch.db.damaged-"},
	}, {
		name: "damaged meta pages",
		damage: func(t *testing.T, _ *env, dataDir string) {
			db := filepath.Join(dataDir, "simwatch.db")
			smashPage(t, db, 0)
			smashPage(t, db, 1)
		},
		fail:  []string{"FAIL  store", "is damaged (invalid database)"},
		fixed: []string{"FIXED store", "lost: the whole file"},
	}, {
		name: "embedded JetStream store unusable",
		damage: func(t *testing.T, _ *env, dataDir string) {
			nats := filepath.Join(dataDir, "nats")
			require.NoError(t, os.RemoveAll(nats))
			require.NoError(t, os.WriteFile(nats, []byte("x"), 0o600))
		},
		fail:  []string{"FAIL  nats", "cannot be used", "--repair"},
		fixed: []string{"FIXED nats", "moved aside as", "nats.damaged-"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "")
			code, out := e.once()
			require.Equal(t, 0, code, out)
			dataDir := filepath.Join(filepath.Dir(e.config), "data")
			tc.damage(t, e, dataDir)

			out, err := doctor(t, e, false)
			require.Contains(t, out, "ok    config")
			require.Contains(t, out, "ok    data_dir")
			if len(tc.fail) == 0 {
				require.NoError(t, err)
				require.NotContains(t, out, "FAIL")
				require.Contains(t, out, "ok    store")
				require.Contains(t, out, "ok    nats")
				return
			}
			var de *app.DoctorError
			require.True(t, errors.As(err, &de), "%T %v", err, err)
			for _, w := range tc.fail {
				require.Contains(t, out, w)
			}

			out, err = doctor(t, e, true)
			require.NoError(t, err)
			for _, w := range tc.fixed {
				require.Contains(t, out, w)
			}
			matches, _ := filepath.Glob(filepath.Join(dataDir, "*.damaged-*"))
			require.Len(t, matches, 1, "the damaged part is kept")

			out, err = doctor(t, e, false)
			require.NoError(t, err, "sound after the repair")
			require.NotContains(t, out, "FAIL")
			code, out = e.once()
			require.Equal(t, 0, code, "the watcher starts again: %s", out)
		})
	}
}

func TestDoctor12WatcherRunning(t *testing.T) {
	e := newEnv(t, "")
	cfg, err := config.Load(e.config)
	require.NoError(t, err)
	w, err := app.New(context.Background(), cfg, app.Options{Stdout: io.Discard, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	defer w.Close()
	out, err := doctor(t, e, true)
	require.Error(t, err)
	require.Contains(t, out, "FAIL  data_dir")
	require.Contains(t, out, "is in use by another watcher (pid")
	require.False(t, strings.Contains(out, "store"), "nothing else is touched while a watcher runs")
}

func TestDoctor12BadConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.yaml")
	require.NoError(t, os.WriteFile(path, []byte("data_dir: [\n"), 0o600))
	var out bytes.Buffer
	err := app.Doctor(context.Background(), path, false, &out)
	require.Error(t, err)
	require.True(t, strings.HasPrefix(out.String(), "FAIL  config"), out.String())
}
