package config

import (
	"fmt"
	"strings"
)

// InhibitRule mutes the events TargetMatch selects while an alert that
// SourceMatch selects is firing with the same values of every Equal field,
// as Alertmanager's inhibit rules do:
//
//	inhibit_rules:
//	  - source_match: 'rule == "provider_unhealthy"'
//	    target_match: 'entity in ["card", "pool"]'
//	    equal: [provider]
//
// The matches are expressions over an event (see package mute); Equal names
// event fields: rule, provider, severity, kind, entity, entity_id, iccid or
// labels.NAME.
type InhibitRule struct {
	SourceMatch string   `yaml:"source_match"`
	TargetMatch string   `yaml:"target_match"`
	Equal       []string `yaml:"equal"`
}

// CheckMatch, when set, checks a match expression (an inhibit rule's
// source_match or target_match), so that a bad expression is a load error
// naming the file, line and field. Package mute sets it when it is linked
// in; without it, only the structure is checked here and
// mute.NewInhibitor reports expression errors.
var CheckMatch func(match string) error

// EqualField reports whether an inhibit rule's equal may name f: the same
// event fields as group_by.
func EqualField(f string) bool { return GroupField(f) }

// validateInhibitRules checks inhibit_rules: both matches given (and valid,
// when CheckMatch is set) and known equal fields.
func (c *Config) validateInhibitRules() []fieldError {
	var errs []fieldError
	add := func(path, field, format string, args ...any) {
		errs = append(errs, fieldError{path: path, field: field, msg: fmt.Sprintf(format, args...)})
	}
	for i, r := range c.InhibitRules {
		path := fmt.Sprintf("$.inhibit_rules[%d]", i)
		field := fmt.Sprintf("inhibit_rules[%d]", i)
		for _, m := range []struct{ key, src string }{{"source_match", r.SourceMatch}, {"target_match", r.TargetMatch}} {
			switch {
			case strings.TrimSpace(m.src) == "":
				add(path+"."+m.key, field+"."+m.key, "an expression is required (true matches every event)")
			case CheckMatch != nil:
				if err := CheckMatch(m.src); err != nil {
					add(path+"."+m.key, field+"."+m.key, "%s", oneLine(err.Error()))
				}
			}
		}
		seen := map[string]bool{}
		for j, f := range r.Equal {
			p, fl := fmt.Sprintf("%s.equal[%d]", path, j), fmt.Sprintf("%s.equal[%d]", field, j)
			switch {
			case !EqualField(f):
				add(p, fl, "unknown field %q (want rule, provider, severity, kind, entity, entity_id, iccid or labels.NAME)", f)
			case seen[f]:
				add(p, fl, "%q is listed twice", f)
			}
			seen[f] = true
		}
	}
	return errs
}

// oneLine keeps the first line of a message: expression errors carry a
// snippet of the source on the lines that follow.
func oneLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}
