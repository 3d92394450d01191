package app

import (
	"bytes"
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

// command is one entry of the command line. The one table below drives the
// dispatch, the usage text, flag checking and the shell completion scripts,
// so none of them can name a command or flag the others lack.
type command struct {
	name     string
	synopsis string // what follows "watcher NAME" in the usage text
	summary  string
	flags    []flagSpec
	subs     []*command
	// run runs a command whose flags the table defines, once they are
	// parsed and checked.
	run func(ctx context.Context, c *call) error
	// external runs a command that parses its own flags, with every
	// argument after the top-level name. When flags is set too (demo, sim,
	// bench), they are checked against the table first; otherwise (query,
	// events, silence, deadletter) the table only dispatches and completes
	// them, reading their flags from the command itself (see flagsOf).
	external func(ctx context.Context, args []string, stdout, stderr io.Writer) error
	// What shells offer for positional arguments: file names, or values.
	fileArgs  bool
	argValues []string
	// also checks what single flags cannot: how flags go together.
	also func(c *call) error
}

// call is one invocation of a table-defined command.
type call struct {
	cmd            string // e.g. "rules check"
	fs             *flag.FlagSet
	args           []string // positional arguments
	stdout, stderr io.Writer
}

func (c *call) get(name string) any           { return c.fs.Lookup(name).Value.(flag.Getter).Get() }
func (c *call) str(name string) string        { return c.get(name).(string) }
func (c *call) boolean(name string) bool      { return c.get(name).(bool) }
func (c *call) dur(name string) time.Duration { return c.get(name).(time.Duration) }
func (c *call) set(name string) bool {
	found := false
	c.fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	return found
}

var configFlag = flagSpec{name: "config", def: "watcher.yaml", usage: "the config file", check: nonEmpty, file: true}

// commands is filled in init: completion and help read the table, and a
// table that refers to itself cannot be a plain initializer.
var commands []*command

func init() {
	commands = []*command{
		{name: "demo", synopsis: "[--cards N] [--pools M] [--listen ADDR]", summary: "simulated fleet, everything embedded",
			external: demoCmd, flags: []flagSpec{
				{name: "cards", def: 200, usage: "simulated cards at the GSL account (the LinkCard one has half)", check: positive},
				{name: "pools", def: 4, usage: "simulated pools", check: positive},
				{name: "seed", def: uint64(1), usage: "fleet seed: the same seed gives the same fleet"},
				{name: "listen", def: "127.0.0.1:8080", usage: `status API address, HOST:PORT ("" for none)`, check: hostPortOrOff},
				{name: "day", def: 3 * time.Second, usage: "real time per simulated day", check: positive},
				{name: "interval", def: time.Second, usage: "poll interval", check: positive},
				{name: "duration", def: time.Duration(0), usage: "stop after this long (0: run until Ctrl-C)", check: nonNegative},
			}},
		{name: "run", synopsis: "--config FILE [--once] [--timeout D]", summary: "the daemon; --once runs one cycle and delivers",
			run: runCmd, flags: []flagSpec{
				configFlag,
				{name: "once", def: false, usage: "run one cycle of every provider, deliver, and exit (cron, tests)"},
				{name: "timeout", def: 10 * time.Minute, usage: "with --once: the most the whole run may take (it fails when reached)", check: positive},
			}},
		{name: "notify", synopsis: "--config FILE", summary: "a notify-only worker of a cluster: delivers events, polls nothing",
			run: notifyCmd, flags: []flagSpec{configFlag}},
		{name: "config", summary: "check a config as the daemon would load it", subs: []*command{
			{name: "check", synopsis: "--config FILE", summary: "config and rules as the daemon loads them; every problem, or a summary",
				run: configCheckCmd, flags: []flagSpec{configFlag}},
		}},
		{name: "doctor", synopsis: "--config FILE [--repair]", summary: "check the data_dir lock, the store and the bus; --repair salvages a damaged store (nothing is deleted)",
			run: doctorCmd, flags: []flagSpec{
				configFlag,
				{name: "repair", def: false, usage: "salvage a damaged store into a fresh one and move damaged parts aside"},
			}},
		{name: "sim", synopsis: "[--listen ADDR] [--cards N] [--pools M]", summary: "the provider simulator on its own",
			external: simCmd, also: simKeys, flags: []flagSpec{
				{name: "listen", def: "127.0.0.1:9090", usage: "address to serve on, HOST:PORT", check: hostPort},
				{name: "cards", def: 1000, usage: "cards in the fleet", check: positive},
				{name: "pools", def: 5, usage: "pools in the fleet", check: positive},
				{name: "seed", def: uint64(1), usage: "fleet seed: the same seed gives the same fleet"},
				{name: "ak", def: "", usage: "accepted access key (GSL AK or LinkCard AccessKeyId, with --sk); none means no auth"},
				{name: "sk", def: "", usage: "secret key for --ak"},
				{name: "token", def: "", usage: "accepted static X-Auth-Token"},
				{name: "day", def: time.Duration(0), usage: "advance one simulated day this often (0: only via POST /_sim/advance)", check: nonNegative},
				{name: "max-rate", def: 0.0, usage: "throttle API requests over this many per second, as the real gateways do (0: never)", check: nonNegative},
				{name: "throttle-retry-after", def: time.Duration(0), usage: "send this Retry-After on throttled answers (0: none, as real gateways often do)", check: nonNegative},
			}},
		{name: "bench", synopsis: "[--cards N] [--sdk bin/sdk-list] [--json FILE] [--stages]", summary: "measure the watcher, with the simulator in another process, against the official SDK's listing",
			external: benchCmd, flags: []flagSpec{
				{name: "cards", def: 200_000, usage: "simulated cards", check: positive},
				{name: "pools", def: 100, usage: "simulated pools", check: positive},
				{name: "rules", def: 50, usage: "generated rules", check: positive},
				{name: "changed", def: 1.0, usage: "percent of cards changed before each steady run or cycle", check: percent},
				{name: "cycles", def: 3, usage: "steady runs (and daemon cycles) to measure", check: positive},
				{name: "seed", def: uint64(1), usage: "fleet seed"},
				{name: "sdk", def: "", usage: "the bench/sdk binary (make bench builds bin/sdk-list): the official SDK's listing as the baseline", file: true},
				{name: "json", def: "", usage: "also write the figures to this file as JSON", file: true},
				{name: "baseline", def: true, usage: "measure the listing baselines (false: report times only)"},
				{name: "daemon", def: true, usage: "also measure the daemon's steady cycle"},
				{name: "interval", def: 2 * time.Second, usage: "the daemon's poll interval while measured", check: positive},
				{name: "notifier", def: "webhook", usage: "where events go: webhook (a receiver the bench serves) or console", check: benchNotifier},
				{name: "timeout", def: 30 * time.Minute, usage: "the most one run --once may take", check: positive},
				{name: "keep", def: false, usage: "keep the temporary data_dir and config"},
				{name: "stages", def: false, usage: "the in-process per-stage breakdown (simulator in the same process), for profiling"},
				{name: "latency", def: 0, usage: "with --stages: also measure poll-to-webhook latency over this many cycles of one changed card (0: skip)", check: nonNegative},
				{name: "cpuprofile", def: "", usage: "with --stages: write a CPU profile of the cold cycle to this file", file: true},
			}},
		{name: "rules", summary: "check, test and explore rules", subs: []*command{
			{name: "check", synopsis: "[--config FILE] [FILE...]", summary: "validate rule files (every problem, file:line:col); with --config, as the daemon would load them",
				run: rulesCheckCmd, fileArgs: true, flags: []flagSpec{
					{name: "config", def: "", usage: "check notifier names and action notifiers' rules against this config; with no FILE, check its rule_files", file: true},
				}},
			{name: "test", synopsis: "FILE...", summary: "run rule unit tests", run: rulesTestCmd, fileArgs: true},
			{name: "fields", synopsis: "[--json]", summary: "what card and pool rules can use", run: rulesFieldsCmd,
				flags: []flagSpec{{name: "json", def: false, usage: "print JSON"}}},
		}},
		{name: "query", synopsis: "--config FILE [--pools] [--json] 'EXPR'", summary: "cards (or pools) matching EXPR right now", external: queryCmd},
		{name: "events", synopsis: "--config FILE [--rule R] [--kind K] [--since 2h] [--limit N]", summary: "the event history (30 days)", external: eventsCmd},
		{name: "silence", summary: "mute events matching an expression for a while", external: silenceCmd, subs: []*command{
			{name: "add", synopsis: "--config FILE --match EXPR --for D --comment C", summary: "silence what matches EXPR for D"},
			{name: "list", synopsis: "--config FILE", summary: "the silences in force"},
			{name: "expire", synopsis: "--config FILE ID", summary: "end a silence now"},
		}},
		{name: "deadletter", summary: "events notifiers gave up on", external: deadletterCmd, subs: []*command{
			{name: "list", synopsis: "--config FILE [--notifier N]", summary: "events notifiers gave up on, with why"},
			{name: "replay", synopsis: "--config FILE (--all | ID...)", summary: "send them again"},
		}},
		{name: "completion", synopsis: "bash|zsh|fish", summary: "print a shell completion script", run: completionCmd, argValues: shells},
		{name: "version", summary: "the version, commit and Go version (also --version)", run: versionCmd},
	}
}

// simKeys refuses half a key pair: the simulator would accept an empty
// secret, or no key at all, which is not what was asked for.
func simKeys(c *call) error {
	if (c.str("ak") == "") != (c.str("sk") == "") {
		return usagef(c.cmd, "--ak and --sk go together: give both, or neither for no auth")
	}
	return nil
}

// findCommand is the command of list called name, or nil.
func findCommand(list []*command, name string) *command {
	for _, c := range list {
		if c.name == name {
			return c
		}
	}
	return nil
}

func commandNames(list []*command) []string {
	names := make([]string, len(list))
	for i, c := range list {
		names[i] = c.name
	}
	return names
}

// Main runs the command line and returns the exit status.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText())
		return 2
	}
	switch args[0] {
	case "help", "-h", "--help", "-help":
		return exitStatus(helpCmd(args[1:], stdout), stderr)
	case "--version", "-version":
		args = append([]string{"version"}, args[1:]...)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	return exitStatus(dispatch(ctx, args, stdout, stderr), stderr)
}

