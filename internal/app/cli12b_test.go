package app_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/app"
)

func cli12b(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := app.Main(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// cli12bStopper adds an action notifier acting on the given rules to e's
// config and returns the config's text.
func cli12bStopper(t *testing.T, e *env, ruleList string) string {
	t.Helper()
	raw, err := os.ReadFile(e.config)
	require.NoError(t, err)
	cfg := strings.Replace(string(raw), "notifiers:",
		"notifiers:\n  - {name: stopper, type: action, provider: hw, operation: stop, rules: "+ruleList+"}", 1)
	require.NoError(t, os.WriteFile(e.config, []byte(cfg), 0o644))
	return cfg
}

// `rules check --config` refuses what the daemon refuses at start, and
// reports every problem in one pass: the rule files' own and the config's
// cross-checks, each at file:line:col.
func TestCLI12bRulesCheckConfigRefusesWhatDaemonRefuses(t *testing.T) {
	for _, tc := range []struct {
		name     string
		rules    string // the action notifier's rules
		badRule  bool   // also break a rule's expression
		want     []string
		wantNone []string
	}{
		{name: "missing action rule", rules: "[sim_swapp]",
			want: []string{`:6:74: notifier stopper acts on rule "sim_swapp", which the rule files lack (did you mean sim_swap?)`}},
		{name: "two missing and a bad rule", rules: "[sim_swapp, nothing_like_it]", badRule: true,
			want: []string{
				`rule card_low_flow: unknown name flow_lft (did you mean flow_left?)`,
				`notifier stopper acts on rule "sim_swapp"`,
				`notifier stopper acts on rule "nothing_like_it", which the rule files lack (rules: card_low_flow, card_suspended, sim_swap, pool_overdraft)`,
			}},
		{name: "all present", rules: "[sim_swap]", wantNone: []string{"lack"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "")
			cli12bStopper(t, e, tc.rules)
			if tc.badRule {
				ruleFile := filepath.Join(filepath.Dir(e.config), "rules.yaml")
				require.NoError(t, os.WriteFile(ruleFile, []byte(strings.Replace(e2eRules, "flow_left < 10", "flow_lft < 10", 1)), 0o644))
			}
			// With no FILE, the config's rule_files; with FILEs, those.
			for _, args := range [][]string{
				{"rules", "check", "--config", e.config},
				{"rules", "check", filepath.Join(filepath.Dir(e.config), "rules.yaml"), "--config", e.config},
			} {
				code, out, errOut := cli12b(args...)
				daemonCode, daemonOut := e.once()
				if len(tc.want) == 0 {
					require.Zero(t, code, errOut)
					require.Contains(t, out, "4 rules OK")
					require.Zero(t, daemonCode, daemonOut)
					continue
				}
				require.Equal(t, 1, code, out)
				for _, w := range tc.want {
					require.Contains(t, errOut, w)
				}
				for _, w := range tc.want {
					if strings.Contains(w, "stopper") {
						require.Contains(t, errOut, e.config+":", "the config problems name the config file")
					}
				}
				require.NotZero(t, daemonCode, "the daemon refuses it too: %s", daemonOut)
			}
		})
	}
}

// `config check` loads the config and its rules as the daemon does and
// prints every problem or a summary.
func TestCLI12bConfigCheck(t *testing.T) {
	for _, tc := range []struct {
		name   string
		edit   func(t *testing.T, e *env)
		code   int
		stdout string
		stderr []string
	}{
		{name: "ok", code: 0, stdout: "OK: 1 providers, 4 rules, 1 notifiers\n"},
		{name: "action rule missing", code: 1, edit: func(t *testing.T, e *env) { cli12bStopper(t, e, "[sim_swapp]") },
			stderr: []string{`notifier stopper acts on rule "sim_swapp", which the rule files lack`}},
		{name: "rule notifies an unknown notifier", code: 1, edit: func(t *testing.T, e *env) {
			ruleFile := filepath.Join(filepath.Dir(e.config), "rules.yaml")
			require.NoError(t, os.WriteFile(ruleFile, []byte(strings.Replace(e2eRules, "repeat: 24h\n", "repeat: 24h\n    notify: [crn]\n", 1)), 0o644))
		}, stderr: []string{`rules.yaml:7:14: rule card_low_flow: unknown notifier "crn" (configured: crm)`}},
		{name: "config invalid", code: 1, edit: func(t *testing.T, e *env) {
			raw, _ := os.ReadFile(e.config)
			require.NoError(t, os.WriteFile(e.config, append(raw, []byte("bogus_key: 1\n")...), 0o644))
		}, stderr: []string{"bogus_key"}},
		{name: "log level unknown", code: 1, edit: func(t *testing.T, e *env) {
			raw, _ := os.ReadFile(e.config)
			require.NoError(t, os.WriteFile(e.config, append(raw, []byte("log: {level: loud}\n")...), 0o644))
		}, stderr: []string{"log.level", `"loud"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "")
			if tc.edit != nil {
				tc.edit(t, e)
			}
			code, out, errOut := cli12b("config", "check", "--config", e.config)
			require.Equal(t, tc.code, code, "%s%s", out, errOut)
			if tc.stdout != "" {
				require.Equal(t, tc.stdout, out)
			}
			for _, s := range tc.stderr {
				require.Contains(t, errOut, s)
			}
			_, err := os.Stat(filepath.Join(filepath.Dir(e.config), "data"))
			require.True(t, os.IsNotExist(err), "config check opens no store: data_dir stays absent")
		})
	}
}

func TestCLI12bVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out, errOut := cli12b(args...)
		require.Zero(t, code, errOut)
		require.True(t, strings.HasPrefix(out, "watcher "), out)
		require.Contains(t, out, runtime.Version())
		require.Contains(t, out, runtime.GOOS+"/"+runtime.GOARCH)
	}
	code, _, errOut := cli12b("version", "extra")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, `unexpected argument "extra"`)
}

// Every flag is checked, with a message that names it; exit status 2.
func TestCLI12bFlagValidation(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"rnu"}, `unknown command "rnu" (did you mean run?)`},
		{[]string{"run", "--timeout", "0", "--once"}, "--timeout 0s: must be more than 0"},
		{[]string{"run", "--timeout", "-5s"}, "--timeout -5s: must be more than 0"},
		{[]string{"run", "--timeout", "soon"}, `invalid value "soon" for flag --timeout`},
		{[]string{"run", "--config", ""}, "--config : must not be empty"},
		{[]string{"run", "--onse"}, "unknown flag --onse (did you mean --once?)"},
		{[]string{"run", "extra"}, `unexpected argument "extra"`},
		{[]string{"run", "--config"}, "flag needs an argument: --config"},
		{[]string{"demo", "--cards", "-1"}, "--cards -1: must be more than 0"},
		{[]string{"demo", "--pools", "0"}, "--pools 0: must be more than 0"},
		{[]string{"demo", "--day", "0s"}, "--day 0s: must be more than 0"},
		{[]string{"demo", "--interval", "-1s"}, "--interval -1s: must be more than 0"},
		{[]string{"demo", "--duration", "-1s"}, "--duration -1s: must not be negative"},
		{[]string{"demo", "--listen", "nowhere"}, "--listen nowhere: want HOST:PORT"},
		{[]string{"demo", "now"}, `unexpected argument "now"`},
		{[]string{"sim", "--cards", "0"}, "--cards 0: must be more than 0"},
		{[]string{"sim", "--listen", "127.0.0.1:99999"}, `port "99999" is not a number from 0 to 65535`},
		{[]string{"sim", "--sk", "s"}, "--ak and --sk go together"},
		{[]string{"sim", "--day", "-1h"}, "--day -1h0m0s: must not be negative"},
		{[]string{"bench", "--changed", "101"}, "--changed 101: must be a percentage, 0 to 100"},
		{[]string{"bench", "--cycles", "0"}, "--cycles 0: must be more than 0"},
		{[]string{"bench", "--latency", "-1"}, "--latency -1: must not be negative"},
		{[]string{"bench", "--rules", "x"}, `invalid value "x" for flag --rules`},
		{[]string{"rules"}, "missing subcommand (want check, test, fields)"},
		{[]string{"rules", "chek", "a.yaml"}, `unknown rules subcommand "chek" (did you mean check?)`},
		{[]string{"rules", "check"}, "missing FILE"},
		{[]string{"rules", "test"}, "missing FILE"},
		{[]string{"rules", "fields", "--jsn"}, "unknown flag --jsn (did you mean --json?)"},
		{[]string{"rules", "fields", "card"}, `unexpected argument "card"`},
		{[]string{"config"}, "missing subcommand (want check)"},
		{[]string{"config", "check", "extra"}, `unexpected argument "extra"`},
		{[]string{"completion"}, "missing shell"},
		{[]string{"completion", "tcsh"}, `unknown shell "tcsh" (want bash, zsh, fish)`},
		{[]string{"completion", "bash", "zsh"}, `unexpected argument "zsh"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errOut := cli12b(tc.args...)
			require.Equal(t, 2, code, "%s%s", out, errOut)
			require.Contains(t, errOut, tc.want)
			require.Contains(t, errOut, "--help' for usage.")
		})
	}
}

// Help names every flag with what it does.
func TestCLI12bHelp(t *testing.T) {
	code, out, _ := cli12b("run", "--help")
	require.Zero(t, code)
	require.Contains(t, out, "--timeout D")
	require.Contains(t, out, "with --once: the most the whole run may take")
	code, out, _ = cli12b("help", "rules", "check")
	require.Zero(t, code)
	require.Contains(t, out, "Usage: watcher rules check [--config FILE] [FILE...]")
	code, out, _ = cli12b("help")
	require.Zero(t, code)
	require.Contains(t, out, "watcher config check --config FILE")
	require.Contains(t, out, "watcher completion bash|zsh|fish")
}

// `run` logs one line at start saying what it runs.
func TestCLI12bStartupLine(t *testing.T) {
	e := newEnv(t, "")
	code, out := e.once()
	require.Zero(t, code, out)
	var line string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, `msg="simwatch started"`) {
			require.Empty(t, line, "one start-up line")
			line = l
		}
	}
	require.NotEmpty(t, line, out)
	for _, want := range []string{"version=", "mode=once", "providers=hw:huawei-gsl", "rules=4", "notifiers=1",
		"data_dir=" + filepath.Join(filepath.Dir(e.config), "data"), `http="off (--once)"`} {
		require.Contains(t, line, want)
	}
}
