package app

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/simwatch/simwatch/internal/api"
	"github.com/simwatch/simwatch/internal/config"
	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/store"
)

// apiCaller sends requests to the watcher's HTTP API: the running daemon's
// when it answers on http.listen, otherwise one served in process over the
// data directory (the daemon holds the store while it runs).
type apiCaller struct {
	base  string
	http  *http.Client
	local http.Handler
	close func()
}

func openAPI(ctx context.Context, cfg *config.Config) (*apiCaller, error) {
	if cfg.HTTP.Listen != "" {
		c := &apiCaller{base: "http://" + cfg.HTTP.Listen, http: &http.Client{Timeout: time.Minute}, close: func() {}}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/healthz", nil)
		if resp, err := c.http.Do(req); err == nil {
			resp.Body.Close()
			return c, nil
		} else if !errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("watcher at %s: %w", c.base, err)
		}
	}
	st, err := store.Open(filepath.Join(cfg.DataDir, "simwatch.db"))
	if err != nil {
		return nil, fmt.Errorf("%w (is a watcher running without http.listen? the commands reach a running one through it)", err)
	}
	return &apiCaller{local: api.New(api.Options{Store: st}).Handler(), close: func() { st.Close() }}, nil
}

// call sends method path (with query) and decodes a JSON answer into out.
func (c *apiCaller) call(ctx context.Context, method, path string, body io.Reader, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	var resp *http.Response
	if c.local != nil {
		rec := httptest.NewRecorder()
		c.local.ServeHTTP(rec, req)
		resp = rec.Result()
	} else if resp, err = c.http.Do(req); err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return errors.New(strings.TrimSpace(string(msg)))
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// apiFor loads the config at path and opens its watcher's API.
func apiFor(ctx context.Context, path string) (*apiCaller, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	return openAPI(ctx, cfg)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// queryCmd: watcher query --config F [--pools] [--json] 'EXPR'
func queryCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("query", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "watcher.yaml", "config file")
	pools := fs.Bool("pools", false, "ask about pools instead of cards")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New(`query: give one expression, e.g. watcher query 'status == "active" && flow_left < 10'`)
	}
	c, err := apiFor(ctx, *path)
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

// eventsCmd: watcher events --config F [--rule R] [--iccid I] [--limit N] [--json]
func eventsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("events", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "watcher.yaml", "config file")
	q := url.Values{}
	for _, k := range []string{"rule", "iccid", "entity_id", "provider", "kind", "since", "limit"} {
		fs.Func(k, "filter by "+k, func(v string) error { q.Set(k, v); return nil })
	}
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, err := apiFor(ctx, *path)
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

// silenceCmd: watcher silence add --match EXPR --for 2h --comment C | list | expire ID
func silenceCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "add" && args[0] != "list" && args[0] != "expire") {
		fmt.Fprint(stderr, "usage: watcher silence add --config F --match EXPR --for 2h --comment TEXT\n       watcher silence list --config F\n       watcher silence expire --config F ID\n")
		return exitError(2)
	}
	fs := flag.NewFlagSet("silence "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "watcher.yaml", "config file")
	match := fs.String("match", "", "expression the silenced events match")
	dur := fs.String("for", "", "how long, e.g. 2h")
	comment := fs.String("comment", "", "why")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	c, err := apiFor(ctx, *path)
	if err != nil {
		return err
	}
	defer c.close()
	switch args[0] {
	case "add":
		body, _ := json.Marshal(api.SilenceRequest{Match: *match, For: *dur, Comment: *comment})
		var sl store.Silence
		if err := c.call(ctx, http.MethodPost, "/api/v1/silences", strings.NewReader(string(body)), &sl); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "silence %s until %s\n", sl.ID, sl.EndsAt.UTC().Format(time.RFC3339))
	case "expire":
		if fs.NArg() != 1 {
			return errors.New("silence expire: give the silence id")
		}
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
