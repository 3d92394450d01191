package rules

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/yamlread"
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
// Each step's cards and pools are the complete listing, evaluated as the
// daemon evaluates a listing (rules.Evaluate): an entity two steps in a row
// leave out is removed. Only the fields that matter need be given; a field
// given as null is unknown.
type testFile struct {
	RuleFiles []string `yaml:"rule_files"`
	// ClockEvery is the watcher's clock_every the tests assume (default
	// DefaultClockEvery, as the daemon's): how often rules that read the
	// clock or the history run on cards that did not change.
	ClockEvery string `yaml:"clock_every"`
	// History says where usage history comes from: "daily" (a provider
	// daily API, as GSL; card_history and pool_history give it) or
	// "listings" (derived from flow_used between steps, as LinkCard).
	History string     `yaml:"history"`
	Tests   []testCase `yaml:"tests"`
}

// DefaultClockEvery is the daemon's default clock_every, which rule tests
// assume unless their file says otherwise.
const DefaultClockEvery = time.Hour

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
	// Test files hold whole fleets' worth of cards, so they get four rule
	// files' room, but the same bounds on depth and aliases.
	lim := Limits
	lim.MaxBytes *= 4
	raw, err := yamlread.ReadFile(path, lim.MaxBytes)
	if err != nil {
		return nil, err
	}
	if _, err := yamlread.Parse(path, raw, lim); err != nil {
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
	clockEvery := DefaultClockEvery
	if tf.ClockEvery != "" {
		if clockEvery, err = time.ParseDuration(tf.ClockEvery); err != nil || clockEvery < 0 {
			return nil, fmt.Errorf("%s: clock_every: %q is not a duration (e.g. 1h, or 0 for every step)", path, tf.ClockEvery)
		}
	}
	switch tf.History {
	case "", "daily", "listings":
	default:
		return nil, fmt.Errorf("%s: history: %q is daily or listings", path, tf.History)
	}
	var out []TestResult
	for _, tc := range tf.Tests {
		res := TestResult{File: path, Name: tc.Name}
		if err := runCase(set, clockEvery, tf.History == "listings", tc, &res); err != nil {
			res.Failures = append(res.Failures, err.Error())
		}
		out = append(out, res)
	}
	return out, nil
}

func runCase(set *Set, clockEvery time.Duration, listings bool, tc testCase, res *TestResult) error {
	var state State
	cards, pools := map[string]fleet.Card{}, map[string]fleet.Pool{}
	firstIMEI := map[string]string{}
	// history is kept from step to step, as the daemon's store keeps it.
	history := map[HistoryKey]fleet.History{}
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
		today := fleet.DayOf(now)
		given := func(entity string, byID map[string][]float64) {
			for id, days := range byID {
				h := fleet.History{Source: fleet.HistoryDaily}
				for j, mb := range days {
					h.Set(today-int32(len(days)-j), mb) // the last is yesterday
				}
				history[HistoryKey{entity, id}] = h
			}
		}
		given(fleet.EntityCard, st.CardHistory)
		given(fleet.EntityPool, st.PoolHistory)
		var through int32
		if !listings {
			through = today - 1 // the provider has published through yesterday
		}
		out := set.Evaluate(Input{
			Provider:       "test",
			Now:            now,
			State:          state,
			Cards:          listing(curCards, cards, func(c *fleet.Card) string { return c.ID }, missingIn(state, fleet.EntityCard)),
			Pools:          listing(curPools, pools, func(p *fleet.Pool) string { return p.ID }, missingIn(state, fleet.EntityPool)),
			FirstIMEI:      func(id string) string { return firstIMEI[id] },
			ClockEvery:     clockEvery,
			SnapshotUsage:  listings,
			HistoryThrough: through,
			History:        func(entity, id string) fleet.History { return history[HistoryKey{entity, id}] },
		})
		if len(out.Errors) > 0 {
			return fmt.Errorf("step %d: %v", i+1, out.Errors[0])
		}
		// What the daemon commits, the test keeps.
		state.Apply(&out)
		for id, imei := range out.FirstIMEI {
			firstIMEI[id] = imei
		}
		for k, h := range out.History {
			history[k] = h
		}
		keep(curCards, cards, out.RemovedCards, func(c *fleet.Card) string { return c.ID })
		keep(curPools, pools, out.RemovedPools, func(p *fleet.Pool) string { return p.ID })
		if diff := diffEvents(st.Expect, out.Events); diff != "" {
			res.Failures = append(res.Failures, fmt.Sprintf("step %d (%s):\n%s", i+1, now.Format(time.RFC3339), diff))
		}
	}
	return nil
}

// listing compares a step's entities with the snapshot as the poller's
// diff does: new and changed, unchanged, and absent.
func listing[T any](cur []T, snap map[string]T, id func(*T) string, missing func(id string) bool) Changes[T] {
	var ch Changes[T]
	var same []*T
	var changed []Change[T]
	seen := make(map[string]bool, len(cur))
	for i := range cur {
		e := &cur[i]
		seen[id(e)] = true
		p, ok := snap[id(e)]
		switch {
		case !ok:
			changed = append(changed, Change[T]{Cur: e})
		case reflect.DeepEqual(p, *e):
			same = append(same, e)
			if missing(id(e)) {
				ch.Back = append(ch.Back, id(e))
			}
		default:
			changed = append(changed, Change[T]{Prev: &p, Cur: e})
		}
	}
	ids := make([]string, 0, len(snap))
	for k := range snap {
		if !seen[k] {
			ids = append(ids, k)
		}
	}
	sort.Strings(ids) // evaluation order, hence event order, is stable
	for _, k := range ids {
		p := snap[k]
		ch.Absent = append(ch.Absent, &p)
	}
	ch.Same, ch.Changed = Pointers(same), slices.Values(changed)
	return ch
}

// missingIn reports whether an entity of the kind was missing from the
// previous listing.
func missingIn(state State, entity string) func(id string) bool {
	return func(id string) bool { return state.Missing[EntityKey(entity, id)] }
}

// keep moves the snapshot on as the poller commits it: the listing's
// entities replace theirs; absent ones stay until removed.
func keep[T any](cur []T, snap map[string]T, removed []string, id func(*T) string) {
	for i := range cur {
		snap[id(&cur[i])] = cur[i]
	}
	for _, k := range removed {
		delete(snap, k)
	}
}

// decodeEntities reads cards or pools given by their field names, so a test
// names only the fields that matter; null makes a field unknown.
func decodeEntities[T any](raw []map[string]any, kind string) ([]T, error) {
	known := map[string]bool{}
	for _, f := range Fields(kind) {
		if !f.Helper {
			known[f.Name] = true
		}
	}
	out := make([]T, len(raw))
	for i, m := range raw {
		if _, ok := m["id"]; !ok {
			return nil, fmt.Errorf("%ss[%d]: id is required", kind, i)
		}
		for k := range m {
			if !known[k] || k == "prev" {
				return nil, fmt.Errorf("%ss[%d]: unknown field %q (see `watcher rules fields`)", kind, i, k)
			}
		}
		b, err := json.Marshal(m)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(b, &out[i]); err != nil {
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
