package mute

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/config"
	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/store"
)

var now = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// mark sets Silenced on each event an active silence matches.
func mark(events []event.Event, silences []store.Silence, at time.Time) {
	set := Silences(silences, at)
	for i := range events {
		events[i].Silenced = set.Match(&events[i])
	}
}

func TestActiveSilencesOnlyMatch(t *testing.T) {
	fleetA, err := NewSilence(`rule == "card_low_flow" && "fleet-a" in tags`, "maintenance", 2*time.Hour, now)
	require.NoError(t, err)
	pools, err := NewSilence(`entity == "pool" && flow_left < 0`, "known overdraft", time.Hour, now)
	require.NoError(t, err)
	events := []event.Event{
		{ID: "1", Rule: "card_low_flow", Entity: "card", Values: json.RawMessage(`{"tags":["fleet-a"],"flow_left":3}`)},
		{ID: "2", Rule: "card_low_flow", Entity: "card", Values: json.RawMessage(`{"tags":["fleet-b"],"flow_left":3}`)},
		{ID: "3", Rule: "pool_overdraft", Entity: "pool", Values: json.RawMessage(`{"flow_left":-5}`)},
	}
	mark(events, []store.Silence{fleetA, pools}, now.Add(30*time.Minute))
	require.Equal(t, fleetA.ID, events[0].Silenced)
	require.Empty(t, events[1].Silenced)
	require.Equal(t, pools.ID, events[2].Silenced)

	// Silences end on time.
	later := []event.Event{{ID: "4", Rule: "pool_overdraft", Entity: "pool", Values: json.RawMessage(`{"flow_left":-5}`)}}
	mark(later, []store.Silence{fleetA, pools}, now.Add(61*time.Minute))
	require.Empty(t, later[0].Silenced)
}

func TestNewSilenceErrors(t *testing.T) {
	tests := []struct{ name, match, want string }{
		{"misspelt field", `flow_lef < 1`, "unknown name flow_lef (did you mean flow_left?)"},
		{"misspelt event field", `rulee == "x"`, "unknown name rulee (did you mean rule?)"},
		{"type error", `rule > 3`, "invalid operation"},
		{"not a bool", `rule`, "expected bool"},
		{"now is disabled", `now() > starts_at`, "unknown name now"},
		{"date is disabled", `date("2026-01-01") > 1`, "unknown name date"},
		{"known of a typo", `known("flow_lft")`, "unknown field flow_lft in known() (did you mean flow_left?)"},
		{"known of a computed name", `known(rule)`, "known() takes a field name in quotes"},
		{"helper type", `hours_since("yesterday") > 1`, "hours_since"},
		{"labels are strings", `labels.team > 3`, "invalid operation"},
		{"empty", `  `, "empty"},
		{"too big", strings.Repeat("true && ", 300) + "true", "exceeds maximum allowed nodes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewSilence(tt.match, "", time.Hour, now)
			require.ErrorContains(t, err, "silence match: ")
			require.ErrorContains(t, err, tt.want)
		})
	}
	_, err := NewSilence(`true`, "", 0, now)
	require.ErrorContains(t, err, "duration must be positive")
}

// card is a firing card event as the rules engine writes it.
func card() event.Event {
	c := fleet.Card{Provider: "hw", ID: "4900", ICCID: "8986001", Status: "active", StatusCode: 2, FlowLeft: 3, FlowTotal: 100,
		Tags: []string{"fleet-a", "north"}, Attributes: map[string]string{"site": "depot"},
		ExpireTime: now.Add(72 * time.Hour), Unknown: fleet.CardFields("imei", "flow_used")}
	values, _ := json.Marshal(c)
	prev := c
	prev.Status = "suspended"
	prevJSON, _ := json.Marshal(prev)
	return event.Event{ID: "e1", Seq: 3, Kind: event.KindFiring, Rule: "card_low_flow", Severity: "warning",
		Summary: "Card 8986001 has 3 MB left", Labels: map[string]string{"team": "fleet"}, Provider: "hw",
		Entity: "card", EntityID: "4900", ICCID: "8986001", Values: values, Prev: prevJSON,
		StartsAt: now.Add(-3 * time.Hour), ObservedAt: now.Add(-time.Minute)}
}

