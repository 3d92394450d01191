package api

import (
	"errors"
	"net/url"
	"strings"

	"github.com/simwatch/simwatch/internal/rules"
	"github.com/simwatch/simwatch/internal/store"
)

// AlertKey is an alert's key in the API (in /api/v1/alerts, its ?after=
// cursor and the body of an ack): provider/rule/entity/entity_id, each
// part path-escaped, so that it is printable and safe in a URL and a form.
func AlertKey(provider, rule, entity, entityID string) string {
	return url.PathEscape(provider) + "/" + url.PathEscape(rule) + "/" + url.PathEscape(entity) + "/" + url.PathEscape(entityID)
}

// alertRef is an alert as its API key names it.
type alertRef struct{ provider, rule, entity, entityID string }

// storeKey is the alert's key within its provider in the store.
func (a alertRef) storeKey() string { return rules.AlertKey(a.rule, a.entity, a.entityID) }

// eventKey is the alert's key as its events have it (event.AlertKey).
func (a alertRef) eventKey() string {
	return a.provider + "\x00" + a.entity + "\x00" + a.entityID + "\x00" + a.rule
}

var errAlertKey = errors.New("want an alert's key as /api/v1/alerts gives it: provider/rule/entity/entity_id")

// parseAlertKey reads an AlertKey.
func parseAlertKey(s string) (alertRef, error) {
	parts := strings.Split(s, "/")
	if len(parts) != 4 {
		return alertRef{}, errAlertKey
	}
	for i, p := range parts {
		v, err := url.PathUnescape(p)
		if err != nil || strings.IndexByte(v, 0) >= 0 || (i < 3 && v == "") {
			return alertRef{}, errAlertKey
		}
		parts[i] = v
	}
	return alertRef{parts[0], parts[1], parts[2], parts[3]}, nil
}

// ruleInfo is what an alert's rule says of it: severity, labels, and the
// notifiers its events go to.
type ruleInfo struct {
	severity string
	labels   map[string]string
	notify   []string
}

// ruleBook finds an alert's rule info: from the loaded rule set when the
// server has one (Options.Rules), else from the alert's last firing event
// (a pending alert then has none).
type ruleBook struct {
	rules map[string]*rules.Rule
}

func (s *Server) ruleBook() ruleBook {
	var b ruleBook
	if s.o.Rules == nil {
		return b
	}
	if set := s.o.Rules(); set != nil {
		b.rules = make(map[string]*rules.Rule, len(set.Rules))
		for _, r := range set.Rules {
			b.rules[r.Name] = r
		}
	}
	return b
}

func (b ruleBook) info(tx *store.Tx, a alertRef) (ruleInfo, error) {
	if r, ok := b.rules[a.rule]; ok {
		return ruleInfo{r.Severity, r.Labels, r.Notify}, nil
	}
	// A rule no longer loaded (its alerts end at the next cycle), or no
	// rule set: what the alert last notified with.
	e, ok, err := tx.FiringEvent(a.eventKey())
	if err != nil || !ok {
		return ruleInfo{}, err
	}
	return ruleInfo{e.Severity, e.Labels, e.Notify}, nil
}

// rulesOut reports whether the loaded rule set says no alert of the rule
// can match the filter's severity and labels.
func (b ruleBook) rulesOut(f alertFilter, rule string) bool {
	r, ok := b.rules[rule]
	if !ok {
		return false
	}
	if f.severity != "" && r.Severity != f.severity {
		return true
	}
	for name, want := range f.labels {
		if got, ok := r.Labels[name]; !ok || got != want {
			return true
		}
	}
	return false
}
