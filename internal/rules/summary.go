package rules

import (
	"bytes"
	"encoding/json"
	"text/template"

	"github.com/simwatch/simwatch/internal/fleet"
)

// parseSummary parses the summary template and executes it once against an
// entity of the rule's kind, so a misspelt field fails at load time.
func (r *Rule) parseSummary() error {
	text := r.Summary
	if text == "" {
		if r.On == fleet.EntityPool {
			text = `{{ .rule }}: pool {{ .name }} ({{ .id }})`
		} else {
			text = `{{ .rule }}: card {{ .iccid }}`
		}
	}
	t, err := template.New("summary").Option("missingkey=error").Parse(text)
	if err != nil {
		return err
	}
	r.summary = t
	var zero any = fleet.Card{}
	if r.On == fleet.EntityPool {
		zero = fleet.Pool{}
	}
	_, err = r.renderValues(zero, zero)
	return err
}

// mustJSON encodes an entity for an event. It never panics: an entity that
// cannot be encoded (providers' pages are validated, so this is a bug
// guard) becomes an object naming the error.
func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"error": "not encodable: " + err.Error()})
	}
	return b
}

// render executes the summary with the entity's fields, prev, and the rule's
// name, severity and labels.
func (r *Rule) render(values, prev json.RawMessage) (string, error) {
	data := map[string]any{}
	if err := json.Unmarshal(values, &data); err != nil {
		return "", err
	}
	sayUnknown(data)
	if len(prev) > 0 {
		var p map[string]any
		if err := json.Unmarshal(prev, &p); err != nil {
			return "", err
		}
		sayUnknown(p)
		data["prev"] = p
	} else {
		data["prev"] = map[string]any{}
	}
	data["rule"], data["severity"], data["labels"] = r.Name, r.Severity, r.Labels
	var b bytes.Buffer
	if err := r.summary.Execute(&b, data); err != nil {
		return "", err
	}
	return b.String(), nil
}

// renderValues is render from the entity's Go values (a fleet.Card, a
// fleet.Pool, or any value whose JSON is an object; prev may be nil): no
// JSON encoding and decoding, the same text. The template sees what a
// JSON round trip would give it (see templateValue); a value that has no
// such direct form (a type with its own MarshalJSON other than time.Time,
// Card and Pool, say) takes the round trip.
func (r *Rule) renderValues(values, prev any) (string, error) {
	data, ok := templateObject(values)
	if !ok {
		return r.render(mustJSON(values), prevJSON(prev))
	}
	if prev == nil {
		data["prev"] = map[string]any{}
	} else {
		p, ok := templateObject(prev)
		if !ok {
			return r.render(mustJSON(values), prevJSON(prev))
		}
		data["prev"] = p
	}
	data["rule"], data["severity"], data["labels"] = r.Name, r.Severity, r.Labels
	var b bytes.Buffer
	if err := r.summary.Execute(&b, data); err != nil {
		return "", err
	}
	return b.String(), nil
}

// entityValues are the entity being evaluated, now and before, for
// renderValues: what values() and prev() encode in evaluate. nil when no
// entity of that kind is at hand.
func (c *cycle) entityValues(entity string) (cur, prev any) {
	switch {
	case entity == fleet.EntityCard && c.curCard != nil:
		cur = c.curCard
		if c.prevCard != nil {
			prev = c.prevCard
		}
	case entity == fleet.EntityPool && c.curPool != nil:
		cur = c.curPool
		if c.prevPool != nil {
			prev = c.prevPool
		}
	}
	return cur, prev
}

func prevJSON(prev any) json.RawMessage {
	if prev == nil {
		return nil
	}
	return mustJSON(prev)
}
