package app

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"

	"github.com/simwatch/simwatch/internal/api"
	"github.com/simwatch/simwatch/internal/config"
	"github.com/simwatch/simwatch/internal/console"
)

func listen(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }

// listenHTTP binds http.listen (nil when it is off), refusing first what
// checkListen refuses. Its error is one line naming the cause and the fix.
func (w *Watcher) listenHTTP() (net.Listener, error) {
	addr := w.cfg.HTTP.Listen
	if addr == "" {
		return nil, nil
	}
	if err := checkAddr(addr); err != nil {
		return nil, err
	}
	if err := checkListen(w.cfg.HTTP); err != nil {
		return nil, err
	}
	ln, err := listen(addr)
	if err != nil {
		return nil, listenError(addr, err)
	}
	return ln, nil
}

// checkAddr refuses an http.listen that is not HOST:PORT with a port
// net.Listen takes, before the listen's own, less helpful, error.
func checkAddr(addr string) error {
	const fix = "want HOST:PORT with a port from 0 to 65535, e.g. 127.0.0.1:9090"
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			err = errors.New(ae.Err)
		}
		return fmt.Errorf("http.listen %q is not a valid address (%v): %s", addr, err, fix)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("http.listen %q is not a valid address (port %q is neither a number from 0 to 65535 nor a service name): %s", addr, port, fix)
	}
	return nil
}

// listenError says why http.listen could not be bound, and what to do.
func listenError(addr string, err error) error {
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("http.listen %s: another process listens on %s: stop it or change http.listen", addr, addr)
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("http.listen %s: this user may not listen on that port (%v): use a port above 1023 or change http.listen", addr, unwrapOp(err))
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return fmt.Errorf("http.listen %s: that address is not on this machine (%v): listen on one of its addresses (127.0.0.1, 0.0.0.0) or change http.listen", addr, unwrapOp(err))
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return fmt.Errorf("http.listen %s: its host cannot be resolved (%v): use an IP address or a resolvable name in http.listen", addr, dnsErr.Err)
	}
	return fmt.Errorf("http.listen %s cannot be bound (%v): change http.listen", addr, unwrapOp(err))
}

// unwrapOp is the cause of a net.OpError, without the address it repeats.
func unwrapOp(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		var sys *os.SyscallError
		if errors.As(op.Err, &sys) {
			return sys.Err
		}
		return op.Err
	}
	return err
}

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
	apiH := w.api.Handler()
	mux := http.NewServeMux()
	for _, p := range []string{"/api/", "/metrics", "/healthz", "/readyz"} {
		mux.Handle(p, apiH)
	}
	mux.Handle("/", w.console().Handler())
	return w.redact.Middleware(mux)
}

// console is the web console over the daemon's store, with the API's
// tokens.
func (w *Watcher) console() *console.Server {
	var providers []console.Provider
	for _, p := range w.cfg.Providers {
		providers = append(providers, console.Provider{Name: p.Name, Type: p.Type, Interval: p.Interval.D()})
	}
	var notifiers []string
	for _, n := range w.cfg.Notifiers {
		notifiers = append(notifiers, n.Name)
	}
	o := console.Options{Store: w.store, Access: w.api, Providers: providers, Notifiers: notifiers,
		DeadLetters: w.bus, Rules: w.rules.Load, Now: w.o.Now, Logger: w.log}
	if w.cl != nil {
		o.Cluster = w.cl.status
	}
	return console.New(o)
}
