package config

import (
	"strings"
	"testing"
)

// FuzzConfigParse feeds Parse arbitrary bytes with a fixed environment
// holding a secret: it must never panic, hang or blow up, and no error may
// show the secret.
func FuzzConfigParse(f *testing.F) {
	f.Add([]byte(good))
	const secret = "Fuzz\"Secret'\\#: {x}"
	lookup := func(name string) (string, bool) {
		if name == "UNSET" {
			return "", false
		}
		return secret, true
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		c, err := Parse("w.yaml", src, lookup)
		if (c == nil) == (err == nil) {
			t.Fatalf("config %v, err %v", c, err)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Fatalf("error shows the secret: %v", err)
		}
	})
}