// dispatch finds the command args name, checks its flags and runs it.
func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd := findCommand(commands, args[0])
	if cmd == nil {
		return unknownCommand("", args[0], commands)
	}
	path, rest := cmd.name, args[1:]
	if cmd.external == nil && len(cmd.subs) > 0 {
		if len(rest) == 0 || isHelp(rest[0]) {
			if len(rest) == 0 {
				return usagef(path, "missing subcommand (want %s)", strings.Join(commandNames(cmd.subs), ", "))
			}
			writeHelp(stdout, path, cmd)
			return nil
		}
		sub := findCommand(cmd.subs, rest[0])
		if sub == nil {
			return unknownCommand(path, rest[0], cmd.subs)
		}
		cmd, path, rest = sub, path+" "+sub.name, rest[1:]
	}
	if cmd.external != nil {
		if cmd.flags != nil {
			fs, pos, err := parseFlags(path, cmd.flags, rest)
			if errors.Is(err, flag.ErrHelp) {
				writeHelp(stdout, path, cmd)
				return nil
			}
			if err != nil {
				return err
			}
			if err := positionals(path, pos, 0, 0, ""); err != nil {
				return err
			}
			if cmd.also != nil {
				if err := cmd.also(&call{cmd: path, fs: fs, args: pos}); err != nil {
					return err
				}
			}
		}
		if cmd.flags == nil {
			return gatedExternal(ctx, path, cmd, args[1:], stdout, stderr)
		}
		return cmd.external(ctx, args[1:], stdout, stderr)
	}
	fs, pos, err := parseFlags(path, cmd.flags, rest)
	if errors.Is(err, flag.ErrHelp) {
		writeHelp(stdout, path, cmd)
		return nil
	}
	if err != nil {
		return err
	}
	return cmd.run(ctx, &call{cmd: path, fs: fs, args: pos, stdout: stdout, stderr: stderr})
}

