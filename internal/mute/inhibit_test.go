package mute

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/config"
	"github.com/simwatch/simwatch/internal/event"
)

// unhealthy is a provider_unhealthy firing event, as the poller makes it.
func unhealthy(provider string) event.Event {
	return event.Event{ID: "u-" + provider, Kind: event.KindFiring, Rule: "provider_unhealthy", Severity: "critical",
		Provider: provider, Entity: "provider", EntityID: provider, StartsAt: now.Add(-time.Hour), ObservedAt: now}
}

func alert(rule, provider, entity, id string, labels map[string]string) event.Event {
	return event.Event{ID: rule + id, Kind: event.KindFiring, Rule: rule, Severity: "warning", Provider: provider,
		Entity: entity, EntityID: id, Labels: labels, StartsAt: now.Add(-time.Hour), ObservedAt: now}
}

var shipped = config.InhibitRule{SourceMatch: `rule == "provider_unhealthy"`, TargetMatch: `entity in ["card", "pool"]`, Equal: []string{"provider"}}

func TestInhibited(t *testing.T) {
	critical := config.InhibitRule{SourceMatch: `severity == "critical"`, TargetMatch: `severity == "warning"`, Equal: []string{"labels.site"}}
	anyRule := config.InhibitRule{SourceMatch: `rule == "maintenance"`, TargetMatch: `true`}
	resolved := unhealthy("hw")
	resolved.Kind = event.KindResolved
	selfish := config.InhibitRule{SourceMatch: `rule == "card_low_flow"`, TargetMatch: `rule == "card_low_flow"`, Equal: []string{"provider"}}
	recent := config.InhibitRule{SourceMatch: `rule == "provider_unhealthy" && hours_since(starts_at) < 2`, TargetMatch: `true`, Equal: []string{"provider"}}

	tests := []struct {
		name    string
		rules   []config.InhibitRule
		target  event.Event
		sources []event.Event
		want    string
	}{
		{"same provider inhibits", []config.InhibitRule{shipped}, alert("card_low_flow", "hw", "card", "c1", nil),
			[]event.Event{unhealthy("ali"), unhealthy("hw")}, "provider_unhealthy hw"},
		{"pools too", []config.InhibitRule{shipped}, alert("pool_overdraft", "hw", "pool", "p1", nil),
			[]event.Event{unhealthy("hw")}, "provider_unhealthy hw"},
		{"other provider does not", []config.InhibitRule{shipped}, alert("card_low_flow", "hw", "card", "c1", nil),
			[]event.Event{unhealthy("ali")}, ""},
		{"no sources", []config.InhibitRule{shipped}, alert("card_low_flow", "hw", "card", "c1", nil), nil, ""},
		{"target_match must hold", []config.InhibitRule{shipped}, unhealthy("hw"), []event.Event{unhealthy("hw")}, ""},
		{"a resolved event is no source", []config.InhibitRule{shipped}, alert("card_low_flow", "hw", "card", "c1", nil),
			[]event.Event{resolved}, ""},
		{"no self-inhibition", []config.InhibitRule{selfish}, alert("card_low_flow", "hw", "card", "c1", nil),
			[]event.Event{alert("card_low_flow", "hw", "card", "c1", nil)}, ""},
		{"another alert of the same rule inhibits", []config.InhibitRule{selfish}, alert("card_low_flow", "hw", "card", "c1", nil),
			[]event.Event{alert("card_low_flow", "hw", "card", "c1", nil), alert("card_low_flow", "hw", "card", "c2", nil)}, "card_low_flow c2"},
		{"labels in equal", []config.InhibitRule{critical}, alert("card_low_flow", "hw", "card", "c1", map[string]string{"site": "depot"}),
			[]event.Event{alert("x", "ali", "card", "c9", map[string]string{"site": "depot"})}, ""}, // the source is not critical
		{"labels in equal, critical source", []config.InhibitRule{critical}, alert("card_low_flow", "hw", "card", "c1", map[string]string{"site": "depot"}),
			[]event.Event{withSeverity(alert("x", "ali", "card", "c9", map[string]string{"site": "depot"}), "critical")}, "x c9"},
		{"labels differ", []config.InhibitRule{critical}, alert("card_low_flow", "hw", "card", "c1", map[string]string{"site": "depot"}),
			[]event.Event{withSeverity(alert("x", "ali", "card", "c9", map[string]string{"site": "port"}), "critical")}, ""},
		{"missing label equals missing label", []config.InhibitRule{critical}, alert("card_low_flow", "hw", "card", "c1", nil),
			[]event.Event{withSeverity(alert("x", "ali", "card", "c9", nil), "critical")}, "x c9"},
		{"no equal: any source", []config.InhibitRule{anyRule}, alert("card_low_flow", "hw", "card", "c1", nil),
			[]event.Event{alert("maintenance", "ali", "provider", "ali", nil)}, "maintenance ali"},
		{"second rule", []config.InhibitRule{critical, shipped}, alert("card_low_flow", "hw", "card", "c1", nil),
			[]event.Event{unhealthy("hw")}, "provider_unhealthy hw"},
		{"source_match with the clock", []config.InhibitRule{recent}, alert("card_low_flow", "hw", "card", "c1", nil),
			[]event.Event{unhealthy("hw")}, "provider_unhealthy hw"},
		{"source_match with the clock, old source", []config.InhibitRule{recent}, alert("card_low_flow", "hw", "card", "c1", nil),
			[]event.Event{startedAt(unhealthy("hw"), now.Add(-3*time.Hour))}, ""},
		{"no rules", nil, alert("card_low_flow", "hw", "card", "c1", nil), []event.Event{unhealthy("hw")}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := NewInhibitor(tt.rules)
			require.NoError(t, err)
			require.Equal(t, tt.want, in.SourcesAt(tt.sources, now).Inhibited(&tt.target))
			if len(tt.rules) == 0 || tt.rules[0].SourceMatch != recent.SourceMatch {
				require.Equal(t, tt.want, in.Inhibited(&tt.target, tt.sources)) // clock-free rules give the same with time.Now()
			}
		})
	}
}

