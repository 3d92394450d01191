package replica

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/store"
)

func init() {
	// The applier notices a stream created again within a test's patience.
	checkEvery = 100 * time.Millisecond
	fetchWait = 200 * time.Millisecond
	retryMax = 200 * time.Millisecond
}

const cluster = "t1"

var subj = ProviderSubject(cluster, "hw")

// natsServer starts an in-process JetStream server; port 0 picks one.
func natsServer(t testing.TB, dir string, port int) *server.Server {
	t.Helper()
	if port == 0 {
		port = -1
	}
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	require.NoError(t, err)
	srv.Start()
	require.True(t, srv.ReadyForConnections(5*time.Second))
	return srv
}

func connect(t testing.TB, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	return js
}

// logBuf collects a watcher's log, for tests that check what was said.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// node is one watcher: a store, a replica and its running applier.
type node struct {
	t     testing.TB
	st    *store.Store
	path  string
	r     *Replica
	log   *logBuf
	stop  context.CancelFunc
	done  chan struct{}
	js    jetstream.JetStream
	name  string
	parts int
	// replicas is the stream's copies.
	replicas int
}

func newNode(t testing.TB, js jetstream.JetStream, name string, maxPart int) *node {
	t.Helper()
	return newNodeOpts(t, js, name, maxPart, 1)
}

// newNodeR is a node whose stream has replicas copies.
func newNodeR(t testing.TB, js jetstream.JetStream, name string, replicas int) *node {
	t.Helper()
	return newNodeOpts(t, js, name, 0, replicas)
}

func newNodeOpts(t testing.TB, js jetstream.JetStream, name string, maxPart, replicas int) *node {
	t.Helper()
	path := filepath.Join(t.TempDir(), name+".db")
	st, err := store.Open(path)
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	n := &node{t: t, st: st, path: path, js: js, name: name, parts: maxPart, replicas: replicas, log: &logBuf{}}
	n.start()
	t.Cleanup(n.halt)
	return n
}

