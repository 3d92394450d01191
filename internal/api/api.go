// Package api serves simwatch's HTTP endpoints: health and readiness, the
// Prometheus metrics, and the JSON status API over the store.
package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
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
}

// Server is the HTTP API.
type Server struct {
	o       Options
	ready   atomic.Bool
	reg     *prometheus.Registry
	latency *prometheus.HistogramVec
}

// New returns a server.
func New(o Options) *Server {
	s := &Server{o: o, reg: prometheus.NewRegistry()}
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "simwatch_notifier_latency_seconds",
		Help:    "Time from the cycle that observed an event to the receiver accepting it.",
		Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800},
	}, []string{"notifier"})
	s.reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}), collector{s}, s.latency)
	return s
}

// ObserveDelivery records how long an event took from observation to receiver.
func (s *Server) ObserveDelivery(notifier string, d time.Duration) {
	s.latency.WithLabelValues(notifier).Observe(d.Seconds())
}

// SetReady marks the watcher ready (or not) for /readyz.
func (s *Server) SetReady(v bool) { s.ready.Store(v) }

// Handler routes the endpoints.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !s.ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /api/v1/alerts", s.alerts)
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
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

type alertView struct {
	Provider string `json:"provider"`
	*rules.Alert
}

func (s *Server) alerts(w http.ResponseWriter, r *http.Request) {
	out := []alertView{}
	err := s.o.Store.View(func(tx *store.Tx) error {
		for _, name := range tx.Providers() {
			p, err := tx.Provider(name)
			if err != nil {
				return err
			}
			as, err := p.Alerts()
			if err != nil {
				return err
			}
			for _, a := range as {
				out = append(out, alertView{Provider: name, Alert: a})
			}
		}
		return nil
	})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Provider != out[j].Provider {
			return out[i].Provider < out[j].Provider
		}
		return out[i].Key() < out[j].Key()
	})
	writeJSON(w, map[string]any{"alerts": out})
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
		http.Error(w, err.Error(), http.StatusInternalServerError)
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
		http.Error(w, err.Error(), http.StatusInternalServerError)
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
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if dls == nil {
		dls = []bus.DeadLetter{}
	}
	writeJSON(w, map[string]any{"deadletters": dls})
}

func (s *Server) replayDeadLetters(w http.ResponseWriter, r *http.Request) {
	var req ReplayRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || (!req.All && len(req.IDs) == 0) {
		http.Error(w, `want {"ids": [...]} or {"all": true}, optionally with "notifier"`, http.StatusBadRequest)
		return
	}
	n, err := s.o.DeadLetters.ReplayDeadLetters(r.Context(), req.Notifier, req.IDs, req.All)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	writeJSON(w, map[string]any{"replayed": n})
}

// collector reports delivery and provider state at scrape time.
type collector struct{ s *Server }

var (
	descDelivered = prometheus.NewDesc("simwatch_notifier_delivered_total", "Events the notifier's receiver accepted.", []string{"notifier"}, nil)
	descRetried   = prometheus.NewDesc("simwatch_notifier_retried_total", "Delivery attempts that failed and were retried.", []string{"notifier"}, nil)
	descDead      = prometheus.NewDesc("simwatch_notifier_dead_lettered_total", "Events moved to the dead letters.", []string{"notifier"}, nil)
	descPending   = prometheus.NewDesc("simwatch_notifier_pending_events", "Events owed to the notifier and not yet settled (delivered, muted or dead-lettered), on the bus or in hand.", []string{"notifier"}, nil)
	descOutbox    = prometheus.NewDesc("simwatch_outbox_events", "Events committed but not yet published to the bus.", nil, nil)
	descCards     = prometheus.NewDesc("simwatch_provider_cards", "Cards in the provider's last successful snapshot.", []string{"provider"}, nil)
	descFailures  = prometheus.NewDesc("simwatch_provider_failed_cycles", "Failed cycles in a row.", []string{"provider"}, nil)
	descLastOK    = prometheus.NewDesc("simwatch_provider_last_success_timestamp_seconds", "Time of the last committed cycle.", []string{"provider"}, nil)
)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDelivered, descRetried, descDead, descPending, descOutbox, descCards, descFailures, descLastOK} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	if c.s.o.Stats != nil {
		st := c.s.o.Stats()
		ch <- prometheus.MustNewConstMetric(descOutbox, prometheus.GaugeValue, float64(st.Outbox))
		for name, n := range st.Notifiers {
			ch <- prometheus.MustNewConstMetric(descDelivered, prometheus.CounterValue, float64(n.Delivered), name)
			ch <- prometheus.MustNewConstMetric(descRetried, prometheus.CounterValue, float64(n.Retried), name)
			ch <- prometheus.MustNewConstMetric(descDead, prometheus.CounterValue, float64(n.DeadLettered), name)
			ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(n.Pending), name)
		}
	}
	_ = c.s.o.Store.View(func(tx *store.Tx) error {
		for _, name := range tx.Providers() {
			p, err := tx.Provider(name)
			if err != nil {
				return err
			}
			m, err := p.Meta()
			if err != nil {
				return err
			}
			ch <- prometheus.MustNewConstMetric(descCards, prometheus.GaugeValue, float64(m.Cards), name)
			ch <- prometheus.MustNewConstMetric(descFailures, prometheus.GaugeValue, float64(m.Failures), name)
			ch <- prometheus.MustNewConstMetric(descLastOK, prometheus.GaugeValue, float64(m.LastSuccess.Unix()), name)
		}
		return nil
	})
}
