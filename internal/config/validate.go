package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

type fieldError struct {
	path  string // YAML path, e.g. $.providers[0].endpoint
	field string // the key a user reads, e.g. providers[0].endpoint
	msg   string
}

// checkName reports a name that is malformed or taken by an earlier one of
// its kind, and records it in seen.
func checkName(add func(path, field, format string, args ...any), seen map[string]bool, kind, path, field, name string) {
	if !nameRE.MatchString(name) {
		add(path+".name", field+".name", "%q is not a valid name (lowercase letters, digits, _ and -)", name)
	} else if seen[name] {
		add(path+".name", field+".name", "duplicate %s name %q", kind, name)
	}
	seen[name] = true
}

// minTokenLen keeps API tokens out of guessing range.
const minTokenLen = 16

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

func (c *Config) setDefaults() {
	if c.DataDir == "" {
		c.DataDir = "./data"
	}
	for i := range c.Providers {
		p := &c.Providers[i]
		if p.Interval == 0 {
			p.Interval = Duration(DefaultInterval)
		}
		if p.PageSize == 0 && p.Type == TypeGSL {
			p.PageSize = DefaultGSLPageSize
		}
		if p.PageSize == 0 && p.Type == TypeLinkCard {
			p.PageSize = DefaultLinkCardPageSize
		}
		if p.Timeout == 0 {
			p.Timeout = Duration(DefaultTimeout)
		}
		if p.Retries == 0 {
			p.Retries = DefaultRetries
		}
		if p.UnhealthyAfter == 0 {
			p.UnhealthyAfter = DefaultUnhealthyAfter
		}
		if p.ClockEvery == 0 {
			p.ClockEvery = Duration(DefaultClockEvery)
		}
	}
	if c.Cluster.Enabled {
		if c.Cluster.Name == "" {
			c.Cluster.Name = DefaultClusterName
		}
		if c.Cluster.LeaseTTL == 0 {
			c.Cluster.LeaseTTL = Duration(c.defaultLeaseTTL())
		}
	}
	for i := range c.Notifiers {
		n := &c.Notifiers[i]
		if n.MaxDeliver == 0 {
			n.MaxDeliver = DefaultMaxDeliver
		}
		if n.GroupBy == nil {
			n.GroupBy = []string{"rule"}
		}
		wait, interval := n.GroupWindows()
		n.GroupWait, n.GroupInterval = new(Duration(wait)), new(Duration(interval))
		if n.Backoff == 0 {
			n.Backoff = Duration(DefaultBackoff)
		}
		if n.MaxBackoff == 0 {
			n.MaxBackoff = Duration(DefaultMaxBackoff)
		}
		if n.Timeout == 0 {
			n.Timeout = Duration(DefaultNotifyTimeout)
		}
	}
}

// defaultLeaseTTL is three times the shortest provider interval, within
// [MinLeaseTTL, MaxDefaultLeaseTTL]: a lease outlives a few cycles, and a
// dead watcher's accounts wait no longer than that.
func (c *Config) defaultLeaseTTL() time.Duration {
	shortest := time.Duration(0)
	for _, p := range c.Providers {
		if d := time.Duration(p.Interval); d > 0 && (shortest == 0 || d < shortest) {
			shortest = d
		}
	}
	return min(max(3*shortest, MinLeaseTTL), MaxDefaultLeaseTTL)
}

