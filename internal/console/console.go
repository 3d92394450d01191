// Package console serves the web console fleet owners open every morning:
// server-rendered pages (html/template) over the store, with little
// JavaScript and a chart library vendored into the binary (deployments are
// often offline). Pages only read; every change (a silence, an
// acknowledgement, a replay) goes through the JSON API with the same tokens
// and roles, from a same-origin fetch.
package console

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/simwatch/simwatch/internal/api"
	"github.com/simwatch/simwatch/internal/rules"
	"github.com/simwatch/simwatch/internal/store"
)

// Access is who may see what: the API's tokens and roles.
type Access interface {
	// Who is the token a request carries (bearer or session cookie);
	// with no tokens configured, everyone is an unnamed admin.
	Who(r *http.Request) (api.Token, bool)
	// Check finds the configured token with this secret.
	Check(secret string) (api.Token, bool)
	// Open reports whether no tokens are configured (loopback only).
	Open() bool
}

// Provider is a configured provider account, as the overview lists it.
type Provider struct {
	Name, Type string
	Interval   time.Duration
}

// Options configures a Server. Store and Access are required.
type Options struct {
	Store  *store.Store
	Access Access
	// Providers are the configured accounts, in config order.
	Providers []Provider
	// DeadLetters lists and replays dead letters; nil shows none.
	DeadLetters api.DeadLetters
	// Notifiers are the configured notifier names.
	Notifiers []string
	// Rules is the rule set in force (it names each rule's severity, also
	// for alerts not firing yet); nil reads severities from firing events.
	Rules func() *rules.Set
	// Cluster, when set, is the cluster's status: the console shows a
	// cluster page (members, leases, replication lag).
	Cluster func(ctx context.Context) (*api.ClusterStatus, error)
	Now     func() time.Time
	Logger  *slog.Logger
}

// Server is the web console.
type Server struct {
	o     Options
	pages *pages
}

// New returns a console over o.Store.
func New(o Options) *Server {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Server{o: o, pages: loadPages()}
}

// Handler routes the console's pages behind its access rules (see guard).
// It serves everything the API does not: mount it at "/".
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.StripPrefix("/static/", staticFiles()))
	mux.HandleFunc("GET /login", s.loginPage)
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("POST /logout", s.logout)
	for _, rt := range s.routes() {
		mux.HandleFunc(rt.pattern, s.page(rt.handle))
	}
	return s.guard(mux)
}
