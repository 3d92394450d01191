package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/simwatch/simwatch/internal/api"
	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/rules"
	"github.com/simwatch/simwatch/internal/store"
)

// Alert pages: ?limit= alerts a page (default alDefaultLimit, at most
// alMaxLimit).
const (
	alDefaultLimit = 50
	alMaxLimit     = 500
)

// The alerts page lists alerts in the store's key order: provider name,
// then rule, entity kind and entity id. The order is a position, not a
// ranking, so ?after= (the last alert of the previous page) pages through
// them without showing an alert twice or losing one that stays active, and
// a page reads only as many alerts as it shows (plus those its filters
// skip), never the whole of a large fleet's alerts to sort them.

type alFilter struct {
	Rule, Severity, Provider, Tag, State string
	Limit                                int
}

type alertsData struct {
	Filter    alFilter
	Providers []string
	Alerts    []alRow
	// Next is the query of the next page; empty on the last one.
	Next url.Values
	// Paged says this is not the first page; First is its query.
	Paged bool
	First url.Values
	// Unhealthy lists providers with a provider_unhealthy alert firing:
	// their alerts are as of the last good cycle.
	Unhealthy []string
	Durations []string
	// The choices of the filter's selects.
	Severities, States []string
}

type alRow struct {
	Provider string
	*rules.Alert
	Severity string // "" when not known (a pending alert of a rule not firing elsewhere)
	Summary  string
	Labels   map[string]string
	Tags     []string
	// Link is the entity's page.
	Link string
	// Cursor is the ?after= that starts the page after this alert: its
	// AckKey, whose parts are the order's.
	Cursor string
	// AckKey names the alert to the API (api.AlertKey); Match is the
	// silence expression that matches this alert.
	AckKey, Match string
	// Ack is the acknowledgement of the alert's current episode, if any.
	Ack *store.Ack
}

// alDurations are the silence lengths the form offers.
var alDurations = []string{"1h", "2h", "4h", "12h", "1d", "3d", "7d"}

func (s *Server) alerts(w http.ResponseWriter, r *http.Request, v *view) error {
	v.Title, v.Nav, v.Page = "Alerts", "alerts", "alerts"
	f, after, err := alParse(r.URL.Query())
	if err != nil {
		return err
	}
	d := alertsData{Filter: f, Paged: after != "", First: alQuery(f), Durations: alDurations,
		Severities: []string{rules.SeverityCritical, rules.SeverityWarning, rules.SeverityInfo},
		States:     []string{rules.StateFiring, rules.StatePending}}
	for _, p := range s.o.Providers {
		d.Providers = append(d.Providers, p.Name)
	}
	err = s.o.Store.View(func(tx *store.Tx) error {
		sev, err := s.alSeverities(tx, &d)
		if err != nil {
			return err
		}
		return alWalk(tx, f, after, sev, &d)
	})
	if err != nil {
		return fmt.Errorf("console: alerts: %w", err)
	}
	// The acknowledgement of each alert's current episode: one small read
	// each, for the alerts shown, not every ack on record.
	for i := range d.Alerts {
		a := &d.Alerts[i]
		ack, ok, err := s.o.Store.AckFor(store.AckKey(a.Provider, a.Key()))
		if err != nil {
			return fmt.Errorf("console: acknowledgement of %s: %w", a.AckKey, err)
		}
		if ok {
			a.Ack = &ack
		}
	}
	v.Data = d
	return nil
}