func (n *node) start() {
	n.t.Helper()
	r, err := Open(context.Background(), Options{JS: n.js, Store: n.st, Cluster: cluster, Member: n.name, MaxPart: n.parts, Replicas: n.replicas,
		Logger: slog.New(slog.NewTextHandler(n.log, nil))})
	require.NoError(n.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	n.r, n.stop, n.done = r, cancel, make(chan struct{})
	go func() { defer close(n.done); r.Run(ctx) }()
}

func (n *node) halt() {
	if n.stop != nil {
		n.stop()
		<-n.done
		n.stop = nil
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// putCards commits cards id → value, with a firing event per card.
func putCards(n *node, ctx context.Context, cards map[string][]byte) (CommitInfo, error) {
	return n.r.Commit(ctx, subj, func(tx *store.Tx) error {
		pt, err := tx.Provider("hw")
		if err != nil {
			return err
		}
		var evs []event.Event
		for id, v := range cards {
			if err := pt.PutCard(id, v); err != nil {
				return err
			}
			evs = append(evs, event.Event{ID: "e-" + id + "-" + n.name, Kind: event.KindFiring, Provider: "hw", Rule: "r",
				Entity: "card", EntityID: id, ObservedAt: time.Now()})
		}
		return tx.AppendOutbox(evs)
	})
}

func card(n *node, id string) []byte {
	var v []byte
	require.NoError(n.t, n.st.View(func(tx *store.Tx) error {
		pt, _ := tx.Provider("hw")
		return pt.ForEachCard(func(cid string, enc []byte) error {
			if cid == id {
				v = bytes.Clone(enc)
			}
			return nil
		})
	}))
	return v
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func twoNodes(t *testing.T, maxPart int) (*server.Server, *node, *node) {
	srv := natsServer(t, t.TempDir(), 0)
	t.Cleanup(srv.Shutdown)
	a := newNode(t, connect(t, srv.ClientURL()), "a", maxPart)
	b := newNode(t, connect(t, srv.ClientURL()), "b", maxPart)
	return srv, a, b
}

func TestCommitIsAppliedOnTheOtherWatcher(t *testing.T) {
	_, a, b := twoNodes(t, 0)
	ctx := ctxT(t)
	info, err := putCards(a, ctx, map[string][]byte{"c1": []byte("v1")})
	require.NoError(t, err)
	require.Equal(t, 1, info.Parts)
	require.Positive(t, info.Raw)
	require.Equal(t, []byte("v1"), card(a, "c1"), "the writer applied its own commit")
	require.NoError(t, b.r.CatchUp(ctx, subj))
	require.Equal(t, []byte("v1"), card(b, "c1"))
	seq, member := b.r.Applied(subj)
	require.Equal(t, info.Seq, seq)
	require.Equal(t, "a", member)
	out, err := b.st.Outbox(10)
	require.NoError(t, err)
	require.Len(t, out, 1)
	require.Equal(t, uint64(1), out[0].Event.Seq)

	// B takes over: its next event of the alert is seq 2, and A follows.
	_, err = putCards(b, ctx, map[string][]byte{"c1": []byte("v2")})
	require.NoError(t, err)
	require.NoError(t, a.r.CatchUp(ctx, subj))
	require.Equal(t, []byte("v2"), card(a, "c1"))
	out, err = a.st.Outbox(10)
	require.NoError(t, err)
	require.Len(t, out, 2)
	require.Equal(t, uint64(2), out[1].Event.Seq)
	_, member = a.r.Applied(subj)
	require.Equal(t, "b", member, "A learns its state was changed by B")

	st, err := a.r.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, st.Last, st.Applied[subj])
	require.Positive(t, st.Bytes)

	// A delta that writes nothing is not published.
	empty, err := a.r.Commit(ctx, subj, func(tx *store.Tx) error { _, err := tx.Provider("hw"); return err })
	require.NoError(t, err)
	require.Zero(t, empty.Seq)
	st2, err := a.r.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, st.Last, st2.Last)
}

func TestConflictWhenAnotherWroteInBetween(t *testing.T) {
	_, a, b := twoNodes(t, 0)
	ctx := ctxT(t)
	_, err := putCards(a, ctx, map[string][]byte{"c0": []byte("v0")})
	require.NoError(t, err)
	var inner error
	_, err = a.r.Commit(ctx, subj, func(tx *store.Tx) error {
		// While A prepares its write, B (a stale owner, an ack) writes.
		_, inner = putCards(b, ctx, map[string][]byte{"c1": []byte("from-b")})
		pt, err := tx.Provider("hw")
		if err != nil {
			return err
		}
		return pt.PutCard("c1", []byte("from-a"))
	})
	require.NoError(t, inner)
	require.ErrorIs(t, err, ErrConflict)
	require.NoError(t, a.r.CatchUp(ctx, subj))
	require.Equal(t, []byte("from-b"), card(a, "c1"), "A's refused write left nothing")
	// Caught up, A writes.
	_, err = putCards(a, ctx, map[string][]byte{"c1": []byte("from-a")})
	require.NoError(t, err)
	require.NoError(t, b.r.CatchUp(ctx, subj))
	require.Equal(t, []byte("from-a"), card(b, "c1"))
}

func randomCards(n int) map[string][]byte {
	cards := map[string][]byte{}
	for i := range n {
		v := make([]byte, 100)
		_, _ = rand.Read(v)
		cards[fmt.Sprintf("c%04d", i)] = v
	}
	return cards
}

func TestLargeDeltaSplitsIntoPartsAndAppliesWhole(t *testing.T) {
	_, a, b := twoNodes(t, 1000)
	ctx := ctxT(t)
	cards := randomCards(300)
	info, err := putCards(a, ctx, cards)
	require.NoError(t, err)
	require.Greater(t, info.Parts, 20)
	require.NoError(t, b.r.CatchUp(ctx, subj))
	for id, v := range cards {
		require.Equal(t, v, card(b, id))
	}
	seq, _ := b.r.Applied(subj)
	require.Equal(t, info.Seq, seq, "one delta, applied as the seq of its last part")
}

// publishParts publishes the first `send` of the parts a delta of cards
// would be published in, as a writer that dies would.
func publishParts(t *testing.T, js jetstream.JetStream, cards map[string][]byte, maxPart, send int, last uint64) uint64 {
	d := store.Delta{}
	for id, v := range cards {
		d.Ops = append(d.Ops, store.Op{Kind: store.OpPut, Path: [][]byte{[]byte("providers"), []byte("hw"), []byte("cards")}, Key: []byte(id), Value: v})
	}
	raw, err := d.MarshalBinary()
	require.NoError(t, err)
	data := s2.Encode(nil, raw)
	k := (len(data) + maxPart - 1) / maxPart
	require.Greater(t, k, send)
	for i := range send {
		msg := nats.NewMsg(subj)
		msg.Header.Set(hdrDelta, "dead")
		msg.Header.Set(hdrPart, fmt.Sprintf("%d/%d", i+1, k))
		msg.Header.Set(hdrMember, "dead")
		msg.Data = data[i*maxPart : (i+1)*maxPart]
		ack, err := js.PublishMsg(context.Background(), msg, jetstream.WithExpectLastSequencePerSubject(last))
		require.NoError(t, err)
		last = ack.Sequence
	}
	return last
}

func TestWriterDeadMidPartsIsDiscarded(t *testing.T) {
	_, a, b := twoNodes(t, 1000)
	ctx := ctxT(t)
	_, err := putCards(a, ctx, map[string][]byte{"c0": []byte("v0")})
	require.NoError(t, err)
	require.NoError(t, a.r.CatchUp(ctx, subj))
	seq, _ := a.r.Applied(subj)
	publishParts(t, a.js, randomCards(50), 100, 2, seq)

	// The next owner writes after the dead writer's parts.
	info, err := putCards(b, ctx, map[string][]byte{"c1": []byte("v1")})
	require.NoError(t, err)
	require.NoError(t, a.r.CatchUp(ctx, subj))
	require.Equal(t, []byte("v1"), card(a, "c1"))
	require.Nil(t, card(a, "c0049"), "an incomplete delta is never applied")
	require.Nil(t, card(b, "c0049"))
	got, _ := a.r.Applied(subj)
	require.Equal(t, info.Seq, got)
	require.Contains(t, a.log.String(), "incomplete delta discarded")
}

func TestApplierRestartResumesWithoutReapplying(t *testing.T) {
	_, a, b := twoNodes(t, 0)
	ctx := ctxT(t)
	for i := range 3 {
		_, err := putCards(a, ctx, map[string][]byte{fmt.Sprint("c", i): []byte("v")})
		require.NoError(t, err)
	}
	require.NoError(t, b.r.CatchUp(ctx, subj))
	b.halt()
	pos, _, err := b.st.ReplicaPosition()
	require.NoError(t, err)
	last, _ := a.r.Applied(subj)
	require.Equal(t, last, pos, "the position is recorded when the applier stops")
	// A local mark a re-application would overwrite.
	require.NoError(t, b.st.Update(func(tx *store.Tx) error {
		pt, _ := tx.Provider("hw")
		return pt.PutCard("c1", []byte("local"))
	}))
	_, err = putCards(a, ctx, map[string][]byte{"c9": []byte("v9")})
	require.NoError(t, err)
	b.start()
	require.NoError(t, b.r.CatchUp(ctx, subj))
	require.Equal(t, []byte("v9"), card(b, "c9"))
	require.Equal(t, []byte("local"), card(b, "c1"), "deltas before the position are not applied again")
	out, err := b.st.Outbox(10)
	require.NoError(t, err)
	require.Len(t, out, 4, "each event once")
}

func TestGarbageOnTheSubjectIsSkipped(t *testing.T) {
	_, a, b := twoNodes(t, 0)
	ctx := ctxT(t)
	js := a.js
	pub := func(data []byte, hdr map[string]string) {
		msg := nats.NewMsg(subj)
		for k, v := range hdr {
			msg.Header.Set(k, v)
		}
		msg.Data = data
		_, err := js.PublishMsg(ctx, msg)
		require.NoError(t, err)
	}
	part := map[string]string{hdrDelta: "x", hdrPart: "1/1", hdrMember: "m"}
	pub([]byte("hello"), nil)
	pub([]byte("hello"), map[string]string{hdrDelta: "x", hdrPart: "0/1"})
	pub([]byte("hello"), map[string]string{hdrDelta: "x", hdrPart: "2/1"})
	pub([]byte("hello"), map[string]string{hdrDelta: "x", hdrPart: "1/999999999"})
	pub([]byte("hello"), map[string]string{hdrDelta: "y", hdrPart: "2/2"}) // a part without its first
	pub([]byte("not s2"), part)
	pub(s2.Encode(nil, []byte("not a delta")), part)
	pub(s2.Encode(nil, []byte{0xff, 0xff, 0xff, 0xff, 0x0f}), part)
	bad := store.Delta{Ops: []store.Op{{Kind: store.OpPut, Path: [][]byte{[]byte("replica")}, Key: []byte("pos"), Value: []byte("x")}}}
	raw, err := bad.MarshalBinary()
	require.NoError(t, err)
	pub(s2.Encode(nil, raw), part)
	pub(s2.Encode(nil, append([]byte("SWD1\x00\x01"), 5, '{', 'x')), part) // an event that is not JSON
	// A valid delta writing another provider's cards on hw's subject.
	other := store.Delta{Ops: []store.Op{{Kind: store.OpPut, Path: [][]byte{[]byte("providers"), []byte("lc"), []byte("cards")}, Key: []byte("c1"), Value: []byte("x")}}}
	raw, err = other.MarshalBinary()
	require.NoError(t, err)
	pub(s2.Encode(nil, raw), part)
	_, err = js.Publish(ctx, ProviderSubject(cluster, "other"), []byte("elsewhere"))
	require.NoError(t, err)

	info, err := putCards(a, ctx, map[string][]byte{"c1": []byte("v1")})
	require.NoError(t, err)
	require.NoError(t, b.r.CatchUp(ctx, subj))
	require.Equal(t, []byte("v1"), card(b, "c1"))
	seq, _ := b.r.Applied(subj)
	require.Equal(t, info.Seq, seq)
	require.Contains(t, b.log.String(), "message skipped")
	require.Contains(t, b.log.String(), "does not own")
	require.NoError(t, b.st.View(func(tx *store.Tx) error {
		require.Equal(t, []string{"hw"}, tx.Providers(), "nothing written outside the subject's provider")
		return nil
	}))
	st, err := b.r.Status(ctx)
	require.NoError(t, err)
	require.Zero(t, st.Lag)
}

func TestApplierCatchesUpAfterAnOutageAndARecreatedStream(t *testing.T) {
	dir := t.TempDir()
	srv := natsServer(t, dir, 0)
	t.Cleanup(func() { srv.Shutdown() })
	port, url := srv.Addr().(*net.TCPAddr).Port, srv.ClientURL()
	a := newNode(t, connect(t, url), "a", 0)
	b := newNode(t, connect(t, url), "b", 0)
	ctx := ctxT(t)
	_, err := putCards(a, ctx, map[string][]byte{"c1": []byte("v1")})
	require.NoError(t, err)

	srv.Shutdown()
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = putCards(a, short, map[string][]byte{"c2": []byte("v2")})
	cancel()
	require.Error(t, err, "no commit without the stream")
	srv = natsServer(t, dir, port)
	var info CommitInfo
	eventually(t, "a commit once NATS is back", func() bool {
		info, err = putCards(a, ctx, map[string][]byte{"c2": []byte("v2")})
		return err == nil
	})
	require.NoError(t, b.r.CatchUp(ctx, subj))
	require.Equal(t, []byte("v2"), card(b, "c2"))

	// The stream is deleted (an operator, a lost cluster): the appliers
	// create it again and follow it from its start.
	require.NoError(t, a.js.DeleteStream(ctx, StreamName(cluster)))
	eventually(t, "a commit on the stream created again", func() bool {
		info, err = putCards(a, ctx, map[string][]byte{"c3": []byte("v3")})
		return err == nil
	})
	require.Equal(t, uint64(1), info.Seq)
	require.NoError(t, b.r.CatchUp(ctx, subj))
	require.Equal(t, []byte("v3"), card(b, "c3"))
	require.Equal(t, []byte("v2"), card(b, "c2"), "the state stays")
	seq, _ := b.r.Applied(subj)
	require.Equal(t, uint64(1), seq)
	require.Contains(t, b.log.String(), "not the one this store followed")
}

func TestCommitRefusesWritesItsSubjectDoesNotOwn(t *testing.T) {
	_, a, _ := twoNodes(t, 0)
	ctx := ctxT(t)
	_, err := a.r.Commit(ctx, subj, func(tx *store.Tx) error {
		return tx.PutSilence(store.Silence{ID: "s1", EndsAt: time.Now().Add(time.Hour)})
	})
	require.ErrorContains(t, err, "does not own")
	info, err := a.r.Commit(ctx, SilencesSubject(cluster), func(tx *store.Tx) error {
		return tx.PutSilence(store.Silence{ID: "s1", EndsAt: time.Now().Add(time.Hour)})
	})
	require.NoError(t, err)
	require.Positive(t, info.Seq)
	sl, err := a.st.Silences()
	require.NoError(t, err)
	require.Len(t, sl, 1)
}
