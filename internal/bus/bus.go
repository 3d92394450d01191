// Package bus is simwatch's event bus on NATS JetStream: an embedded server by
// default (JetStream storage in the data directory) or an external one, the
// events stream that the outbox publishes to with Nats-Msg-Id, one durable
// consumer per notifier, and the dead-letter stream.
package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/simwatch/simwatch/internal/event"
)

// Stream and subject names.
const (
	EventsStream     = "SIMWATCH_EVENTS"
	DeadLetterStream = "SIMWATCH_DEADLETTER"
	DeadLetterPrefix = "simwatch.deadletter."
	// HeaderError carries a dead letter's last error.
	HeaderError = "Simwatch-Error"
	// HeaderNotifier names the notifier a dead letter failed in.
	HeaderNotifier = "Simwatch-Notifier"
)

// Defaults.
const (
	DefaultDuplicates = 2 * time.Minute
	DefaultMaxAge     = 30 * 24 * time.Hour
	DefaultAckWait    = 30 * time.Second
)

// Options configures Open.
type Options struct {
	// URL of an external NATS server or cluster; empty runs an embedded server
	// with JetStream storage under DataDir/nats.
	URL     string
	DataDir string
	// AckWait is how long a delivered, unacknowledged event waits before
	// JetStream redelivers it (e.g. after a crash).
	AckWait time.Duration
	// Replicas is how many copies JetStream keeps of the streams and the
	// notifiers' consumers; zero means one. A cluster of watchers asks for
	// three where the NATS cluster has three servers (see ClusterSize).
	Replicas int
	// AutoReplicas asks for three copies when the NATS cluster has three
	// or more servers (ClusterSize), whatever Replicas says.
	AutoReplicas bool
	Logger       *slog.Logger
}

// Bus is a connection to JetStream with simwatch's streams in place.
type Bus struct {
	o   Options
	srv *server.Server // nil when external
	nc  *nats.Conn
	js  jetstream.JetStream
}

// Open starts or connects to NATS and makes sure the streams exist.
func Open(ctx context.Context, o Options) (*Bus, error) {
	if o.AckWait == 0 {
		o.AckWait = DefaultAckWait
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	b := &Bus{o: o}
	if o.URL == "" {
		if err := b.startEmbedded(); err != nil {
			return nil, err
		}
	} else if err := b.connect(ctx); err != nil {
		return nil, err
	}
	if o.AutoReplicas && b.ClusterSize() >= 3 {
		b.o.Replicas = 3
	}
	var err error
	if b.js, err = jetstream.New(b.nc); err != nil {
		b.Close()
		return nil, fmt.Errorf("bus: jetstream: %w", err)
	}
	// Bounded: a server that accepts the connection but never answers
	// JetStream requests must not hold the start up.
	sctx, cancel := context.WithTimeout(ctx, StartTimeout)
	defer cancel()
	if err := b.EnsureStreams(sctx); err != nil {
		b.Close()
		return nil, b.startError(err)
	}
	return b, nil
}

// EnsureStreams creates the events and dead-letter streams where they are
// missing: on start, and whenever a server may have lost them (an external
// server that came back empty, a deleted store).
func (b *Bus) EnsureStreams(ctx context.Context) error {
	for _, cfg := range []jetstream.StreamConfig{
		{Name: EventsStream, Subjects: []string{event.SubjectPrefix + ">"}, Storage: jetstream.FileStorage,
			Duplicates: DefaultDuplicates, MaxAge: DefaultMaxAge, Replicas: b.Replicas()},
		{Name: DeadLetterStream, Subjects: []string{DeadLetterPrefix + ">"}, Storage: jetstream.FileStorage,
			Duplicates: DefaultDuplicates, MaxAge: DefaultMaxAge, Replicas: b.Replicas()},
	} {
		created, err := b.ensureStream(ctx, cfg)
		if err != nil {
			return fmt.Errorf("bus: stream %s: %w", cfg.Name, err)
		}
		if !created {
			continue
		}
		b.o.Logger.Warn("bus: stream created", "stream", cfg.Name)
	}
	return nil
}

// JetStream is the bus's JetStream context, for the cluster's own streams
// and key-value buckets.
func (b *Bus) JetStream() jetstream.JetStream { return b.js }

// Conn is the bus's NATS connection.
func (b *Bus) Conn() *nats.Conn { return b.nc }

// Replicas is how many copies the bus asks JetStream to keep (at least one).
func (b *Bus) Replicas() int { return max(b.o.Replicas, 1) }

// ClusterSize is how many NATS servers the connection knows of: one when
// the server is not clustered, else the servers in its pool (those
// configured and those the cluster told it about), counted by address.
func (b *Bus) ClusterSize() int {
	if b.nc.ConnectedClusterName() == "" {
		return 1
	}
	seen := map[string]bool{}
	for _, raw := range b.nc.Servers() {
		if u, err := url.Parse(raw); err == nil && u.Host != "" {
			seen[u.Host] = true
		}
	}
	return max(len(seen), 1)
}

// streamAttempt bounds one look for, or creation of, a stream. Watchers
// of a cluster that start together race to create an R3 stream, and the
// server may leave a losing request unanswered: the next attempt finds
// the stream the winner made.
const streamAttempt = 2 * time.Second

// ensureStream finds the stream or creates it, attempt after attempt
// until ctx ends; created says it made it.
func (b *Bus) ensureStream(ctx context.Context, cfg jetstream.StreamConfig) (created bool, err error) {
	for {
		actx, cancel := context.WithTimeout(ctx, streamAttempt)
		_, err = b.js.Stream(actx, cfg.Name)
		if err == nil || !errors.Is(err, jetstream.ErrStreamNotFound) {
			cancel()
			if err == nil || ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
				return false, err
			}
			continue
		}
		_, err = b.js.CreateStream(actx, cfg)
		cancel()
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, jetstream.ErrStreamNameAlreadyInUse):
			return false, nil
		case ctx.Err() != nil:
			return false, err
		}
	}
}

