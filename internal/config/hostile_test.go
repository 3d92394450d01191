package config

import (
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// A secret that holds every character that means something in YAML.
const nasty = "s3\"cr'et\\ #x: {a}, [b] &c *d\nline2"

var secretEnv = env(map[string]string{"HW_AK": "AKIDnasty1", "HW_SK": nasty, "HOOK_SECRET": nasty, "SLACK": nasty, "TOK": nasty + "-long-enough"})

func TestErrorsNeverShowSecrets(t *testing.T) {
	literal := "LiteralSecretValue42"
	tests := []struct{ name, src, want string }{
		{"unknown key beside auth", strings.Replace(good, `sk: "${HW_SK}"}`, `sk: "${HW_SK}", colour: red}`, 1),
			`w.yaml:7:45: providers[0].auth: unknown key "colour"`},
		{"bad value beside a token", "providers: [{name: hw, type: huawei-gsl, endpoint: https://x.example, auth: {token: '${HW_SK}'}, interval: 600}]\nnotifiers: [{name: s, type: slack, token: ${SLACK}, channel: c, max_deliver: lots}]\n",
			"w.yaml:2:78: notifiers[0].max_deliver: want a whole number"},
		{"secret with a quote, plain in flow", strings.Replace(good, `sk: "${HW_SK}"}`, `sk: ${HW_SK}, bogus: 1}`, 1),
			`providers[0].auth: unknown key "bogus"`},
		{"literal secret, error on its line", strings.Replace(good, `auth: {ak: "${HW_AK}", sk: "${HW_SK}"}, interval: 10m`, `auth: {ak: x, sk: `+literal+`}, interval: 600`, 1),
			"w.yaml:7:57: providers[0].interval: bad duration \"600\": a number needs a unit (use e.g. 10m"},
		{"literal secret typed as a key", strings.Replace(good, `auth: {ak: "${HW_AK}", sk: "${HW_SK}"}`, `auth: {ak: x, sk `+literal+`}`, 1),
			"providers[0].auth: unknown key (not shown"},
		{"literal secret breaks the syntax", strings.Replace(good, `sk: "${HW_SK}"`, `sk: "`+literal+`"x"`, 1),
			"w.yaml:7"},
		{"secret in a bad name", strings.Replace(good, "name: crm", "name: ${HOOK_SECRET}", 1),
			`notifiers[0].name: "${HOOK_SECRET}" is not a valid name`},
		{"short api token", good + "  - {name: s, type: slack, url: 'https://hooks.slack.com/services/T0/B0/" + literal + "', api_url: ftp://x}\n",
			`notifiers[2].api_url: "ftp://x" is not an http(s) URL`},
		{"unset variable", strings.Replace(good, "${HOOK_SECRET}", "${NOPE}", 1),
			"w.yaml:9:73: notifiers[0].secret: environment variable NOPE is not set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("w.yaml", []byte(tt.src), secretEnv)
			require.ErrorContains(t, err, tt.want)
			for _, s := range []string{nasty, "s3\\\"cr", "s3\"cr", literal, "AKIDnasty1"} {
				require.NotContains(t, err.Error(), s)
			}
			require.NotContains(t, err.Error(), "\n |", "no source snippets")
		})
	}
}

func TestSecretAnyCharacters(t *testing.T) {
	for _, form := range []string{`"${HW_SK}"`, `'${HW_SK}'`, `${HW_SK}`} {
		flow := strings.Replace(good, `"${HW_SK}"`, form, 1)
		block := "providers:\n  - name: hw\n    type: huawei-gsl\n    endpoint: https://x.example\n    auth:\n      ak: x\n      sk: " + form + "\n"
		for _, src := range []string{flow, block} {
			c, err := Parse("w.yaml", []byte(src), secretEnv)
			require.NoError(t, err, src)
			require.Equal(t, nasty, c.Providers[0].Auth.SK.Reveal(), src)
		}
	}
	// A value can only be a value: it never adds keys or items.
	c, err := Parse("w.yaml", []byte(good), env(map[string]string{"HW_AK": "a", "HW_SK": "b}, interval: 1s, x: {", "HOOK_SECRET": "\n- c"}))
	require.NoError(t, err)
	require.Equal(t, "b}, interval: 1s, x: {", c.Providers[0].Auth.SK.Reveal())
	require.Equal(t, DefaultInterval/1, c.Providers[0].Interval.D()/1+DefaultInterval-c.Providers[0].Interval.D())
	require.Equal(t, "\n- c", c.Notifiers[0].Secret.Reveal())
}

