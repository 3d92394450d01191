package app

import (
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/simwatch/simwatch/internal/api"
	"github.com/simwatch/simwatch/internal/config"
)

func listen(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }

// checkListen refuses to serve the API beyond this machine without tokens:
// without them anyone who reaches the port could read the fleet and change
// silences (DESIGN §5).
func checkListen(h config.HTTP) error {
	if len(h.Tokens) == 0 && !api.LoopbackAddr(h.Listen) {
		return fmt.Errorf("http.listen %q is not a loopback address and http.tokens is empty: configure http.tokens (read and admin bearer tokens) or listen on 127.0.0.1", h.Listen)
	}
	return nil
}

// apiTokens are the config's tokens as the API takes them.
func apiTokens(ts []config.Token) []api.Token {
	out := make([]api.Token, 0, len(ts))
	for _, t := range ts {
		out = append(out, api.Token{Name: t.Name, Secret: t.Token.Reveal(), Role: t.Role})
	}
	return out
}

// apiHandler is the daemon's API with its tokens and readiness checks,
// counted from now: a provider gets three intervals from start to commit.
func (w *Watcher) apiHandler() http.Handler {
	w.api.SetAccess(apiTokens(w.cfg.HTTP.Tokens))
	intervals := map[string]time.Duration{}
	for _, p := range w.providers {
		intervals[p.name] = p.interval
	}
	w.api.SetReadiness(api.Readiness{Intervals: intervals, Started: w.o.Now(), Now: w.o.Now})
	return w.redact.Middleware(w.api.Handler())
}
