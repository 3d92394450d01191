package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/simwatch/simwatch/internal/rules"
	"github.com/simwatch/simwatch/internal/store"
)

// Paging of /api/v1/alerts: ?limit= (1..MaxAlertLimit, default
// DefaultAlertLimit) and ?after= (the key of the last alert of the
// previous page, which its answer gives as "next").
const (
	DefaultAlertLimit = 100
	MaxAlertLimit     = 1000
)

// AlertStates are the states ?state= accepts: resolved is a record kept
// under rearm: cycle until its billing cycle ends.
var AlertStates = []string{rules.StateFiring, rules.StatePending, rules.StateResolved}

// Severities are the severities ?severity= accepts.
var Severities = []string{rules.SeverityCritical, rules.SeverityWarning, rules.SeverityInfo}

// alertParams are the query parameters /api/v1/alerts takes, besides
// label.NAME.
var alertParams = []string{"rule", "severity", "provider", "state", "tag", "limit", "after"}

// alertView is one alert of /api/v1/alerts: the stored alert, its key,
// what its rule says of it, and its acknowledgement, if any.
type alertView struct {
	Provider string            `json:"provider"`
	Key      string            `json:"key"`
	Severity string            `json:"severity,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	Ack      *AckView          `json:"ack,omitempty"`
	*rules.Alert
}

// AckView is an alert's acknowledgement as the API shows it.
type AckView struct {
	By      string    `json:"by"`
	Comment string    `json:"comment"`
	At      time.Time `json:"at"`
}

// alertFilter is what ?rule= &severity= &provider= &state= &tag= and
// &label.NAME=VALUE select; zero fields match all.
type alertFilter struct {
	rule, severity, provider, state, tag string
	labels                               map[string]string
}

// parseAlertFilter reads and checks the query: an unknown parameter, a
// repeated one, or a value that can match nothing (a severity or state
// that does not exist, a rule not loaded, a provider never polled) is an
// error naming the valid values.
func (s *Server) parseAlertFilter(q url.Values, book ruleBook, providers []string) (f alertFilter, limit int, after string, err error) {
	limit = DefaultAlertLimit
	for name, vs := range q {
		label, isLabel := strings.CutPrefix(name, "label.")
		switch {
		case isLabel && label == "":
			return f, 0, "", errors.New("label.: want label.NAME=VALUE")
		case !isLabel && !slices.Contains(alertParams, name):
			return f, 0, "", fmt.Errorf("unknown parameter %q; known: %s, label.NAME", name, strings.Join(alertParams, ", "))
		case len(vs) > 1:
			return f, 0, "", fmt.Errorf("%s: given %d times; give it once", name, len(vs))
		case isLabel:
			if f.labels == nil {
				f.labels = map[string]string{}
			}
			f.labels[label] = vs[0]
		}
	}
	f.rule, f.severity, f.provider, f.state, f.tag = q.Get("rule"), q.Get("severity"), q.Get("provider"), q.Get("state"), q.Get("tag")
	if f.severity != "" && !slices.Contains(Severities, f.severity) {
		return f, 0, "", fmt.Errorf("severity: %q is not one of %s", f.severity, strings.Join(Severities, ", "))
	}
	if f.state != "" && !slices.Contains(AlertStates, f.state) {
		return f, 0, "", fmt.Errorf("state: %q is not one of %s", f.state, strings.Join(AlertStates, ", "))
	}
	if f.provider != "" && !slices.Contains(providers, f.provider) {
		return f, 0, "", fmt.Errorf("provider: %q has no stored state; known: %s", f.provider, listOf(providers))
	}
	if f.rule != "" && book.rules != nil && book.rules[f.rule] == nil {
		names := make([]string, 0, len(book.rules))
		for n := range book.rules {
			names = append(names, n)
		}
		slices.Sort(names)
		return f, 0, "", fmt.Errorf("rule: no rule named %q; rules: %s", f.rule, listOf(names))
	}
	if v := q.Get("limit"); v != "" {
		if limit, err = parseLimitMax(v, MaxAlertLimit); err != nil {
			return f, 0, "", fmt.Errorf("limit: %w", err)
		}
	}
	if after = q.Get("after"); after != "" {
		if _, err := parseAlertKey(after); err != nil {
			return f, 0, "", fmt.Errorf("after: %w", err)
		}
	}
	return f, limit, after, nil
}

// listOf joins names for an error, at most 50 of them.
func listOf(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	if len(names) > 50 {
		return strings.Join(names[:50], ", ") + fmt.Sprintf(" and %d more", len(names)-50)
	}
	return strings.Join(names, ", ")
}

// parseLimitMax is ParseLimit with another upper bound.
func parseLimitMax(v string, max int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%q is not a whole number", v)
	}
	if n < 1 || n > max {
		return 0, fmt.Errorf("%d is out of range 1..%d", n, max)
	}
	return n, nil
}

// alerts lists the active alerts (and records kept under rearm: cycle),
// filtered and paged, in a stable order: provider, rule, entity, entity
// id. The answer is {"alerts": [...], "next": KEY}; next is there when the
// page is full, and ?after=KEY gives the page after it. An alert added
// or removed between pages shifts no other: none is lost or repeated.
func (s *Server) alerts(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := s.queryContext(r)
	defer cancel()
	book := s.ruleBook()
	out := []alertView{}
	next := ""
	var badRequest error
	err := s.o.Store.View(func(tx *store.Tx) error {
		providers := tx.Providers()
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			// url.Query drops a pair it cannot decode: ?severity=%zz
			// would list every alert.
			badRequest = fmt.Errorf("query: %w", err)
			return nil
		}
		f, limit, after, err := s.parseAlertFilter(q, book, providers)
		if err != nil {
			badRequest = err
			return nil
		}
		var from alertRef
		if after != "" {
			from, _ = parseAlertKey(after)
		}
		acks, err := tx.Acks()
		if err != nil {
			return err
		}
		for _, name := range providers {
			if (f.provider != "" && name != f.provider) || (after != "" && name < from.provider) {
				continue
			}
			start := ""
			if after != "" && name == from.provider {
				start = from.storeKey()
			}
			if f.rule != "" && start < f.rule {
				start = f.rule // every key of the rule sorts after its name
			}
			p, err := tx.Provider(name)
			if err != nil {
				return err
			}
			err = p.AlertsSkipping(start, func(key string, data []byte) (string, bool, error) {
				if err := ctx.Err(); err != nil {
					return "", false, err
				}
				ref, ok := refOf(name, key)
				if !ok {
					return "", true, nil // not a key this version writes
				}
				if f.rule != "" && ref.rule != f.rule {
					return "", ref.rule < f.rule, nil // past the rule's keys: done
				}
				if book.rulesOut(f, ref.rule) {
					// Every alert of the rule is left out: on to the
					// next rule's keys, unread.
					return ref.rule + "\x01", true, nil
				}
				v, ok, err := s.matchAlert(tx, book, f, ref, data)
				if err != nil || !ok {
					return "", true, err
				}
				if a, ok := acks[store.AckKey(name, key)]; ok {
					v.Ack = &AckView{By: a.By, Comment: a.Comment, At: a.At}
				}
				out = append(out, v)
				if len(out) == limit {
					next = v.Key
					return "", false, nil
				}
				return "", true, nil
			})
			if err != nil || len(out) == limit {
				return err
			}
		}
		return nil
	})
	if badRequest != nil {
		writeError(w, http.StatusBadRequest, badRequest.Error())
		return
	}
	if err != nil {
		s.queryFailed(w, ctx, err)
		return
	}
	ans := map[string]any{"alerts": out}
	if next != "" {
		ans["next"] = next
	}
	writeJSON(w, ans)
}

// refOf splits a store key (rule, entity, entity id).
func refOf(provider, key string) (alertRef, bool) {
	parts := strings.Split(key, "\x00")
	if len(parts) != 3 {
		return alertRef{}, false
	}
	return alertRef{provider, parts[0], parts[1], parts[2]}, true
}

// matchAlert decodes an alert and applies the filter: what the key and
// the rule say first, so that most alerts a filter leaves out are never
// decoded.
func (s *Server) matchAlert(tx *store.Tx, book ruleBook, f alertFilter, ref alertRef, data []byte) (alertView, bool, error) {
	v := alertView{Provider: ref.provider, Key: AlertKey(ref.provider, ref.rule, ref.entity, ref.entityID)}
	info, err := book.info(tx, ref)
	if err != nil {
		return v, false, err
	}
	if f.severity != "" && info.severity != f.severity {
		return v, false, nil
	}
	for name, want := range f.labels {
		if got, ok := info.labels[name]; !ok || got != want {
			return v, false, nil
		}
	}
	if f.tag != "" && !mayHaveTag(data, f.tag) {
		return v, false, nil
	}
	var a rules.Alert
	if err := json.Unmarshal(data, &a); err != nil {
		return v, false, fmt.Errorf("store: %s alert %q: %w", ref.provider, ref.storeKey(), err)
	}
	if f.state != "" && a.State != f.state {
		return v, false, nil
	}
	if f.tag != "" && !hasTag(&a, f.tag) {
		return v, false, nil
	}
	v.Severity, v.Labels, v.Alert = info.severity, info.labels, &a
	return v, true, nil
}

// mayHaveTag is false when the alert's stored JSON cannot hold the tag: a
// byte search that spares decoding most alerts of a large fleet. A tag
// JSON would escape is left to the decode.
func mayHaveTag(data []byte, tag string) bool {
	for _, r := range tag {
		if r < 0x20 || r == '"' || r == '\\' || r == '<' || r == '>' || r == '&' || r == 0x2028 || r == 0x2029 || r == utf8.RuneError {
			return true
		}
	}
	return bytes.Contains(data, []byte(`"`+tag+`"`))
}

// hasTag reports whether a card alert's card, as last evaluated, has the
// tag; a pool has no tags.
func hasTag(a *rules.Alert, tag string) bool {
	if len(a.Values) == 0 {
		return false
	}
	var c struct {
		Tags []string `json:"tags"`
	}
	return json.Unmarshal(a.Values, &c) == nil && slices.Contains(c.Tags, tag)
}
