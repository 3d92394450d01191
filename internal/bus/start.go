package bus

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// StartTimeout bounds each step of Open: the embedded server getting ready,
// connecting to nats.url, and finding or creating the streams.
const StartTimeout = 10 * time.Second

// dialTimeout is how long one connection attempt to one server may take;
// nats.url may list several.
const dialTimeout = 5 * time.Second

// StartError says the bus could not be started or reached, and what to do.
// Its message never carries credentials from nats.url.
type StartError struct {
	What string // e.g. "nats.url nats://host:4222 is unreachable"
	Fix  string // empty when Damaged
	Err  error
	// Damaged says the embedded server's store is unusable: the fix is
	// `watcher doctor --repair`, with Config named when the caller knows it.
	Damaged bool
	Config  string
}

func (e *StartError) Error() string {
	fix := e.Fix
	if e.Damaged {
		cmd := "watcher doctor --repair"
		if e.Config != "" {
			cmd = "watcher doctor --config " + e.Config + " --repair"
		}
		fix = "stop the watcher and run `" + cmd + "` (README: Recovering a damaged store)"
	}
	return fmt.Sprintf("%s (%v): %s", e.What, e.Err, fix)
}

func (e *StartError) Unwrap() error { return e.Err }

// fixURL is what to do about an external server that cannot be used.
const fixURL = "start that NATS server (with JetStream) or fix nats.url, or leave nats.url empty to use the embedded server"

// fixBadURL is what to do about a nats.url that cannot be parsed.
const fixBadURL = "fix nats.url (nats://host:4222, or several such URLs separated by commas; percent-encode special characters in a user or password), or leave it empty to use the embedded server"

// checkURL parses each server of nats.url as the client does (a missing
// scheme is nats://) and says what is wrong with the first that does not
// parse. The error never quotes the URL: its userinfo may hold a password.
func checkURL(raw string) error {
	for i, p := range strings.Split(raw, ",") {
		p = strings.TrimSpace(p)
		where := ""
		if strings.Contains(raw, ",") {
			where = fmt.Sprintf("server %d: ", i+1)
		}
		if p == "" {
			return fmt.Errorf("%sempty", where)
		}
		if !strings.Contains(p, "://") {
			p = "nats://" + p
		}
		u, err := url.Parse(p)
		if err != nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err // without the URL it quotes
			}
			var esc url.EscapeError
			if errors.As(err, &esc) {
				err = errors.New("a bad %-escape") // it quotes the escape, perhaps of a password
			}
			return fmt.Errorf("%s%w", where, err)
		}
		if u.Hostname() == "" {
			return fmt.Errorf("%sno host", where)
		}
		if port := u.Port(); port != "" {
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				return fmt.Errorf("%sport %s is not in 1..65535", where, port)
			}
		}
	}
	return nil
}

// startEmbedded runs the embedded server with JetStream storage under
// DataDir/nats and connects to it in process.
func (b *Bus) startEmbedded() error {
	dir := filepath.Join(b.o.DataDir, "nats")
	damaged := func(err error) error {
		return &StartError{What: fmt.Sprintf("the embedded NATS store %s cannot be used", dir), Err: err, Damaged: true}
	}
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return damaged(errors.New("it is not a directory"))
	}
	srv, err := server.NewServer(&server.Options{
		ServerName: "simwatch",
		JetStream:  true,
		StoreDir:   dir,
		DontListen: true,
		NoSigs:     true,
		NoLog:      true,
	})
	if err != nil {
		return damaged(err)
	}
	b.srv = srv
	srv.Start()
	if !srv.ReadyForConnections(StartTimeout) {
		b.Close()
		return damaged(fmt.Errorf("it did not start within %s", StartTimeout))
	}
	if !srv.JetStreamEnabled() {
		// The server runs but could not enable JetStream on its store
		// directory (unwritable, not a directory, unreadable files).
		b.Close()
		return damaged(errors.New("JetStream could not be enabled on it"))
	}
	if b.nc, err = nats.Connect("", nats.InProcessServer(srv), nats.Name("simwatch")); err != nil {
		b.Close()
		return fmt.Errorf("bus: connect to the embedded server: %w", err)
	}
	return nil
}

// connect connects to nats.url within StartTimeout. Reconnects later are
// unbounded (MaxReconnects(-1)): once started, the watcher rides out outages.
func (b *Bus) connect(ctx context.Context) error {
	shown := RedactURL(b.o.URL)
	if err := checkURL(b.o.URL); err != nil {
		return &StartError{What: "nats.url " + shown + " is not a valid URL", Err: err, Fix: fixBadURL}
	}
	type result struct {
		nc  *nats.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		nc, err := nats.Connect(b.o.URL, nats.Name("simwatch"), nats.MaxReconnects(-1), nats.Timeout(dialTimeout))
		done <- result{nc, err}
	}()
	timer := time.NewTimer(StartTimeout)
	defer timer.Stop()
	var r result
	select {
	case r = <-done:
	case <-timer.C:
		r.err = fmt.Errorf("no answer within %s", StartTimeout)
	case <-ctx.Done():
		r.err = ctx.Err()
	}
	if r.err != nil {
		// A connection that completes after we gave up is closed, not leaked.
		go func() {
			if late := <-done; late.nc != nil {
				late.nc.Close()
			}
		}()
		return &StartError{What: "nats.url " + shown + " is unreachable", Err: redactErr(r.err, b.o.URL, shown), Fix: fixURL}
	}
	b.nc = r.nc
	return nil
}

// startError explains a failure to find or create the streams.
func (b *Bus) startError(err error) error {
	if b.o.URL == "" {
		return &StartError{What: fmt.Sprintf("the embedded NATS store %s cannot be used", filepath.Join(b.o.DataDir, "nats")), Err: err, Damaged: true}
	}
	shown := RedactURL(b.o.URL)
	what := "the NATS server at " + shown + " cannot hold simwatch's streams"
	if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) ||
		errors.Is(err, nats.ErrJetStreamNotEnabled) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, context.DeadlineExceeded) {
		what = "the NATS server at " + shown + " does not answer JetStream requests"
	}
	return &StartError{What: what, Err: redactErr(err, b.o.URL, shown), Fix: fixURL}
}

// RedactURL returns a nats.url (one URL or a comma-separated list) without
// credentials: user, password or token in the userinfo, and any query.
func RedactURL(raw string) string {
	parts := strings.Split(raw, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		u, err := url.Parse(p)
		if err != nil || u.Host == "" {
			// Not a URL we can take apart: show nothing of what might be
			// a credential, only the host-looking part after an '@'.
			if at := strings.LastIndex(p, "@"); at >= 0 {
				p = p[at+1:]
			}
			parts[i] = p
			continue
		}
		u.User, u.RawQuery, u.Fragment = nil, "", ""
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}

// redactErr replaces the raw URL in an error's text, should the client quote it.
func redactErr(err error, raw, shown string) error {
	msg := err.Error()
	if raw == "" || !strings.Contains(msg, raw) {
		if u, perr := url.Parse(raw); perr == nil && u.User != nil && strings.Contains(msg, u.User.String()) {
			return errors.New(strings.ReplaceAll(msg, u.User.String(), "…"))
		}
		return err
	}
	return errors.New(strings.ReplaceAll(msg, raw, shown))
}