func pool() event.Event {
	p := fleet.Pool{Provider: "hw", ID: "p1", Name: "north", FlowLeft: -5, Quantity: 40, Unknown: fleet.PoolFields("flow_total")}
	values, _ := json.Marshal(p)
	return event.Event{ID: "e2", Kind: event.KindResolved, Rule: "pool_overdraft", Severity: "critical", Provider: "hw",
		Entity: "pool", EntityID: "p1", Values: values, StartsAt: now.Add(-48 * time.Hour), EndsAt: now.Add(-time.Hour), ObservedAt: now}
}

func TestMatch(t *testing.T) {
	c, p := card(), pool()
	truncated := card()
	truncated.Values = json.RawMessage(`{"truncated":true,"id":"4900","flow_left":"…[cut number of 400 digits]","tags":"…[cut 3 bytes]"}`)
	tests := []struct {
		name  string
		match string
		card  bool // matches the card event
		pool  bool // matches the pool event
	}{
		// Event fields.
		{"rule", `rule == "card_low_flow"`, true, false},
		{"event_id is the event's", `event_id == "e1"`, true, false},
		{"id is the entity's, as in rules", `id == "4900"`, true, false},
		{"entity_id too", `entity_id == "p1"`, false, true},
		{"entity_id", `entity_id in ["4900", "p1"]`, true, true},
		{"seq", `seq >= 3`, true, false},
		{"kind", `kind == "resolved"`, false, true},
		{"labels", `labels.team == "fleet"`, true, false},
		{"missing label", `labels.nope == ""`, true, true},
		{"summary", `summary contains "3 MB"`, true, false},
		{"severity and provider", `severity == "critical" && provider == "hw"`, false, true},
		{"iccid", `iccid startsWith "8986"`, true, false},
		// Times.
		{"hours_since starts_at", `hours_since(starts_at) < 4`, true, false},
		{"hours_since observed_at", `hours_since(observed_at) < 0.5`, true, true},
		{"ends_at of a firing event is nil", `ends_at == nil`, true, false},
		{"no end: hours_since does not hold either way", `hours_since(ends_at) > 0 || hours_since(ends_at) <= 0`, false, true},
		{"time comparison", `ends_at > starts_at`, false, true},
		{"days_until", `days_until(expire_time) < 7`, true, false},
		{"days_until a missing time", `days_until(expire_time) > 7`, false, false},
		// Values and prev.
		{"values", `values.status == "active"`, true, false},
		{"values null or missing", `values.imei == nil`, true, true},
		{"values null compared", `values.flow_used < 1`, false, true},
		{"prev", `prev.status == "suspended"`, true, false},
		{"prev of an event without", `prev == nil`, false, true},
		{"known", `known("flow_left")`, true, true},
		{"not known", `!known("imei")`, true, true},
		{"unknown flow", `!known("flow_total")`, false, true},
		{"known guards", `!known("flow_used") || flow_used > 10`, true, false},
		{"pct", `pct(flow_left, flow_total) < 5`, true, false}, // the pool's total is unknown
		{"pct of numbers", `pct(1, 4) == 25 && pct(flow_left, 0) == 0`, true, true},
		// Flattened entity fields.
		{"tags", `"fleet-a" in tags`, true, false},
		{"attributes", `attributes.site == "depot"`, true, false},
		{"card status", `status == "active" && status_code == 2`, true, false},
		{"pool name", `name == "north"`, false, true},
		{"flow_left on both", `flow_left < 5`, true, true},
		{"an unknown field does not compare", `flow_used < 1`, false, true},
		{"pool field on a card", `quantity > 3`, false, true},
		{"card or pool", `"fleet-a" in tags || name == "north"`, true, true},
		// Run-time errors do not match.
		{"nil arithmetic", `flow_total - 1 > 0`, true, false},
		{"string function on nil", `upper(imei) == ""`, false, false},
		{"bad index", `tags[5] == "x"`, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sl, err := NewSilence(tt.match, "", time.Hour, now.Add(-time.Minute))
			require.NoError(t, err)
			set := Silences([]store.Silence{sl}, now)
			require.Equal(t, 1, set.Len())
			require.Equal(t, tt.card, set.Match(&c) == sl.ID, "card")
			require.Equal(t, tt.pool, set.Match(&p) == sl.ID, "pool")
			// A value cut to fit a size limit is unknown, never a panic.
			require.NotPanics(t, func() { set.Match(&truncated) })
		})
	}
	// A cut value reads as missing.
	set := Silences([]store.Silence{mustSilence(t, `flow_left < 5`), mustSilence(t, `"fleet-a" in tags`)}, now)
	require.Empty(t, set.Match(&truncated))
}