func (c *Config) validate() []fieldError {
	var errs []fieldError
	add := func(path, field, format string, args ...any) {
		errs = append(errs, fieldError{path: path, field: field, msg: fmt.Sprintf(format, args...)})
	}
	if len(c.Providers) == 0 {
		add("$.providers", "providers", "at least one provider is required")
	}
	seen := map[string]bool{}
	for i, p := range c.Providers {
		path := fmt.Sprintf("$.providers[%d]", i)
		field := fmt.Sprintf("providers[%d]", i)
		checkName(add, seen, "provider", path, field, p.Name)
		if u, err := url.Parse(p.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add(path+".endpoint", field+".endpoint", "%q is not an http(s) URL", p.Endpoint)
		}
		switch p.Type {
		case TypeGSL:
			if p.PageSize < 10 || p.PageSize > 500 {
				add(path+".page_size", field+".page_size", "%d is out of range: GSL accepts 10 to 500", p.PageSize)
			}
			a := p.Auth
			modes := 0
			if a.AK != "" || a.SK != "" {
				modes++
				if a.AK == "" || a.SK == "" {
					add(path+".auth", field+".auth", "AK/SK signing needs both ak and sk")
				}
			}
			if a.Token != "" {
				modes++
			}
			if a.User != "" || a.Password != "" {
				modes++
				if a.User == "" || a.Password == "" || a.Domain == "" || a.IAMEndpoint == "" {
					add(path+".auth", field+".auth", "IAM password auth needs iam_endpoint, domain, user and password")
				}
			}
			if modes != 1 {
				add(path+".auth", field+".auth", "give exactly one of: ak+sk, token, or iam_endpoint+domain+user+password")
			}
		case TypeLinkCard:
			if !slices.Contains([]int{10, 15, 25, 40}, p.PageSize) {
				add(path+".page_size", field+".page_size", "%d is not a LinkCard page size: ListCardInfo accepts 10, 15, 25 or 40", p.PageSize)
			}
			if p.Auth.AccessKeyID == "" || p.Auth.AccessKeySecret == "" {
				add(path+".auth", field+".auth", "LinkCard needs access_key_id and access_key_secret")
			}
		default:
			add(path+".type", field+".type", "unknown provider type %q (want %s or %s)", p.Type, TypeGSL, TypeLinkCard)
		}
		if p.Interval.D() < 0 || p.Retries < 0 {
			add(path, field, "interval and retries must not be negative")
		}
		// rate and concurrency are ceilings on the adaptive pace; absent
		// (0) means no rate ceiling and the client's default concurrency.
		if p.Rate < 0 || math.IsNaN(p.Rate) || math.IsInf(p.Rate, 0) {
			add(path+".rate", field+".rate", "%v is not a ceiling in requests per second: give a positive number, or leave rate out to let the rate adapt", p.Rate)
		}
		if p.Concurrency < 0 || p.Concurrency > MaxConcurrency {
			add(path+".concurrency", field+".concurrency", "%d requests in flight: give 1 to %d, or leave concurrency out for the default", p.Concurrency, MaxConcurrency)
		}
	}
	seen = map[string]bool{}
	for i, n := range c.Notifiers {
		path := fmt.Sprintf("$.notifiers[%d]", i)
		field := fmt.Sprintf("notifiers[%d]", i)
		checkName(add, seen, "notifier", path, field, n.Name)
		switch n.Type {
		case NotifierConsole:
		case NotifierWebhook:
			if !httpURL(n.URL) {
				add(path+".url", field+".url", "not an http(s) URL (%s; the rest is not shown, as it may hold a secret)", schemeOf(n.URL))
			}
			if n.Format != "" && n.Format != "simwatch" && n.Format != "alertmanager" {
				add(path+".format", field+".format", "unknown format %q (want simwatch or alertmanager)", n.Format)
			}
		case NotifierSlack:
			switch {
			case n.URL != "" && !httpURL(n.URL):
				add(path+".url", field+".url", "not an http(s) URL (%s; the rest is not shown, as it may hold a secret)", schemeOf(n.URL))
			case n.URL == "" && (n.Token == "" || n.Channel == ""):
				add(path, field, "a slack notifier needs token and channel, or url (an incoming webhook)")
			}
			if n.APIURL != "" && !httpURL(n.APIURL) {
				add(path+".api_url", field+".api_url", "%q is not an http(s) URL", n.APIURL)
			}
		case NotifierAction:
			if !slices.ContainsFunc(c.Providers, func(p Provider) bool { return p.Name == n.Provider && p.Type == TypeGSL }) {
				add(path+".provider", field+".provider", "%q is not a configured %s provider (actions need GSL's stop/reset API)", n.Provider, TypeGSL)
			}
			if n.Operation != "stop" && n.Operation != "resume" {
				add(path+".operation", field+".operation", "operation must be stop or resume, not %q", n.Operation)
			}
			if len(n.Rules) == 0 {
				add(path+".rules", field+".rules", "list the rules that may trigger this action")
			}
			if n.MaxPerHour < 0 {
				add(path+".max_per_hour", field+".max_per_hour", "must not be negative")
			}
		default:
			add(path+".type", field+".type", "unknown notifier type %q (want %s, %s, %s or %s)", n.Type, NotifierConsole, NotifierWebhook, NotifierSlack, NotifierAction)
		}
		if n.MaxDeliver < 1 {
			add(path+".max_deliver", field+".max_deliver", "must be at least 1")
		}
		if n.MaxEvents < 0 {
			add(path+".max_events", field+".max_events", "must not be negative (0 means no limit)")
		}
		for j, g := range n.GroupBy {
			if !GroupField(g) {
				add(fmt.Sprintf("%s.group_by[%d]", path, j), fmt.Sprintf("%s.group_by[%d]", field, j),
					"unknown field %q (want rule, provider, severity, kind, entity, entity_id, iccid or labels.NAME)", g)
			}
		}
		if wait, interval := n.GroupWindows(); wait < 0 {
			add(path+".group_wait", field+".group_wait", "must not be negative")
		} else if interval < 0 {
			add(path+".group_interval", field+".group_interval", "must not be negative")
		}
	}
	seen = map[string]bool{}
	for i, t := range c.HTTP.Tokens {
		path := fmt.Sprintf("$.http.tokens[%d]", i)
		field := fmt.Sprintf("http.tokens[%d]", i)
		checkName(add, seen, "token", path, field, t.Name)
		if len(t.Token) < minTokenLen {
			add(path+".token", field+".token", "a token needs at least %d characters (e.g. openssl rand -hex 32)", minTokenLen)
		}
		if t.Role != RoleRead && t.Role != RoleAdmin {
			add(path+".role", field+".role", "role must be %s or %s, not %q", RoleRead, RoleAdmin, t.Role)
		}
	}
	if c.HTTP.Listen != "" {
		if msg := checkListen(c.HTTP.Listen); msg != "" {
			add("$.http.listen", "http.listen", "%s", msg)
		}
	}
	if c.NATS.URL != "" {
		if msg := checkNATSURL(c.NATS.URL); msg != "" {
			add("$.nats.url", "nats.url", "%s", msg)
		}
	}
	if c.Cluster.Enabled {
		if c.NATS.URL == "" {
			add("$.cluster.enabled", "cluster.enabled", "a cluster needs nats.url: the NATS cluster its watchers share (the embedded server is one machine's)")
		}
		if !nameRE.MatchString(c.Cluster.Name) {
			add("$.cluster.name", "cluster.name", "%q is not a valid name (lowercase letters, digits, _ and -)", c.Cluster.Name)
		}
		if time.Duration(c.Cluster.LeaseTTL) < 3*time.Second {
			add("$.cluster.lease_ttl", "cluster.lease_ttl", "%s is too short: at least 3s (a lease is renewed every third of it)", time.Duration(c.Cluster.LeaseTTL))
		}
		if c.Cluster.Replicas < 0 || c.Cluster.Replicas > 5 {
			add("$.cluster.replicas", "cluster.replicas", "%d is out of range: 1 to 5, or 0 for 3 when the NATS cluster has 3 servers", c.Cluster.Replicas)
		}
	}
	switch c.Log.Level {
	case "", "debug", "info", "warn", "error":
	default:
		add("$.log.level", "log.level", "unknown level %q (want debug, info, warn or error)", c.Log.Level)
	}
	switch c.Log.Format {
	case "", "text", "json":
	default:
		add("$.log.format", "log.format", "unknown format %q (want text or json)", c.Log.Format)
	}
	errs = append(errs, c.validateInhibitRules()...)
	return errs
}

