package config

import (
	"encoding/base64"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/simwatch/simwatch/internal/redact"
)

// Parser messages that quote source text never show it.
func TestHostile12SyntaxErrorsDoNotQuoteSource(t *testing.T) {
	for _, tc := range []struct{ name, src string }{
		{"block header option", h12Head + "    auth:\n      ak: AKLITERAL99\n      sk: |LITsecretSK777\n        more\n"},
		{"folded header option", h12Head + "    auth:\n      ak: AKLITERAL99\n      sk: >LITsecretSK777\n        more\n"},
		{"YAML version", "%YAML LITsecretSK777\n---\n" + h12Head},
		{"duplicate key", h12Head + "    auth: {LITsecretSK777: 1, LITsecretSK777: 2}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("c.yaml", []byte(tc.src), h12Env(nil))
			if err == nil {
				t.Fatal("want an error")
			}
			if strings.Contains(err.Error(), "LITsecretSK777") {
				t.Fatalf("source text shown: %v", err)
			}
			if !strings.Contains(err.Error(), "c.yaml:") {
				t.Fatalf("no position: %v", err)
			}
		})
	}
}

// Unknown keys are quoted only when shaped like a config key.
func TestHostile12UnknownKeyShape(t *testing.T) {
	for _, tc := range []struct {
		key   string
		shown bool
	}{
		{"intervall", true},
		{"page_sizes", true},
		{"LITsecretSK777", false},
		{"sk-abc123def", false},
		{"0abc", false},
		{strings.Repeat("a", 33), false},
	} {
		src := h12Head + "    auth: {token: tttttttt}\n    " + tc.key + ": 1\n"
		_, err := Parse("c.yaml", []byte(src), h12Env(nil))
		if err == nil {
			t.Fatalf("%s: want an error", tc.key)
		}
		if got := strings.Contains(err.Error(), tc.key); got != tc.shown {
			t.Errorf("%s: shown=%v, want %v: %v", tc.key, got, tc.shown, err)
		}
		if !strings.Contains(err.Error(), "c.yaml:8:5: providers[0]: unknown key") {
			t.Errorf("%s: want the position and 'unknown key': %v", tc.key, err)
		}
	}
}

// Every expanded value is masked in the final message, whatever the check
// that quoted it did to it (trimmed, split into lines or words).
func TestHostile12ExpandedValuesMasked(t *testing.T) {
	dur := h12Head + "    auth: {token: \"${TOK}\"}\n    interval: \"${TOK}\"\n"
	inh := h12Head + "    auth: {token: \"${TOK}\"}\ninhibit_rules:\n  - {source_match: 'rule == ${TOK}', target_match: 'rule == \"x\"', equal: [provider]}\n"
	lvl := h12Head + "    auth: {token: tttttttt}\nlog: {level: \"${TOK}\"}\n"
	for _, tc := range []struct{ name, src, val string }{
		{"duration, quoted", dur, "'quoSECRET'"},
		{"duration, spaces", dur, " spSECRET "},
		{"duration, double quotes", dur, `"dqSECRET"`},
		{"duration, two lines", dur, "lineSECRET\nother"},
		{"log level, tabs", lvl, "\ttabSECRET\t"},
		{"inhibit, plain", inh, "plainSECRET123"},
		{"inhibit, newline", inh, "foo\nnlSECRET"},
		{"inhibit, words", inh, "x wordSECRET"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := CheckMatch
			CheckMatch = func(m string) error { // stands in for mute, which quotes what it is given
				if strings.Contains(m, "\n") {
					f := strings.Fields(m)
					return fmt.Errorf("unexpected token Identifier(%q)", f[len(f)-1])
				}
				if strings.Contains(m, "\"x\"") {
					return nil
				}
				return fmt.Errorf("unknown name %s", strings.Fields(m)[len(strings.Fields(m))-1])
			}
			defer func() { CheckMatch = old }()
			_, err := Parse("c.yaml", []byte(tc.src), h12Env(map[string]string{"TOK": tc.val}))
			if err == nil {
				t.Fatal("want an error")
			}
			for _, f := range strings.Fields(tc.val) {
				if f = strings.Trim(f, `'"`); len(f) >= 4 && strings.Contains(err.Error(), f) {
					t.Fatalf("expanded value %q shown: %v", f, err)
				}
			}
			if !strings.Contains(err.Error(), "${TOK}") {
				t.Fatalf("want ${TOK} in place of the value: %v", err)
			}
		})
	}
}

