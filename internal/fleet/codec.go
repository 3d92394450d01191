package fleet

import (
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"time"
)

// The compact binary encodings of the model the store keeps and a poll
// cycle passes around: a card as the poller holds it between its listing
// and its commit, and a usage history.

// cardCodecV2 marks the compact card encoding. A card is ~120 bytes instead
// of ~600 as JSON, and encoding it is cheap enough to do for every card of
// every cycle: the encoding doubles as the input of the card's fingerprint.
// Version 2 adds the Unknown mask at the end; version 1 records still decode
// (their "unknown" status becomes an unknown status).
const (
	cardCodecV1 = 1
	cardCodecV2 = 2
)

// EncodeCard appends the compact encoding of c to dst.
func EncodeCard(dst []byte, c *Card) []byte {
	dst = append(dst, cardCodecV2)
	dst = appendString(dst, c.Provider)
	dst = appendString(dst, c.Account)
	dst = appendString(dst, c.ID)
	dst = appendString(dst, c.ICCID)
	dst = appendString(dst, c.MSISDN)
	dst = appendString(dst, c.IMSI)
	dst = appendString(dst, c.IMEI)
	dst = appendString(dst, c.Status)
	dst = binary.AppendVarint(dst, int64(c.StatusCode))
	dst = binary.AppendVarint(dst, int64(c.OperatorStatus))
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(c.FlowUsed))
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(c.FlowLeft))
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(c.FlowTotal))
	dst = appendString(dst, c.PoolID)
	dst = appendString(dst, c.Plan)
	dst = appendTime(dst, c.ExpireTime)
	dst = appendTime(dst, c.ActDate)
	dst = binary.AppendUvarint(dst, uint64(len(c.Tags)))
	for _, t := range c.Tags {
		dst = appendString(dst, t)
	}
	var keys []string
	if len(c.Attributes) > 0 {
		keys = make([]string, 0, len(c.Attributes))
		for k := range c.Attributes {
			keys = append(keys, k)
		}
		slices.Sort(keys)
	}
	dst = binary.AppendUvarint(dst, uint64(len(keys)))
	for _, k := range keys {
		dst = appendString(dst, k)
		dst = appendString(dst, c.Attributes[k])
	}
	dst = binary.AppendVarint(dst, int64(c.DeviceStatus))
	dst = appendString(dst, c.SignalLevel)
	dst = appendString(dst, c.NetworkType)
	dst = appendString(dst, c.Vendor)
	dst = appendString(dst, c.APN)
	return binary.AppendUvarint(dst, uint64(c.Unknown))
}

