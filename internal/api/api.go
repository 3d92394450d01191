// Package api serves simwatch's HTTP endpoints: health and readiness, the
// Prometheus metrics, and the JSON status API over the store.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/simwatch/simwatch/internal/bus"
	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/rules"
	"github.com/simwatch/simwatch/internal/store"
)

// Stats is the live delivery state the metrics report.
type Stats struct {
	Outbox    int
	Notifiers map[string]NotifierStats
}

// NotifierStats counts one notifier's deliveries.
type NotifierStats struct {
	Delivered, Retried, DeadLettered int64
	Pending                          uint64 // on the bus, not yet acknowledged
}

// DeadLetters lists and replays the events notifiers gave up on.
type DeadLetters interface {
	ListDeadLetters(ctx context.Context, notifier string) ([]bus.DeadLetter, error)
	ReplayDeadLetters(ctx context.Context, notifier string, ids []string, all bool) (int, error)
}

// ReplayRequest is the body of POST /api/v1/deadletters/replay.
type ReplayRequest struct {
	Notifier string   `json:"notifier,omitempty"`
	IDs      []string `json:"ids,omitempty"` // dead-letter seqs or event ids
	All      bool     `json:"all,omitempty"`
}

// Options configures a Server.
type Options struct {
	Store       *store.Store
	DeadLetters DeadLetters
	Stats       func() Stats
	Logger      *slog.Logger
	// Tokens are the accepted bearer tokens; none means loopback-only
	// access without tokens (see guard).
	Tokens []Token
	// Readiness is what /readyz checks besides SetReady.
	Readiness Readiness
	// QueryTimeout bounds a query (cards, pools, events); default
	// DefaultQueryTimeout.
	QueryTimeout time.Duration
	// Rules is the loaded rule set, which gives each alert its severity,
	// labels and notifiers; nil takes them from each alert's last firing
	// event (a pending alert then has none).
	Rules func() *rules.Set
	// Announced is called after an acknowledgement was added to the
	// outbox (to kick the relay); nil leaves it to the relay's period.
	Announced func()
	// Writes makes acknowledgements and silences; nil writes to Store.
	Writes Writes
	// Cluster, when set, is the cluster's status for /api/v1/cluster.
	Cluster func(ctx context.Context) (*ClusterStatus, error)
}

// DefaultQueryTimeout bounds a query that sets no QueryTimeout.
const DefaultQueryTimeout = 30 * time.Second

// maxBody bounds a request body: the largest legitimate one is a replay of
// a few thousand ids.
const maxBody = 1 << 20

// Server is the HTTP API.
type Server struct {
	o       Options
	ready   atomic.Bool
	reg     *prometheus.Registry
	latency *prometheus.HistogramVec
	cycles  *prometheus.HistogramVec
	probe   prober
	// probeStore replaces the store's write probe (tests).
	probeStore writeProber
	// onEntity is called before a query looks at each entity (tests).
	onEntity func(context.Context)
}

// New returns a server.
func New(o Options) *Server {
	s := &Server{o: o, reg: prometheus.NewRegistry()}
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "simwatch_notifier_latency_seconds",
		Help:    "Time from the cycle that observed an event to the receiver accepting it.",
		Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800},
	}, []string{"notifier"})
	s.cycles = newCycleHistogram()
	s.reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}), collector{s}, s.latency, s.cycles)
	return s
}

// ObserveDelivery records how long an event took from observation to receiver.
func (s *Server) ObserveDelivery(notifier string, d time.Duration) {
	s.latency.WithLabelValues(notifier).Observe(d.Seconds())
}

// SetReady marks the watcher ready (or not) for /readyz.
func (s *Server) SetReady(v bool) { s.ready.Store(v) }

// SetAccess sets the accepted tokens. The daemon calls it before serving:
// the server is built before the daemon knows it will listen.
func (s *Server) SetAccess(tokens []Token) { s.o.Tokens = tokens }

// SetReadiness sets what /readyz checks; call it before serving.
func (s *Server) SetReadiness(r Readiness) { s.o.Readiness = r }

