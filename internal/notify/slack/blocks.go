package slack

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/slack-go/slack"

	"github.com/simwatch/simwatch/internal/event"
)

// digestList is how many events a digest lists before "and N more".
const digestList = 10

func marker(e *event.Event) string {
	if e.Kind == event.KindResolved {
		return "✅"
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

// message builds the Block Kit message for events of one rule and kind:
// one event in detail, or a digest listing the worst first.
func message(events []event.Event, statusURL string) (blocks []slack.Block, fallback string) {
	first := &events[0]
	kind := strings.ToUpper(first.Kind)
	if len(events) == 1 {
		head := fmt.Sprintf("%s *%s* · `%s` · %s\n%s", marker(first), kind, first.Rule, first.Severity, first.Summary)
		blocks = append(blocks, slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, head, false, false), fields(first), nil))
		fallback = fmt.Sprintf("%s %s: %s", kind, first.Rule, first.Summary)
	} else {
		worstFirst(events)
		head := fmt.Sprintf("%s *%s* · `%s` · %s for %s", marker(first), kind, first.Rule, first.Severity, plural(len(events), first.Entity))
		var b strings.Builder
		for i := range events[:min(len(events), digestList)] {
			fmt.Fprintf(&b, "• %s\n", events[i].Summary)
		}
		if more := len(events) - digestList; more > 0 {
			fmt.Fprintf(&b, "…and %d more", more)
		}
		blocks = append(blocks,
			slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, head, false, false), nil, nil),
			slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, strings.TrimSpace(b.String()), false, false), nil, nil))
		fallback = fmt.Sprintf("%s %s: %s", kind, first.Rule, plural(len(events), first.Entity))
	}
	ctx := "simwatch · " + first.Provider
	if statusURL != "" {
		ctx += fmt.Sprintf(" · <%s|status page>", statusURL)
	}
	blocks = append(blocks, slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, ctx, false, false)))
	return blocks, fallback
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
		out[i] = slack.NewTextBlockObject(slack.MarkdownType, "*"+p[0]+"*\n"+p[1], false, false)
	}
	return out
}
