package store

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
)

// Recording is how a cluster replicates a write transaction (see
// internal/replica): the transaction runs against the local store with a
// recorder attached, every replicated write also lands in the recorder,
// and the transaction is rolled back. The delta goes to the state stream;
// each watcher, the writer included, applies it (Store.Apply).
//
// What is recorded: every write under providers/<name> (ProviderTx), the
// acks (Tx.Ack), the silences (Tx.PutSilence, Tx.ExpireSilence), and the
// events appended to the outbox (Tx.AppendOutbox), whose history, index,
// firing, alert_seq and outbox entries Apply derives from the events
// themselves. What is not: each watcher's own delivery record (ledger,
// delivery logs, mutes, threads), its outbox numbering and the relay's
// removals, probes, rebuilds.

// ErrRecording is returned by a write that cannot be replicated when it is
// made while recording (a snapshot rebuilt beside the live one).
var ErrRecording = errors.New("store: not replicable while recording")

// recorder collects a recorded transaction's writes.
type recorder struct {
	ops    []Op
	events [][]byte
}

// put records a put; the key and value are copied (a caller may reuse
// its buffers once the write returns).
func (r *recorder) put(path [][]byte, k, v []byte) {
	if r == nil {
		return
	}
	r.ops = append(r.ops, Op{Kind: OpPut, Path: path, Key: bytes.Clone(k), Value: bytes.Clone(v)})
}

func (r *recorder) del(path [][]byte, k []byte) {
	if r == nil {
		return
	}
	r.ops = append(r.ops, Op{Kind: OpDelete, Path: path, Key: bytes.Clone(k)})
}

func (r *recorder) drop(path [][]byte) {
	if r == nil {
		return
	}
	r.ops = append(r.ops, Op{Kind: OpDropBucket, Path: path})
}

func (r *recorder) appended(encoded [][]byte) {
	if r == nil {
		return
	}
	r.events = append(r.events, encoded...)
}

// Record runs fn in a write transaction that records every replicated
// write, then rolls it back: nothing fn wrote stays in the store. It
// returns what fn wrote as a Delta, for Apply here and on every other
// watcher. fn's error is returned as is (and no delta).
func (s *Store) Record(fn func(*Tx) error) (d Delta, err error) {
	defer guard(s.db.path, &err)()
	tx, err := s.db.Begin(true)
	if err != nil {
		return Delta{}, fmt.Errorf("store: record: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	rec := &recorder{}
	if err := fn(&Tx{tx: tx, s: s, rec: rec}); err != nil {
		return Delta{}, err
	}
	return Delta{Ops: rec.ops, Events: rec.events}, nil
}

// Recording reports whether the transaction records its writes (see
// Store.Record).
func (t *Tx) Recording() bool { return t.rec != nil }

// path is the bucket path of one of the provider's sub-buckets (none:
// the provider's own bucket).
func (p *ProviderTx) path(sub []byte) [][]byte {
	if p.rec == nil {
		return nil
	}
	if sub == nil {
		return [][]byte{bucketProviders, []byte(p.name)}
	}
	if i := slices.IndexFunc(p.paths, func(path [][]byte) bool { return bytes.Equal(path[2], sub) }); i >= 0 {
		return p.paths[i]
	}
	path := [][]byte{bucketProviders, []byte(p.name), sub}
	p.paths = append(p.paths, path)
	return path
}