// gatedExternal runs a command that parses its own flags (query, events,
// silence, deadletter) the way the table's commands run: a missing or
// unknown subcommand, and a flag it cannot parse, are usage errors (one line
// and a pointer to --help, exit 2), not its whole usage text. Its stderr,
// which only ever carries its usage text and flag errors, is held until it
// returns: dropped for a usage error, passed on otherwise (--help).
func gatedExternal(ctx context.Context, path string, cmd *command, args []string, stdout, stderr io.Writer) error {
	if len(cmd.subs) > 0 {
		switch {
		case len(args) == 0:
			return usagef(path, "missing subcommand (want %s)", strings.Join(commandNames(cmd.subs), ", "))
		case isHelp(args[0]):
		case findCommand(cmd.subs, args[0]) == nil:
			return unknownCommand(path, args[0], cmd.subs)
		default:
			path += " " + args[0]
		}
	}
	var held bytes.Buffer
	err := cmd.external(ctx, args, stdout, &held)
	var ue *usageError
	switch {
	case errors.As(err, &ue):
		return err
	case errors.Is(err, flag.ErrHelp):
		_, _ = held.WriteTo(stderr)
		return err // exit 2, as these commands' --help always has
	case err != nil && strings.HasPrefix(held.String(), err.Error()+"\n"):
		// The flag package prints the error it returns, then the usage.
		return usagef(path, "%s", err.Error())
	}
	_, _ = held.WriteTo(stderr)
	return err
}

