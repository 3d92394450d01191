package cluster

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// watchEvent is one entry from a bucket watch, or reset when the watch was
// (re)started and its initial values follow.
type watchEvent struct {
	e     jetstream.KeyValueEntry // nil with !reset: the initial values are done
	reset bool
}

// follow watches kv and forwards its entries to out until ctx ends,
// restarting the watch when it closes. Creating a watch can block for the
// client's request timeout while NATS is unreachable, which is why it runs
// here and not on Run's goroutine (renewals must not wait behind it).
func (g *Group) follow(ctx context.Context, kv jetstream.KeyValue, out chan<- watchEvent) {
	retry := time.NewTimer(0)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-retry.C:
		}
		w, err := kv.WatchAll(ctx)
		if err != nil {
			g.log.Debug("cluster: watch bucket; retrying", "bucket", kv.Bucket(), "err", err)
			retry.Reset(g.o.TTL / 10)
			continue
		}
		if !forward(ctx, w, out) {
			stopWatch(w)
			return
		}
		retry.Reset(g.o.TTL / 10)
	}
}

// forward copies a watch's entries to out; false when ctx ended.
func forward(ctx context.Context, w jetstream.KeyWatcher, out chan<- watchEvent) bool {
	select {
	case out <- watchEvent{reset: true}:
	case <-ctx.Done():
		return false
	}
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return true
			}
			select {
			case out <- watchEvent{e: e}:
			case <-ctx.Done():
				return false
			}
		case <-ctx.Done():
			return false
		}
	}
}

// stopWatch unsubscribes and drains the watch: the client's callback blocks
// on a full updates channel, so it must be read until it closes.
func stopWatch(w jetstream.KeyWatcher) {
	_ = w.Stop()
	t := time.NewTimer(time.Second)
	defer t.Stop()
	for {
		select {
		case _, ok := <-w.Updates():
			if !ok {
				return
			}
		case <-t.C:
			return
		}
	}
}
