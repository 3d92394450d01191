// Package config loads watcher.yaml: ${VAR} expansion from the environment,
// strict decoding (unknown keys are errors), defaults, and validation whose
// errors name the file, line and field.
package config

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"

	"github.com/simwatch/simwatch/internal/yamlread"
)

// Provider types.
const (
	TypeGSL      = "huawei-gsl"
	TypeLinkCard = "aliyun-linkcard"
)

// Notifier types.
const (
	NotifierConsole = "console"
	NotifierWebhook = "webhook"
	NotifierSlack   = "slack"
	NotifierAction  = "action"
)

// Config is the whole of watcher.yaml.
type Config struct {
	DataDir   string     `yaml:"data_dir"`
	HTTP      HTTP       `yaml:"http"`
	NATS      NATS       `yaml:"nats"`
	Cluster   Cluster    `yaml:"cluster"`
	RuleFiles []string   `yaml:"rule_files"`
	Providers []Provider `yaml:"providers"`
	Notifiers []Notifier `yaml:"notifiers"`
	Log       Log        `yaml:"log"`

	// InhibitRules mute events while a related alert fires (see inhibit.go).
	InhibitRules []InhibitRule `yaml:"inhibit_rules"`

	// Path is the file the config was read from, for error messages and for
	// resolving relative rule files.
	Path string `yaml:"-"`
}

// HTTP configures the status and health server. An empty Listen disables it.
type HTTP struct {
	Listen string `yaml:"listen"`
	// ExternalURL is where users reach the web console; Slack messages link
	// to the page of the card, pool or rule they are about under it.
	ExternalURL string `yaml:"external_url"`
	// Tokens are the bearer tokens the API accepts. With none, the API
	// listens on loopback only and serves reads to anyone there.
	Tokens []Token `yaml:"tokens"`
}

// Roles an API token can have.
const (
	RoleRead  = "read"  // sees everything the API shows
	RoleAdmin = "admin" // also changes things: silences, replays, acks
)

// Token is one API bearer token.
type Token struct {
	Name  string `yaml:"name"`
	Token Secret `yaml:"token"`
	Role  string `yaml:"role"` // read or admin
}

// NATS configures the event bus. An empty URL runs an embedded server with
// JetStream storage under data_dir.
type NATS struct {
	URL string `yaml:"url"`
	// AckWait is how long an event handed to a notifier may go unacknowledged
	// (e.g. the watcher was killed) before the bus hands it out again.
	AckWait Duration `yaml:"ack_wait"`
}

// Cluster makes several watchers share the provider accounts through the
// NATS cluster at nats.url (README: Running a cluster): each account is
// polled by one watcher at a time, under a lease, and its state is
// replicated to the others, which take it over when the holder dies.
type Cluster struct {
	Enabled bool `yaml:"enabled"`
	// Name is the group's name: watchers with the same name share accounts.
	Name string `yaml:"name"`
	// LeaseTTL is how long an account's lease outlives its holder's last
	// renewal: the longest a dead watcher's accounts go unpolled. Default
	// three times the shortest provider interval, at least 10s and at most 5m.
	LeaseTTL Duration `yaml:"lease_ttl"`
	// Replicas is how many copies NATS keeps of simwatch's streams and
	// buckets; 0 means 3 when the NATS cluster has 3 or more servers, else 1.
	Replicas int `yaml:"replicas"`
}

// Cluster defaults.
const (
	DefaultClusterName = "simwatch"
	MinLeaseTTL        = 10 * time.Second
	MaxDefaultLeaseTTL = 5 * time.Minute
)

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text, json
}

// Provider is one provider account to poll.
type Provider struct {
	Name        string   `yaml:"name"`
	Type        string   `yaml:"type"`
	Endpoint    string   `yaml:"endpoint"`
	Auth        Auth     `yaml:"auth"`
	Interval    Duration `yaml:"interval"`
	PageSize    int      `yaml:"page_size"`
	Rate        float64  `yaml:"rate"`        // ceiling on requests per second; 0: none, the rate adapts
	Concurrency int      `yaml:"concurrency"` // ceiling on requests in flight; 0: the client's default
	Timeout     Duration `yaml:"timeout"`     // per request
	Retries     int      `yaml:"retries"`     // attempts per request beyond the first
	// UnhealthyAfter is the number of failed cycles in a row after which a
	// provider_unhealthy event is emitted.
	UnhealthyAfter int `yaml:"unhealthy_after"`
	// ClockEvery is how often rules that read the clock or usage history run
	// on cards that did not change (changed cards are always evaluated).
	ClockEvery Duration `yaml:"clock_every"`
}

