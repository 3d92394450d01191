package rules

import "testing"

// FuzzRuleLoad feeds the rule loader arbitrary bytes: it must return rules
// or problems, never panic, hang or blow up (the seeds include the bombs).
func FuzzRuleLoad(f *testing.F) {
	f.Add([]byte("rules:\n  - {name: a, on: card, when: 'flow_left < 1'}\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		set, err := Parse("r.yaml", src, LoadOptions{})
		if (set == nil) == (err == nil) {
			t.Fatalf("set %v, err %v", set, err)
		}
	})
}
