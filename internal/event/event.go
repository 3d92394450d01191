// Package event defines the event: the unit that travels from the rules
// engine through the outbox and NATS to every notifier, and its identity.
package event

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// Kinds of event.
const (
	KindFiring     = "firing"
	KindResolved   = "resolved"
	KindTransition = "transition"
	// KindAction announces what an action notifier did about another event.
	KindAction = "action"
	// KindAcknowledged says someone acknowledged an active alert (with a
	// comment). It is not a state transition: the alert keeps its state,
	// and the event only takes the next seq of the alert.
	KindAcknowledged = "acknowledged"
)

// Event is one alert transition. ID is deterministic: the same transition of
// the same alert always has the same id, which is the idempotency key from the
// outbox to the receiver. Every event stored or published is first bounded
// to MaxSize bytes (see Bound).
type Event struct {
	ID string `json:"id"`
	// Seq is the alert's own counter (1, 2, 3 …) across all its events
	// (firing, reminders, resolution, the next firing …), so a receiver can
	// check that it sees them in order. The store assigns it.
	Seq        uint64            `json:"seq,omitempty"`
	Kind       string            `json:"kind"`
	Rule       string            `json:"rule"`
	Severity   string            `json:"severity"`
	Summary    string            `json:"summary"`
	Labels     map[string]string `json:"labels,omitempty"`
	Provider   string            `json:"provider"`
	Entity     string            `json:"entity"`
	EntityID   string            `json:"entity_id"`
	ICCID      string            `json:"iccid,omitempty"`
	Values     json.RawMessage   `json:"values,omitempty"`
	Prev       json.RawMessage   `json:"prev,omitempty"`
	StartsAt   time.Time         `json:"starts_at"`
	EndsAt     time.Time         `json:"ends_at,omitzero"`
	ObservedAt time.Time         `json:"observed_at"`
	// Notify names the notifiers that should deliver it; empty means all.
	Notify []string `json:"notify,omitempty"`
	// Silenced is the id of the silence that muted it, and Inhibited the
	// alert whose firing inhibited it (e.g. "provider_unhealthy hw"). Both
	// are decided at delivery and shown in the event history; they never
	// travel to receivers.
	Silenced  string `json:"silenced,omitempty"`
	Inhibited string `json:"inhibited,omitempty"`
	// Truncated says the event was cut to fit in a size limit (see Bound):
	// long strings end with a "…[cut N bytes]" marker, and prev, values or
	// labels may be reduced.
	Truncated bool `json:"truncated,omitempty"`
}

// ID derives an event id from what identifies the transition: the alert
// (provider, entity, entity id, rule), the kind, and the instant that makes
// this transition unique (the alert's start, a repeat's number, or the cycle
// time of a transition).
func ID(provider, entity, entityID, rule, kind string, at time.Time, seq int) string {
	h := sha256.New()
	for _, s := range []string{provider, entity, entityID, rule, kind, strconv.FormatInt(at.UnixNano(), 10), strconv.Itoa(seq)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Subject is the NATS subject the event is published on:
// simwatch.events.<provider>.<entity>.<rule>.
func (e *Event) Subject() string {
	return SubjectPrefix + token(e.Provider) + "." + token(e.Entity) + "." + token(e.Rule)
}

// SubjectPrefix starts every event subject.
const SubjectPrefix = "simwatch.events."

// token makes s safe as one NATS subject token.
func token(s string) string {
	if s == "" {
		return "_"
	}
	return strings.Map(func(r rune) rune {
		if r == '.' || r == '*' || r == '>' || r == ' ' || r < 0x21 {
			return '_'
		}
		return r
	}, s)
}

// AlertKey identifies the alert the event belongs to: every event of one
// alert (its firings, reminders and resolutions, or a card's transitions
// under one rule) has the same key, and Seq orders them.
func (e *Event) AlertKey() string {
	return e.Provider + "\x00" + e.Entity + "\x00" + e.EntityID + "\x00" + e.Rule
}

// Field is the value of an event field as group_by and inhibit rules'
// equal name them: rule, provider, severity, kind, entity, entity_id, iccid
// or labels.NAME ("" for anything else).
func (e *Event) Field(name string) string {
	switch name {
	case "rule":
		return e.Rule
	case "provider":
		return e.Provider
	case "severity":
		return e.Severity
	case "kind":
		return e.Kind
	case "entity":
		return e.Entity
	case "entity_id":
		return e.EntityID
	case "iccid":
		return e.ICCID
	}
	if label, ok := strings.CutPrefix(name, "labels."); ok {
		return e.Labels[label]
	}
	return ""
}

// For reports whether notifier should deliver e. Silences and inhibitions
// are not decided here but at delivery.
func (e *Event) For(notifier string) bool {
	if len(e.Notify) == 0 {
		return true
	}
	for _, n := range e.Notify {
		if n == notifier {
			return true
		}
	}
	return false
}
