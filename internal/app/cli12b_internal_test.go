package app

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/config"
)

// JSON logs print durations as Go writes them, not as nanoseconds; a level
// or format the logger does not know is an error, not a silent default.
func TestCLI12bLoggerDurations(t *testing.T) {
	for _, format := range []string{"json", "text", ""} {
		var buf bytes.Buffer
		log, err := newLogger(&buf, config.Log{Format: format})
		require.NoError(t, err)
		log.Info("cycle", "fetch", 1500*time.Millisecond, "commit", 20*time.Microsecond)
		log.WithGroup("g").Info("nested", "wait", 2*time.Minute)
		if format == "json" {
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			var first, second map[string]any
			require.NoError(t, json.Unmarshal([]byte(lines[0]), &first))
			require.NoError(t, json.Unmarshal([]byte(lines[1]), &second))
			require.Equal(t, "1.5s", first["fetch"])
			require.Equal(t, "20µs", first["commit"])
			require.Equal(t, map[string]any{"wait": "2m0s"}, second["g"])
			continue
		}
		require.Contains(t, buf.String(), "fetch=1.5s")
	}
	for _, c := range []config.Log{{Level: "loud"}, {Format: "xml"}} {
		_, err := newLogger(&bytes.Buffer{}, c)
		require.Error(t, err, "%+v", c)
	}
	var buf bytes.Buffer
	log, err := newLogger(&buf, config.Log{Level: "warn"})
	require.NoError(t, err)
	log.Info("hidden")
	require.Empty(t, buf.String())
}

func TestCLI12bBuildVersion(t *testing.T) {
	settings := []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "true"}}
	for _, tc := range []struct {
		name   string
		ldflag string
		bi     *debug.BuildInfo
		want   string
	}{
		{"ldflags win", "v1.2.0", &debug.BuildInfo{Main: debug.Module{Version: "v0.9.0"}, Settings: settings},
			"watcher v1.2.0 (commit 0123456789ab, modified) go1.26.8"},
		{"module version", "", &debug.BuildInfo{Main: debug.Module{Version: "v0.9.0"}}, "watcher v0.9.0 go1.26.8"},
		{"devel", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "watcher devel go1.26.8"},
		{"no build info", "", nil, "watcher devel go1.26.8"},
		{"dirty pseudo-version", "", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20260101-abcdef+dirty"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abcdef"}}}, "watcher v0.0.0-20260101-abcdef+dirty (commit abcdef, modified)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := buildVersion(tc.ldflag, tc.bi, tc.bi != nil, "go1.26.8").String()
			require.True(t, strings.HasPrefix(got, tc.want), got)
		})
	}
}

// The completion scripts name every command the dispatch knows, every
// subcommand and every flag; bash accepts the bash script.
func TestCLI12bCompletionCoversEveryCommand(t *testing.T) {
	for _, shell := range shells {
		var out, errOut bytes.Buffer
		require.Zero(t, Main(context.Background(), []string{"completion", shell}, &out, &errOut), errOut.String())
		script := out.String()
		for _, c := range commands {
			// Every command in the table is dispatched...
			var o, e bytes.Buffer
			Main(context.Background(), []string{c.name, "--help"}, &o, &e)
			require.NotContains(t, e.String(), "unknown command", c.name)
			// ...and completed.
			require.Contains(t, script, c.name, "%s: command %s", shell, c.name)
			for _, s := range c.subs {
				require.Contains(t, script, s.name, "%s: %s %s", shell, c.name, s.name)
			}
		}
		_, _, leaves := completionModel()
		for _, l := range leaves {
			for _, f := range l.flags {
				if shell == "fish" {
					require.Contains(t, script, "-l "+f.name, "%s: %s --%s", shell, l.key, f.name)
				} else {
					require.Contains(t, script, "--"+f.name, "%s: %s --%s", shell, l.key, f.name)
				}
			}
		}
		if shell == "bash" {
			cmd := exec.Command("bash", "-n")
			cmd.Stdin = strings.NewReader(script)
			msg, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s", msg)
		}
	}
	// The commands that parse their own flags have them read for completion.
	_, _, leaves := completionModel()
	for _, key := range []string{"query", "events", "silence add", "deadletter replay"} {
		i := slices.IndexFunc(leaves, func(l compLeaf) bool { return l.key == key })
		require.GreaterOrEqual(t, i, 0, key)
		require.True(t, slices.ContainsFunc(leaves[i].flags, func(f compFlag) bool { return f.name == "config" && f.file }), key)
	}
}

// demo, sim and bench define their flags themselves and the table checks
// them first: the two lists must be the same, or a new flag would be
// refused (or a removed one still completed).
func TestCLI12bTableFlagsMatchCommands(t *testing.T) {
	for _, c := range commands {
		if c.external == nil || c.flags == nil {
			continue
		}
		var table, real []string
		for _, f := range c.flags {
			table = append(table, f.name)
		}
		for _, f := range flagsOf(c.external, "") {
			real = append(real, f.name)
		}
		slices.Sort(table)
		slices.Sort(real)
		require.Equal(t, real, table, c.name)
	}
}
