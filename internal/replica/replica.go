// Package replica makes the cluster's state stream the commit of every
// replicated write (see /work/shared/DESIGN.md, issue 15): a writer records
// its transaction as a store.Delta (store.Record), publishes it to the
// subject of what it wrote (a provider, the silences) with optimistic
// concurrency, and applies it; every watcher's applier (Run) applies every
// delta of the stream to its own store, so a standby holds what the owner
// holds and can take the account over where the owner stopped.
package replica

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/simwatch/simwatch/internal/store"
)

// Options configures a Replica.
type Options struct {
	JS    jetstream.JetStream
	Store *store.Store
	// Cluster names the stream and its subjects ([A-Za-z0-9_-]+).
	Cluster string
	// Member is this watcher's name, carried by each delta it writes.
	Member string
	// Replicas is how many copies of the stream JetStream keeps; 0 means 1.
	Replicas int
	// MaxPart is the largest part a delta is published in; 0 means the
	// connection's max payload less room for the headers.
	MaxPart int
	Logger  *slog.Logger
}

// ErrConflict says a commit was refused because someone else wrote to the
// subject since this watcher caught up (a stale owner, an ack on another
// watcher): nothing was written; the caller reloads and tries again.
var ErrConflict = errors.New("replica: the subject was written elsewhere")

// Headers of a delta's parts.
const (
	hdrDelta  = "Simwatch-Delta"  // the delta's id, the same on each of its parts
	hdrPart   = "Simwatch-Part"   // "i/k": part i of k
	hdrMember = "Simwatch-Member" // who wrote it
)

// headroom is left of the max payload for a part's headers.
const headroom = 4 << 10

// maxParts bounds the parts of one delta an applier assembles, and
// maxDelta its decoded size: a hostile or broken writer cannot make
// every watcher hold gigabytes.
const (
	maxParts = 4096
	maxDelta = 1 << 30
)

var validName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// StreamName is the state stream of a cluster.
func StreamName(cluster string) string { return "SIMWATCH_" + cluster + "_STATE" }

// ProviderSubject is the subject of a provider's replicated state.
func ProviderSubject(cluster, provider string) string {
	return "simwatch." + cluster + ".state.p." + provider
}

// SilencesSubject is the subject of the silences.
func SilencesSubject(cluster string) string { return "simwatch." + cluster + ".state.g.silences" }

func allSubjects(cluster string) string { return "simwatch." + cluster + ".state.>" }

// Replica replicates store transactions through the cluster's state stream.
type Replica struct {
	o       Options
	stream  string
	maxPart int
	log     *slog.Logger

	mu sync.Mutex
	// seen is the last stream sequence the applier has processed (applied,
	// skipped or taken as a part); progress is closed when it moves.
	seen     uint64
	progress chan struct{}
	applied  map[string]applied
	streamID string
	// commits serialises commits per subject (a channel: waiting for
	// the turn can give up with its context).
	commits map[string]chan struct{}
}

type applied struct {
	seq    uint64
	member string
}

// CommitInfo describes a published delta.
type CommitInfo struct {
	Seq   uint64 // stream sequence of its last part: the subject's new applied seq
	Bytes int    // compressed, as published
	Raw   int    // encoded, before compression
	Parts int
}

// Status is where the applier is in the stream.
type Status struct {
	Position uint64 // the last stream sequence processed
	Last     uint64 // the stream's last sequence
	Lag      uint64 // messages not processed yet
	Bytes    uint64 // the stream's size
	Applied  map[string]uint64
}

// Open creates or updates the state stream and loads the applier's
// position from the store. The stream keeps every delta (file storage, no
// age limit): it is the log a new member replays to build its state.
func Open(ctx context.Context, o Options) (*Replica, error) {
	if !validName.MatchString(o.Cluster) {
		return nil, fmt.Errorf("replica: cluster name %q: want [A-Za-z0-9_-]+", o.Cluster)
	}
	if o.Member == "" {
		return nil, errors.New("replica: a member name is needed")
	}
	if o.JS == nil || o.Store == nil {
		return nil, errors.New("replica: JetStream and a store are needed")
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Replica{o: o, stream: StreamName(o.Cluster), maxPart: o.MaxPart, log: o.Logger.With("stream", StreamName(o.Cluster)),
		progress: make(chan struct{}), applied: map[string]applied{}, commits: map[string]chan struct{}{}}
	if r.maxPart <= 0 {
		r.maxPart = max(int(o.JS.Conn().MaxPayload())-headroom, 1024)
	}
	if _, err := r.ensureStream(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// ensureStream creates or updates the stream and, when it is not the one
// the store's position refers to (deleted and created again: its
// sequences start over), forgets the position. It returns the stream's
// last sequence.
func (r *Replica) ensureStream(ctx context.Context) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := r.o.JS.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        r.stream,
		Description: "simwatch replicated state: every delta since the cluster began, the log a new member replays",
		Subjects:    []string{allSubjects(r.o.Cluster)},
		Storage:     jetstream.FileStorage,
		Replicas:    r.o.Replicas,
		Retention:   jetstream.LimitsPolicy,
	})
	if err != nil {
		return 0, fmt.Errorf("replica: stream %s: %w", r.stream, err)
	}
	info := st.CachedInfo()
	return info.State.LastSeq, r.adopt(info)
}

// adopt loads the position when the stream is the one it refers to, and
// resets it otherwise.
func (r *Replica) adopt(info *jetstream.StreamInfo) error {
	id := fmt.Sprint(info.Created.UnixNano())
	r.mu.Lock()
	defer r.mu.Unlock()
	if id == r.streamID {
		return nil
	}
	stored, err := r.o.Store.ReplicaStream()
	if err != nil {
		return err
	}
	pos, seqs, err := r.o.Store.ReplicaPosition()
	if err != nil {
		return err
	}
	if stored != id {
		if stored != "" || pos != 0 || len(seqs) != 0 {
			r.log.Warn("replica: the state stream is not the one this store followed; following the new one from its start",
				"stored", stored, "stream_created", info.Created)
		}
		if err := r.o.Store.ResetReplica(id); err != nil {
			return err
		}
		pos, seqs = 0, nil
	}
	r.streamID, r.seen = id, pos
	r.applied = map[string]applied{}
	for s, seq := range seqs {
		r.applied[s] = applied{seq: seq}
	}
	r.moved()
	return nil
}

// moved wakes those waiting for the applier. r.mu is held.
func (r *Replica) moved() {
	close(r.progress)
	r.progress = make(chan struct{})
}

// Applied returns the stream sequence of the last delta applied on
// subject, and who wrote it ("" when not known since this process began).
func (r *Replica) Applied(subject string) (seq uint64, member string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a := r.applied[subject]
	return a.seq, a.member
}

// Status returns where the applier is in the stream.
func (r *Replica) Status(ctx context.Context) (Status, error) {
	st, err := r.o.JS.Stream(ctx, r.stream)
	if err != nil {
		return Status{}, fmt.Errorf("replica: stream %s: %w", r.stream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("replica: stream %s: %w", r.stream, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Status{Position: r.seen, Last: info.State.LastSeq, Bytes: info.State.Bytes, Applied: map[string]uint64{}}
	if s.Last > s.Position {
		s.Lag = s.Last - s.Position
	}
	for k, a := range r.applied {
		s.Applied[k] = a.seq
	}
	return s, nil
}
