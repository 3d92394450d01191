package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/simwatch/simwatch/internal/api"
	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/store"
)

// queryCmd: watcher query --config F [--pools] [--json] 'EXPR'
func queryCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("query", "watcher query [--config F] [--pools] [--json] 'EXPR'", stderr)
	pools := fs.Bool("pools", false, "match pools instead of cards")
	asJSON := fs.Bool("json", false, "print the answer as JSON instead of a table")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New(`query: give one expression (quoted), e.g. watcher query 'status == "active" && flow_left < 10'`)
	}
	c, err := apiFor(ctx, configPath(fs), false)
	if err != nil {
		return err
	}
	defer c.close()
	on := "cards"
	if *pools {
		on = "pools"
	}
	var res api.QueryResult
	if err := c.call(ctx, http.MethodGet, "/api/v1/"+on+"?q="+url.QueryEscape(fs.Arg(0)), nil, &res); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, res)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	if *pools {
		fmt.Fprintln(tw, "PROVIDER\tID\tNAME\tUSED MB\tLEFT MB\tTOTAL MB\tMEMBERS")
		for _, p := range res.Pools {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%g\t%g\t%g\t%d\n", p.Provider, p.ID, p.Name, p.FlowUsed, p.FlowLeft, p.FlowTotal, p.Quantity)
		}
	} else {
		fmt.Fprintln(tw, "PROVIDER\tICCID\tSTATUS\tUSED MB\tLEFT MB\tTOTAL MB\tIMEI")
		for _, k := range res.Cards {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%g\t%g\t%g\t%s\n", k.Provider, k.ICCID, k.Status, k.FlowUsed, k.FlowLeft, k.FlowTotal, k.IMEI)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	more := ""
	if res.Truncated {
		more = " (list truncated)"
	}
	fmt.Fprintf(stdout, "%d %s match%s\n", res.Count, on, more)
	return nil
}

// eventsCmd: watcher events --config F [--rule R] [--iccid I] [--kind K] [--since T] [--limit N] [--json]
func eventsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("events", "watcher events [--config F] [--rule R] [--iccid I] [--entity_id ID] [--provider P] [--kind K] [--since T] [--limit N] [--json]", stderr)
	q := url.Values{}
	text := func(name, usage string) {
		fs.Func(name, usage, func(v string) error {
			if v == "" {
				return errors.New("must not be empty")
			}
			q.Set(name, v)
			return nil
		})
	}
	text("rule", "only events of this rule")
	text("iccid", "only events about the card with this ICCID")
	text("entity_id", "only events about this card or pool id (as the provider names it)")
	text("provider", "only events from this provider (its name in the config)")
	fs.Func("kind", "only events of this kind: "+strings.Join(api.EventKinds, ", "), func(v string) error {
		if !slices.Contains(api.EventKinds, v) {
			return fmt.Errorf("%q is not a kind; valid kinds: %s", v, strings.Join(api.EventKinds, ", "))
		}
		q.Set("kind", v)
		return nil
	})
	fs.Func("since", "only events observed since then: an RFC 3339 time (2026-01-02T15:04:05Z) or a duration back from now (30m, 2h, 7d)", func(v string) error {
		if _, err := api.ParseSince(v, time.Now()); err != nil {
			return err
		}
		q.Set("since", v)
		return nil
	})
	fs.Func("limit", fmt.Sprintf("show at most this many events, newest first (1..%d; default 100)", api.MaxEventLimit), func(v string) error {
		if _, err := api.ParseLimit(v); err != nil {
			return err
		}
		q.Set("limit", v)
		return nil
	})
	asJSON := fs.Bool("json", false, "print the events as JSON instead of a table")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	c, err := apiFor(ctx, configPath(fs), false)
	if err != nil {
		return err
	}
	defer c.close()
	var res struct {
		Events []event.Event `json:"events"`
	}
	if err := c.call(ctx, http.MethodGet, "/api/v1/events?"+q.Encode(), nil, &res); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, res.Events)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tKIND\tRULE\tPROVIDER\tENTITY\tSUMMARY")
	for _, e := range res.Events {
		id := e.EntityID
		if e.ICCID != "" {
			id = e.ICCID
		}
		kind := e.Kind
		if e.Silenced != "" {
			kind += " (silenced)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s %s\t%s\n", e.ObservedAt.UTC().Format(time.RFC3339), kind, e.Rule, e.Provider, e.Entity, id, e.Summary)
	}
	return tw.Flush()
}

const silenceUsage = `usage: watcher silence add --config F --match EXPR --for 2h [--comment TEXT]
       watcher silence list --config F
       watcher silence expire --config F ID
`

// silenceCmd: watcher silence add --match EXPR --for 2h --comment C | list | expire ID
func silenceCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "add" && args[0] != "list" && args[0] != "expire") {
		fmt.Fprint(stderr, silenceUsage)
		return exitError(2)
	}
	sub := args[0]
	fs := newFlags("silence "+sub, "", stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, silenceUsage)
		fs.PrintDefaults()
	}
	var match, comment *string
	var dur time.Duration
	if sub == "add" {
		match = fs.String("match", "", "the expression events must match to be silenced, in the rule language (required)")
		fs.Func("for", "how long the silence lasts from now: a duration such as 30m, 2h or 7d (required)", func(v string) error {
			d, err := api.ParseDuration(v)
			if err != nil {
				return err
			}
			if d <= 0 {
				return fmt.Errorf("%q: want a positive duration", v)
			}
			dur = d
			return nil
		})
		comment = fs.String("comment", "", "why, for whoever reads the silence list later")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	switch sub {
	case "add", "list":
		if err := noArgs(fs); err != nil {
			return err
		}
	case "expire":
		if fs.NArg() != 1 {
			return errors.New("silence expire: give exactly one silence id (watcher silence list shows them)")
		}
	}
	if sub == "add" {
		if strings.TrimSpace(*match) == "" {
			return errors.New("silence add: --match is required, e.g. --match 'rule == \"card_low_flow\"'")
		}
		if dur == 0 {
			return errors.New("silence add: --for is required, e.g. --for 2h")
		}
	}
	c, err := apiFor(ctx, configPath(fs), false)
	if err != nil {
		return err
	}
	defer c.close()
	switch sub {
	case "add":
		var sl store.Silence
		req := api.SilenceRequest{Match: *match, For: dur.String(), Comment: *comment}
		if err := c.call(ctx, http.MethodPost, "/api/v1/silences", req, &sl); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "silence %s until %s\n", sl.ID, sl.EndsAt.UTC().Format(time.RFC3339))
	case "expire":
		var out map[string]string
		if err := c.call(ctx, http.MethodDelete, "/api/v1/silences/"+url.PathEscape(fs.Arg(0)), nil, &out); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "silence %s expired\n", fs.Arg(0))
	default:
		var res struct {
			Silences []struct {
				store.Silence
				Active bool `json:"active"`
			} `json:"silences"`
		}
		if err := c.call(ctx, http.MethodGet, "/api/v1/silences", nil, &res); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tACTIVE\tENDS\tMATCH\tCOMMENT")
		for _, s := range res.Silences {
			fmt.Fprintf(tw, "%s\t%v\t%s\t%s\t%s\n", s.ID, s.Active, s.EndsAt.UTC().Format(time.RFC3339), s.Match, s.Comment)
		}
		return tw.Flush()
	}
	return nil
}
