package app

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/simwatch/simwatch/internal/rules"
)

// flagSpec is one flag of a command in the table. Its kind follows from the
// type of def (bool, string, int, uint64, float64 or time.Duration), so the
// table states each flag once: name, default, meaning and what values are
// allowed.
type flagSpec struct {
	name  string
	def   any
	usage string
	check func(v any) error // nil: every value of the type is fine
	file  bool              // the value is a path (shells complete file names)
}

// usageError is a command line the user has to fix: Main prints it with a
// pointer to the command's help and exits 2, as flag errors conventionally do.
type usageError struct {
	cmd string // e.g. "rules check"
	msg string
}

func (e *usageError) Error() string { return e.msg }

func usagef(cmd, format string, args ...any) error {
	return &usageError{cmd: cmd, msg: fmt.Sprintf(format, args...)}
}

// newFlagSet registers specs on a fresh FlagSet. Its output is discarded:
// Main prints errors (with a did-you-mean) and help itself.
func newFlagSet(name string, specs []flagSpec) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	for _, s := range specs {
		switch d := s.def.(type) {
		case bool:
			fs.Bool(s.name, d, s.usage)
		case string:
			fs.String(s.name, d, s.usage)
		case int:
			fs.Int(s.name, d, s.usage)
		case uint64:
			fs.Uint64(s.name, d, s.usage)
		case float64:
			fs.Float64(s.name, d, s.usage)
		case time.Duration:
			fs.Duration(s.name, d, s.usage)
		default:
			panic(fmt.Sprintf("flag --%s: unsupported default type %T", s.name, s.def))
		}
	}
	return fs
}

// parseFlags parses args against specs, checks every value and returns the
// positional arguments. Flags may follow positional arguments
// (`rules check a.yaml --config w.yaml`); "--" ends the flags.
func parseFlags(cmd string, specs []flagSpec, args []string) (*flag.FlagSet, []string, error) {
	fs := newFlagSet(cmd, specs)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, nil, err
			}
			return nil, nil, flagError(cmd, specs, err)
		}
		rest := fs.Args()
		consumed := len(args) - len(rest)
		if len(rest) == 0 || (consumed > 0 && args[consumed-1] == "--") {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	for _, s := range specs {
		if s.check == nil {
			continue
		}
		f := fs.Lookup(s.name)
		if err := s.check(f.Value.(flag.Getter).Get()); err != nil {
			return nil, nil, usagef(cmd, "--%s %s: %v", s.name, f.Value.String(), err)
		}
	}
	return fs, pos, nil
}

// flagError rewords the flag package's errors with the double-dash spelling
// the usage text uses, and suggests the nearest flag for a misspelt one.
func flagError(cmd string, specs []flagSpec, err error) error {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		names := make([]string, len(specs))
		for i, s := range specs {
			names[i] = s.name
		}
		msg = fmt.Sprintf("unknown flag --%s", name)
		if best := rules.Closest(strings.TrimPrefix(name, "-"), names); best != "" {
			msg += fmt.Sprintf(" (did you mean --%s?)", best)
		}
		return usagef(cmd, "%s", msg)
	}
	msg = strings.Replace(msg, "for flag -", "for flag --", 1)
	msg = strings.Replace(msg, "argument: -", "argument: --", 1)
	return usagef(cmd, "%s", msg)
}

// Value checks for the table.

func positive(v any) error {
	if sign(v) <= 0 {
		return errors.New("must be more than 0")
	}
	return nil
}

func nonNegative(v any) error {
	if sign(v) < 0 {
		return errors.New("must not be negative")
	}
	return nil
}

func sign(v any) int {
	var f float64
	switch n := v.(type) {
	case int:
		f = float64(n)
	case uint64:
		f = float64(n)
	case float64:
		f = n
	case time.Duration:
		f = float64(n)
	default:
		panic(fmt.Sprintf("sign of %T", v))
	}
	switch {
	case f < 0:
		return -1
	case f > 0:
		return 1
	}
	return 0
}

func percent(v any) error {
	if f := v.(float64); f < 0 || f > 100 {
		return errors.New("must be a percentage, 0 to 100")
	}
	return nil
}

// hostPort accepts HOST:PORT (HOST may be empty: every interface).
func hostPort(v any) error {
	_, port, err := net.SplitHostPort(v.(string))
	if err != nil {
		return errors.New("want HOST:PORT, e.g. 127.0.0.1:8080")
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || (n == 0 && port != "0") {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}

// hostPortOrOff is hostPort, or "" for no listener at all.
func hostPortOrOff(v any) error {
	if v.(string) == "" {
		return nil
	}
	return hostPort(v)
}

// nonEmpty refuses "" for flags without which the command cannot work.
func nonEmpty(v any) error {
	if v.(string) == "" {
		return errors.New("must not be empty")
	}
	return nil
}

// positionals checks the count of positional arguments: at least lo, at
// most hi (-1: no limit), naming the first unexpected one.
func positionals(cmd string, pos []string, lo, hi int, what string) error {
	switch {
	case len(pos) < lo:
		return usagef(cmd, "missing %s", what)
	case hi >= 0 && len(pos) > hi:
		if hi == 0 {
			return usagef(cmd, "unexpected argument %q (this command takes only flags)", pos[hi])
		}
		return usagef(cmd, "unexpected argument %q (at most %d %s)", pos[hi], hi, what)
	}
	return nil
}

// oneOf checks a positional against its allowed values.
func oneOf(cmd, what, v string, allowed []string) error {
	if slices.Contains(allowed, v) {
		return nil
	}
	// The allowed values are few and listed: no did-you-mean.
	return usagef(cmd, "unknown %s %q (want %s)", what, v, strings.Join(allowed, ", "))
}

// writeFlagHelp prints the flags of specs, one per line with its default.
func writeFlagHelp(w io.Writer, specs []flagSpec) {
	for _, s := range specs {
		head := "--" + s.name
		if _, isBool := s.def.(bool); !isBool {
			head += " " + valueName(s)
		}
		line := fmt.Sprintf("  %-22s %s", head, s.usage)
		if d := fmt.Sprint(s.def); d != "" && d != "false" && d != "0" && d != "0s" {
			line += fmt.Sprintf(" (default %s)", d)
		}
		fmt.Fprintln(w, line)
	}
}

func valueName(s flagSpec) string {
	if s.file {
		return "FILE"
	}
	switch s.def.(type) {
	case int, uint64:
		return "N"
	case float64:
		return "X"
	case time.Duration:
		return "D"
	}
	return strings.ToUpper(s.name)
}
