package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/simwatch/simwatch/internal/api"
	"github.com/simwatch/simwatch/internal/bus"
)

const deadletterUsage = `usage: watcher deadletter list --config F [--notifier N] [--json]
       watcher deadletter replay --config F [--notifier N] (--all | ID...)
`

// deadletterCmd lists and replays dead letters through the watcher's API:
// the running daemon's, or one served in process over the data directory
// (with the bus opened there) when no daemon holds it.
func deadletterCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "replay") {
		fmt.Fprint(stderr, deadletterUsage)
		return exitError(2)
	}
	sub := args[0]
	fs := newFlags("deadletter "+sub, "", stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, deadletterUsage)
		fs.PrintDefaults()
	}
	notifier := fs.String("notifier", "", "only this notifier's dead letters (its name in the config)")
	var asJSON, all *bool
	if sub == "list" {
		asJSON = fs.Bool("json", false, "print the dead letters as JSON instead of a table")
	} else {
		all = fs.Bool("all", false, "replay every dead letter (of --notifier, when given) instead of the IDs given")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if sub == "list" {
		if err := noArgs(fs); err != nil {
			return err
		}
	} else {
		switch {
		case *all && fs.NArg() > 0:
			return errors.New("deadletter replay: give either --all or dead-letter ids, not both")
		case !*all && fs.NArg() == 0:
			return errors.New("deadletter replay: give dead-letter ids (seq or event id, as deadletter list shows them) or --all")
		}
	}
	c, err := apiFor(ctx, configPath(fs), true)
	if err != nil {
		return err
	}
	defer c.close()
	if sub == "replay" {
		var out struct {
			Replayed int `json:"replayed"`
		}
		req := api.ReplayRequest{Notifier: *notifier, IDs: fs.Args(), All: *all}
		if err := c.call(ctx, http.MethodPost, "/api/v1/deadletters/replay", req, &out); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "replayed %d dead letters\n", out.Replayed)
		return nil
	}
	var res struct {
		DeadLetters []bus.DeadLetter `json:"deadletters"`
	}
	if err := c.call(ctx, http.MethodGet, "/api/v1/deadletters?notifier="+url.QueryEscape(*notifier), nil, &res); err != nil {
		return err
	}
	list := res.DeadLetters
	if *asJSON {
		return printJSON(stdout, list)
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
