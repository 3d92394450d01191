package config

import (
	"net/url"
	"strings"
)

// Secrets returns every configured secret value, expanded, each once, for
// a redactor that scrubs them from logs and errors: credentials, notifier
// tokens and signing secrets, API tokens, and the parts of notifier URLs
// that carry a secret (a Slack incoming webhook's path, a password in the
// userinfo, query values).
func (c *Config) Secrets() []string {
	var out []string
	seen := map[string]bool{}
	add := func(vs ...string) {
		for _, v := range vs {
			if v != "" && !seen[v] {
				seen[v] = true
				out = append(out, v)
			}
		}
	}
	for _, p := range c.Providers {
		a := p.Auth
		add(a.AK.Reveal(), a.SK.Reveal(), a.Token.Reveal(), a.Password.Reveal(), a.AccessKeyID.Reveal(), a.AccessKeySecret.Reveal())
	}
	for _, n := range c.Notifiers {
		add(n.Secret.Reveal(), n.Token.Reveal())
		if n.Type == NotifierSlack || n.Type == NotifierWebhook {
			add(urlSecrets(n.URL)...)
		}
	}
	for _, t := range c.HTTP.Tokens {
		add(t.Token.Reveal())
	}
	return out
}

// urlSecrets returns the secret parts of a notifier URL. A Slack incoming
// webhook is authorised by its path alone, so the path counts as a secret
// there; elsewhere the path is only an address.
func urlSecrets(raw string) []string {
	u, err := url.Parse(raw)
	if err != nil {
		// Unparsable: the whole URL, as the safe side.
		return []string{raw}
	}
	var out []string
	if pw, ok := u.User.Password(); ok {
		// Basic auth sends base64("user:password") of the decoded parts;
		// the redactor adds the base64 form of each secret.
		out = append(out, pw, u.User.Username()+":"+pw, u.User.String())
	}
	if strings.HasSuffix(u.Hostname(), "hooks.slack.com") {
		out = append(out, strings.Trim(u.Path, "/"), u.EscapedPath())
	}
	for _, vs := range u.Query() {
		out = append(out, vs...)
	}
	if u.RawQuery != "" {
		out = append(out, u.RawQuery)
	}
	return out
}