func TestEveryConfigProblemInOnePass(t *testing.T) {
	src := `log: {level: verbose, format: xml}
colour: red
providers:
  - {name: hw, type: huawei-gsl, endpoint: https://x.example, auth: {token: t}, interval: 600, page_size: many, rate: [1]}
  - {name: hw, type: huawei-gsl, endpoint: nowhere, auth: {token: t}, sizee: 3}
http:
  tokens: [{name: ops, token: short, role: root}]
`
	_, err := Parse("w.yaml", []byte(src), secretEnv)
	require.Error(t, err)
	for _, want := range []string{
		`w.yaml:1:14: log.level: unknown level "verbose" (want debug, info, warn or error)`,
		`w.yaml:1:31: log.format: unknown format "xml" (want text or json)`,
		`w.yaml:2:1: unknown key "colour"`,
		`w.yaml:4:91: providers[0].interval: bad duration "600": a number needs a unit (use e.g. 10m`,
		`w.yaml:4:107: providers[0].page_size: want a whole number`,
		`w.yaml:4:119: providers[0].rate: want a single value, not a list`,
		`w.yaml:5:12: providers[1].name: duplicate provider name "hw"`,
		`w.yaml:5:44: providers[1].endpoint: "nowhere" is not an http(s) URL`,
		`w.yaml:5:71: providers[1]: unknown key "sizee"`,
		`w.yaml:7:31: http.tokens[0].token: a token needs at least 16 characters`,
		`w.yaml:7:44: http.tokens[0].role: role must be read or admin, not "root"`,
	} {
		require.Contains(t, err.Error(), want)
	}
	require.NotContains(t, err.Error(), "page_size: 0 is out of range", "a field that did not decode is reported once")
	t.Log(err)
}

func TestLogSettings(t *testing.T) {
	for _, tt := range []struct{ log, want string }{
		{"{level: debug, format: json}", ""},
		{"{level: warn}", ""},
		{"{level: verbose}", `log.level: unknown level "verbose"`},
		{"{format: yaml}", `log.format: unknown format "yaml"`},
		{"{level: [info]}", "log.level: want a single value, not a list"},
	} {
		_, err := Parse("w.yaml", []byte(base+"log: "+tt.log+"\n"), noEnv)
		if tt.want == "" {
			require.NoError(t, err, tt.log)
		} else {
			require.ErrorContains(t, err, tt.want, tt.log)
		}
	}
}

const base = "providers: [{name: hw, type: huawei-gsl, endpoint: https://x.example, auth: {token: t}}]\n"

func noEnv(string) (string, bool) { return "", false }

// The bombs the hostile tester sent. Each is refused with the limit named,
// without the parser or decoder allocating more than a few MiB.
func TestConfigBombs(t *testing.T) {
	laughs := "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
	prev := "a"
	for _, name := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
		laughs += name + ": &" + name + " [" + strings.Repeat("*"+prev+",", 8) + "*" + prev + "]\n"
		prev = name
	}
	laughs += "providers: *i\n"
	var deep strings.Builder
	for i := range 200 {
		deep.WriteString(strings.Repeat(" ", i) + "k:\n")
	}
	tests := []struct{ name, src, want string }{
		{"billion laughs", laughs, "w.yaml:5:8: aliases expand to more than the limit of 10000 nodes"},
		{"100k [", strings.Repeat("[", 100_000), "w.yaml:1:64: nested deeper than the limit of 64 levels"},
		{"100k {", "a: " + strings.Repeat("{a: ", 100_000), "w.yaml:1:"},
		{"100k [ across lines", strings.Repeat("[\n", 100_000), "w.yaml:64:1: nested deeper than the limit of 64 levels"},
		{"100k - - -", strings.Repeat("- ", 100_000), "nested deeper than the limit of 64 levels"},
		{"deep indentation", deep.String(), "w.yaml:65:65: nested deeper than the limit of 64 levels"},
		{"too big", "data_dir: x\n" + strings.Repeat("#", 1<<20), "w.yaml: file is 1048588 bytes, more than the limit of 1048576"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			alloc := allocated(func() { _, err = Parse("w.yaml", []byte(tt.src), noEnv) })
			require.ErrorContains(t, err, tt.want)
			require.Less(t, alloc, uint64(8<<20), "bytes allocated")
		})
	}
}

func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestSecretsList(t *testing.T) {
	src := `providers:
  - {name: hw, type: huawei-gsl, endpoint: https://x.example, auth: {ak: "${HW_AK}", sk: "${HW_SK}"}}
  - {name: iam, type: huawei-gsl, endpoint: https://x.example, auth: {iam_endpoint: https://iam.example, domain: d, user: u, password: pw-literal}}
  - {name: ali, type: aliyun-linkcard, endpoint: https://x.example, page_size: 40, auth: {access_key_id: LTAIid, access_key_secret: alisecret}}
notifiers:
  - {name: ops, type: slack, token: xoxb-bot, channel: c}
  - {name: hook, type: slack, url: "https://hooks.slack.com/services/T0/B0/XYZsecret"}
  - {name: crm, type: webhook, url: "https://user:urlpw@crm.example/hook?key=qsecret", secret: "${HOOK_SECRET}"}
  - {name: log, type: console}
http:
  tokens: [{name: ops, token: "${TOK}", role: admin}]
`
	c, err := Parse("w.yaml", []byte(src), secretEnv)
	require.NoError(t, err)
	got := c.Secrets()
	for _, want := range []string{"AKIDnasty1", nasty, "pw-literal", "LTAIid", "alisecret", "xoxb-bot",
		"services/T0/B0/XYZsecret", "urlpw", "qsecret", nasty + "-long-enough"} {
		require.Contains(t, got, want)
	}
	require.NotContains(t, got, "")
	require.NotContains(t, got, "/hook", "a webhook's path is an address, not a secret")
}
