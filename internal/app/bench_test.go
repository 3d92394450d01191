package app

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/config"
	"github.com/simwatch/simwatch/internal/rules"
)

// The generated rules must load as the daemon loads them: a rule the
// checker refuses would make every measured run fail at start.
func TestBenchRulesLoad(t *testing.T) {
	for _, n := range []int{1, 5, 50, 120} {
		set, err := rules.Parse("bench.yaml", []byte(benchRules(n)), rules.LoadOptions{})
		require.NoError(t, err, "%d rules", n)
		require.Len(t, set.Rules, n)
	}
}

// The bench reads the daemon's JSON log; the durations there are written
// for people ("1.5s"), and a line that is not a cycle is not one.
func TestBenchReadsTheCycleLogLine(t *testing.T) {
	var buf bytes.Buffer
	log, err := newLogger(&buf, config.Log{Format: "json"})
	require.NoError(t, err)
	log.Info("cycle", "provider", "hw", "cards", 200000, "pools", 100, "changed", 2100, "events", 7, "firing", 9813,
		"fetch", 983*time.Millisecond, "commit", 57*time.Millisecond, "took", 1434*time.Millisecond)
	log.Info("cycle failed; snapshot kept", "provider", "hw", "took", time.Second)
	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	require.Len(t, lines, 2)
	c, ok := parseCycleLine(lines[0])
	require.True(t, ok, "%s", lines[0])
	require.Equal(t, cycleLine{Cards: 200000, Changed: 2100, Events: 7, Firing: 9813,
		Took: 1434 * time.Millisecond, Fetch: 983 * time.Millisecond, Commit: 57 * time.Millisecond}, c)
	_, ok = parseCycleLine(lines[1])
	require.False(t, ok)
	_, ok = parseCycleLine([]byte("time=2026 level=INFO msg=cycle took=1s"))
	require.False(t, ok, "a text log line is not read as a cycle")
}

// The verdicts compare with the smaller of the two listing medians, so a
// target met is met against the SDK and the strict listing alike.
func TestBenchVerdictsUseTheStricterBaseline(t *testing.T) {
	f := &benchFigures{Cards: 1000, SDKMedian: 2 * time.Second, StrictMedian: 3 * time.Second, Baseline: 2 * time.Second,
		Cold: &onceRun{Wall: 9 * time.Second, Cycle: cycleLine{Took: 6 * time.Second}, MaxRSS: 2_000_000}, Steady: []onceRun{{Wall: 1900 * time.Millisecond, MaxRSS: 1_000_000}},
		SteadyMedian: 1900 * time.Millisecond, Daemon: &daemonRun{}, DaemonMedian: 1100 * time.Millisecond}
	benchVerdicts(f)
	met := map[string]string{}
	for _, tg := range f.Targets {
		met[tg.Name] = tg.Met
	}
	require.Equal(t, "yes", met["steady run --once (median of 1)"])
	require.Equal(t, "NO", met["daemon steady cycle (median of 0)"], "1.1 s is more than half of 2 s")
	require.Equal(t, "NO", met["cold cycle (first run --once)"], "a 6 s cycle is 3× the listing")
	require.Equal(t, "NO", met["peak RSS per card, run --once (watcher alone)"], "2 000 B per card is over 1 536")
	require.Equal(t, "yes", met["cold and steady run --once finish"])
}
