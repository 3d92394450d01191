package app

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// rssPerCardTarget is issue 13's ceiling on the watcher's peak RSS: 1.5 KB
// per card, read as 1 536 bytes.
const rssPerCardTarget = 1536

// benchVerdicts fills f.Targets from the figures: ratios to the baseline
// (the smaller of the SDK's and the strict listing's medians, so a target
// met here is met against either) and to the SDK's listing.
func benchVerdicts(f *benchFigures) {
	ratioRow := func(name string, d time.Duration, limit float64) benchTarget {
		t := benchTarget{Name: name, Measured: sec(d), Target: fmt.Sprintf("≤ %.1f× listing", limit), Met: "not measured"}
		if f.Baseline > 0 {
			t.Ratio = float64(d) / float64(f.Baseline)
			t.Met = yesNo(t.Ratio <= limit)
		}
		if f.SDKMedian > 0 {
			t.RatioSDK = float64(d) / float64(f.SDKMedian)
		}
		return t
	}
	var ts []benchTarget
	if len(f.Steady) > 0 {
		ts = append(ts, ratioRow(fmt.Sprintf("steady run --once (median of %d)", len(f.Steady)), f.SteadyMedian, 1.0))
	}
	if f.Daemon != nil {
		ts = append(ts, ratioRow(fmt.Sprintf("daemon steady cycle (median of %d)", len(f.Daemon.Steady)), f.DaemonMedian, 0.5))
	}
	if f.Cold != nil {
		ts = append(ts, ratioRow("cold cycle (first run --once)", f.Cold.Cycle.Took, 2.5))
		wall := benchTarget{Name: "cold run --once, exec to exit", Measured: sec(f.Cold.Wall), Target: "stated", Met: "stated"}
		if h := f.Cold.History; h != nil {
			wall.Measured += fmt.Sprintf(" (then history backfill %s: %d card-days)", sec(h.Took), h.CardDays)
		}
		ts = append(ts, wall)
	}
	ts = append(ts, benchTarget{Name: "cold and steady run --once finish", Measured: finished(f),
		Target: "finish", Met: yesNo(len(f.Failed) == 0 && f.Cold != nil)})
	if f.Cold != nil {
		var peak int64
		for _, r := range append([]onceRun{*f.Cold}, f.Steady...) {
			peak = max(peak, r.MaxRSS)
		}
		per := peak / int64(f.Cards)
		ts = append(ts, benchTarget{Name: "peak RSS per card, run --once (watcher alone)", Measured: fmt.Sprintf("%d B (%s)", per, mb(peak)),
			Target: fmt.Sprintf("≤ %d B", rssPerCardTarget), Met: yesNo(per <= rssPerCardTarget)})
	}
	if f.Daemon != nil {
		ts = append(ts, benchTarget{Name: "peak RSS per card, daemon", Measured: fmt.Sprintf("%d B (%s)", f.Daemon.MaxRSS/int64(f.Cards), mb(f.Daemon.MaxRSS)),
			Target: "stated", Met: "stated"})
	}
	if f.Cold != nil {
		last := *f.Cold
		if len(f.Steady) > 0 {
			last = f.Steady[len(f.Steady)-1]
		}
		ts = append(ts, benchTarget{Name: "store size per card (simwatch.db)", Measured: fmt.Sprintf("%d B (%s)", last.Store/int64(f.Cards), mb(last.Store)),
			Target: "stated", Met: "stated"})
		ts = append(ts, benchTarget{Name: "alerts firing after the cold run", Measured: fmt.Sprintf("%d (%.1f%% of cards)", f.Cold.Cycle.Firing, 100*float64(f.Cold.Cycle.Firing)/float64(f.Cards)),
			Target: "about 5%", Met: "stated"})
	}
	f.Targets = ts
}

func finished(f *benchFigures) string {
	if len(f.Failed) == 0 && f.Cold != nil {
		return fmt.Sprintf("cold + %d steady", len(f.Steady))
	}
	return fmt.Sprintf("no: %d failed", len(f.Failed))
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "NO"
}

func sec(d time.Duration) string {
	if d < 10*time.Second {
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

func durs(ds []time.Duration) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = sec(d)
	}
	return strings.Join(s, ", ")
}

// printBench writes the report: the setting, the baselines, the targets
// table, and every run's figures.
func printBench(w io.Writer, f *benchFigures) {
	fmt.Fprintf(w, "\nsimwatch bench: %d cards, %d pools, %d rules, %.3g%% of cards changed before each steady run, notifier %s\n",
		f.Cards, f.Pools, f.Rules, f.Changed, f.Notifier)
	fmt.Fprintf(w, "machine: %d × %s; %s; %s\ncommand: %s\n", f.NProc, f.CPU, f.GoVersion, f.Date, f.Command)
	if f.SimKeyed {
		fmt.Fprintln(w, "simulator: its own process, checking AK/SK signatures")
	} else {
		fmt.Fprintf(w, "simulator: its own process, checking NO signatures: %s\n", f.SimNote)
	}
	if len(f.Strict) > 0 {
		fmt.Fprintln(w, "\nlisting baselines, median of 3 (sequential pages of 500):")
		if len(f.SDK) > 0 {
			fmt.Fprintf(w, "  official SDK (bench/sdk, separate process)    %-8s  runs %s\n", sec(f.SDKMedian), durs(f.SDK))
		} else {
			fmt.Fprintln(w, "  official SDK                                  not measured (no --sdk)")
		}
		fmt.Fprintf(w, "  strict (SDK-shaped structs, encoding/json)    %-8s  runs %s\n", sec(f.StrictMedian), durs(f.Strict))
		fmt.Fprintf(w, "  ratios below are to %s, the smaller median\n", sec(f.Baseline))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "target\tmeasured\t× baseline\t× SDK\ttarget\tmet")
	for _, t := range f.Targets {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.Name, t.Measured, ratio(t.Ratio), ratio(t.RatioSDK), t.Target, t.Met)
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\twall\tcycle\tfetch\tcommit\tchanged\tevents\tfiring\tpeak RSS\tstore\t")
	row := func(name, wall string, c cycleLine, rss, store string) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t\n", name, wall, sec(c.Took), sec(c.Fetch), sec(c.Commit), c.Changed, c.Events, c.Firing, rss, store)
	}
	if f.Cold != nil {
		row("cold run --once", sec(f.Cold.Wall), f.Cold.Cycle, mb(f.Cold.MaxRSS), mb(f.Cold.Store))
	}
	for i, r := range f.Steady {
		row(fmt.Sprintf("steady run --once %d", i+1), sec(r.Wall), r.Cycle, mb(r.MaxRSS), mb(r.Store))
	}
	if f.Daemon != nil {
		row("daemon first cycle", "—", f.Daemon.First, "—", "—")
		for i, c := range f.Daemon.Steady {
			row(fmt.Sprintf("daemon steady %d", i+1), "—", c, "—", "—")
		}
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "(wall: exec to exit, start-up and delivery included; cycle: the cycle's own time from its log line; changed counts pools too)\n(webhook got %d requests, %.1f MB)\n",
		f.Webhook.Requests, float64(f.Webhook.Bytes)/1e6)
	for _, e := range f.Failed {
		fmt.Fprintf(w, "FAILED: %s\n", e)
	}
}

func ratio(r float64) string {
	if r == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", r)
}

func writeBenchJSON(path string, f *benchFigures) error {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