// checkListen returns what is wrong with a listen address, as net.Listen
// would refuse it at start, or "".
func checkListen(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			return fmt.Sprintf("%s (want host:port, e.g. 127.0.0.1:9090)", ae.Err)
		}
		return "not host:port (e.g. 127.0.0.1:9090)"
	}
	if port == "" {
		return "missing port (want host:port, e.g. 127.0.0.1:9090; port 0 picks a free one)"
	}
	if n, err := strconv.Atoi(port); err == nil {
		if n < 0 || n > 65535 {
			return fmt.Sprintf("port %d is out of range (1 to 65535, or 0 for a free one)", n)
		}
		return ""
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Sprintf("port %q is not a number from 0 to 65535 nor a known service", port)
	}
	return ""
}

// natsSchemes are the schemes the NATS client dials.
var natsSchemes = []string{"nats", "tls", "ws", "wss"}

// checkNATSURL returns what is wrong with nats.url (one or more
// comma-separated server URLs), as the NATS client would refuse it at
// start, or "". The message never shows the URL: its userinfo may hold a
// password.
func checkNATSURL(raw string) string {
	parts := strings.Split(raw, ",")
	for i, p := range parts {
		which := "the URL"
		if len(parts) > 1 {
			which = fmt.Sprintf("server %d of %d", i+1, len(parts))
		}
		p = strings.TrimSpace(p)
		if p == "" {
			return which + " is empty"
		}
		if !strings.Contains(p, "://") {
			p = "nats://" + p // the client reads host:port as a nats URL
		}
		u, err := url.Parse(p)
		if err != nil {
			return fmt.Sprintf("%s does not parse (%s; %s; the rest is not shown, as it may hold a password)", which, schemeOf(p), urlProblem(err))
		}
		if !slices.Contains(natsSchemes, u.Scheme) {
			return fmt.Sprintf("%s has %s (want nats, tls, ws or wss; the rest is not shown, as it may hold a password)", which, schemeOf(p))
		}
		if u.Host == "" || u.Hostname() == "" {
			return fmt.Sprintf("%s has no host (want e.g. nats://127.0.0.1:4222)", which)
		}
		if port := u.Port(); port != "" {
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				return fmt.Sprintf("%s has a port out of range (1 to 65535)", which)
			}
		} else if strings.HasSuffix(u.Host, ":") {
			return fmt.Sprintf("%s has an empty port", which)
		}
	}
	return ""
}

