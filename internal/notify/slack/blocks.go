package slack

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/simwatch/simwatch/internal/event"
)

// digestList is how many events a digest lists before "and N more".
const digestList = 10

func marker(e *event.Event) string {
	switch e.Kind {
	case event.KindResolved:
		return "✅"
	case event.KindAcknowledged:
		return "👀"
	}
	switch e.Severity {
	case "critical":
		return "🔴"
	case "warning":
		return "🟠"
	}
	return "🔵"
}

func severityRank(s string) int {
	switch s {
	case "critical":
		return 0
	case "warning":
		return 1
	}
	return 2
}

// keyValues are the fields a message shows for an entity.
type keyValues struct {
	ICCID     string   `json:"iccid"`
	Name      string   `json:"name"`
	Status    string   `json:"status"`
	FlowLeft  *float64 `json:"flow_left"`
	FlowUsed  *float64 `json:"flow_used"`
	FlowTotal *float64 `json:"flow_total"`
}

func values(e *event.Event) keyValues {
	var kv keyValues
	_ = json.Unmarshal(e.Values, &kv)
	return kv
}

// worstFirst orders a digest: most severe first, then least data left.
func worstFirst(events []event.Event) {
	left := func(e *event.Event) float64 {
		if v := values(e).FlowLeft; v != nil {
			return *v
		}
		return math.Inf(1) // unknown: not the worst, listed after the known

	}
	sort.SliceStable(events, func(i, j int) bool {
		a, b := &events[i], &events[j]
		if ra, rb := severityRank(a.Severity), severityRank(b.Severity); ra != rb {
			return ra < rb
		}
		return left(a) < left(b)
	})
}

func mb(v *float64) string {
	if v == nil {
		return "unknown"
	}
	return strconv.FormatFloat(*v, 'f', -1, 64) + " MB"
}

func plural(n int, entity string) string {
	if n == 1 {
		return "1 " + entity
	}
	return fmt.Sprintf("%d %ss", n, entity)
}

// record is what a posted message showed, kept in the store (compactly) so
// that it can be re-rendered and edited in place when its alerts resolve.
type record struct {
	Kind     string `json:"kind"`
	Rule     string `json:"rule"`
	Severity string `json:"severity"`
	Entity   string `json:"entity"`
	Provider string `json:"provider"`
	// Single is the event a detailed (one-event) message shows in full.
	Single *event.Event `json:"single,omitempty"`
	// Items are the message's alerts, in the order shown (worst first).
	Items []item `json:"items"`
	// Version counts the record's changes; Shown is the version the message
	// in Slack shows. Version > Shown means it is due an update.
	Version int `json:"version"`
	Shown   int `json:"shown"`
}

// item is one alert of a message.
type item struct {
	Alert    string    `json:"a"` // alertRef of its event
	Summary  string    `json:"s"`
	Seq      uint64    `json:"q,omitempty"`
	Severity string    `json:"v,omitempty"` // when it differs from the record's
	Resolved time.Time `json:"r,omitzero"`
}

// maxItemSummary bounds what a digest's record keeps of each summary.
const maxItemSummary = 300

// newRecord is the record of a message about events (one rule and kind),
// worst first when several.
func newRecord(events []event.Event) *record {
	events = slices.Clone(events)
	if len(events) > 1 {
		worstFirst(events)
	}
	first := &events[0]
	r := &record{Kind: first.Kind, Rule: first.Rule, Severity: first.Severity, Entity: first.Entity, Provider: first.Provider}
	if len(events) == 1 {
		r.Single = first
	}
	r.Items = make([]item, len(events))
	for i := range events {
		e := &events[i]
		it := item{Alert: alertRef(e), Summary: e.Summary, Seq: e.Seq}
		if len(events) > 1 && len(it.Summary) > maxItemSummary {
			cut := maxItemSummary
			for cut > 0 && !utf8.RuneStart(it.Summary[cut]) {
				cut--
			}
			it.Summary = it.Summary[:cut] + "…"
		}
		if e.Severity != r.Severity {
			it.Severity = e.Severity
		}
		r.Items[i] = it
	}
	return r
}