func mustSilence(t *testing.T, match string) store.Silence {
	t.Helper()
	sl, err := NewSilence(match, "", time.Hour, now.Add(-time.Minute))
	require.NoError(t, err)
	return sl
}

func TestSilencesSet(t *testing.T) {
	c := card()
	first := mustSilence(t, `rule == "card_low_flow"`)
	second := mustSilence(t, `"fleet-a" in tags`)
	expired := mustSilence(t, `true`)
	expired.EndsAt = now.Add(-time.Second)
	future := mustSilence(t, `true`)
	future.CreatedAt = now.Add(time.Minute)
	broken := mustSilence(t, `true`)
	broken.Match = `rulee == "x"` // stored before a field was renamed: skipped
	tests := []struct {
		name     string
		silences []store.Silence
		want     string
		n        int
	}{
		{"none", nil, "", 0},
		{"the first that matches", []store.Silence{broken, first, second}, first.ID, 2},
		{"order", []store.Silence{second, first}, second.ID, 2},
		{"expired is ignored", []store.Silence{expired}, "", 0},
		{"not yet started is ignored", []store.Silence{future}, "", 0},
		{"uncompilable is skipped", []store.Silence{broken}, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set := Silences(tt.silences, now)
			require.Equal(t, tt.n, set.Len())
			require.Equal(t, tt.want, set.Match(&c))
		})
	}
	var nilSet *SilenceSet
	require.Empty(t, nilSet.Match(&c))
}

// TestFieldsCoverTheEntities keeps Fields in step with fleet.Card and
// fleet.Pool: every field they have is flattened, with its type (as a
// pointer for scalars), except the event's own provider, id and iccid.
func TestFieldsCoverTheEntities(t *testing.T) {
	flat := map[string]reflect.Type{}
	ft := reflect.TypeFor[Fields]()
	for i := range ft.NumField() {
		flat[ft.Field(i).Tag.Get("expr")] = ft.Field(i).Type
	}
	seen := map[string]bool{}
	for _, et := range []reflect.Type{reflect.TypeFor[fleet.Card](), reflect.TypeFor[fleet.Pool]()} {
		for i := range et.NumField() {
			f := et.Field(i)
			name := f.Tag.Get("expr")
			if name == "" || name == "-" || slices.Contains([]string{"provider", "id", "iccid"}, name) {
				continue
			}
			seen[name] = true
			want := f.Type
			if want.Kind() != reflect.Slice && want.Kind() != reflect.Map {
				want = reflect.PointerTo(want)
			}
			require.Equal(t, want, flat[name], "%s.%s (expr %q) must be in mute.Fields", et.Name(), f.Name, name)
			jsonName, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			require.Equal(t, name, jsonName, "values are read by json name")
		}
	}
	for name := range flat {
		require.True(t, seen[name], "mute.Fields has %q, which neither cards nor pools have", name)
	}
	// No flattened field hides an event field.
	ev := reflect.TypeFor[Env]()
	for i := range ev.NumField() {
		if name := ev.Field(i).Tag.Get("expr"); name != "" {
			require.NotContains(t, flat, name)
		}
	}
}

func BenchmarkSilences(b *testing.B) {
	var silences []store.Silence
	for _, m := range []string{`rule == "x"`, `"fleet-z" in tags`, `labels.team == "nobody"`, `flow_left < -100`, `hours_since(starts_at) > 1000`} {
		sl, _ := NewSilence(m, "", time.Hour, now)
		silences = append(silences, sl)
	}
	events := make([]event.Event, 1000)
	for i := range events {
		events[i] = card()
	}
	b.ResetTimer()
	for b.Loop() {
		set := Silences(silences, now)
		for i := range events {
			set.Match(&events[i])
		}
	}
}

// A set is shared by the notifiers' goroutines.
func TestConcurrentUse(t *testing.T) {
	set := Silences([]store.Silence{mustSilence(t, `"fleet-a" in tags && hours_since(starts_at) < 4`)}, now)
	in, err := NewInhibitor([]config.InhibitRule{shipped})
	require.NoError(t, err)
	sources := in.SourcesAt([]event.Event{unhealthy("hw")}, now)
	done := make(chan bool)
	for range 8 {
		go func() {
			c := card()
			ok := true
			for range 200 {
				ok = ok && set.Match(&c) != "" && sources.Inhibited(&c) == "provider_unhealthy hw"
			}
			done <- ok
		}()
	}
	for range 8 {
		require.True(t, <-done)
	}
}
