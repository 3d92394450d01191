// Package nofollow keeps notifiers' HTTP clients from following redirects.
// It is a leaf (it imports nothing of simwatch), so that both webhook and
// slack can use it without slack depending on webhook (which imports notify:
// notify's own tests import slack).
package nofollow

import (
	"net/http"
	"net/url"
)

// NoRedirects returns a copy of c (or of a zero client) that never follows a
// redirect: a signed post must reach the configured receiver, not be replayed
// as a GET or sent to another host. The 3xx comes back as the answer.
func NoRedirects(c *http.Client) *http.Client {
	var cp http.Client
	if c != nil {
		cp = *c
	}
	cp.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cp
}

// RedirectTarget is the host a redirect answer points to, never its path or
// query (which may carry secrets).
func RedirectTarget(req *url.URL, location string) string {
	if location == "" {
		return "(no Location)"
	}
	u, err := url.Parse(location)
	if err != nil {
		return "(unreadable Location)"
	}
	if req != nil {
		u = req.ResolveReference(u)
	}
	if u.Host == "" {
		return "(no host)"
	}
	return u.Host
}
