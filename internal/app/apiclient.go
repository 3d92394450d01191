package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/simwatch/simwatch/internal/api"
	"github.com/simwatch/simwatch/internal/bus"
	"github.com/simwatch/simwatch/internal/config"
	"github.com/simwatch/simwatch/internal/store"
)

// apiClient is the CLI's one way to a watcher: its HTTP API, on the running
// daemon when that answers on http.listen, otherwise served in process over
// the data directory, which it may open only when no daemon holds it.
type apiClient struct {
	base   string
	http   *http.Client // nil for the in-process API
	local  http.Handler
	tokens []config.Token
	close  func()
}

// apiFor loads the config at path and opens its watcher's API. withBus also
// opens the event bus for the in-process API (dead letters live there).
func apiFor(ctx context.Context, path string, withBus bool) (*apiClient, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	return openAPI(ctx, cfg, withBus)
}

func openAPI(ctx context.Context, cfg *config.Config, withBus bool) (*apiClient, error) {
	if cfg.HTTP.Listen != "" {
		c := &apiClient{base: "http://" + dialAddr(cfg.HTTP.Listen), http: &http.Client{Timeout: time.Minute},
			tokens: cfg.HTTP.Tokens, close: func() {}}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/healthz", nil)
		if err != nil {
			return nil, fmt.Errorf("http.listen %q: %w", cfg.HTTP.Listen, err)
		}
		resp, err := c.http.Do(req)
		if err == nil {
			resp.Body.Close()
			return c, nil
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("watcher at %s: %w", c.base, err)
		}
	}
	return openLocal(ctx, cfg, withBus)
}

// openLocal serves the API in process. The data directory's lock comes
// first: a daemon without http.listen holds it, and opening its store or a
// second embedded NATS on its JetStream files beside it would corrupt both.
func openLocal(ctx context.Context, cfg *config.Config, withBus bool) (c *apiClient, err error) {
	release, err := store.LockDir(cfg.DataDir)
	if err != nil {
		if inUse, ok := errors.AsType[*store.InUseError](err); ok {
			who := "a running watcher"
			if inUse.PID > 0 {
				who += fmt.Sprintf(" (pid %d)", inUse.PID)
			}
			return nil, fmt.Errorf("data_dir %s is in use by %s, whose API this command cannot reach: set http.listen in its config (and restart it) so commands go through its API, or stop it", inUse.Dir, who)
		}
		return nil, err
	}
	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	closers = append(closers, func() { _ = release() })
	defer func() {
		if err != nil {
			closeAll()
		}
	}()
	st, err := store.Open(filepath.Join(cfg.DataDir, "simwatch.db"))
	if err != nil {
		return nil, withConfig(err, cfg.Path)
	}
	closers = append(closers, func() { _ = st.Close() })
	o := api.Options{Store: st}
	if withBus {
		b, err := bus.Open(ctx, bus.Options{URL: cfg.NATS.URL, DataDir: cfg.DataDir})
		if err != nil {
			return nil, withConfig(err, cfg.Path)
		}
		closers = append(closers, b.Close)
		o.DeadLetters = b
	}
	// The in-process API is loopback by construction: no tokens, Host localhost.
	return &apiClient{base: "http://localhost", local: api.New(o).Handler(), close: closeAll}, nil
}

// dialAddr is where to reach a listen address: an unspecified host (all
// interfaces) is reached on loopback.
func dialAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return net.JoinHostPort(host, port)
}

// token picks the bearer token to send: an admin one for a change, any
// for a read (a read one first, so that a read never carries more power
// than it needs).
func (c *apiClient) token(change bool) (string, error) {
	if len(c.tokens) == 0 {
		return "", nil
	}
	for _, role := range []string{config.RoleRead, config.RoleAdmin} {
		if change && role != config.RoleAdmin {
			continue
		}
		for _, t := range c.tokens {
			if t.Role == role {
				return t.Token.Reveal(), nil
			}
		}
	}
	return "", errors.New("this command changes the watcher and needs an admin token; http.tokens in the config has none")
}

// call sends method path (with query), with in as its JSON body when not
// nil, and decodes the JSON answer into out.
func (c *apiClient) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	tok, err := c.token(method != http.MethodGet && method != http.MethodHead)
	if err != nil {
		return err
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	var resp *http.Response
	if c.local != nil {
		rec := httptest.NewRecorder()
		c.local.ServeHTTP(rec, req)
		resp = rec.Result()
	} else if resp, err = c.http.Do(req); err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		var eb api.ErrorBody
		if json.Unmarshal(msg, &eb) == nil && eb.Error != "" {
			msg = []byte(eb.Error)
		}
		text := strings.TrimSpace(string(msg))
		if c.local == nil {
			return fmt.Errorf("watcher at %s: %s: %s", c.base, resp.Status, text)
		}
		return errors.New(text)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// newFlags is a command's flag set; its -h prints synopsis, then the flags.
// A flag it cannot parse is printed here too, but dispatch holds the
// command's stderr back and makes that a usage error (one line, exit 2), as
// every other command's (see gatedExternal).
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: %s\n", synopsis)
		fs.PrintDefaults()
	}
	fs.String("config", "watcher.yaml", "the watcher's config file: where its API listens (http.listen), its tokens (http.tokens) and data_dir")
	return fs
}

// noArgs refuses arguments a command does not take.
func noArgs(fs *flag.FlagSet) error {
	if fs.NArg() > 0 {
		return usagef(fs.Name(), "unexpected argument %q (flags go before arguments)", fs.Arg(0))
	}
	return nil
}

func configPath(fs *flag.FlagSet) string { return fs.Lookup("config").Value.String() }

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