// Handler routes the endpoints behind the access rules (see guard).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /api/v1/alerts", s.alerts)
	mux.HandleFunc("POST /api/v1/alerts/ack", s.ack)
	mux.HandleFunc("GET /api/v1/providers", s.providers)
	mux.HandleFunc("GET /api/v1/deadletters", s.listDeadLetters)
	mux.HandleFunc("GET /api/v1/actions", s.actions)
	mux.HandleFunc("GET /api/v1/cards", s.query(fleet.EntityCard))
	mux.HandleFunc("GET /api/v1/pools", s.query(fleet.EntityPool))
	mux.HandleFunc("GET /api/v1/events", s.events)
	mux.HandleFunc("GET /api/v1/silences", s.listSilences)
	mux.HandleFunc("POST /api/v1/silences", s.addSilence)
	mux.HandleFunc("DELETE /api/v1/silences/{id}", s.expireSilence)
	mux.HandleFunc("POST /api/v1/deadletters/replay", s.replayDeadLetters)
	mux.HandleFunc("GET /api/v1/cluster", s.cluster)
	return s.guard(mux)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// ErrorBody is every error answer: {"error": "..."}.
type ErrorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(ErrorBody{Error: msg})
}

// decodeBody reads a bounded JSON body into v, refusing unknown fields and
// trailing data: a misspelt field silently ignored could widen a replay or
// a silence.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return fmt.Errorf("body larger than %d bytes", tooBig.Limit)
		}
		return err
	}
	if err := exactKeys(body, v); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		return errors.New("body has data after the JSON object")
	}
	return nil
}

// exactKeys refuses what encoding/json would take silently: a key given
// twice (the last would win, so {"match":"rule==\"x\"","match":"true"}
// reads as one thing and does another) and a key in another case than
// v's field ("MATCH"), at the top level of the object.
func exactKeys(body []byte, v any) error {
	names := map[string]bool{}
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() == reflect.Struct {
		for i := range t.NumField() {
			if name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); name != "" && name != "-" {
				names[name] = true
			}
		}
	}
	type frame struct {
		object    bool
		expectKey bool
		keys      map[string]bool
	}
	var stack []*frame
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil // the end, or malformed JSON, which Decode reports
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			stack = append(stack, &frame{object: tok == json.Delim('{'), expectKey: true, keys: map[string]bool{}})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			if len(stack) > 0 && stack[len(stack)-1].object {
				stack[len(stack)-1].expectKey = true // the object or array was a value
			}
			continue
		}
		if top == nil || !top.object {
			continue
		}
		if !top.expectKey {
			top.expectKey = true // a scalar value
			continue
		}
		key, _ := tok.(string)
		if top.keys[key] {
			return fmt.Errorf("key %q given twice", key)
		}
		top.keys[key] = true
		top.expectKey = false
		if len(stack) == 1 && len(names) > 0 && !names[key] {
			return fmt.Errorf("unknown key %q (keys are case-sensitive)", key)
		}
	}
}

func (s *Server) providers(w http.ResponseWriter, r *http.Request) {
	out := map[string]store.Meta{}
	err := s.o.Store.View(func(tx *store.Tx) error {
		for _, name := range tx.Providers() {
			p, err := tx.Provider(name)
			if err != nil {
				return err
			}
			if out[name], err = p.Meta(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, map[string]any{"providers": out})
}

// actions lists what action notifiers did (or would have done) in the last
// ?hours= hours (default 24).
func (s *Server) actions(w http.ResponseWriter, r *http.Request) {
	hours, err := strconv.Atoi(r.URL.Query().Get("hours"))
	if err != nil || hours <= 0 {
		hours = 24
	}
	recs, err := s.o.Store.Actions(r.URL.Query().Get("notifier"), time.Now().Add(-time.Duration(hours)*time.Hour))
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if recs == nil {
		recs = []store.ActionRecord{}
	}
	writeJSON(w, map[string]any{"actions": recs})
}

func (s *Server) listDeadLetters(w http.ResponseWriter, r *http.Request) {
	dls, err := s.o.DeadLetters.ListDeadLetters(r.Context(), r.URL.Query().Get("notifier"))
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if dls == nil {
		dls = []bus.DeadLetter{}
	}
	writeJSON(w, map[string]any{"deadletters": dls})
}

func (s *Server) replayDeadLetters(w http.ResponseWriter, r *http.Request) {
	var req ReplayRequest
	if err := decodeBody(w, r, &req); err != nil || (!req.All && len(req.IDs) == 0) {
		msg := `want {"ids": [...]} or {"all": true}, optionally with "notifier"`
		if err != nil {
			msg += ": " + err.Error()
		}
		writeError(w, http.StatusBadRequest, msg)
		return
	}
	n, err := s.o.DeadLetters.ReplayDeadLetters(r.Context(), req.Notifier, req.IDs, req.All)
	if err != nil {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	writeJSON(w, map[string]any{"replayed": n})
}