func isHelp(arg string) bool {
	return arg == "-h" || arg == "--help" || arg == "-help" || arg == "help"
}

func unknownCommand(parent, name string, list []*command) error {
	what := "command"
	if parent != "" {
		what = parent + " subcommand"
	}
	msg := fmt.Sprintf("unknown %s %q", what, name)
	if best := rules.Closest(name, commandNames(list)); best != "" {
		msg += fmt.Sprintf(" (did you mean %s?)", best)
	}
	return usagef(parent, "%s", msg)
}

// exitStatus prints err as the user needs it and returns the exit status.
func exitStatus(err error, stderr io.Writer) int {
	var ee exitError
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return int(ee)
	case errors.As(err, &ue):
		cmd := strings.TrimSpace("watcher " + ue.cmd)
		fmt.Fprintf(stderr, "%s: %s\nRun '%s --help' for usage.\n", cmd, ue.msg, cmd)
		return 2
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

// usageText is the overview `watcher help` prints, from the table.
func usageText() string {
	type line struct{ left, right string }
	var lines []line
	for _, c := range commands {
		if len(c.subs) == 0 {
			lines = append(lines, line{strings.TrimSpace("watcher " + c.name + " " + c.synopsis), c.summary})
			continue
		}
		for _, s := range c.subs {
			lines = append(lines, line{strings.TrimSpace("watcher " + c.name + " " + s.name + " " + s.synopsis), s.summary})
		}
	}
	var b strings.Builder
	b.WriteString("watcher — alerting rules for IoT SIM fleets\n\nUsage:\n")
	tw := tabwriter.NewWriter(&b, 0, 4, 3, ' ', 0)
	for _, l := range lines {
		fmt.Fprintf(tw, "  %s\t%s\n", l.left, l.right)
	}
	_ = tw.Flush()
	b.WriteString("\n'watcher help COMMAND' or 'watcher COMMAND --help' describes a command's flags.\n")
	return b.String()
}

// helpCmd prints the overview, or one command's help.
func helpCmd(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stdout, usageText())
		return nil
	}
	cmd := findCommand(commands, args[0])
	if cmd == nil {
		return unknownCommand("", args[0], commands)
	}
	path := cmd.name
	if len(args) > 1 && len(cmd.subs) > 0 {
		sub := findCommand(cmd.subs, args[1])
		if sub == nil {
			return unknownCommand(path, args[1], cmd.subs)
		}
		if cmd.external != nil {
			// Commands that parse their own flags print their own help.
			_ = cmd.external(context.Background(), []string{sub.name, "-h"}, stdout, stdout)
			return nil
		}
		cmd, path = sub, path+" "+sub.name
	} else if cmd.external != nil && cmd.flags == nil && len(cmd.subs) == 0 {
		_ = cmd.external(context.Background(), []string{"-h"}, stdout, stdout)
		return nil
	}
	writeHelp(stdout, path, cmd)
	return nil
}

