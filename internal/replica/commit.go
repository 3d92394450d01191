package replica

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"

	"github.com/klauspost/compress/s2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/simwatch/simwatch/internal/store"
)

// Commit runs fn as a replicated write transaction on subject:
//  1. it waits until the applier has applied every delta on subject;
//  2. it runs fn recording its writes and rolls them back (store.Record);
//  3. it publishes the delta, compressed and in parts of at most MaxPart,
//     each expecting the subject's last sequence to be the one before it,
//     so that a delta written in between makes it fail with ErrConflict;
//  4. it applies the delta to the store.
//
// fn's error is returned as is. A delta that writes nothing is not
// published (a zero CommitInfo). Commits on one subject are serialised.
func (r *Replica) Commit(ctx context.Context, subject string, fn func(*store.Tx) error) (CommitInfo, error) {
	unlock, err := r.lock(ctx, subject)
	if err != nil {
		return CommitInfo{}, err
	}
	defer unlock()
	last, err := r.catchUp(ctx, subject)
	if err != nil {
		return CommitInfo{}, err
	}
	d, err := r.o.Store.Record(fn)
	if err != nil {
		return CommitInfo{}, err
	}
	if d.Empty() {
		return CommitInfo{}, nil
	}
	// Every applier would refuse it.
	if err := r.allowed(subject, &d); err != nil {
		return CommitInfo{}, fmt.Errorf("replica: commit: %w", err)
	}
	raw, err := d.MarshalBinary()
	if err != nil {
		return CommitInfo{}, fmt.Errorf("replica: %s: %w", subject, err)
	}
	data := s2.Encode(nil, raw)
	info := CommitInfo{Bytes: len(data), Raw: len(raw), Parts: (len(data) + r.maxPart - 1) / r.maxPart}
	if info.Parts > maxParts {
		return CommitInfo{}, fmt.Errorf("replica: %s: a delta of %d bytes is more than %d parts", subject, len(data), maxParts)
	}
	id := newID()
	prev := last
	for i := range info.Parts {
		msg := nats.NewMsg(subject)
		msg.Header.Set(hdrDelta, id)
		msg.Header.Set(hdrPart, strconv.Itoa(i+1)+"/"+strconv.Itoa(info.Parts))
		msg.Header.Set(hdrMember, r.o.Member)
		msg.Data = data[i*r.maxPart : min((i+1)*r.maxPart, len(data))]
		ack, err := r.o.JS.PublishMsg(ctx, msg, jetstream.WithExpectLastSequencePerSubject(prev))
		if err != nil {
			if wrongLastSeq(err) {
				return CommitInfo{}, fmt.Errorf("%w: %s (part %d of %d expected sequence %d)", ErrConflict, subject, i+1, info.Parts, prev)
			}
			return CommitInfo{}, fmt.Errorf("replica: publish %s part %d of %d: %w", subject, i+1, info.Parts, err)
		}
		prev = ack.Sequence
	}
	info.Seq = prev
	// The applier may have applied it first (it reads the stream too):
	// then Apply skips it.
	if _, err := r.o.Store.Apply(subject, info.Seq, d); err != nil {
		// It is in the stream: the applier applies it when it can.
		return info, fmt.Errorf("replica: %s: published as %d, not applied here: %w", subject, info.Seq, err)
	}
	r.noteApplied(subject, info.Seq, r.o.Member)
	return info, nil
}

// CatchUp waits until the applier has processed every message on subject
// up to the stream's last one.
func (r *Replica) CatchUp(ctx context.Context, subject string) error {
	_, err := r.catchUp(ctx, subject)
	return err
}

// catchUp is CatchUp; it returns the subject's last sequence (0: none).
func (r *Replica) catchUp(ctx context.Context, subject string) (uint64, error) {
	st, err := r.o.JS.Stream(ctx, r.stream)
	if err != nil {
		return 0, fmt.Errorf("replica: catch up %s: %w", subject, err)
	}
	// A stream created again numbers from 1: the applier must have
	// followed it before its sequences mean anything here.
	id := fmt.Sprint(st.CachedInfo().Created.UnixNano())
	var last uint64
	m, err := st.GetLastMsgForSubject(ctx, subject)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
	case err != nil:
		return 0, fmt.Errorf("replica: catch up %s: %w", subject, err)
	default:
		last = m.Sequence
	}
	for {
		r.mu.Lock()
		seen, wait, same := r.seen, r.progress, r.streamID == id
		r.mu.Unlock()
		if same && seen >= last {
			return last, nil
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return 0, fmt.Errorf("replica: catch up %s: at %d of %d: %w", subject, seen, last, ctx.Err())
		}
	}
}

func (r *Replica) noteApplied(subject string, seq uint64, member string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if seq > r.applied[subject].seq {
		r.applied[subject] = applied{seq: seq, member: member}
	}
}

// lock takes subject's commit turn.
func (r *Replica) lock(ctx context.Context, subject string) (func(), error) {
	r.mu.Lock()
	turn, ok := r.commits[subject]
	if !ok {
		turn = make(chan struct{}, 1)
		r.commits[subject] = turn
	}
	r.mu.Unlock()
	select {
	case turn <- struct{}{}:
		return func() { <-turn }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("replica: commit %s: %w", subject, ctx.Err())
	}
}

func wrongLastSeq(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
