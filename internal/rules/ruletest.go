package rules

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/fleet"
)

// A test file, run by `watcher rules test`, proves rules with a sequence of
// listings and the events each must produce:
//
//	rule_files: [rules.example.yaml]       # relative to the test file
//	tests:
//	  - name: a low card fires after 30m
//	    steps:
//	      - at: 2026-11-20T04:00:00Z       # or after: 30m (from the previous step)
//	        cards: [{id: "1", status: active, flow_left: 5, flow_total: 100}]
//	        card_history: {"1": [10, 10, 10]}  # MB a day, the last is yesterday
//	        expect: [{kind: firing, rule: card_low_flow, id: "1"}]
//
// Each step's cards and pools are the complete listing: an entity a step
// leaves out is gone. Only the fields that matter need be given.
type testFile struct {
	RuleFiles []string   `yaml:"rule_files"`
	Tests     []testCase `yaml:"tests"`
}

type testCase struct {
	Name  string     `yaml:"name"`
	Steps []testStep `yaml:"steps"`
}

type testStep struct {
	At          string               `yaml:"at"`
	After       string               `yaml:"after"`
	Cards       []map[string]any     `yaml:"cards"`
	Pools       []map[string]any     `yaml:"pools"`
	CardHistory map[string][]float64 `yaml:"card_history"`
	PoolHistory map[string][]float64 `yaml:"pool_history"`
	Expect      []ExpectedEvent      `yaml:"expect"`
}

// ExpectedEvent is an event a step must produce. Summary and Severity are
// checked only when given.
type ExpectedEvent struct {
	Kind     string `yaml:"kind"`
	Rule     string `yaml:"rule"`
	ID       string `yaml:"id"`
	Summary  string `yaml:"summary,omitempty"`
	Severity string `yaml:"severity,omitempty"`
}

func (e ExpectedEvent) String() string {
	s := e.Kind + " " + e.Rule + " " + e.ID
	if e.Severity != "" {
		s += " severity=" + e.Severity
	}
	if e.Summary != "" {
		s += fmt.Sprintf(" summary=%q", e.Summary)
	}
	return s
}

// TestResult is the outcome of one test case.
type TestResult struct {
	File, Name string
	Failures   []string // one per failing step, with a diff
}

// defaultTestStart is the first step's time when it gives none.
var defaultTestStart = time.Date(2026, 11, 20, 4, 0, 0, 0, time.UTC)

// RunTestFile runs the test cases in path against the rule files it names.
func RunTestFile(path string) ([]TestResult, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var tf testFile
	if err := yaml.UnmarshalWithOptions(raw, &tf, yaml.DisallowUnknownField(), yaml.Strict()); err != nil {
		return nil, fmt.Errorf("%s:%s", path, yaml.FormatError(err, false, true))
	}
	var files []string
	for _, f := range tf.RuleFiles {
		if !filepath.IsAbs(f) {
			f = filepath.Join(filepath.Dir(path), f)
		}
		files = append(files, f)
	}
	set, err := LoadFiles(files, LoadOptions{})
	if err != nil {
		return nil, err
	}
	var out []TestResult
	for _, tc := range tf.Tests {
		res := TestResult{File: path, Name: tc.Name}
		if err := runCase(set, tc, &res); err != nil {
			res.Failures = append(res.Failures, err.Error())
		}
		out = append(out, res)
	}
	return out, nil
}

