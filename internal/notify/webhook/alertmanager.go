package webhook

import (
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/notify"
)

// Formats of the webhook body.
const (
	FormatSimwatch     = "simwatch"
	FormatAlertmanager = "alertmanager"
)

// amMessage is Alertmanager's webhook payload, version 4, so that receivers
// written for Alertmanager work unchanged.
type amMessage struct {
	Receiver          string            `json:"receiver"`
	Status            string            `json:"status"`
	Alerts            []amAlert         `json:"alerts"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   uint64            `json:"truncatedAlerts"`
}

type amAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// alertmanagerPayload maps events to Alertmanager alerts. Labels identify the
// alert (alertname is the rule); annotations carry the summary, the event id,
// its kind and seq (the alert's own counter). A transition is a firing alert
// with no end. groupKey and groupLabels come from the group stage's group
// (notify.GroupFrom) when there is one, its group_by fields named as the
// labels are (rule is alertname, labels.X is X); else the rule.
// commonLabels and commonAnnotations are what every alert of the body shares,
// as Alertmanager computes them.
func alertmanagerPayload(receiver, externalURL string, g notify.Group, events []event.Event) amMessage {
	m := amMessage{Receiver: receiver, Status: status(events), Version: "4", ExternalURL: externalURL}
	for _, e := range events {
		labels := map[string]string{
			"alertname": e.Rule, "severity": e.Severity, "provider": e.Provider,
			"entity": e.Entity, "entity_id": e.EntityID,
		}
		if e.ICCID != "" {
			labels["iccid"] = e.ICCID
		}
		for k, v := range e.Labels {
			if _, taken := labels[k]; !taken {
				labels[k] = v
			}
		}
		a := amAlert{
			Status:      event.KindFiring,
			Labels:      labels,
			Annotations: map[string]string{"summary": e.Summary, "event_id": e.ID, "kind": e.Kind},
			StartsAt:    e.StartsAt,
			Fingerprint: fingerprint(labels),
		}
		if e.Seq != 0 {
			a.Annotations["seq"] = strconv.FormatUint(e.Seq, 10)
		}
		if e.Kind == event.KindResolved {
			a.Status, a.EndsAt = event.KindResolved, e.EndsAt
		}
		if externalURL != "" {
			a.GeneratorURL = strings.TrimRight(externalURL, "/") + "/api/v1/alerts"
		}
		m.Alerts = append(m.Alerts, a)
	}
	m.CommonLabels = common(m.Alerts, func(a amAlert) map[string]string { return a.Labels })
	m.CommonAnnotations = common(m.Alerts, func(a amAlert) map[string]string { return a.Annotations })
	m.GroupLabels = map[string]string{}
	if g.Key != "" {
		for k, v := range g.Labels {
			m.GroupLabels[amLabelName(k)] = v
		}
	} else if len(events) > 0 {
		m.GroupLabels["alertname"] = events[0].Rule
	}
	m.GroupKey = amGroupKey(m.GroupLabels)
	return m
}

// amGroupKey is Alertmanager's group key for a route at the root ({}) and
// these group labels: {}:{a="x", b="y"}, names sorted.
func amGroupKey(labels map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		parts = append(parts, fmt.Sprintf("%s=%q", k, labels[k]))
	}
	return "{}:{" + strings.Join(parts, ", ") + "}"
}

// amLabelName is the Alertmanager label a group_by field is: the rule is
// alertname, an event label labels.X is X, the others keep their names.
func amLabelName(field string) string {
	if field == "rule" {
		return "alertname"
	}
	if name, ok := strings.CutPrefix(field, "labels."); ok {
		return name
	}
	return field
}

// fingerprint is a stable hash of the label set, as Alertmanager's is.
func fingerprint(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := fnv.New64a()
	for _, k := range keys {
		h.Write([]byte(k))
		h.Write([]byte{0xff})
		h.Write([]byte(labels[k]))
		h.Write([]byte{0xff})
	}
	return fmt.Sprintf("%016x", h.Sum64())
}

// common is the key/value pairs every alert shares.
func common(alerts []amAlert, kv func(amAlert) map[string]string) map[string]string {
	out := map[string]string{}
	if len(alerts) == 0 {
		return out
	}
	for k, v := range kv(alerts[0]) {
		out[k] = v
	}
	for _, a := range alerts[1:] {
		m := kv(a)
		for k, v := range out {
			if m[k] != v {
				delete(out, k)
			}
		}
	}
	return out
}
