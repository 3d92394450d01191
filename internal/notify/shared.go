package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/simwatch/simwatch/internal/bus"
)

// SharedState is what the shared delivery log keeps per (notifier, alert):
// how far the alert's story was settled there, and whether the firing of
// its current episode reached the receiver (the dedup stage's FiringOutcome).
type SharedState struct {
	Seq uint64 `json:"seq"` // the last settled seq; 0 when none
	// FiringStart is the start of the episode whose firing was settled
	// last; zero when none was, or its resolution was settled since.
	FiringStart     time.Time `json:"firing_start,omitzero"`
	FiringDelivered bool      `json:"firing_delivered,omitempty"`
	SettledAt       time.Time `json:"settled_at,omitzero"`
}

// sharedEntry is a state as read, with the KV revision it was read at (0:
// the key does not exist).
type sharedEntry struct {
	st  SharedState
	rev uint64
}

// maxSharedCache bounds the states a SharedLog remembers; past it the
// cache starts over (it only saves reads: every decision that matters
// reads the bucket again or writes with compare-and-set).
const maxSharedCache = 100_000

// sharedParallel is how many reads or writes of the bucket run at once.
const sharedParallel = 32

// sharedCASTries bounds the compare-and-set retries of one settle: each
// conflict means another worker settled the same alert in between, which
// is rare; endless conflicts mean something else is wrong.
const sharedCASTries = 20

// SharedLog is the delivery log shared by every watcher of a cluster: a
// JetStream key-value bucket holding per (notifier, alert) its SharedState.
// Every Dispatcher of every watcher that pulls from the same durable
// consumers uses it, so that an event one of them settled is not sent again
// by another, and each alert's events go in order across them. It is safe
// for concurrent use.
type SharedLog struct {
	kv jetstream.KeyValue

	mu    sync.Mutex
	cache map[string]sharedEntry // by key
}

// clusterName is what a cluster's name may be (it names streams and buckets).
var clusterName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// SharedBucket is the name of the shared delivery log's bucket of a cluster.
func SharedBucket(cluster string) string { return "simwatch_" + cluster + "_delivery" }

// OpenSharedLog finds or creates the cluster's shared delivery log, with
// replicas copies (at least one). Entries expire bus.DefaultMaxAge after
// their last settle, as the events they speak of leave the bus.
func OpenSharedLog(ctx context.Context, js jetstream.JetStream, cluster string, replicas int) (*SharedLog, error) {
	if !clusterName.MatchString(cluster) {
		return nil, fmt.Errorf("notify: shared delivery log: cluster name %q is not [A-Za-z0-9_-]+", cluster)
	}
	name := SharedBucket(cluster)
	kv, err := js.KeyValue(ctx, name)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: name, Description: "simwatch: last settled event per notifier and alert",
			History: 1, TTL: bus.DefaultMaxAge, Storage: jetstream.FileStorage, Replicas: max(replicas, 1),
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, name) // another watcher made it first
		}
	}
	if err != nil {
		return nil, fmt.Errorf("notify: shared delivery log %s: %w", name, err)
	}
	return &SharedLog{kv: kv, cache: map[string]sharedEntry{}}, nil
}

// sharedKey is the bucket key of (notifier, alert): a hash, because alert
// keys hold bytes KV keys may not.
func sharedKey(notifier, alert string) string {
	h := sha256.Sum256([]byte(notifier + "\x00" + alert))
	return hex.EncodeToString(h[:16])
}

// cached is the state last read or written for (notifier, alert), if any.
func (l *SharedLog) cached(notifier, alert string) (SharedState, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.cache[sharedKey(notifier, alert)]
	return e.st, ok
}

// remember keeps e for key unless the cache has a newer revision.
func (l *SharedLog) remember(key string, e sharedEntry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if old, ok := l.cache[key]; ok && old.rev > e.rev {
		return
	}
	if len(l.cache) >= maxSharedCache {
		clear(l.cache)
	}
	l.cache[key] = e
}

// get reads the state of key from the bucket.
func (l *SharedLog) get(ctx context.Context, key string) (sharedEntry, error) {
	kve, err := l.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		l.mu.Lock()
		delete(l.cache, key) // expired (MaxAge): nothing is known of it now
		l.mu.Unlock()
		return sharedEntry{}, nil
	}
	if err != nil {
		return sharedEntry{}, fmt.Errorf("notify: shared delivery log: read: %w", err)
	}
	var e sharedEntry
	if err := json.Unmarshal(kve.Value(), &e.st); err != nil {
		// Unreadable: nothing is known of it, and the next settle
		// overwrites it (with its revision).
		e.st = SharedState{}
	}
	e.rev = kve.Revision()
	l.remember(key, e)
	return e, nil
}

// Load reads the states of a notifier's alerts from the bucket (now, not
// from the cache), several at once.
func (l *SharedLog) Load(ctx context.Context, notifier string, alerts []string) (map[string]SharedState, error) {
	out := make(map[string]SharedState, len(alerts))
	var mu sync.Mutex
	err := parallel(len(alerts), func(i int) error {
		e, err := l.get(ctx, sharedKey(notifier, alerts[i]))
		if err != nil {
			return err
		}
		mu.Lock()
		out[alerts[i]] = e.st
		mu.Unlock()
		return nil
	})
	return out, err
}

// Settle changes the state of (notifier, alert) with apply, which says
// whether it changed anything, by compare-and-set: when another worker
// wrote in between, apply runs again on what it wrote. apply must never
// move Seq backwards.
func (l *SharedLog) Settle(ctx context.Context, notifier, alert string, apply func(*SharedState) bool) error {
	key := sharedKey(notifier, alert)
	l.mu.Lock()
	e, ok := l.cache[key]
	l.mu.Unlock()
	for range sharedCASTries {
		if !ok {
			var err error
			if e, err = l.get(ctx, key); err != nil {
				return err
			}
		}
		st := e.st
		if !apply(&st) {
			return nil
		}
		data, err := json.Marshal(st)
		if err != nil {
			return fmt.Errorf("notify: shared delivery log: %w", err)
		}
		var rev uint64
		if e.rev == 0 {
			rev, err = l.kv.Create(ctx, key, data)
		} else {
			rev, err = l.kv.Update(ctx, key, data, e.rev)
		}
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			ok = false // someone else wrote: read it and apply again
			continue
		}
		if err != nil {
			return fmt.Errorf("notify: shared delivery log: write: %w", err)
		}
		l.remember(key, sharedEntry{st: st, rev: rev})
		return nil
	}
	return fmt.Errorf("notify: shared delivery log: write: still conflicting after %d tries", sharedCASTries)
}

// FiringOutcome says whether the firing of an alert's episode (its start)
// reached a notifier, as the shared log last read says (the retry stage
// reads it again before every attempt); it implements FiringLog.
func (l *SharedLog) FiringOutcome(notifier, alert string, startsAt time.Time) (known, delivered bool, err error) {
	st, ok := l.cached(notifier, alert)
	if !ok {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e, err := l.get(ctx, sharedKey(notifier, alert))
		if err != nil {
			return false, false, err
		}
		st = e.st
	}
	if st.FiringStart.IsZero() || !st.FiringStart.Equal(startsAt) {
		return false, false, nil
	}
	return true, st.FiringDelivered, nil
}

// parallel runs f(0..n-1), at most sharedParallel at a time, and returns
// the first error (in index order).
func parallel(n int, f func(int) error) error {
	if n == 1 {
		return f(0)
	}
	sem := make(chan struct{}, sharedParallel)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = f(i)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
