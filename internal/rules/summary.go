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
	_, err = r.render(mustJSON(zero), mustJSON(zero))
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

// HasClockRules reports whether any condition rule on entity reads the clock,
// so that unchanged entities must still be evaluated every cycle.
func (s *Set) HasClockRules(entity string) bool {
	for _, r := range s.Rules {
		if r.On == entity && r.clock && !r.transition {
			return true
		}
	}
	return false
}

// sayUnknown makes a value the provider did not give read "unknown" in a
// summary, rather than "<no value>" or 0.
func sayUnknown(m map[string]any) {
	for k, v := range m {
		if v == nil {
			m[k] = "unknown"
		}
	}
}