// Close closes the connection and stops an embedded server.
func (b *Bus) Close() {
	if b.nc != nil {
		b.nc.Close()
	}
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
	}
}

// Publish publishes an event with Nats-Msg-Id set to its id, and returns once
// JetStream has stored it (or recognised a duplicate). The event is bounded
// first to what the server accepts (see Limit).
func (b *Bus) Publish(ctx context.Context, e *event.Event) error {
	c := *e // bounded as published; the caller's event stays as it is
	data, err := c.Encode(b.Limit(c.ID))
	if err != nil {
		return &RejectedError{EventID: e.ID, Err: err}
	}
	if _, err := b.js.Publish(ctx, c.Subject(), data, jetstream.WithMsgID(c.ID)); err != nil {
		return publishError(e.ID, err)
	}
	return nil
}

// PublishBatch publishes events asynchronously and waits for every
// acknowledgement. It returns how many of them, in order from the first, the
// bus has stored, so the caller can drop exactly those from its outbox. Each
// event is bounded first to what the server accepts (see Limit), so an
// outbox written by an older version, holding larger events, flows too. When
// it stops at an event the bus refuses for good, the error is a
// *RejectedError and the count is that event's index.
func (b *Bus) PublishBatch(ctx context.Context, events []event.Event) (int, error) {
	return publishAll(ctx, len(events), func(i int) string { return events[i].ID },
		func(i int) (jetstream.PubAckFuture, error) { return b.publishAsync(events[i]) })
}

// publishAll starts n publications with start, in order, stopping at the
// first that fails, then waits for their acknowledgements. It returns how
// many, in order from the first, the bus has stored, and why it stopped
// short.
func publishAll(ctx context.Context, n int, id func(int) string, start func(int) (jetstream.PubAckFuture, error)) (int, error) {
	futures := make([]jetstream.PubAckFuture, 0, n)
	var stopped error // why publishing stopped before the end
	for i := range n {
		f, err := start(i)
		if err != nil {
			stopped = err
			break
		}
		futures = append(futures, f)
	}
	for i, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return i, publishError(id(i), err)
		case <-ctx.Done():
			return i, ctx.Err()
		}
	}
	return len(futures), stopped
}

