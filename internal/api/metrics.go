package api

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/simwatch/simwatch/internal/provider"
	"github.com/simwatch/simwatch/internal/store"
)

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

// Cycle stages, as simwatch_cycle_duration_seconds labels them.
const (
	StageFetch    = "fetch"
	StageDiff     = "diff"
	StageEvaluate = "evaluate"
	StageCommit   = "commit"
	// StageHistory is not a stage of the cycle but what follows it when
	// due: bringing the daily usage history up to date.
	StageHistory = "history"
	StageTotal   = "total"
)

// newCycleHistogram is simwatch_cycle_duration_seconds. Its buckets span a
// small fleet's cycle (tens of milliseconds) to a million cards' listing
// at a throttled rate (minutes).
func newCycleHistogram() *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "simwatch_cycle_duration_seconds",
		Help:    "How long a provider's committed poll cycle took, by stage (fetch, diff, evaluate, commit) and in total; history is the daily usage update that follows a cycle when due.",
		Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
	}, []string{"provider", "stage"})
}

// ObserveCycle records a committed cycle's stage times (by the Stage
// names) for simwatch_cycle_duration_seconds.
func (s *Server) ObserveCycle(provider string, stages map[string]time.Duration) {
	for stage, d := range stages {
		s.cycles.WithLabelValues(provider, stage).Observe(d.Seconds())
	}
}

// Watched is what the pollers report at scrape time.
type Watched struct {
	// Alerts counts the active alerts of every provider's committed state
	// by rule and state (pending, firing).
	Alerts map[[2]string]int
	// Requests are the request counts of each provider whose client keeps
	// them, by provider name.
	Requests map[string]provider.RequestStats
}

// Watch has /metrics report what f returns at each scrape: the alert
// gauges and the providers' request counters. Call it once.
func (s *Server) Watch(f func() Watched) {
	_ = s.reg.Register(watchCollector{f})
}

var (
	descAlerts      = prometheus.NewDesc("simwatch_alerts", "Active alerts by rule and state (pending, firing), as of each provider's last committed cycle.", []string{"rule", "state"}, nil)
	descPages       = prometheus.NewDesc("simwatch_provider_pages_total", "Listing pages fetched and accepted.", []string{"provider"}, nil)
	descRequests    = prometheus.NewDesc("simwatch_provider_requests_total", "HTTP requests sent to the provider, retries included.", []string{"provider"}, nil)
	descThrottled   = prometheus.NewDesc("simwatch_provider_throttled_total", "Provider answers that said it is throttling the watcher.", []string{"provider"}, nil)
	descRate        = prometheus.NewDesc("simwatch_provider_request_rate", "Requests per second now allowed to the provider; 0 when not limited.", []string{"provider"}, nil)
	descConcurrency = prometheus.NewDesc("simwatch_provider_concurrency", "Requests now allowed in flight to the provider.", []string{"provider"}, nil)
)

// watchCollector reads the pollers' state at scrape time, so an alert of
// a rule that a reload removed is gone once its provider's next cycle has
// dropped it, with no series left behind.
type watchCollector struct{ f func() Watched }

func (c watchCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descAlerts, descPages, descRequests, descThrottled, descRate, descConcurrency} {
		ch <- d
	}
}

func (c watchCollector) Collect(ch chan<- prometheus.Metric) {
	w := c.f()
	for k, n := range w.Alerts {
		ch <- prometheus.MustNewConstMetric(descAlerts, prometheus.GaugeValue, float64(n), k[0], k[1])
	}
	for name, st := range w.Requests {
		ch <- prometheus.MustNewConstMetric(descPages, prometheus.CounterValue, float64(st.Pages), name)
		ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(st.Requests), name)
		ch <- prometheus.MustNewConstMetric(descThrottled, prometheus.CounterValue, float64(st.Throttled), name)
		ch <- prometheus.MustNewConstMetric(descRate, prometheus.GaugeValue, st.Rate, name)
		ch <- prometheus.MustNewConstMetric(descConcurrency, prometheus.GaugeValue, float64(st.Concurrency), name)
	}
}
