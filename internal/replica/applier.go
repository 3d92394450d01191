package replica

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/simwatch/simwatch/internal/store"
)

// How the applier reads: a fetch waits at most fetchWait for messages, and
// the stream is checked (still there, still the same one) every checkEvery.
var (
	fetchWait  = time.Second
	checkEvery = 5 * time.Second
	retryMin   = 100 * time.Millisecond
	retryMax   = 5 * time.Second
)

// fetchBatch is how many messages one fetch asks for: at most that many
// parts (each up to the max payload) are in flight.
const fetchBatch = 32

// Run applies the stream's deltas to the store, from the stored position
// on, until ctx ends. NATS outages, a stream deleted and created again and
// a store that fails to commit are waited out and retried; a message that
// is not a delta part, or a delta that does not decode or apply, is logged
// and skipped. Commit and CatchUp wait for it: it must be running.
func (r *Replica) Run(ctx context.Context) {
	a := &applier{r: r, partials: map[string]*partial{}}
	wait := retryMin
	for {
		err := a.consume(ctx)
		if ctx.Err() != nil {
			a.persist()
			return
		}
		r.log.Warn("replica: applier interrupted; resuming", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			a.persist()
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, retryMax)
	}
}

// applier is Run's state: the deltas being assembled, per subject.
type applier struct {
	r        *Replica
	partials map[string]*partial
	// persisted is the position last written to the store.
	persisted uint64
}

// partial is a delta whose first parts have been read.
type partial struct {
	id     string
	k      int
	next   int    // the part expected next
	first  uint64 // the stream sequence of part 1
	member string
	data   []byte
}

// consume reads the stream from the resume point until an error (or ctx).
func (a *applier) consume(ctx context.Context) error {
	r := a.r
	if _, err := r.ensureStream(ctx); err != nil {
		return err
	}
	// Partial deltas are read again from their first part.
	start := a.resumeAt()
	a.partials = map[string]*partial{}
	a.persisted = math.MaxUint64 // the store's may have been reset
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{allSubjects(r.o.Cluster)}, DeliverPolicy: jetstream.DeliverAllPolicy}
	if start > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, start+1
	}
	cons, err := r.o.JS.OrderedConsumer(ctx, r.stream, cfg)
	if err != nil {
		return fmt.Errorf("replica: consumer: %w", err)
	}
	r.mu.Lock()
	r.seen = start
	r.mu.Unlock()
	checked := time.Now()
	for ctx.Err() == nil {
		if err := a.fetch(ctx, cons); err != nil {
			return err
		}
		a.persist()
		if time.Since(checked) >= checkEvery {
			checked = time.Now()
			if err := a.check(ctx); err != nil {
				return err
			}
		}
	}
	return ctx.Err()
}

// fetch takes what the stream has, waiting at most fetchWait (less when
// ctx ends).
func (a *applier) fetch(ctx context.Context, cons jetstream.Consumer) error {
	ctx, cancel := context.WithTimeout(ctx, fetchWait)
	defer cancel()
	batch, err := cons.Fetch(fetchBatch, jetstream.FetchContext(ctx))
	if err != nil {
		return fmt.Errorf("replica: fetch: %w", err)
	}
	for msg := range batch.Messages() {
		if err := a.handle(msg); err != nil {
			return err
		}
	}
	if err := batch.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, jetstream.ErrNoMessages) {
		return fmt.Errorf("replica: fetch: %w", err)
	}
	return nil
}

// check asks for the stream: gone or created again, the consumer starts over.
func (a *applier) check(ctx context.Context) error {
	r := a.r
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := r.o.JS.Stream(ctx, r.stream)
	if err != nil {
		return fmt.Errorf("replica: stream: %w", err)
	}
	r.mu.Lock()
	same := fmt.Sprint(st.CachedInfo().Created.UnixNano()) == r.streamID
	r.mu.Unlock()
	if !same {
		return errors.New("replica: the stream was created again")
	}
	return nil
}

// resumeAt is where reading must start again so that nothing is lost: the
// last message processed, or before the first part of a delta still
// being assembled.
func (a *applier) resumeAt() uint64 {
	a.r.mu.Lock()
	pos := a.r.seen
	a.r.mu.Unlock()
	for _, p := range a.partials {
		pos = min(pos, p.first-1)
	}
	return pos
}

// persist writes the resume point to the store. Apply is idempotent per
// subject, so a position older than what was applied only costs a reread.
func (a *applier) persist() {
	pos := a.resumeAt()
	if pos == a.persisted {
		return
	}
	if err := a.r.o.Store.SetReplicaPosition(pos); err != nil {
		a.r.log.Error("replica: cannot record the position", "position", pos, "err", err)
		return
	}
	a.persisted = pos
}

