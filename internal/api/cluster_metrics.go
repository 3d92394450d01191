package api

import "github.com/prometheus/client_golang/prometheus"

// ClusterMetrics is what a clustered watcher reports at scrape time.
type ClusterMetrics struct {
	// LeaseChanges counts this watcher's lease changes by change:
	// acquired, lost (taken, expired) and released (in order).
	LeaseChanges map[string]uint64
	// Takeover is, by account, how long it went unpolled the last time
	// this watcher took it over from a dead holder.
	Takeover map[string]float64
	Held     int // leases this watcher holds
	Members  int // live members of the cluster
	// Lag is how many state stream messages this watcher has not applied.
	Lag uint64
	// Deltas and DeltaBytes count the state deltas this watcher published
	// by provider (compressed bytes).
	Deltas, DeltaBytes map[string]uint64
}

var (
	descLeaseChanges = prometheus.NewDesc("simwatch_cluster_lease_changes_total", "Lease changes of this watcher: acquired, lost (taken by another or expired) and released (in order).", []string{"change"}, nil)
	descTakeover     = prometheus.NewDesc("simwatch_cluster_takeover_seconds", "How long the account went unpolled the last time this watcher took it over from a dead holder.", []string{"account"}, nil)
	descHeld         = prometheus.NewDesc("simwatch_cluster_leases_held", "Provider account leases this watcher holds.", nil, nil)
	descMembers      = prometheus.NewDesc("simwatch_cluster_members", "Live members of the cluster (watchers and notify-only workers).", nil, nil)
	descLag          = prometheus.NewDesc("simwatch_cluster_replication_lag_messages", "State stream messages this watcher has not applied yet.", nil, nil)
	descDeltas       = prometheus.NewDesc("simwatch_cluster_state_deltas_total", "State deltas this watcher published, by provider.", []string{"provider"}, nil)
	descDeltaBytes   = prometheus.NewDesc("simwatch_cluster_state_delta_bytes_total", "Compressed bytes of the state deltas this watcher published, by provider.", []string{"provider"}, nil)
)

// WatchCluster has /metrics report what f returns at each scrape. Call it
// once.
func (s *Server) WatchCluster(f func() ClusterMetrics) {
	_ = s.reg.Register(clusterCollector{f})
}

type clusterCollector struct{ f func() ClusterMetrics }

func (c clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLeaseChanges, descTakeover, descHeld, descMembers, descLag, descDeltas, descDeltaBytes} {
		ch <- d
	}
}

func (c clusterCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.f()
	for k, n := range m.LeaseChanges {
		ch <- prometheus.MustNewConstMetric(descLeaseChanges, prometheus.CounterValue, float64(n), k)
	}
	for account, s := range m.Takeover {
		ch <- prometheus.MustNewConstMetric(descTakeover, prometheus.GaugeValue, s, account)
	}
	ch <- prometheus.MustNewConstMetric(descHeld, prometheus.GaugeValue, float64(m.Held))
	ch <- prometheus.MustNewConstMetric(descMembers, prometheus.GaugeValue, float64(m.Members))
	ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, float64(m.Lag))
	for p, n := range m.Deltas {
		ch <- prometheus.MustNewConstMetric(descDeltas, prometheus.CounterValue, float64(n), p)
	}
	for p, n := range m.DeltaBytes {
		ch <- prometheus.MustNewConstMetric(descDeltaBytes, prometheus.CounterValue, float64(n), p)
	}
}
