// Package silence decides which events a silence mutes. A silence's match is
// an expression in the rule language over the event's entity fields plus
// rule, severity, kind, provider and entity, e.g.
//
//	rule == "card_low_flow" && "fleet-a" in tags
package silence

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/store"
)

// envFor is the variables a match sees for an entity kind.
func envFor(values any, e *event.Event) map[string]any {
	m := map[string]any{}
	b, _ := json.Marshal(values)
	_ = json.Unmarshal(b, &m)
	if e != nil {
		m["rule"], m["severity"], m["kind"], m["provider"], m["entity"] = e.Rule, e.Severity, e.Kind, e.Provider, e.Entity
	} else {
		m["rule"], m["severity"], m["kind"], m["provider"], m["entity"] = "", "", "", "", ""
	}
	return m
}

// Compile checks a match expression against both card and pool fields: it
// is valid if it compiles for either.
func Compile(match string) (*vm.Program, error) {
	var firstErr error
	// Typed zero values, so that lists and maps type-check (null would not).
	for _, zero := range []any{fleet.Card{Tags: []string{}, Attributes: map[string]string{}}, fleet.Pool{}} {
		p, err := expr.Compile(match, expr.Env(envFor(zero, nil)), expr.AsBool(), expr.MaxNodes(500),
			expr.DisableBuiltin("now"), expr.DisableBuiltin("date"))
		if err == nil {
			return p, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, fmt.Errorf("silence match: %w", firstErr)
}

// New makes a silence starting at now.
func New(match, comment string, d time.Duration, now time.Time) (store.Silence, error) {
	if _, err := Compile(match); err != nil {
		return store.Silence{}, err
	}
	if d <= 0 {
		return store.Silence{}, errors.New("silence: the duration must be positive")
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	return store.Silence{ID: hex.EncodeToString(b[:]), Match: match, Comment: comment, CreatedAt: now, EndsAt: now.Add(d)}, nil
}

// Mark sets Silenced on each event an active silence matches.
func Mark(events []event.Event, silences []store.Silence, now time.Time) {
	type compiled struct {
		id string
		p  *vm.Program
	}
	var active []compiled
	for _, s := range silences {
		if !s.Active(now) {
			continue
		}
		if p, err := Compile(s.Match); err == nil {
			active = append(active, compiled{s.ID, p})
		}
	}
	if len(active) == 0 {
		return
	}
	for i := range events {
		e := &events[i]
		var values map[string]any
		_ = json.Unmarshal(e.Values, &values)
		env := envFor(values, e)
		for _, s := range active {
			out, err := expr.Run(s.p, env)
			if ok, _ := out.(bool); err == nil && ok {
				e.Silenced = s.id
				break
			}
		}
	}
}