// Fingerprint hashes an encoded entity: equal fingerprints mean nothing a rule
// can see has changed.
func Fingerprint(encoded []byte) uint64 {
	// FNV-1a, inline: it runs for every card of every cycle.
	h := uint64(14695981039346656037)
	for _, c := range encoded {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

var errCorrupt = errors.New("corrupt record")

// DecodeCard decodes a card written by EncodeCard.
func DecodeCard(b []byte) (Card, error) {
	var c Card
	if len(b) == 0 || (b[0] != cardCodecV1 && b[0] != cardCodecV2) {
		return c, errCorrupt
	}
	version := b[0]
	d := decoder{b: b[1:]}
	for _, s := range []*string{&c.Provider, &c.Account, &c.ID, &c.ICCID, &c.MSISDN, &c.IMSI, &c.IMEI, &c.Status} {
		*s = d.string()
	}
	c.StatusCode = int(d.varint())
	c.OperatorStatus = int(d.varint())
	for _, f := range []*float64{&c.FlowUsed, &c.FlowLeft, &c.FlowTotal} {
		*f = d.float()
	}
	c.PoolID = d.string()
	c.Plan = d.string()
	c.ExpireTime = d.time()
	c.ActDate = d.time()
	if n := d.uvarint(); n > 0 && n <= uint64(len(d.b)) {
		c.Tags = make([]string, n)
		for i := range c.Tags {
			c.Tags[i] = d.string()
		}
	}
	if n := d.uvarint(); n > 0 && n <= uint64(len(d.b)) {
		c.Attributes = make(map[string]string, n)
		for range n {
			k := d.string()
			c.Attributes[k] = d.string()
		}
	}
	c.DeviceStatus = int(d.varint())
	c.SignalLevel = d.string()
	c.NetworkType = d.string()
	c.Vendor = d.string()
	c.APN = d.string()
	if version == cardCodecV2 {
		c.Unknown = Unknown(d.uvarint())
	} else {
		c.Unknown = v1Unknown(&c)
	}
	if d.err {
		return Card{}, errCorrupt
	}
	return c, nil
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendTime(dst []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(dst, 0)
	}
	dst = append(dst, 1)
	dst = binary.AppendVarint(dst, t.Unix())
	return binary.AppendUvarint(dst, uint64(t.Nanosecond()))
}

type decoder struct {
	b   []byte
	err bool
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.err = true
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) float() float64 {
	if len(d.b) < 8 {
		d.err = true
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(d.b))
	d.b = d.b[8:]
	return v
}

func (d *decoder) time() time.Time {
	if len(d.b) < 1 {
		d.err = true
		return time.Time{}
	}
	set := d.b[0]
	d.b = d.b[1:]
	if set == 0 {
		return time.Time{}
	}
	sec := d.varint()
	nsec := d.uvarint()
	return time.Unix(sec, int64(nsec)).UTC()
}

// v1Unknown guesses what a version 1 record did not say: it was written
// before unknown values existed, when a value the provider left out was
// stored as its zero (or "unknown" for a status). Such a zero may have been
// a gap, so it counts as unknown: an upgrade never compares a new reading
// with a 0 the provider never sent.
func v1Unknown(c *Card) Unknown {
	var u Unknown
	if c.Status == "unknown" || c.Status == "" {
		c.Status = ""
		u |= CardField("status")
	}
	for _, f := range []struct {
		name string
		zero bool
	}{
		{"flow_used", c.FlowUsed == 0}, {"flow_left", c.FlowLeft == 0}, {"flow_total", c.FlowTotal == 0},
		{"device_status", c.DeviceStatus == 0}, {"imei", c.IMEI == ""},
		{"expire_time", c.ExpireTime.IsZero()}, {"act_date", c.ActDate.IsZero()},
	} {
		if f.zero {
			u |= CardField(f.name)
		}
	}
	return u
}

// EncodeHistory encodes a usage history as the store keeps it: source,
// count, then (day delta, MB as float32 bits), about 6 bytes a day.
func EncodeHistory(h History) []byte {
	out := make([]byte, 0, 8+len(h.Days)*7)
	out = append(out, historySource(h.Source))
	out = binary.AppendUvarint(out, uint64(len(h.Days)))
	var prev int32
	for i, d := range h.Days {
		if i == 0 {
			out = binary.AppendVarint(out, int64(d.Day))
		} else {
			out = binary.AppendUvarint(out, uint64(d.Day-prev))
		}
		prev = d.Day
		out = binary.LittleEndian.AppendUint32(out, math.Float32bits(float32(d.MB)))
	}
	return out
}

func historySource(s string) byte {
	switch s {
	case HistoryDaily:
		return 1
	case HistorySnapshot:
		return 2
	}
	return 0
}

// DecodeHistory decodes what EncodeHistory wrote.
func DecodeHistory(b []byte, h *History) error {
	if len(b) < 1 {
		return errCorrupt
	}
	switch b[0] {
	case 1:
		h.Source = HistoryDaily
	case 2:
		h.Source = HistorySnapshot
	}
	d := decoder{b: b[1:]}
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		return errCorrupt
	}
	h.Days = make([]DayUsage, 0, n)
	var day int32
	for i := uint64(0); i < n && !d.err; i++ {
		if i == 0 {
			day = int32(d.varint())
		} else {
			day += int32(d.uvarint())
		}
		if len(d.b) < 4 {
			return errCorrupt
		}
		mb := float64(math.Float32frombits(binary.LittleEndian.Uint32(d.b)))
		d.b = d.b[4:]
		h.Days = append(h.Days, DayUsage{Day: day, MB: math.Round(mb*1000) / 1000})
	}
	if d.err {
		return errCorrupt
	}
	return nil
}
