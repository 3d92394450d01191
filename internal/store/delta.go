package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// OpKind is what an Op does.
type OpKind byte

// Kinds of Op.
const (
	OpPut        OpKind = 1 // put Key = Value in the bucket at Path
	OpDelete     OpKind = 2 // delete Key from the bucket at Path
	OpDropBucket OpKind = 3 // delete the bucket at Path (Key unused)
)

// Op is one recorded write: Path names the bucket from the root (e.g.
// providers, <name>, cards).
type Op struct {
	Kind       OpKind
	Path       [][]byte
	Key, Value []byte
}

// Delta is what a recorded transaction wrote (see Store.Record): its
// key-level writes, in order, and the events it appended to the outbox,
// encoded, each with its seq.
type Delta struct {
	Ops    []Op
	Events [][]byte
}

// Empty reports whether the delta writes nothing.
func (d *Delta) Empty() bool { return len(d.Ops) == 0 && len(d.Events) == 0 }

// deltaMagic starts every encoded delta: a version, so that a watcher
// meeting a delta of a later format refuses it instead of misreading it.
var deltaMagic = []byte("SWD1")

// samePath, or'ed into an encoded op's kind, says the op's path is the
// previous op's: a cycle's thousands of card writes share a handful of paths.
const samePath = 0x80

// ErrBadDelta is wrapped by UnmarshalBinary for input that is not a delta.
var ErrBadDelta = errors.New("store: not a valid delta")

// MarshalBinary encodes the delta: the magic, then the ops (kind, path,
// key, value, each length-prefixed), then the events.
func (d *Delta) MarshalBinary() ([]byte, error) {
	n := len(deltaMagic) + 2*binary.MaxVarintLen64
	for _, op := range d.Ops {
		n += 1 + 3*binary.MaxVarintLen32 + len(op.Key) + len(op.Value)
		for _, p := range op.Path {
			n += binary.MaxVarintLen32 + len(p)
		}
	}
	for _, e := range d.Events {
		n += binary.MaxVarintLen32 + len(e)
	}
	out := make([]byte, 0, n)
	out = append(out, deltaMagic...)
	out = binary.AppendUvarint(out, uint64(len(d.Ops)))
	var prev [][]byte
	for i, op := range d.Ops {
		switch op.Kind {
		case OpPut, OpDelete, OpDropBucket:
		default:
			return nil, fmt.Errorf("store: delta op %d: unknown kind %d", i, op.Kind)
		}
		if i > 0 && samePaths(prev, op.Path) {
			out = append(out, byte(op.Kind)|samePath)
		} else {
			out = append(out, byte(op.Kind))
			out = binary.AppendUvarint(out, uint64(len(op.Path)))
			for _, p := range op.Path {
				out = appendBytes(out, p)
			}
		}
		prev = op.Path
		switch op.Kind {
		case OpPut:
			out = appendBytes(appendBytes(out, op.Key), op.Value)
		case OpDelete:
			out = appendBytes(out, op.Key)
		}
	}
	out = binary.AppendUvarint(out, uint64(len(d.Events)))
	for _, e := range d.Events {
		out = appendBytes(out, e)
	}
	return out, nil
}

func samePaths(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func appendBytes(out, b []byte) []byte {
	return append(binary.AppendUvarint(out, uint64(len(b))), b...)
}

// UnmarshalBinary decodes a delta made by MarshalBinary. Truncated or
// garbage input is an error wrapping ErrBadDelta, never a panic, and never
// an allocation larger than the input. The delta's slices refer to data.
func (d *Delta) UnmarshalBinary(data []byte) error {
	r := reader{b: data}
	if !bytes.HasPrefix(data, deltaMagic) {
		return fmt.Errorf("%w: bad magic", ErrBadDelta)
	}
	r.b = r.b[len(deltaMagic):]
	nOps := r.count()
	ops := make([]Op, 0, nOps)
	var prev [][]byte
	for i := 0; i < nOps && r.err == nil; i++ {
		kb := r.byte()
		op := Op{Kind: OpKind(kb &^ samePath)}
		switch op.Kind {
		case OpPut, OpDelete, OpDropBucket:
		default:
			r.fail("op %d: unknown kind %d", i, kb)
			continue
		}
		if kb&samePath != 0 {
			if i == 0 {
				r.fail("op 0 refers to a previous path")
				continue
			}
			op.Path = prev
		} else {
			np := r.count()
			op.Path = make([][]byte, 0, np)
			for j := 0; j < np && r.err == nil; j++ {
				op.Path = append(op.Path, r.bytes())
			}
		}
		prev = op.Path
		switch op.Kind {
		case OpPut:
			op.Key, op.Value = r.bytes(), r.bytes()
		case OpDelete:
			op.Key = r.bytes()
		}
		ops = append(ops, op)
	}
	nEv := r.count()
	events := make([][]byte, 0, nEv)
	for i := 0; i < nEv && r.err == nil; i++ {
		events = append(events, r.bytes())
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d bytes after the end", len(r.b))
	}
	if r.err != nil {
		return r.err
	}
	d.Ops, d.Events = ops, events
	return nil
}

// reader reads a delta's fields, remembering the first error.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrBadDelta, fmt.Sprintf(format, args...))
	}
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("truncated or overlong length")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads a count of items each at least one byte long: more than the
// bytes left is garbage (and would be a huge allocation).
func (r *reader) count() int {
	v := r.uvarint()
	if v > uint64(len(r.b)) {
		r.fail("count %d exceeds the %d bytes left", v, len(r.b))
		return 0
	}
	return int(v)
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.fail("truncated")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) bytes() []byte {
	v := r.uvarint()
	if r.err != nil {
		return nil
	}
	if v > uint64(len(r.b)) {
		r.fail("length %d exceeds the %d bytes left", v, len(r.b))
		return nil
	}
	out := r.b[:v:v]
	r.b = r.b[v:]
	return out
}