// alParse reads the page's query, and the cursor as a store position: 400 for a value it cannot take, rather
// than a page that silently shows something else.
func alParse(q url.Values) (alFilter, string, error) {
	f := alFilter{Rule: q.Get("rule"), Severity: q.Get("severity"), Provider: q.Get("provider"), Tag: q.Get("tag"),
		State: q.Get("state"), Limit: alDefaultLimit}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > alMaxLimit {
			return f, "", badRequest{fmt.Sprintf("limit: want a whole number from 1 to %d, not %q", alMaxLimit, l)}
		}
		f.Limit = n
	}
	switch f.State {
	case "", rules.StateFiring, rules.StatePending:
	default:
		return f, "", badRequest{fmt.Sprintf("state: want firing or pending, not %q", f.State)}
	}
	switch f.Severity {
	case "", rules.SeverityCritical, rules.SeverityWarning, rules.SeverityInfo:
	default:
		return f, "", badRequest{fmt.Sprintf("severity: want critical, warning or info, not %q", f.Severity)}
	}
	after := q.Get("after")
	if after == "" {
		return f, "", nil
	}
	parts := strings.Split(after, "/")
	bad := len(parts) != 4
	for i := 0; !bad && i < 4; i++ {
		var err error
		parts[i], err = url.PathUnescape(parts[i])
		bad = err != nil || strings.IndexByte(parts[i], 0) >= 0 || (i < 3 && parts[i] == "")
	}
	if bad {
		return f, "", badRequest{"after: want an alert's key, provider/rule/entity/entity_id (follow the Next link)"}
	}
	// The store's position: the provider, then the alert's key within it.
	return f, parts[0] + "\x00" + rules.AlertKey(parts[1], parts[2], parts[3]), nil
}

// alSeverities returns the severity of each rule with an alert firing, as
// its latest firing event says: the alert's record does not keep it. It
// also notes the providers that are down.
func (s *Server) alSeverities(tx *store.Tx, d *alertsData) (map[string]string, error) {
	for _, p := range s.o.Providers {
		pt, err := tx.Provider(p.Name)
		if err != nil {
			return nil, err
		}
		m, err := pt.Meta()
		if err != nil {
			return nil, err
		}
		if m.Unhealthy {
			d.Unhealthy = append(d.Unhealthy, p.Name)
		}
	}
	sev := map[string]string{}
	err := tx.ForEachFiring(func(b store.FiringBrief) { sev[b.Rule] = b.Severity })
	// The rule set in force names every rule's severity, pending ones'
	// included, and wins over what an older firing said.
	if s.o.Rules != nil {
		if set := s.o.Rules(); set != nil {
			for _, r := range set.Rules {
				sev[r.Name] = r.Severity
			}
		}
	}
	return sev, err
}

// alWalk reads the alerts after the cursor that pass the filter, one more
// than the page shows (to know whether there is a next page).
func alWalk(tx *store.Tx, f alFilter, after string, sev map[string]string, d *alertsData) error {
	curProv, curKey, _ := strings.Cut(after, "\x00")
	var tagNeedle []byte
	if f.Tag != "" {
		tagNeedle, _ = json.Marshal(f.Tag) // as the tag appears in an alert's JSON, quoted
	}
	providers := tx.Providers()
	slices.Sort(providers)
	for _, name := range providers {
		if (f.Provider != "" && name != f.Provider) || name < curProv {
			continue
		}
		pt, err := tx.Provider(name)
		if err != nil {
			return err
		}
		start, prefix := "", ""
		if name == curProv {
			start = curKey
		}
		if f.Rule != "" {
			// Keys start with the rule: seek to its first alert, stop after its last.
			prefix = f.Rule + "\x00"
			start = max(start, prefix)
		}
		err = pt.AlertsSkipping(start, func(key string, data []byte) (string, bool, error) {
			if !strings.HasPrefix(key, prefix) {
				return "", false, nil
			}
			rule, _, _ := strings.Cut(key, "\x00")
			if f.Severity != "" && sev[rule] != f.Severity {
				// A rule has one severity: skip all its alerts at once.
				return rule + "\x01", true, nil
			}
			if !alMayPass(data, f, tagNeedle) {
				return "", true, nil
			}
			row, ok, err := alRowOf(tx, name, key, data, f, sev)
			if err != nil || !ok {
				return "", err == nil, err
			}
			d.Alerts = append(d.Alerts, row)
			return "", len(d.Alerts) <= f.Limit, nil
		})
		if err != nil {
			return err
		}
		if len(d.Alerts) > f.Limit {
			break
		}
	}
	if len(d.Alerts) > f.Limit {
		d.Alerts = d.Alerts[:f.Limit]
		d.Next = alQuery(f)
		d.Next.Set("after", d.Alerts[f.Limit-1].Cursor)
	}
	return nil
}

