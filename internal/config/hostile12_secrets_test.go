package config

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/simwatch/simwatch/internal/redact"
)

const h12Head = "data_dir: /tmp/x\nnotifiers: [{name: log, type: console}]\nproviders:\n  - name: hw\n    type: huawei-gsl\n    endpoint: http://127.0.0.1:1\n"

func h12Env(vals map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vals[k]; return v, ok }
}

// A secret written literally under auth.* must not appear in any config
// error: a literal sk typed after a block-scalar indicator (`sk: |SECRET`)
// is quoted by the YAML scanner's "invalid header option" message.
func TestHostile12LiteralSecretBlockHeader(t *testing.T) {
	src := h12Head + "    auth:\n      ak: AKLITERAL99\n      sk: |LITsecretSK777\n        more\n"
	_, err := Parse("c.yaml", []byte(src), h12Env(nil))
	if err == nil || strings.Contains(err.Error(), "LITsecretSK777") {
		t.Fatalf("literal secret shown in config error: %v", err)
	}
}

// A secret pasted under auth where a key is expected (`auth: {ak: X, SECRET}`)
// is quoted as an "unknown key" when it looks like a plain key.
func TestHostile12LiteralSecretAsKey(t *testing.T) {
	src := h12Head + "    auth: {ak: AKLITERAL99, LITsecretSK777}\n"
	_, err := Parse("c.yaml", []byte(src), h12Env(nil))
	if err == nil || strings.Contains(err.Error(), "LITsecretSK777") {
		t.Fatalf("literal secret shown in config error: %v", err)
	}
}

// A ${VAR} whose value has surrounding quotes or spaces, placed in a
// duration field, is shown trimmed, so asWritten cannot map it back to
// ${VAR}; the secret prints.
func TestHostile12ExpandedSecretInDurationTrimmed(t *testing.T) {
	src := h12Head + "    auth: {token: \"${TOK}\"}\n    interval: \"${TOK}\"\n"
	for _, v := range []string{"'quoSECRET'", " spSECRET "} {
		_, err := Parse("c.yaml", []byte(src), h12Env(map[string]string{"TOK": v}))
		if err == nil || strings.Contains(err.Error(), strings.Trim(v, " '")) {
			t.Errorf("secret %q shown in config error: %v", v, err)
		}
	}
}

// A ${VAR} used in an inhibit rule expression is quoted by the expression
// compiler's message ("unknown name SECRET").
func TestHostile12ExpandedSecretInInhibitExpr(t *testing.T) {
	src := h12Head + "    auth: {token: \"${TOK}\"}\ninhibit_rules:\n  - {source_match: 'rule == ${TOK}', target_match: 'rule == \"x\"', equal: [provider]}\n"
	_, err := Parse("c.yaml", []byte(src), h12Env(map[string]string{"TOK": "plainSECRET123"}))
	if err != nil && strings.Contains(err.Error(), "plainSECRET123") {
		t.Fatalf("secret shown in config error: %v", err)
	}
}

// A webhook URL with a password holding characters that userinfo escapes
// (@ / etc.) is sent as Basic base64("user:pass"); a receiver echoing the
// Authorization header in its 400 answer puts that base64 in the
// dead-letter reason, and the redactor built from Secrets() does not mask it.
func TestHostile12BasicAuthFromWebhookURLRedacted(t *testing.T) {
	c := &Config{Notifiers: []Notifier{{Name: "crm", Type: NotifierWebhook, URL: "http://bob:pa%40ss%2Fw0rd%21@127.0.0.1:1/hook"}}}
	r := redact.New(c.Secrets()...)
	basic := base64.StdEncoding.EncodeToString([]byte("bob:pa@ss/w0rd!"))
	reason := "webhook: HTTP 400: you sent Authorization: Basic " + basic
	if got := r.String(reason); strings.Contains(got, basic) {
		t.Fatalf("basic-auth credentials not redacted: %s", got)
	}
}

// Truncation (a secret straddling the 512-byte cut of a receiver's answer
// leaving its prefix) is fixed where the cut is made: webhook.post masks
// the answer before cutting it. No redactor can mask an arbitrary prefix
// after the fact, so the test is TestHostile12MaskBeforeCut in package
// webhook, against a receiver echoing the secret across the cut.