// writeHelp prints one command's help: synopsis, what it does, its
// subcommands or flags.
func writeHelp(w io.Writer, path string, cmd *command) {
	fmt.Fprintf(w, "Usage: %s\n\n%s\n", strings.TrimSpace("watcher "+path+" "+cmd.synopsis), cmd.summary)
	if len(cmd.subs) > 0 {
		fmt.Fprintln(w, "\nSubcommands:")
		for _, s := range cmd.subs {
			fmt.Fprintf(w, "  %-8s %s\n", s.name, s.summary)
		}
	}
	if len(cmd.flags) > 0 {
		fmt.Fprintln(w, "\nFlags:")
		writeFlagHelp(w, cmd.flags)
	}
}

// newLogger builds the daemon's logger from log.level and log.format. A
// value it does not know is an error, not a quiet fallback to info or text:
// an operator who asked for debug logs and gets none has no way to tell why.
func newLogger(w io.Writer, c config.Log) (*slog.Logger, error) {
	level := slog.LevelInfo
	if c.Level != "" {
		if err := level.UnmarshalText([]byte(c.Level)); err != nil {
			return nil, fmt.Errorf("config: log.level %q: want debug, info, warn or error", c.Level)
		}
	}
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: readableDuration}
	var h slog.Handler
	switch c.Format {
	case "", "text":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
	default:
		return nil, fmt.Errorf("config: log.format %q: want text or json", c.Format)
	}
	return slog.New(h), nil
}