// alMayPass rules an alert out before decoding it, when its JSON shows it
// fails the filter: its state is written before its values (rules.Alert's
// field order, escaped strings), and a tag it has appears in its values,
// quoted. A large fleet's filtered page skips most alerts, and decoding
// each whole (its values are the entity) would cost more than a page may.
func alMayPass(data []byte, f alFilter, tagNeedle []byte) bool {
	if f.State != "" {
		const key = `"state":"`
		i := bytes.Index(data, []byte(key))
		if i >= 0 && !bytes.HasPrefix(data[i+len(key):], []byte(f.State+`"`)) {
			return false
		}
	}
	return tagNeedle == nil || bytes.Contains(data, tagNeedle)
}

// alRowOf decodes one stored alert and reports whether it passes the filter.
func alRowOf(tx *store.Tx, provider, key string, data []byte, f alFilter, sev map[string]string) (alRow, bool, error) {
	var a rules.Alert
	if err := json.Unmarshal(data, &a); err != nil {
		return alRow{}, false, fmt.Errorf("%s alert %q: %w", provider, key, err)
	}
	if (f.State != "" && a.State != f.State) || (a.State != rules.StateFiring && a.State != rules.StatePending) {
		return alRow{}, false, nil // resolved: kept under rearm: cycle, not active
	}
	row := alRow{Provider: provider, Alert: &a, Severity: sev[a.Rule]}
	if f.Tag != "" || a.Entity == fleet.EntityCard {
		var vals struct {
			Tags []string `json:"tags"`
		}
		_ = json.Unmarshal(a.Values, &vals) // values are the entity as evaluated; no tags is no match
		row.Tags = vals.Tags
		if f.Tag != "" && !slices.Contains(row.Tags, f.Tag) {
			return alRow{}, false, nil
		}
	}
	if a.State == rules.StateFiring {
		e, ok, err := tx.FiringEvent((&event.Event{Provider: provider, Entity: a.Entity, EntityID: a.EntityID, Rule: a.Rule}).AlertKey())
		if err != nil {
			return alRow{}, false, err
		}
		if ok {
			row.Severity, row.Summary, row.Labels = e.Severity, e.Summary, e.Labels
		}
	}
	if f.Severity != "" && row.Severity != f.Severity {
		return alRow{}, false, nil
	}
	row.Link = alLink(provider, a.Entity, a.EntityID)
	row.AckKey = api.AlertKey(provider, a.Rule, a.Entity, a.EntityID)
	row.Cursor = row.AckKey
	row.Match = fmt.Sprintf("provider == %s && rule == %s && entity == %s && entity_id == %s",
		strconv.Quote(provider), strconv.Quote(a.Rule), strconv.Quote(a.Entity), strconv.Quote(a.EntityID))
	return row, true, nil
}

// alLink is the page of an alert's entity.
func alLink(provider, entity, id string) string {
	switch entity {
	case fleet.EntityCard:
		return "/cards/" + url.PathEscape(provider) + "/" + url.PathEscape(id)
	case fleet.EntityPool:
		return "/pools/" + url.PathEscape(provider) + "/" + url.PathEscape(id)
	}
	return "/#provider-" + url.PathEscape(provider)
}

// alQuery is the query that shows the filter f (without a cursor).
func alQuery(f alFilter) url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"rule": f.Rule, "severity": f.Severity, "provider": f.Provider, "tag": f.Tag, "state": f.State} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if f.Limit != alDefaultLimit {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	return q
}