// Auth holds provider credentials. Which fields apply depends on the type.
type Auth struct {
	// GSL AK/SK signing.
	AK Secret `yaml:"ak"`
	SK Secret `yaml:"sk"`
	// GSL static IAM token.
	Token Secret `yaml:"token"`
	// GSL IAM password authentication.
	IAMEndpoint string `yaml:"iam_endpoint"`
	Domain      string `yaml:"domain"`
	User        string `yaml:"user"`
	Password    Secret `yaml:"password"`
	Project     string `yaml:"project"`
	// LinkCard.
	AccessKeyID     Secret `yaml:"access_key_id"`
	AccessKeySecret Secret `yaml:"access_key_secret"`
}

// Notifier is one delivery target. A slack notifier takes token and channel,
// or url set to an incoming-webhook URL. An action notifier takes provider,
// operation and rules.
type Notifier struct {
	Name    string `yaml:"name"`
	Type    string `yaml:"type"`
	URL     string `yaml:"url"`
	Secret  Secret `yaml:"secret"`
	Format  string `yaml:"format"`  // webhook: simwatch (default) or alertmanager
	Token   Secret `yaml:"token"`   // slack: bot token
	Channel string `yaml:"channel"` // slack
	APIURL  string `yaml:"api_url"` // slack: API base, for tests and proxies
	// action: stop or resume the card an event is about.
	Provider   string   `yaml:"provider"`     // a huawei-gsl provider
	Operation  string   `yaml:"operation"`    // stop | resume
	Rules      []string `yaml:"rules"`        // the rules that may trigger it
	DryRun     *bool    `yaml:"dry_run"`      // default true: only log and record
	MaxPerHour int      `yaml:"max_per_hour"` // default 10; the excess is dead-lettered
	Timeout    Duration `yaml:"timeout"`
	MaxDeliver int      `yaml:"max_deliver"` // attempts before an event is dead-lettered
	MaxEvents  int      `yaml:"max_events"`  // most events per post; 0 (default) means a group is one post
	Backoff    Duration `yaml:"backoff"`     // first retry delay
	MaxBackoff Duration `yaml:"max_backoff"`
	// Grouping, with Alertmanager's meanings: events whose group_by fields
	// agree go out together; a new group waits GroupWait for more to join,
	// and a group that has been sent waits GroupInterval before the next.
	GroupBy       []string  `yaml:"group_by"`       // default [rule]
	GroupWait     *Duration `yaml:"group_wait"`     // default 10s (0 for console and action)
	GroupInterval *Duration `yaml:"group_interval"` // default 1m (0 for console and action)
}

// GroupWindows returns group_wait and group_interval, with the defaults
// where they are not set: 10s and 1m, or 0 for console and action
// notifiers, whose events stand alone.
func (n Notifier) GroupWindows() (wait, interval time.Duration) {
	wait, interval = DefaultGroupWait, DefaultGroupInterval
	if n.Type == NotifierConsole || n.Type == NotifierAction {
		wait, interval = 0, 0
	}
	if n.GroupWait != nil {
		wait = n.GroupWait.D()
	}
	if n.GroupInterval != nil {
		interval = n.GroupInterval.D()
	}
	return wait, interval
}

// IsDryRun reports whether an action notifier only logs and records (the
// default) rather than acting.
func (n Notifier) IsDryRun() bool { return n.DryRun == nil || *n.DryRun }

// Secret is a credential. It never prints: %v, logs and JSON show a redaction.
type Secret string

// String redacts the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "<redacted>"
}

// GoString redacts the secret for %#v.
func (s Secret) GoString() string { return `"` + s.String() + `"` }

// MarshalJSON redacts the secret.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.String() + `"`), nil }

// Reveal returns the secret itself, for the one place that signs with it.
func (s Secret) Reveal() string { return string(s) }

// Duration is a time.Duration written as "10m" in YAML.
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(b []byte) error {
	s := strings.Trim(strings.TrimSpace(string(b)), `"'`)
	v, err := time.ParseDuration(s)
	if _, nerr := strconv.ParseFloat(s, 64); err != nil && nerr == nil {
		return fmt.Errorf("bad duration %q: a number needs a unit (use e.g. 10m, 30s, 24h)", s)
	}
	if err != nil {
		return fmt.Errorf("bad duration %q (use e.g. 30s, 10m, 24h)", s)
	}
	*d = Duration(v)
	return nil
}

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MaxConcurrency bounds a provider's concurrency ceiling: more requests in
// flight than this is a typo, not a plan.
const MaxConcurrency = 1000

