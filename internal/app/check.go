package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/simwatch/simwatch/internal/config"
	"github.com/simwatch/simwatch/internal/mute"
	"github.com/simwatch/simwatch/internal/rules"
)

// loadRules loads the config's rule files as the daemon runs them: compiled,
// with every rule's notify checked against the configured notifiers, and
// every rule a notifier acts on (an action notifier's rules) present. It is
// the one place the daemon's start (New), its reload (Reload) and the
// checking commands (rules check --config, config check) decide whether a
// rule set is acceptable, so a set that passes a check is one the daemon
// takes. On problems it returns all of them, one per line, each at
// file:line:col where it has one.
func loadRules(cfg *config.Config) (*rules.Set, error) {
	return checkRules(cfg, cfg.RuleFiles)
}

// checkRules is loadRules on the given rule files instead of the config's.
func checkRules(cfg *config.Config, files []string) (*rules.Set, error) {
	set, err := rules.LoadFiles(files, rules.LoadOptions{Notifiers: cfg.NotifierNames()})
	var problems rules.Problems
	if err != nil && !errors.As(err, &problems) {
		return nil, fmt.Errorf("rules: %w", err)
	}
	// The cross-checks run even when a rule file has problems, so one pass
	// reports everything; they need only the rule names, which a file with
	// a bad expression still has.
	var names []string
	known := true
	if set != nil {
		for _, r := range set.Rules {
			names = append(names, r.Name)
		}
	} else {
		names, known = ruleNames(files)
	}
	var errs []error
	if len(problems) > 0 {
		errs = append(errs, problems)
	}
	if known {
		errs = append(errs, notifierRuleProblems(cfg, names)...)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return set, nil
}

// notifierRuleProblems finds every rule a notifier names (an action
// notifier's rules) that the rule set lacks. The daemon's Reload refuses
// such a set for any notifier type, so this does too.
func notifierRuleProblems(cfg *config.Config, names []string) []error {
	var errs []error
	var file *ast.File // parsed on the first problem, for its position
	for i, nc := range cfg.Notifiers {
		for j, r := range nc.Rules {
			if slices.Contains(names, r) {
				continue
			}
			msg := fmt.Sprintf("notifier %s acts on rule %q, which the rule files lack", nc.Name, r)
			if best := rules.Closest(r, names); best != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", best)
			} else if len(names) > 0 {
				msg += fmt.Sprintf(" (rules: %s)", strings.Join(names, ", "))
			}
			if file == nil {
				file = parseConfigFile(cfg.Path)
			}
			line, col, ok := nodePosition(file, fmt.Sprintf("$.notifiers[%d].rules[%d]", i, j))
			if !ok {
				errs = append(errs, fmt.Errorf("config: notifiers[%d].rules[%d]: %s", i, j, msg))
				continue
			}
			errs = append(errs, rules.Problem{File: cfg.Path, Line: line, Col: col, Message: msg})
		}
	}
	return errs
}

// parseConfigFile parses the config file as written, only to find where a
// value is; nil when there is no file (a config built in memory). The
// ${VAR} references are left alone: expanding them never moves a line.
func parseConfigFile(path string) *ast.File {
	if path == "" {
		return nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	f, err := parser.ParseBytes(raw, 0)
	if err != nil {
		return nil
	}
	return f
}

// nodePosition is where the YAML path is written in file.
func nodePosition(file *ast.File, path string) (line, col int, ok bool) {
	if file == nil {
		return 0, 0, false
	}
	p, err := yaml.PathString(path)
	if err != nil {
		return 0, 0, false
	}
	n, err := p.FilterFile(file)
	if err != nil || n == nil {
		return 0, 0, false
	}
	pos := n.GetToken().Position
	return pos.Line, pos.Column, true
}

// ruleNames reads the rule names in files without validating the rules.
// known is false when a file cannot be read as YAML at all: its names are
// then unknown, and saying a notifier's rule is missing would be a guess.
func ruleNames(files []string) (names []string, known bool) {
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, false
		}
		var doc struct {
			Rules []struct {
				Name string `yaml:"name"`
			} `yaml:"rules"`
		}
		if err := yaml.Unmarshal(raw, &doc); err != nil {
			return nil, false
		}
		for _, r := range doc.Rules {
			names = append(names, r.Name)
		}
	}
	return names, true
}

// configCheckCmd loads the config and its rules exactly as `run` would,
// without opening the store or the bus or touching the network, and prints
// every problem, or what the config amounts to.
func configCheckCmd(_ context.Context, c *call) error {
	if err := positionals(c.cmd, c.args, 0, 0, ""); err != nil {
		return err
	}
	n, err := checkConfig(c.str("config"))
	if err != nil {
		fmt.Fprintln(c.stderr, err)
		return exitError(1)
	}
	fmt.Fprintf(c.stdout, "OK: %d providers, %d rules, %d notifiers\n", n.providers, n.rules, n.notifiers)
	return nil
}

type configCounts struct{ providers, rules, notifiers int }

// checkConfig is every check the daemon makes on its config before it
// opens anything: the config's own validation, the logger settings, the
// inhibit rules, the HTTP exposure and the rule set (loadRules).
func checkConfig(path string) (configCounts, error) {
	cfg, err := config.Load(path)
	if err != nil {
		// Without a valid config its rule files are not known for sure.
		return configCounts{}, err
	}
	var errs []error
	if _, err := newLogger(nil, cfg.Log); err != nil {
		errs = append(errs, err)
	}
	if _, err := mute.NewInhibitor(cfg.InhibitRules); err != nil {
		errs = append(errs, fmt.Errorf("config: %w", err))
	}
	if cfg.HTTP.Listen != "" {
		if err := checkListen(cfg.HTTP); err != nil {
			errs = append(errs, fmt.Errorf("config: %w", err))
		}
	}
	if st, err := os.Stat(cfg.DataDir); err == nil && !st.IsDir() {
		errs = append(errs, fmt.Errorf("config: data_dir %s exists and is not a directory", cfg.DataDir))
	}
	set, err := loadRules(cfg)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return configCounts{}, errors.Join(errs...)
	}
	return configCounts{providers: len(cfg.Providers), rules: len(set.Rules), notifiers: len(cfg.Notifiers)}, nil
}