func runCase(set *Set, tc testCase, res *TestResult) error {
	alerts := map[string]*Alert{}
	cards, pools := map[string]fleet.Card{}, map[string]fleet.Pool{}
	firstIMEI := map[string]string{}
	now := defaultTestStart
	for i, st := range tc.Steps {
		switch {
		case st.At != "":
			t, err := time.Parse(time.RFC3339, st.At)
			if err != nil {
				return fmt.Errorf("step %d: at: %q is not an RFC 3339 time", i+1, st.At)
			}
			now = t
		case st.After != "":
			d, err := time.ParseDuration(st.After)
			if err != nil {
				return fmt.Errorf("step %d: after: %q is not a duration", i+1, st.After)
			}
			now = now.Add(d)
		}
		curCards, err := decodeEntities[fleet.Card](st.Cards, "card")
		if err != nil {
			return fmt.Errorf("step %d: %w", i+1, err)
		}
		curPools, err := decodeEntities[fleet.Pool](st.Pools, "pool")
		if err != nil {
			return fmt.Errorf("step %d: %w", i+1, err)
		}
		c := set.NewCycle("test", now, alerts)
		for _, card := range curCards {
			if _, ok := firstIMEI[card.ID]; !ok && card.IMEI != "" {
				firstIMEI[card.ID] = card.IMEI
			}
		}
		c.ReadFirstIMEI(func(id string) string { return firstIMEI[id] })
		today := fleet.DayOf(now)
		c.ReadHistory(func(entity, id string) fleet.History {
			days := st.CardHistory[id]
			if entity == fleet.EntityPool {
				days = st.PoolHistory[id]
			}
			h := fleet.History{}
			if len(days) > 0 {
				h.Source = fleet.HistoryDaily
			}
			for j, mb := range days {
				h.Set(today-int32(len(days)-j), mb)
			}
			return h
		})
		feed(curCards, cards, func(c *fleet.Card) string { return c.ID }, c.Card, c.CardUnchanged)
		feed(curPools, pools, func(p *fleet.Pool) string { return p.ID }, c.Pool, c.PoolUnchanged)
		events, _, errs := c.Finish()
		if len(errs) > 0 {
			return fmt.Errorf("step %d: %v", i+1, errs[0])
		}
		if diff := diffEvents(st.Expect, events); diff != "" {
			res.Failures = append(res.Failures, fmt.Sprintf("step %d (%s):\n%s", i+1, now.Format(time.RFC3339), diff))
		}
	}
	return nil
}

// feed evaluates a listing as the poller does: new and changed entities
// fully, unchanged ones for clock rules, missing ones as gone.
func feed[T any](cur []T, prev map[string]T, id func(*T) string, eval func(prev, cur *T), same func(cur *T, all bool)) {
	seen := map[string]bool{}
	for i := range cur {
		e := &cur[i]
		k := id(e)
		seen[k] = true
		p, ok := prev[k]
		switch {
		case !ok:
			eval(nil, e)
		case reflect.DeepEqual(p, *e):
			same(e, false)
		default:
			eval(&p, e)
		}
		prev[k] = *e
	}
	for k, p := range prev {
		if !seen[k] {
			eval(&p, nil)
			delete(prev, k)
		}
	}
}

// decodeEntities reads cards or pools given by their field names, so a test
// names only the fields that matter.
func decodeEntities[T any](raw []map[string]any, kind string) ([]T, error) {
	out := make([]T, len(raw))
	for i, m := range raw {
		if _, ok := m["id"]; !ok {
			return nil, fmt.Errorf("%ss[%d]: id is required", kind, i)
		}
		b, err := json.Marshal(m)
		if err != nil {
			return nil, err
		}
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&out[i]); err != nil {
			return nil, fmt.Errorf("%ss[%d]: %v (see `watcher rules fields`)", kind, i, err)
		}
	}
	return out, nil
}

// diffEvents compares expected and produced events, ignoring order, and
// describes the difference line by line: "- " missing, "+ " unexpected.
func diffEvents(want []ExpectedEvent, got []event.Event) string {
	var gotS []string
	for _, e := range got {
		gotS = append(gotS, ExpectedEvent{Kind: e.Kind, Rule: e.Rule, ID: e.EntityID}.String())
	}
	var missing []string
	used := make([]bool, len(got))
	for _, w := range want {
		found := false
		for j, e := range got {
			if used[j] || e.Kind != w.Kind || e.Rule != w.Rule || e.EntityID != w.ID ||
				(w.Summary != "" && e.Summary != w.Summary) || (w.Severity != "" && e.Severity != w.Severity) {
				continue
			}
			used[j], found = true, true
			break
		}
		if !found {
			missing = append(missing, w.String())
		}
	}
	var extra []string
	for j, e := range got {
		if !used[j] {
			extra = append(extra, fmt.Sprintf("%s summary=%q", gotS[j], e.Summary))
		}
	}
	if len(missing) == 0 && len(extra) == 0 {
		return ""
	}
	sort.Strings(missing)
	sort.Strings(extra)
	var b strings.Builder
	for _, m := range missing {
		b.WriteString("    - expected, not produced: " + m + "\n")
	}
	for _, x := range extra {
		b.WriteString("    + produced, not expected: " + x + "\n")
	}
	return strings.TrimRight(b.String(), "\n")
}
