package api

import (
	"github.com/prometheus/client_golang/prometheus"

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
