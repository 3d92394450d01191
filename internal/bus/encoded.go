package bus

import (
	"context"
	"encoding/json"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/simwatch/simwatch/internal/event"
)

// PublishEncoded publishes events as they were stored (the outbox holds the
// bytes that go on the wire), each with Nats-Msg-Id set to its id, and waits
// for every acknowledgement. It returns how many of them, in order from the
// first, the bus has stored. Only an event larger than the connected server
// accepts (see Limit: a server whose max_payload is below event.MaxSize, or
// an outbox written by an older version) is decoded and bounded again.
// When it stops at an event the bus refuses for good, the error is a
// *RejectedError and the count is that event's index.
func (b *Bus) PublishEncoded(ctx context.Context, events []event.Encoded) (int, error) {
	return publishAll(ctx, len(events), func(i int) string { return events[i].ID },
		func(i int) (jetstream.PubAckFuture, error) { return b.publishEncodedAsync(&events[i]) })
}

func (b *Bus) publishEncodedAsync(e *event.Encoded) (jetstream.PubAckFuture, error) {
	data := e.Data
	if limit := b.Limit(e.ID); len(data) > limit {
		var ev event.Event
		if err := json.Unmarshal(data, &ev); err != nil {
			return nil, &RejectedError{EventID: e.ID, Err: err}
		}
		var err error
		if data, err = ev.Encode(limit); err != nil {
			return nil, &RejectedError{EventID: e.ID, Err: err}
		}
	}
	msg := nats.NewMsg(e.Subject)
	msg.Data = data
	f, err := b.js.PublishMsgAsync(msg, jetstream.WithMsgID(e.ID))
	if err != nil {
		return nil, publishError(e.ID, err)
	}
	return f, nil
}
