package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/simwatch/simwatch/internal/api"
	"github.com/simwatch/simwatch/internal/bus"
	"github.com/simwatch/simwatch/internal/config"
)

// deadletterCmd lists and replays dead letters. When the daemon is running
// (its http.listen answers) it asks the daemon; otherwise it opens the bus
// itself, which for the embedded server needs the daemon stopped.
func deadletterCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "replay") {
		fmt.Fprint(stderr, "usage: watcher deadletter list --config F [--notifier N] [--json]\n       watcher deadletter replay --config F [--notifier N] (--all | ID...)\n")
		return exitError(2)
	}
	fs := flag.NewFlagSet("deadletter "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "watcher.yaml", "config file")
	notifier := fs.String("notifier", "", "only this notifier's dead letters")
	asJSON := fs.Bool("json", false, "list as JSON")
	all := fs.Bool("all", false, "replay every dead letter")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	dl, closeFn, err := deadLetterSource(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeFn()
	if args[0] == "replay" {
		if !*all && fs.NArg() == 0 {
			return errors.New("deadletter replay: give dead-letter ids (seq or event id) or --all")
		}
		n, err := dl.ReplayDeadLetters(ctx, *notifier, fs.Args(), *all)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "replayed %d dead letters\n", n)
		return nil
	}
	list, err := dl.ListDeadLetters(ctx, *notifier)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(list)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTIME\tNOTIFIER\tEVENT\tKIND\tRULE\tENTITY\tERROR")
	for _, d := range list {
		entity := d.Event.Entity + " " + d.Event.EntityID
		if d.Event.ICCID != "" {
			entity = d.Event.Entity + " " + d.Event.ICCID
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.Seq, d.Time.UTC().Format(time.RFC3339), d.Notifier,
			d.Event.ID, d.Event.Kind, d.Event.Rule, entity, d.Error)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(list) == 0 {
		fmt.Fprintln(stdout, "no dead letters")
	}
	return nil
}

// deadLetterSource is the running daemon's API, or the bus opened directly.
func deadLetterSource(ctx context.Context, cfg *config.Config) (api.DeadLetters, func(), error) {
	if cfg.HTTP.Listen != "" {
		c := &daemonClient{base: "http://" + cfg.HTTP.Listen, http: &http.Client{Timeout: 30 * time.Second}}
		if _, err := c.ListDeadLetters(ctx, "x"); err == nil || !errors.Is(err, syscall.ECONNREFUSED) {
			return c, func() {}, nil
		}
	}
	b, err := bus.Open(ctx, bus.Options{URL: cfg.NATS.URL, DataDir: cfg.DataDir})
	if err != nil {
		return nil, nil, err
	}
	return b, b.Close, nil
}

// daemonClient is api.DeadLetters over a running watcher's HTTP API.
type daemonClient struct {
	base string
	http *http.Client
}

func (c *daemonClient) ListDeadLetters(ctx context.Context, notifier string) ([]bus.DeadLetter, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/v1/deadletters?notifier="+notifier, nil)
	if err != nil {
		return nil, err
	}
	var out struct {
		DeadLetters []bus.DeadLetter `json:"deadletters"`
	}
	return out.DeadLetters, c.do(req, &out)
}

func (c *daemonClient) ReplayDeadLetters(ctx context.Context, notifier string, ids []string, all bool) (int, error) {
	body, _ := json.Marshal(api.ReplayRequest{Notifier: notifier, IDs: ids, All: all})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/api/v1/deadletters/replay", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	var out struct {
		Replayed int `json:"replayed"`
	}
	return out.Replayed, c.do(req, &out)
}

func (c *daemonClient) do(req *http.Request, out any) error {
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("watcher at %s: %s", c.base, bytes.TrimSpace(msg))
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