// urlProblem describes a url.Parse error without its input.
func urlProblem(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "userinfo"):
		return "invalid characters in the user or password: escape them (%40 for @, %2F for /)"
	case strings.Contains(msg, "port"):
		return "invalid port"
	case strings.Contains(msg, "escape"):
		return "invalid %-escape"
	case strings.Contains(msg, "control character"):
		return "a control character"
	case strings.Contains(msg, "host"):
		return "invalid host"
	}
	return "malformed"
}

// GroupField reports whether an event field can be grouped by.
func GroupField(f string) bool {
	switch f {
	case "rule", "provider", "severity", "kind", "entity", "entity_id", "iccid":
		return true
	}
	name, ok := strings.CutPrefix(f, "labels.")
	return ok && name != ""
}

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// NotifierNames returns the configured notifier names, for rule validation.
func (c *Config) NotifierNames() []string {
	names := make([]string, len(c.Notifiers))
	for i, n := range c.Notifiers {
		names[i] = n.Name
	}
	return names
}

// schemeOf describes a URL's scheme only, for errors about URLs that may
// carry a secret (a Slack incoming webhook's path, a token in a query).
func schemeOf(u string) string {
	scheme, _, ok := strings.Cut(u, "://")
	if !ok || scheme == "" || strings.ContainsAny(scheme, "/?#@") || len(scheme) > 16 {
		return "no scheme"
	}
	return fmt.Sprintf("scheme %q", scheme)
}