// Basic auth from a ${VAR} webhook URL: the decoded user:password is a
// secret, so its base64 is masked.
func TestHostile12BasicAuthFromExpandedURL(t *testing.T) {
	src := "data_dir: /tmp/x\nproviders:\n  - {name: hw, type: huawei-gsl, endpoint: http://127.0.0.1:1, auth: {token: tttttttt}}\n" +
		"notifiers:\n  - {name: crm, type: webhook, url: \"${HOOK_URL}\"}\n"
	c, err := Parse("c.yaml", []byte(src), h12Env(map[string]string{"HOOK_URL": "http://bob:pa%40ss%2Fw0rd%21@127.0.0.1:19101/hook?token=QS3CRETtok"}))
	if err != nil {
		t.Fatal(err)
	}
	r := redact.New(c.Secrets()...)
	for _, s := range []string{base64.StdEncoding.EncodeToString([]byte("bob:pa@ss/w0rd!")), "pa@ss/w0rd!", "pa%40ss%2Fw0rd%21", "QS3CRETtok"} {
		if got := r.String("echo: " + s); strings.Contains(got, s) {
			t.Errorf("not masked: %s", got)
		}
	}
}

// http.listen and nats.url are refused as the daemon refuses them, with
// the field and line, and never the URL's userinfo.
func TestHostile12ListenAndNATS(t *testing.T) {
	base := "data_dir: /tmp/x\nnotifiers: [{name: log, type: console}]\nproviders:\n  - {name: hw, type: huawei-gsl, endpoint: http://127.0.0.1:1, auth: {token: tttttttt}}\n"
	for _, tc := range []struct {
		name, yaml, want string
		hidden           []string
	}{
		{"port out of range", "http: {listen: \"127.0.0.1:99999\"}\n", "c.yaml:5:16: http.listen: port 99999 is out of range (1 to 65535, or 0 for a free one)", nil},
		{"no port", "http: {listen: \"127.0.0.1\"}\n", "c.yaml:5:16: http.listen: missing port in address (want host:port", nil},
		{"garbage", "http: {listen: garbage}\n", "c.yaml:5:16: http.listen: missing port in address (want host:port", nil},
		{"bad service", "http: {listen: \"127.0.0.1:nope\"}\n", "http.listen: port \"nope\" is not a number", nil},
		{"nats scheme", "nats: {url: \"http://u:hunter2pw@h:4222\"}\n", `c.yaml:5:13: nats.url: the URL has scheme "http" (want nats, tls, ws or wss`, []string{"hunter2pw", "u:"}},
		{"nats bad userinfo", "nats: {url: \"nats://u:hun^ter2pw@h:4222\"}\n", "nats.url: the URL does not parse (scheme \"nats\"; invalid characters in the user or password", []string{"hun^ter", "ter2pw"}},
		{"nats second server", "nats: {url: \"nats://h:4222, nats://u:pw9999@h:99999\"}\n", "nats.url: server 2 of 2 has a port out of range", []string{"pw9999"}},
		{"nats no host", "nats: {url: \"nats://\"}\n", "nats.url: the URL has no host", nil},
		{"nats empty part", "nats: {url: \"nats://h:1,\"}\n", "nats.url: server 2 of 2 is empty", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("c.yaml", []byte(base+tc.yaml), h12Env(nil))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want %q, got %v", tc.want, err)
			}
			for _, h := range tc.hidden {
				if strings.Contains(err.Error(), h) {
					t.Fatalf("%q shown: %v", h, err)
				}
			}
		})
	}
	for _, ok := range []string{"http: {listen: \"127.0.0.1:0\"}\n", "http: {listen: \":9090\"}\n", "http: {listen: \"[::1]:9090\"}\n",
		"nats: {url: \"nats://127.0.0.1:4222\"}\n", "nats: {url: \"127.0.0.1:4222\"}\n", "nats: {url: \"tls://u:p%40w@h:4222,wss://h\"}\n"} {
		if _, err := Parse("c.yaml", []byte(base+ok), h12Env(nil)); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
}