// Defaults.
const (
	DefaultInterval         = 10 * time.Minute
	DefaultGSLPageSize      = 500
	DefaultLinkCardPageSize = 40
	DefaultTimeout          = 30 * time.Second
	DefaultRetries          = 4
	DefaultUnhealthyAfter   = 3
	DefaultClockEvery       = time.Hour
	DefaultMaxDeliver       = 10
	DefaultGroupWait        = 10 * time.Second
	DefaultGroupInterval    = time.Minute
	DefaultBackoff          = time.Second
	DefaultMaxBackoff       = 5 * time.Minute
	DefaultNotifyTimeout    = 10 * time.Second
)

// Load reads, expands, decodes, defaults and validates the config at path.
func Load(path string) (*Config, error) {
	raw, err := yamlread.ReadFile(path, yamlread.ConfigLimits.MaxBytes)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, raw, os.LookupEnv)
}

// Parse is Load on bytes, with lookup standing in for the environment.
//
// ${VAR} is expanded inside scalar values after parsing, never in the
// text, so a value cannot change the YAML structure and a parse error can
// only show the file as written. Every problem is reported, one line each:
// file:line:col: field: message.
func Parse(path string, raw []byte, lookup func(string) (string, bool)) (*Config, error) {
	src, err := markRefs(path, raw)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	doc, err := yamlread.Parse(path, src, yamlread.ConfigLimits)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	x := expander{lookup: lookup, written: map[string]string{}}
	dec := yamlread.Decoder{File: path, Doc: doc, Expand: x.expand, MaxProblems: MaxProblems, MaxList: MaxListItems}
	var c Config
	if doc.Body != nil {
		dec.Decode(doc.Body, &c, "")
	}
	c.Path = path
	c.setDefaults()
	problems := dec.Problems
	more := dec.Stopped // decoding stopped early: an unknown number more
	bad := map[string]bool{}
	for _, p := range problems {
		if p.UnknownKey == "" {
			bad[p.Field] = true
		}
	}
	extra := 0
	for _, e := range c.validate() {
		if decodeFailed(bad, e.field) {
			continue // already reported: the value did not decode
		}
		if len(problems) >= MaxProblems {
			extra++ // counted, not placed: finding a line costs a walk of the file
			continue
		}
		line, col := position(doc.File, e.path)
		problems = append(problems, &yamlread.Error{File: path, Line: line, Col: col, Field: e.field, Message: e.msg})
	}
	if len(problems) == 0 {
		return &c, nil
	}
	slices.SortStableFunc(problems, func(a, b *yamlread.Error) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
	})
	if len(problems) > MaxProblems {
		extra += len(problems) - MaxProblems
		problems = problems[:MaxProblems]
	}
	msgs := make([]string, len(problems), len(problems)+1)
	for i, p := range problems {
		msgs[i] = "config: " + x.mask(x.asWritten(p.Error()))
	}
	switch {
	case more:
		msgs = append(msgs, fmt.Sprintf("config: %s: …and more problems (stopped after %d)", path, MaxProblems))
	case extra > 0:
		msgs = append(msgs, fmt.Sprintf("config: %s: …and %d more problems", path, extra))
	}
	return nil, errors.New(strings.Join(msgs, "\n"))
}

// MaxProblems is how many problems one config error lists; past it,
// decoding stops and the error ends with how many more there were.
const MaxProblems = 100

// MaxListItems bounds every list in the config (rule_files, providers,
// notifiers, http.tokens, inhibit_rules, ...): far above a real fleet's,
// far below what makes a check slow.
const MaxListItems = 1000

// decodeFailed reports whether field, a field it is part of, or a field
// of it did not decode, so that validation does not report the zero value
// left there a second time.
func decodeFailed(bad map[string]bool, field string) bool {
	for f := range bad {
		if strings.HasPrefix(f, field+".") || strings.HasPrefix(f, field+"[") {
			return true
		}
	}
	for f := field; f != ""; {
		if bad[f] {
			return true
		}
		i := strings.LastIndexAny(f, ".[")
		if i < 0 {
			break
		}
		f = f[:i]
	}
	return false
}

func position(file *ast.File, path string) (line, col int) {
	p, err := yaml.PathString(path)
	if err != nil {
		return 1, 1
	}
	for path != "$" {
		if n, err := p.FilterFile(file); err == nil && n != nil {
			pos := n.GetToken().Position
			return pos.Line, pos.Column
		}
		// Fall back to the parent: the field may be missing.
		i := strings.LastIndexAny(path, ".[")
		if i <= 0 {
			break
		}
		path = path[:i]
		if p, err = yaml.PathString(path); err != nil {
			break
		}
	}
	return 1, 1
}
