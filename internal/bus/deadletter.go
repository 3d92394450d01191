package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/simwatch/simwatch/internal/event"
)

// HeaderReplayFor marks a replayed dead letter: only the named notifier
// delivers it.
const HeaderReplayFor = "Simwatch-Replay-For"

// DeadLetter is an event a notifier gave up on, with why.
type DeadLetter struct {
	Seq      uint64      `json:"seq"` // its id in the dead-letter stream
	Notifier string      `json:"notifier"`
	Error    string      `json:"error"`
	Time     time.Time   `json:"time"`
	Event    event.Event `json:"event"`
}

// ListDeadLetters returns the dead letters, oldest first; notifier filters
// when not empty.
func (b *Bus) ListDeadLetters(ctx context.Context, notifier string) ([]DeadLetter, error) {
	s, err := b.js.Stream(ctx, DeadLetterStream)
	if err != nil {
		return nil, fmt.Errorf("bus: dead letters: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("bus: dead letters: %w", err)
	}
	var out []DeadLetter
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		raw, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // replayed and deleted
		}
		if err != nil {
			return nil, fmt.Errorf("bus: dead letter %d: %w", seq, err)
		}
		dl := DeadLetter{Seq: seq, Notifier: raw.Header.Get(HeaderNotifier), Error: raw.Header.Get(HeaderError), Time: raw.Time}
		if notifier != "" && dl.Notifier != notifier {
			continue
		}
		if err := json.Unmarshal(raw.Data, &dl.Event); err != nil {
			dl.Event.ID = "(undecodable)"
		}
		out = append(out, dl)
	}
	return out, nil
}

// ReplayDeadLetters sends dead letters back to the notifier that gave up on
// them and removes them from the dead letters. ids are stream sequence numbers
// or event ids; all replays every one (of notifier, when set). It returns
// how many it replayed.
func (b *Bus) ReplayDeadLetters(ctx context.Context, notifier string, ids []string, all bool) (int, error) {
	dls, err := b.ListDeadLetters(ctx, notifier)
	if err != nil {
		return 0, err
	}
	want := map[string]bool{}
	for _, id := range ids {
		want[strings.TrimSpace(id)] = true
	}
	s, err := b.js.Stream(ctx, DeadLetterStream)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, dl := range dls {
		if !all && !want[strconv.FormatUint(dl.Seq, 10)] && !want[dl.Event.ID] {
			continue
		}
		data, err := json.Marshal(dl.Event)
		if err != nil {
			return n, err
		}
		msg := nats.NewMsg(dl.Event.Subject())
		msg.Data = data
		msg.Header.Set(HeaderReplayFor, dl.Notifier)
		if _, err := b.js.PublishMsg(ctx, msg, jetstream.WithMsgID(fmt.Sprintf("replay:%d:%s", dl.Seq, dl.Event.ID))); err != nil {
			return n, fmt.Errorf("bus: replay %d: %w", dl.Seq, err)
		}
		if err := s.DeleteMsg(ctx, dl.Seq); err != nil {
			return n, fmt.Errorf("bus: replay %d: remove dead letter: %w", dl.Seq, err)
		}
		n++
	}
	if n == 0 && !all {
		return 0, fmt.Errorf("bus: no dead letter matches %s", strings.Join(ids, ", "))
	}
	return n, nil
}