func withSeverity(e event.Event, s string) event.Event { e.Severity = s; return e }
func startedAt(e event.Event, t time.Time) event.Event { e.StartsAt = t; return e }

func TestNewInhibitorErrors(t *testing.T) {
	tests := []struct {
		name string
		rule config.InhibitRule
		want string
	}{
		{"typo in source", config.InhibitRule{SourceMatch: `rulee == "x"`, TargetMatch: `true`}, "inhibit_rules[1].source_match: unknown name rulee (did you mean rule?)"},
		{"typo in target", config.InhibitRule{SourceMatch: `true`, TargetMatch: `entty == "card"`}, "inhibit_rules[1].target_match: unknown name entty (did you mean entity?)"},
		{"not bool", config.InhibitRule{SourceMatch: `rule`, TargetMatch: `true`}, "inhibit_rules[1].source_match: expected bool"},
		{"empty", config.InhibitRule{SourceMatch: `true`}, "inhibit_rules[1].target_match: the expression is empty"},
		{"equal field", config.InhibitRule{SourceMatch: `true`, TargetMatch: `true`, Equal: []string{"provider", "region"}}, `inhibit_rules[1].equal[1]: unknown field "region"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewInhibitor([]config.InhibitRule{shipped, tt.rule})
			require.ErrorContains(t, err, tt.want)
		})
	}
}

// Many sources and targets: sources are matched once and looked up by
// their equal values, so each target costs one target_match and one lookup
// per rule, however many sources there are.
func TestManySources(t *testing.T) {
	in, err := NewInhibitor([]config.InhibitRule{shipped})
	require.NoError(t, err)
	var firing []event.Event
	for i := range 5000 {
		firing = append(firing, alert("card_low_flow", fmt.Sprintf("p%d", i), "card", fmt.Sprint(i), nil))
		if i%100 == 0 {
			firing = append(firing, unhealthy(fmt.Sprintf("p%d", i)))
		}
	}
	set := in.SourcesAt(firing, now)
	require.Equal(t, 50, set.Len())
	inhibited := 0
	for i := range firing {
		if set.Inhibited(&firing[i]) != "" {
			inhibited++
		}
	}
	require.Equal(t, 50, inhibited) // the cards of the 50 unhealthy providers; never the providers themselves
	require.Len(t, set.index[0], 50)
}

func BenchmarkInhibit(b *testing.B) {
	in, _ := NewInhibitor([]config.InhibitRule{shipped})
	var firing []event.Event
	for i := range 10000 {
		firing = append(firing, alert("card_low_flow", fmt.Sprintf("p%d", i%20), "card", fmt.Sprint(i), nil))
	}
	firing = append(firing, unhealthy("p3"))
	targets := make([]event.Event, 1000)
	for i := range targets {
		targets[i] = card()
	}
	b.ResetTimer()
	for b.Loop() {
		set := in.SourcesAt(firing, now)
		for i := range targets {
			set.Inhibited(&targets[i])
		}
	}
}
