package notify

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// watchSettles follows the shared log's writes, so that an event held
// here for its turn goes as soon as another worker settled its
// predecessor, not at the next recheck: the log's cache takes every write,
// and the groups holding events of an alert that moved are woken.
func (d *Dispatcher) watchSettles(ctx context.Context) {
	for ctx.Err() == nil {
		w, err := d.o.Shared.kv.WatchAll(ctx, jetstream.UpdatesOnly(), jetstream.IgnoreDeletes())
		if err != nil {
			if ctx.Err() == nil {
				d.log.Warn("shared delivery log not followed; held events are rechecked every second", "err", err)
				_ = sleep(ctx, time.Second)
			}
			continue
		}
		d.followSettles(ctx, w)
		_ = w.Stop()
	}
}

// followSettles reads w until ctx ends or w does (the connection closed).
func (d *Dispatcher) followSettles(ctx context.Context, w jetstream.KeyWatcher) {
	for {
		select {
		case <-ctx.Done():
			return
		case u, ok := <-w.Updates():
			if !ok {
				_ = sleep(ctx, time.Second)
				return
			}
			if u == nil {
				continue // the end of the initial values (none: updates only)
			}
			var st SharedState
			if json.Unmarshal(u.Value(), &st) != nil {
				continue
			}
			d.o.Shared.remember(u.Key(), sharedEntry{st: st, rev: u.Revision()})
			if d.sh.holdsKey(u.Key()) {
				d.sh.woken.Store(true)
				d.poke()
			}
		}
	}
}