// A big config costs bounded work: at most MaxProblems lines, lists capped,
// little memory.
func TestHostile12BoundedWork(t *testing.T) {
	var unknown, unknownFlow, providers strings.Builder
	unknown.WriteString(h12Head + "    auth: {token: tttttttt}\n")
	for i := range 60_000 {
		fmt.Fprintf(&unknown, "    k%d: 1\n", i)
	}
	unknownFlow.WriteString(h12Head + "    auth: {token: tttttttt}\nlog: {")
	for i := range 9_000 {
		fmt.Fprintf(&unknownFlow, "k%d: 1, ", i)
	}
	unknownFlow.WriteString("}\n")
	providers.WriteString("data_dir: /tmp/x\nnotifiers: [{name: log, type: console}]\nproviders:\n")
	for range 999 {
		providers.WriteString("  - {name: BAD, type: nope, endpoint: x}\n")
	}
	flowList := func(n int) string {
		return h12Head + "    auth: {token: tttttttt}\nrule_files: [" + strings.Repeat("r,", n) + "]\n"
	}
	blockList := func(n int) string {
		return h12Head + "    auth: {token: tttttttt}\nrule_files:\n" + strings.Repeat("  - r\n", n)
	}
	for _, tc := range []struct {
		name, src string
		maxLines  int
		want      string
		maxAlloc  uint64
	}{
		{"60k unknown keys, block", unknown.String(), 1, "c.yaml:1004:5: a mapping with more than the limit of 1000 keys", 20 << 20},
		{"9k unknown keys, flow", unknownFlow.String(), MaxProblems + 1, "c.yaml: …and more problems (stopped after 100)", 60 << 20},
		{"999 bad providers", providers.String(), MaxProblems + 1, "more problems", 150 << 20},
		{"5k rule files, flow", flowList(5000), 1, "c.yaml:8:13: rule_files: a list of 5000 items, more than the limit of 1000", 40 << 20},
		{"5k rule files, block", blockList(5000), 1, "c.yaml:9:3: rule_files: a list of 5000 items, more than the limit of 1000", 40 << 20},
		{"200k rule files, flow", flowList(200_000), 1, "c.yaml:8:20013: a list or mapping with more than the limit of 10000 entries", 20 << 20},
		{"100k rule files, block", blockList(100_000), 1, "c.yaml:10009:3: a list or mapping with more than the limit of 10000 entries", 20 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := Parse("c.yaml", []byte(tc.src), h12Env(nil))
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatal("want an error")
			}
			lines := strings.Count(err.Error(), "\n") + 1
			if lines > tc.maxLines || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%d lines, want at most %d and %q; last: %s", lines, tc.maxLines, tc.want, tail(err.Error()))
			}
			t.Logf("allocated %d MB", (after.TotalAlloc-before.TotalAlloc)>>20)
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > tc.maxAlloc {
				t.Fatalf("allocated %d MB, want at most %d MB", alloc>>20, tc.maxAlloc>>20)
			}
		})
	}
	// Lists over the limit are field errors.
	var many strings.Builder
	many.WriteString(h12Head + "    auth: {token: tttttttt}\nhttp:\n  tokens:\n")
	for range MaxListItems + 1 {
		many.WriteString("    - {name: a, token: aaaaaaaaaaaaaaaaaaaa, role: read}\n")
	}
	_, err := Parse("c.yaml", []byte(many.String()), h12Env(nil))
	if err == nil || !strings.Contains(err.Error(), "http.tokens: a list of 1001 items, more than the limit of 1000") {
		t.Fatalf("want the tokens list refused: %v", err)
	}
}

func tail(s string) string {
	if i := strings.LastIndex(s, "\n"); i >= 0 {
		return s[i+1:]
	}
	return s
}