// readableDuration writes durations as "1.5s": slog's JSON handler would
// write integer nanoseconds, which nobody reading a log line can take in.
func readableDuration(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

func runCmd(ctx context.Context, c *call) error {
	if err := positionals(c.cmd, c.args, 0, 0, ""); err != nil {
		return err
	}
	cfg, err := config.Load(c.str("config"))
	if err != nil {
		return err
	}
	log, err := newLogger(c.stderr, cfg.Log)
	if err != nil {
		return err
	}
	once := c.boolean("once")
	if once && cfg.Cluster.Enabled {
		return fmt.Errorf("run --once does not take part in a cluster (cluster.enabled in %s): run `watcher run` without --once", cfg.Path)
	}
	w, err := New(ctx, cfg, Options{Stdout: c.stdout, Logger: log})
	if err != nil {
		return err
	}
	defer w.Close()
	if once {
		logStarted(log, w, once)
		return w.RunOnce(ctx, c.dur("timeout"))
	}
	// Bound before the start line: a port in use is a failed start, not
	// an error after "simwatch started".
	ln, err := w.listenHTTP()
	if err != nil {
		return err
	}
	logStarted(log, w, once)
	return w.serve(ctx, ln)
}

// notifyCmd runs a notify-only worker: it joins the cluster, keeps a
// replica of the state (silences, firing alerts for inhibition) and takes
// its share of the notifiers' events, but holds no provider account.
func notifyCmd(ctx context.Context, c *call) error {
	if err := positionals(c.cmd, c.args, 0, 0, ""); err != nil {
		return err
	}
	cfg, err := config.Load(c.str("config"))
	if err != nil {
		return err
	}
	if !cfg.Cluster.Enabled {
		return fmt.Errorf("watcher notify is a cluster's worker: set cluster.enabled: true and nats.url in %s (README: Running a cluster)", cfg.Path)
	}
	log, err := newLogger(c.stderr, cfg.Log)
	if err != nil {
		return err
	}
	w, err := New(ctx, cfg, Options{Stdout: c.stdout, Logger: log, NotifyOnly: true})
	if err != nil {
		return err
	}
	defer w.Close()
	ln, err := w.listenHTTP()
	if err != nil {
		return err
	}
	logStarted(log, w, false)
	return w.serve(ctx, ln)
}

// logStarted logs the one line that says what this process is: which
// build, polling what, with how many rules and notifiers, where.
func logStarted(log *slog.Logger, w *Watcher, once bool) {
	providers := make([]string, len(w.cfg.Providers))
	for i, p := range w.cfg.Providers {
		providers[i] = p.Name + ":" + p.Type
	}
	httpAddr := w.cfg.HTTP.Listen
	switch {
	case once:
		httpAddr = "off (--once)"
	case httpAddr == "":
		httpAddr = "off"
	}
	mode := "daemon"
	switch {
	case once:
		mode = "once"
	case w.o.NotifyOnly:
		mode = "notify"
	}
	log.Info("simwatch started", "version", currentVersion().Version, "mode", mode,
		"providers", strings.Join(providers, ","), "rules", len(w.rules.Load().Rules),
		"notifiers", len(w.cfg.Notifiers), "data_dir", w.cfg.DataDir, "http", httpAddr)
}

// rulesCheckCmd validates rule files. With --config, it loads them as the
// daemon does, with every cross-check against the config (loadRules).
func rulesCheckCmd(_ context.Context, c *call) error {
	path := c.str("config")
	if path == "" && len(c.args) == 0 {
		return usagef(c.cmd, "missing FILE (or --config FILE to check its rule_files)")
	}
	var set *rules.Set
	var err error
	files := c.args
	if path != "" {
		cfg, cerr := config.Load(path)
		if cerr != nil {
			fmt.Fprintln(c.stderr, cerr)
			return exitError(1)
		}
		if len(files) == 0 {
			files = cfg.RuleFiles
		}
		set, err = checkRules(cfg, files)
	} else {
		set, err = rules.LoadFiles(files, rules.LoadOptions{})
	}
	if err != nil {
		fmt.Fprintln(c.stderr, err)
		return exitError(1)
	}
	fmt.Fprintf(c.stdout, "%d rules OK in %s\n", len(set.Rules), strings.Join(files, ", "))
	return nil
}

func rulesTestCmd(_ context.Context, c *call) error {
	if err := positionals(c.cmd, c.args, 1, -1, "FILE (a rule test file)"); err != nil {
		return err
	}
	return rulesTest(c.args, c.stdout)
}

func rulesFieldsCmd(_ context.Context, c *call) error {
	if err := positionals(c.cmd, c.args, 0, 0, ""); err != nil {
		return err
	}
	return rulesFields(c.boolean("json"), c.stdout)
}

// rulesFields prints every field and helper rules can use, from the code.
func rulesFields(asJSON bool, stdout io.Writer) error {
	all := map[string][]rules.Field{"card": rules.Fields("card"), "pool": rules.Fields("pool")}
	if asJSON {
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
