package store

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/simwatch/simwatch/internal/event"
)

// AlertsFrom calls fn with the provider's stored alerts (key as
// rules.AlertKey, and the alert's JSON, valid only during the call) in key
// order, starting with the first key after `after` ("" starts at the
// first), until fn returns false. A page reads as far as it shows, not
// every alert of a large fleet.
func (p *ProviderTx) AlertsFrom(after string, fn func(key string, data []byte) (more bool, err error)) error {
	return p.AlertsSkipping(after, func(key string, data []byte) (string, bool, error) {
		more, err := fn(key, data)
		return "", more, err
	})
}

// AlertsSkipping is AlertsFrom whose fn may also skip ahead: when it
// returns a non-empty skipTo later than the key, the walk goes on from the
// first key at or after skipTo instead of the next one. The console's
// alerts page skips the rules its filter rules out with it.
func (p *ProviderTx) AlertsSkipping(after string, fn func(key string, data []byte) (skipTo string, more bool, err error)) error {
	b := p.sub(bucketAlerts)
	if b == nil {
		return nil
	}
	c := b.Cursor()
	k, v := c.First()
	if after != "" {
		k, v = c.Seek([]byte(after))
		if k != nil && bytes.Equal(k, []byte(after)) {
			k, v = c.Next()
		}
	}
	for k != nil {
		skipTo, more, err := fn(string(k), v)
		if err != nil || !more {
			return err
		}
		if skipTo != "" && skipTo > string(k) {
			k, v = c.Seek([]byte(skipTo))
			continue
		}
		k, v = c.Next()
	}
	return nil
}

// FiringEvent returns the latest firing event of a firing alert, by its
// key as event.AlertKey names it (provider, entity, entity id, rule):
// the severity, labels and summary the alert's record does not keep.
func (t *Tx) FiringEvent(alertKey string) (event.Event, bool, error) {
	var e event.Event
	b := t.tx.Bucket(bucketFiring)
	if b == nil {
		return e, false, nil
	}
	v := b.Get([]byte(alertKey))
	if v == nil {
		return e, false, nil
	}
	data, err := eventData(t.tx, v)
	if err == nil {
		err = json.Unmarshal(data, &e)
	}
	if err != nil {
		return e, false, fmt.Errorf("store: firing %q: %w", alertKey, err)
	}
	return e, true, nil
}

// FiringBrief is what the console counts firing alerts by.
type FiringBrief struct {
	Rule     string `json:"rule"`
	Severity string `json:"severity"`
}

// ForEachFiring calls fn with the rule and severity of every firing
// alert's latest firing event (as Firing lists them). An event whose bytes
// are missing or do not decode is skipped: a count on a page is not worth
// failing the page for.
//
// A large fleet can have tens of thousands of alerts firing, and decoding
// each event whole (its values are the entity) costs more than a page may:
// rule and severity are read where encoding/json writes them, near the
// start (see firingBrief).
func (t *Tx) ForEachFiring(fn func(f FiringBrief)) error {
	b := t.tx.Bucket(bucketFiring)
	if b == nil {
		return nil
	}
	// Tens of thousands of events name a handful of rules and severities:
	// each name is allocated once.
	names := map[string]string{}
	intern := func(v []byte) string {
		if s, ok := names[string(v)]; ok {
			return s
		}
		s := string(v)
		names[s] = s
		return s
	}
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		data, err := eventData(t.tx, v)
		if err != nil {
			continue
		}
		rule, ok1 := jsonStringAfter(data, `"rule":"`)
		sev, ok2 := jsonStringAfter(data, `"severity":"`)
		if ok1 && ok2 {
			fn(FiringBrief{Rule: intern(rule), Severity: intern(sev)})
		} else if f, ok := firingBrief(data); ok {
			fn(f)
		}
	}
	return nil
}

// firingBrief reads an event's rule and severity. event.Event is encoded
// by encoding/json, which writes its fields in order (id, seq, kind, rule,
// severity, …) and escapes every quote inside a string, so the first
// `"rule":"` and `"severity":"` are the keys themselves. A value with an
// escape in it, or an encoding not laid out so, is decoded the slow way.
func firingBrief(data []byte) (FiringBrief, bool) {
	rule, ok1 := jsonStringAfter(data, `"rule":"`)
	sev, ok2 := jsonStringAfter(data, `"severity":"`)
	if ok1 && ok2 {
		return FiringBrief{Rule: string(rule), Severity: string(sev)}, true
	}
	var f FiringBrief
	if json.Unmarshal(data, &f) != nil {
		return f, false
	}
	return f, true
}

// jsonStringAfter returns the string value after the first key (given
// with its opening quote), if it has no escapes.
func jsonStringAfter(data []byte, key string) ([]byte, bool) {
	i := bytes.Index(data, []byte(key))
	if i < 0 {
		return nil, false
	}
	rest := data[i+len(key):]
	end := bytes.IndexByte(rest, '"')
	if end < 0 || bytes.IndexByte(rest[:end], '\\') >= 0 {
		return nil, false
	}
	return rest[:end], true
}
