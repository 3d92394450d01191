package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/store"
)

// timelinePage is how many events a card's or pool's timeline shows at once.
const timelinePage = 20

// imeiScan bounds the events read for a card's IMEI history: its newest
// ones, which at one event a day cover the 30 days the history keeps.
const imeiScan = 1000

// field is one row of an entity's field table.
type field struct {
	Name    string
	Value   string
	Unknown bool // the provider did not give it
}

type cardData struct {
	Provider string
	Card     fleet.Card
	Fields   []field
	Usage    usageView
	Timeline timeline
	// IMEIs are the devices the card has been in, oldest first.
	IMEIs []string
}

// timeline is one page of an entity's events, newest first.
type timeline struct {
	Events []event.Event
	// Older is the cursor of the next page; Paged says this is not the
	// newest page.
	Older string
	Paged bool
}

// card shows one card: every field, its usage against the allowance with
// a forecast to the cycle's end, its events and the devices it has been in.
func (s *Server) card(w http.ResponseWriter, r *http.Request, v *view) error {
	name, id := r.PathValue("provider"), r.PathValue("id")
	before := r.URL.Query().Get("before")
	d := cardData{Provider: name}
	var hist fleet.History
	var first string
	err := s.o.Store.View(func(tx *store.Tx) error {
		pt, err := knownProvider(tx, name)
		if err != nil {
			return err
		}
		c, ok, err := pt.Card(id)
		if err != nil {
			return err
		}
		if !ok {
			return notFound{"card " + id + " of " + name}
		}
		d.Card = c
		first = pt.FirstIMEI(id)
		hist, err = pt.History(store.CardHistoryKey(id))
		return err
	})
	if err != nil {
		return err
	}
	c := &d.Card
	d.Fields = fieldsOf(fleet.EntityCard, reflect.ValueOf(c).Elem(), c.Unknown)
	d.Usage = usageOf(hist, c.FlowUsed, c.FlowTotal, !c.Unknown.Has(fleet.CardField("flow_used")),
		!c.Unknown.Has(fleet.CardField("flow_total")), v.Now)
	// One scan of the history gives the IMEIs and the timeline's first
	// page; an older page is a second.
	page, err := s.o.Store.EventsPage(store.EventQuery{
		EventFilter: store.EventFilter{Provider: name, EntityID: id, Limit: imeiScan},
		Entity:      fleet.EntityCard})
	if err != nil {
		return err
	}
	current := ""
	if !c.Unknown.Has(fleet.CardField("imei")) {
		current = c.IMEI
	}
	d.IMEIs = imeiHistory(page.Events, first, current)
	if before != "" {
		if d.Timeline, err = s.timeline(name, fleet.EntityCard, id, before); err != nil {
			return err
		}
	} else {
		n := min(timelinePage, len(page.Events))
		d.Timeline = timeline{Events: page.Events[:n]}
		if len(page.Events) > n || page.Next != "" {
			d.Timeline.Older = page.Cursors[n-1]
		}
	}
	v.Title, v.Nav, v.Page, v.Data = "Card "+c.ICCID, "", "card", d
	return nil
}

// timeline reads a page of an entity's events.
func (s *Server) timeline(provider, entity, id, before string) (timeline, error) {
	page, err := s.o.Store.EventsPage(store.EventQuery{
		EventFilter: store.EventFilter{Provider: provider, EntityID: id, Limit: timelinePage},
		Entity:      entity, Before: before})
	if err == store.ErrBadCursor {
		return timeline{}, badRequest{"before: not a cursor this page gave"}
	}
	return timeline{Events: page.Events, Older: page.Next, Paged: before != ""}, err
}

// imeiHistory is the card's first IMEI, then every IMEI its events (newest
// first) carried before and after each change, then its current one,
// oldest first, each once in a row.
func imeiHistory(events []event.Event, first, current string) []string {
	var out []string
	add := func(imei string) {
		if imei != "" && (len(out) == 0 || out[len(out)-1] != imei) {
			out = append(out, imei)
		}
	}
	if first == "" {
		first = current
	}
	add(first)
	var carried struct {
		IMEI *string `json:"imei"`
	}
	for i := len(events) - 1; i >= 0; i-- {
		e := &events[i]
		for _, raw := range []json.RawMessage{e.Prev, e.Values} {
			carried.IMEI = nil
			if len(raw) > 0 && json.Unmarshal(raw, &carried) == nil && carried.IMEI != nil {
				add(*carried.IMEI)
			}
		}
	}
	add(current)
	return out
}

// fieldsOf lists a Card's or Pool's fields by the names rules use, the
// unknown ones as "unknown".
func fieldsOf(entity string, v reflect.Value, unknown fleet.Unknown) []field {
	unk := map[string]bool{}
	for _, n := range fleet.UnknownNames(entity, unknown) {
		unk[n] = true
	}
	var out []field
	t := v.Type()
	for i := range t.NumField() {
		name := t.Field(i).Tag.Get("expr")
		if name == "" || name == "-" {
			continue
		}
		f := field{Name: name}
		if unk[name] {
			f.Value, f.Unknown = "unknown", true
		} else {
			f.Value = fieldValue(name, v.Field(i).Interface())
		}
		out = append(out, f)
	}
	return out
}

func fieldValue(name string, x any) string {
	switch x := x.(type) {
	case string:
		return x
	case int:
		return strconv.Itoa(x)
	case float64:
		if strings.HasPrefix(name, "flow_") {
			return fmt.Sprintf("%s (%g MB)", formatMB(x), x)
		}
		return strconv.FormatFloat(x, 'g', -1, 64)
	case time.Time:
		if x.IsZero() {
			return ""
		}
		return x.UTC().Format("2006-01-02 15:04 UTC")
	case []string:
		return strings.Join(x, ", ")
	case map[string]string:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			keys[i] = k + "=" + x[k]
		}
		return strings.Join(keys, ", ")
	}
	return fmt.Sprint(x)
}