// alertRef identifies the alert an event is about, one firing of it: its
// firing, reminders and resolution share it (the alert's key and start).
func alertRef(e *event.Event) string {
	h := sha256.Sum256([]byte(e.AlertKey() + "\x00" + strconv.FormatInt(e.StartsAt.UnixNano(), 10)))
	return hex.EncodeToString(h[:16])
}

// resolve marks the items of these resolutions resolved, and reports
// whether anything changed.
func (r *record) resolve(resolutions []event.Event) bool {
	at := map[string]time.Time{}
	for i := range resolutions {
		e := &resolutions[i]
		t := e.EndsAt
		if t.IsZero() {
			t = e.ObservedAt
		}
		at[alertRef(e)] = t
	}
	changed := false
	for i := range r.Items {
		if t, ok := at[r.Items[i].Alert]; ok && r.Items[i].Resolved.IsZero() {
			r.Items[i].Resolved = t
			changed = true
		}
	}
	if changed {
		r.Version++
	}
	return changed
}

// resolvedCount is how many of the items have resolved, and the latest time.
func (r *record) resolvedCount() (n int, last time.Time) {
	for _, it := range r.Items {
		if !it.Resolved.IsZero() {
			n++
			if it.Resolved.After(last) {
				last = it.Resolved
			}
		}
	}
	return n, last
}

// finished reports that nothing about the message will change: every alert
// it announced resolved (or it announced none that can).
func (r *record) finished() bool {
	if r.Kind != event.KindFiring {
		return true
	}
	n, _ := r.resolvedCount()
	return n == len(r.Items)
}

// slackTime shows t in each reader's time zone, UTC where Slack cannot.
func slackTime(t time.Time) string {
	return fmt.Sprintf("<!date^%d^{date_short_pretty} {time}|%s>", t.Unix(), t.UTC().Format("2006-01-02 15:04 UTC"))
}

func seqText(seq uint64) string {
	if seq == 0 {
		return ""
	}
	return " · #" + strconv.FormatUint(seq, 10)
}

// message builds the Block Kit message for events of one rule and kind:
// one event in detail, or a digest listing the worst first.
func message(events []event.Event, statusURL string) (blocks []slack.Block, fallback string) {
	return render(newRecord(events), statusURL)
}

// escapeText makes text from a person (an acknowledgement's comment) plain
// in Slack: <!channel>, <@U123> and <url|label> would otherwise ping or
// link (Slack's escaping: &, < and >).
func escapeText(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// render builds the Block Kit message a record shows: one event in detail
// or a digest, with what has resolved since it was posted (a detailed
// message turns resolved, keeping its details; a digest counts its resolved
// alerts, lists those still firing first, and turns resolved when all have).
func render(r *record, statusURL string) (blocks []slack.Block, fallback string) {
	kind := strings.ToUpper(r.Kind)
	resolved, last := r.resolvedCount()
	all := r.Kind == event.KindFiring && resolved == len(r.Items)
	mark := marker(&event.Event{Kind: r.Kind, Severity: r.Severity})
	if all {
		mark, kind = "✅", "RESOLVED"
	}
	ctx := "simwatch · " + escapeText(r.Provider)
	// Summaries carry what providers and people wrote (a card's plan, an
	// acknowledgement's comment): text, never markup that links or pings.
	r = escaped(r)
	if r.Single != nil {
		e := r.Single
		head := fmt.Sprintf("%s *%s* · `%s` · %s\n%s", mark, kind, e.Rule, e.Severity, e.Summary)
		fallback = fmt.Sprintf("%s %s: %s", kind, e.Rule, e.Summary)
		if all {
			head = fmt.Sprintf("%s *%s* · `%s` · %s\n~%s~\nFired %s, resolved %s", mark, kind, e.Rule, e.Severity, e.Summary,
				slackTime(e.StartsAt), slackTime(last))
		}
		blocks = append(blocks, slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, head, false, false), fields(e), nil))
		ctx += seqText(e.Seq)
	} else {
		n := len(r.Items)
		head := fmt.Sprintf("%s *%s* · `%s` · %s for %s", mark, kind, r.Rule, r.Severity, plural(n, r.Entity))
		fallback = fmt.Sprintf("%s %s: %s", kind, r.Rule, plural(n, r.Entity))
		switch {
		case all:
			head += fmt.Sprintf(" · all resolved, the last %s", slackTime(last))
			fallback += ", all resolved"
		case resolved > 0:
			head += fmt.Sprintf(" · ✅ %d of %d resolved", resolved, n)
			fallback += fmt.Sprintf(", %d of %d resolved", resolved, n)
		}
		// Those still firing first, in the order posted (worst first).
		shown := make([]item, 0, n)
		for _, it := range r.Items {
			if it.Resolved.IsZero() {
				shown = append(shown, it)
			}
		}
		for _, it := range r.Items {
			if !it.Resolved.IsZero() {
				shown = append(shown, it)
			}
		}
		var b strings.Builder
		for _, it := range shown[:min(n, digestList)] {
			if it.Resolved.IsZero() || all {
				fmt.Fprintf(&b, "• %s%s\n", it.Summary, seqText(it.Seq))
			} else {
				fmt.Fprintf(&b, "✅ ~%s~%s\n", it.Summary, seqText(it.Seq))
			}
		}
		if more := n - digestList; more > 0 {
			fmt.Fprintf(&b, "…and %d more", more)
			if firing := max(n-resolved-digestList, 0); resolved > 0 && !all {
				if firing > 0 {
					fmt.Fprintf(&b, " (%d still firing)", firing)
				} else {
					b.WriteString(" (resolved)")
				}
			}
		}
		blocks = append(blocks,
			slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, head, false, false), nil, nil),
			slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, strings.TrimSpace(b.String()), false, false), nil, nil))
	}
	if statusURL != "" {
		ctx += fmt.Sprintf(" · <%s|open in simwatch>", consoleLink(statusURL, r))
	}
	blocks = append(blocks, slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, ctx, false, false)))
	return blocks, fallback
}