// publishAsync bounds a copy of e and publishes it without waiting.
func (b *Bus) publishAsync(e event.Event) (jetstream.PubAckFuture, error) {
	id := e.ID
	data, err := e.Encode(b.Limit(e.ID))
	if err != nil {
		return nil, &RejectedError{EventID: id, Err: err}
	}
	msg := nats.NewMsg(e.Subject())
	msg.Data = data
	f, err := b.js.PublishMsgAsync(msg, jetstream.WithMsgID(e.ID))
	if err != nil {
		return nil, publishError(id, err)
	}
	return f, nil
}

// headerRoom is what an event's message headers take of the server's
// max_payload besides the id ("NATS/1.0\r\nNats-Msg-Id: …\r\n\r\n"),
// with a margin.
const headerRoom = 256

// Limit is the most bytes the event with this id may take encoded for the
// connected server to accept it: event.MaxSize, or less when the server's
// max_payload, minus room for the headers, is smaller. It follows the server
// the connection is on.
func (b *Bus) Limit(id string) int {
	room := b.nc.MaxPayload() - int64(headerRoom+len(id))
	return int(max(min(room, event.MaxSize), 0))
}

// RejectedError says the bus refuses an event for good (too large for the
// server or the stream, or not encodable): publishing it again cannot help.
type RejectedError struct {
	EventID string
	Err     error
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("bus: publish %s: refused for good: %v", e.EventID, e.Err)
}

func (e *RejectedError) Unwrap() error { return e.Err }

// Permanent is true: the outbox relay sets the event aside rather than
// retry it forever and hold back every event behind it.
func (e *RejectedError) Permanent() bool { return true }

// publishError wraps a failed publish of an event: a *RejectedError when the
// bus refuses it for good, an error to retry otherwise.
func publishError(id string, err error) error {
	var api *jetstream.APIError
	if errors.Is(err, nats.ErrMaxPayload) || errors.Is(err, nats.ErrBadSubject) ||
		(errors.As(err, &api) && api.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum) {
		return &RejectedError{EventID: id, Err: err}
	}
	return fmt.Errorf("bus: publish %s: %w", id, err)
}

// Consumer returns the notifier's durable consumer. A consumer that does
// not exist yet (first start, or lost with the server's data) is created
// to deliver only what is published from now on; created says so, and the
// caller republishes from its own record what the notifier still owes
// (see Republish). Events not yet acknowledged survive restarts.
func (b *Bus) Consumer(ctx context.Context, notifier string) (c jetstream.Consumer, created bool, err error) {
	// Watchers of a cluster that start together race to create the
	// consumer, and the server may leave a losing request unanswered:
	// each attempt is bounded, and the next finds what the winner made.
	deadline := time.Now().Add(StartTimeout)
	for {
		actx, cancel := context.WithTimeout(ctx, streamAttempt)
		c, created, err = b.consumer(actx, notifier)
		cancel()
		if err == nil || !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil || time.Now().After(deadline) {
			return c, created, err
		}
	}
}

