package app

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/simwatch/simwatch/internal/config"
	"github.com/simwatch/simwatch/internal/rules"
)

const usage = `watcher — alerting rules for IoT SIM fleets

Usage:
  watcher demo [--cards N] [--pools M] [--listen ADDR]   simulated fleet, everything embedded
  watcher run --config FILE [--once] [--timeout D]        the daemon; --once runs one cycle and delivers
  watcher sim [--listen ADDR] [--cards N] [--pools M]     the provider simulator on its own
  watcher bench [--cards N] [--rules R] [--changed P]     measure the pipeline against the simulator
  watcher rules check FILE...                             validate rule files (every problem, file:line:col)
  watcher rules test FILE...                              run rule unit tests
  watcher rules fields [--json]                           what card and pool rules can use
  watcher query --config FILE [--pools] [--json] 'EXPR'   cards (or pools) matching EXPR right now
  watcher events --config FILE [--rule R] [--iccid I]     the event history (30 days)
  watcher silence add --config FILE --match EXPR --for D --comment C | list | expire ID
  watcher deadletter list --config FILE [--notifier N]    events notifiers gave up on, with why
  watcher deadletter replay --config FILE (--all | ID...) send them again
`

// Main runs the command line and returns the exit status.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch args[0] {
	case "run":
		err = runCmd(ctx, args[1:], stdout, stderr)
	case "demo":
		err = demoCmd(ctx, args[1:], stdout, stderr)
	case "sim":
		err = simCmd(ctx, args[1:], stdout, stderr)
	case "rules":
		err = rulesCmd(args[1:], stdout, stderr)
	case "deadletter":
		err = deadletterCmd(ctx, args[1:], stdout, stderr)
	case "bench":
		err = benchCmd(ctx, args[1:], stdout, stderr)
	case "query":
		err = queryCmd(ctx, args[1:], stdout, stderr)
	case "events":
		err = eventsCmd(ctx, args[1:], stdout, stderr)
	case "silence":
		err = silenceCmd(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "watcher: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return int(ee)
	case errors.Is(err, flag.ErrHelp):
		return 2
	default:
		fmt.Fprintf(stderr, "watcher: %v\n", err)
		return 1
	}
}

// exitError ends the command with a status after it has printed its own output.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func newLogger(w io.Writer, c config.Log) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func runCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "watcher.yaml", "config file")
	once := fs.Bool("once", false, "run one cycle of every provider, deliver, and exit")
	timeout := fs.Duration("timeout", 10*time.Minute, "with --once: the most the whole run may take (it fails when reached)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.Log)
	w, err := New(ctx, cfg, Options{Stdout: stdout, Logger: log})
	if err != nil {
		return err
	}
	defer w.Close()
	if *once {
		return w.RunOnce(ctx, *timeout)
	}
	return w.Run(ctx)
}

func rulesCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) >= 1 && args[0] == "fields" {
		return rulesFields(args[1:], stdout)
	}
	if len(args) >= 2 && args[0] == "test" {
		return rulesTest(args[1:], stdout)
	}
	if len(args) < 2 || args[0] != "check" {
		fmt.Fprint(stderr, "usage: watcher rules check [--config F] FILE... | watcher rules test FILE... | watcher rules fields [--json]\n")
		return exitError(2)
	}
	fs := flag.NewFlagSet("rules check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "also check notifier names against this config")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	var o rules.LoadOptions
	if *path != "" {
		cfg, err := config.Load(*path)
		if err != nil {
			return err
		}
		o.Notifiers = cfg.NotifierNames()
	}
	set, err := rules.LoadFiles(fs.Args(), o)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitError(1)
	}
	fmt.Fprintf(stdout, "%d rules OK in %s\n", len(set.Rules), strings.Join(fs.Args(), ", "))
	return nil
}

// rulesFields prints every field and helper rules can use, from the code.
func rulesFields(args []string, stdout io.Writer) error {
	all := map[string][]rules.Field{"card": rules.Fields("card"), "pool": rules.Fields("pool")}
	if len(args) > 0 && args[0] == "--json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(all)
	}
	for _, on := range []string{"card", "pool"} {
		fmt.Fprintf(stdout, "on: %s\n", on)
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  NAME\tTYPE\tUNIT\tMEANING")
		for _, f := range all[on] {
			name := f.Name
			if f.Helper {
				name += "()"
			}
			meaning := f.Meaning
			if f.MayBeUnknown {
				meaning += " [may be unknown]"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", name, f.Type, f.Unit, meaning)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(stdout)
	}
	fmt.Fprintln(stdout, "[may be unknown]: a provider may leave the field out (or send null, or a status code simwatch does not know).")
	fmt.Fprintln(stdout, "Then it is unknown, never 0: a rule that reads it does not fire, an alert it has neither fires nor resolves,")
	fmt.Fprintln(stdout, "and events carry null. known(\"field\") tells whether the provider gave it.")
	return nil
}

// rulesTest runs rule test files and reports each case.
func rulesTest(files []string, stdout io.Writer) error {
	failed, total := 0, 0
	for _, f := range files {
		results, err := rules.RunTestFile(f)
		if err != nil {
			fmt.Fprintln(stdout, err)
			return exitError(1)
		}
		for _, r := range results {
			total++
			if len(r.Failures) == 0 {
				fmt.Fprintf(stdout, "ok    %s: %s\n", r.File, r.Name)
				continue
			}
			failed++
			fmt.Fprintf(stdout, "FAIL  %s: %s\n", r.File, r.Name)
			for _, msg := range r.Failures {
				fmt.Fprintf(stdout, "  %s\n", msg)
			}
		}
	}
	fmt.Fprintf(stdout, "%d tests, %d failed\n", total, failed)
	if failed > 0 {
		return exitError(1)
	}
	return nil
}

// configFromText parses a config held in memory.
func configFromText(text string) (*config.Config, error) {
	return config.Parse("bench.yaml", []byte(text), os.LookupEnv)
}