// escaped is a copy of r whose summaries are escaped (see escapeText).
func escaped(r *record) *record {
	c := *r
	if r.Single != nil {
		e := *r.Single
		e.Summary = escapeText(e.Summary)
		c.Single = &e
	}
	c.Items = slices.Clone(r.Items)
	for i := range c.Items {
		c.Items[i].Summary = escapeText(c.Items[i].Summary)
	}
	return &c
}

// fields are the key fields of the card or pool an event is about.
func fields(e *event.Event) []*slack.TextBlockObject {
	kv := values(e)
	var pairs [][2]string
	if e.Entity == "pool" {
		pairs = [][2]string{{"Pool", kv.Name + " (" + e.EntityID + ")"}, {"Left", mb(kv.FlowLeft)}, {"Used", mb(kv.FlowUsed) + " of " + mb(kv.FlowTotal)}}
	} else if e.Entity == "card" {
		status := kv.Status
		if status == "" {
			status = "unknown"
		}
		pairs = [][2]string{{"ICCID", e.ICCID}, {"Status", status}, {"Left", mb(kv.FlowLeft) + " of " + mb(kv.FlowTotal)}}
	} else {
		name := "Entity"
		if e.Entity != "" {
			name = strings.ToUpper(e.Entity[:1]) + e.Entity[1:]
		}
		pairs = [][2]string{{name, e.EntityID}}
	}
	pairs = append(pairs, [2]string{"Provider", e.Provider})
	out := make([]*slack.TextBlockObject, len(pairs))
	for i, p := range pairs {
		// Values come from the provider (a pool's name, an id): text, never
		// Slack markup that links or pings.
		out[i] = slack.NewTextBlockObject(slack.MarkdownType, "*"+p[0]+"*\n"+escapeText(p[1]), false, false)
	}
	return out
}

// consoleLink is the console page a message is about, under the watcher's
// external URL: the card's or pool's own page for one entity, the rule's
// alerts for a digest (or an alert about a rule or a provider).
func consoleLink(base string, r *record) string {
	base = strings.TrimRight(base, "/")
	if e := r.Single; e != nil {
		switch e.Entity {
		case "card":
			return base + "/cards/" + url.PathEscape(e.Provider) + "/" + url.PathEscape(e.EntityID)
		case "pool":
			return base + "/pools/" + url.PathEscape(e.Provider) + "/" + url.PathEscape(e.EntityID)
		}
		return base + "/alerts?rule=" + url.QueryEscape(e.Rule)
	}
	// One parameter: an & would need escaping in Slack's markup.
	return base + "/alerts?rule=" + url.QueryEscape(r.Rule)
}