// consumer is one attempt of Consumer.
func (b *Bus) consumer(ctx context.Context, notifier string) (c jetstream.Consumer, created bool, err error) {
	name := "notify-" + notifier
	c, err = b.js.Consumer(ctx, EventsStream, name)
	if err == nil {
		return c, false, nil
	}
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if err := b.EnsureStreams(ctx); err != nil {
			return nil, false, err
		}
		err = jetstream.ErrConsumerNotFound
	}
	if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, false, fmt.Errorf("bus: consumer %s: %w", notifier, err)
	}
	cfg := jetstream.ConsumerConfig{
		Durable:       name,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       b.o.AckWait,
		MaxDeliver:    -1, // the notifier counts attempts and dead-letters
		MaxAckPending: 1000,
		DeliverPolicy: jetstream.DeliverNewPolicy,
		Replicas:      b.Replicas(),
	}
	c, err = b.js.CreateConsumer(ctx, EventsStream, cfg)
	var api *jetstream.APIError
	if b.srv != nil && errors.As(err, &api) && (api.ErrorCode == jsErrCodeConsumerCreate || api.ErrorCode == jsErrCodeConsumerStoreFailed) {
		// The embedded server could not load the consumer's files (they
		// are corrupt) and cannot create it over them. The notifier's
		// position is not lost: the ledger has it. Remove the files and
		// create the consumer anew; the caller refills it.
		dir := filepath.Join(b.o.DataDir, "nats", "jetstream", server.DEFAULT_GLOBAL_ACCOUNT, "streams", EventsStream, "obs", name)
		b.o.Logger.Warn("bus: the embedded server could not load a consumer's files; removing them and making it anew (the ledger refills it)",
			"notifier", notifier, "dir", dir, "err", err)
		if rerr := os.RemoveAll(dir); rerr != nil {
			return nil, false, fmt.Errorf("bus: consumer %s: %w (and removing %s: %v)", notifier, err, dir, rerr)
		}
		c, err = b.js.CreateConsumer(ctx, EventsStream, cfg)
	}
	if errors.Is(err, jetstream.ErrConsumerExists) {
		c, err = b.js.Consumer(ctx, EventsStream, name)
		return c, false, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("bus: consumer %s: %w", notifier, err)
	}
	return c, true, nil
}

// JetStream's errors for a consumer it cannot create (NATS server's
// JSConsumerCreateErrF, which carries "error creating store for consumer"
// when the consumer's files are corrupt, and JSConsumerStoreFailedErrF).
const (
	jsErrCodeConsumerCreate      jetstream.ErrorCode = 10012
	jsErrCodeConsumerStoreFailed jetstream.ErrorCode = 10104
)

// HeaderRecoverFor marks an event republished because the bus lost it: only
// the named notifier takes it.
const HeaderRecoverFor = "Simwatch-Recover-For"

// Republish publishes an event again for one notifier, which the bus lost
// before the notifier took it. The message id is fresh, so the duplicate
// window does not drop it; the event (and its id) is the same.
func (b *Bus) Republish(ctx context.Context, notifier string, e *event.Event, data []byte) error {
	msg := nats.NewMsg(e.Subject())
	msg.Data = data
	msg.Header.Set(HeaderRecoverFor, notifier)
	id := fmt.Sprintf("recover:%s:%s:%d", notifier, e.ID, time.Now().UnixNano())
	if _, err := b.js.PublishMsg(ctx, msg, jetstream.WithMsgID(id)); err != nil {
		return publishError(e.ID, err)
	}
	return nil
}

// DeadLetter stores an event that notifier could not deliver, with the reason.
func (b *Bus) DeadLetter(ctx context.Context, notifier string, data []byte, eventID, reason string) error {
	msg := nats.NewMsg(DeadLetterPrefix + notifier)
	msg.Data = data
	msg.Header.Set(HeaderError, reason)
	msg.Header.Set(HeaderNotifier, notifier)
	if _, err := b.js.PublishMsg(ctx, msg, jetstream.WithMsgID(notifier+":"+eventID)); err != nil {
		return fmt.Errorf("bus: dead letter %s: %w", eventID, err)
	}
	return nil
}

// DeadLetters counts the dead letters of a notifier.
func (b *Bus) DeadLetters(ctx context.Context, notifier string) (uint64, error) {
	s, err := b.js.Stream(ctx, DeadLetterStream)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(DeadLetterPrefix+notifier))
	if err != nil {
		return 0, err
	}
	return info.State.Msgs, nil
}

// Pending counts the events a notifier has not yet acknowledged.
func (b *Bus) Pending(ctx context.Context, notifier string) (uint64, error) {
	c, err := b.js.Consumer(ctx, EventsStream, "notify-"+notifier)
	if err != nil {
		return 0, fmt.Errorf("bus: consumer %s: %w", notifier, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("bus: consumer %s: %w", notifier, err)
	}
	return info.NumPending + uint64(info.NumAckPending), nil
}