// handle takes one message: a part is added to its subject's delta, and a
// complete delta applied. Only a store that cannot commit is an error.
func (a *applier) handle(msg jetstream.Msg) error {
	r := a.r
	meta, err := msg.Metadata()
	if err != nil {
		r.log.Warn("replica: message without metadata skipped", "err", err)
		return nil
	}
	seq, subject := meta.Sequence.Stream, msg.Subject()
	err = a.take(subject, seq, msg)
	var bad badMessage
	if errors.As(err, &bad) {
		r.log.Warn("replica: message skipped", "subject", subject, "seq", seq, "err", err)
		err = nil
	}
	if err != nil {
		return err
	}
	r.mu.Lock()
	if seq > r.seen {
		r.seen = seq
		r.moved()
	}
	r.mu.Unlock()
	return nil
}

// badMessage is a message, or a delta, that can never be applied.
type badMessage struct{ error }

func (a *applier) take(subject string, seq uint64, msg jetstream.Msg) error {
	h := msg.Headers()
	id := h.Get(hdrDelta)
	i, k, ok := parsePart(h.Get(hdrPart))
	if id == "" || !ok {
		return badMessage{fmt.Errorf("not a delta part (delta %q, part %q)", id, h.Get(hdrPart))}
	}
	p := a.partials[subject]
	if i == 1 {
		if p != nil {
			a.r.log.Warn("replica: incomplete delta discarded: its writer stopped before its last part",
				"subject", subject, "delta", p.id, "member", p.member, "parts", p.next-1, "of", p.k)
		}
		p = &partial{id: id, k: k, next: 1, first: seq, member: h.Get(hdrMember)}
		a.partials[subject] = p
	} else if p == nil || p.id != id || p.next != i || p.k != k {
		return badMessage{fmt.Errorf("part %d/%d of delta %s out of place", i, k, id)}
	}
	if len(p.data)+len(msg.Data()) > maxDelta {
		delete(a.partials, subject)
		return badMessage{fmt.Errorf("delta %s is larger than %d bytes", id, maxDelta)}
	}
	p.data = append(p.data, msg.Data()...)
	p.next++
	if p.next <= p.k {
		return nil
	}
	err := a.apply(subject, seq, p)
	var bad badMessage
	if err == nil || errors.As(err, &bad) {
		delete(a.partials, subject)
	}
	// Else the store failed: the delta stays partial, so that the
	// applier resumes from its first part.
	return err
}

// apply applies a complete delta, unless this watcher applied it already
// (its own commit).
func (a *applier) apply(subject string, seq uint64, p *partial) error {
	r := a.r
	if done, _ := r.Applied(subject); done >= seq {
		return nil
	}
	if n, err := s2.DecodedLen(p.data); err != nil || n > maxDelta {
		return badMessage{fmt.Errorf("delta %s does not decompress (%d bytes): %v", p.id, n, err)}
	}
	raw, err := s2.Decode(nil, p.data)
	if err != nil {
		return badMessage{fmt.Errorf("delta %s does not decompress: %w", p.id, err)}
	}
	var d store.Delta
	if err := d.UnmarshalBinary(raw); err != nil {
		return badMessage{fmt.Errorf("delta %s: %w", p.id, err)}
	}
	if err := r.allowed(subject, &d); err != nil {
		return badMessage{fmt.Errorf("delta %s: %w", p.id, err)}
	}
	if _, err := r.o.Store.Apply(subject, seq, d); err != nil {
		if errors.Is(err, store.ErrBadDelta) {
			return badMessage{err}
		}
		return err
	}
	r.noteApplied(subject, seq, p.member)
	return nil
}

// parsePart reads "i/k".
func parsePart(s string) (i, k int, ok bool) {
	a, b, found := strings.Cut(s, "/")
	if !found {
		return 0, 0, false
	}
	i, err1 := strconv.Atoi(a)
	k, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || i < 1 || k < i || k > maxParts {
		return 0, 0, false
	}
	return i, k, true
}

// allowed checks that a delta writes only what its subject owns: a
// provider's subject its provider's buckets and the acks of its alerts,
// the silences' subject the silences. A delta that writes elsewhere would
// escape the per-subject ordering every commit relies on.
func (r *Replica) allowed(subject string, d *store.Delta) error {
	prefix := "simwatch." + r.o.Cluster + ".state."
	for i, op := range d.Ops {
		ok := false
		switch {
		case subject == SilencesSubject(r.o.Cluster):
			ok = len(op.Path) == 1 && string(op.Path[0]) == "silences"
		case strings.HasPrefix(subject, prefix+"p."):
			provider := strings.TrimPrefix(subject, prefix+"p.")
			ok = len(op.Path) == 1 && string(op.Path[0]) == "acks" && strings.HasPrefix(string(op.Key), provider+"\x00") ||
				len(op.Path) >= 2 && string(op.Path[0]) == "providers" && string(op.Path[1]) == provider
		}
		if !ok {
			return fmt.Errorf("op %d writes %q, which %s does not own", i, op.Path, subject)
		}
	}
	return nil
}
