package config

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The compose example's config is one a cluster member loads.
func TestClusterExampleConfigLoads(t *testing.T) {
	raw, err := os.ReadFile("../../deploy/cluster/watcher.yaml")
	require.NoError(t, err)
	c, err := Parse("watcher.yaml", raw, env(map[string]string{"SIMWATCH_TOKEN": "a-token-long-enough-for-us", "GSL_ENDPOINT": "https://gsl.example.com",
		"GSL_AK": "a", "GSL_SK": "b", "WEBHOOK_URL": "https://hooks.example.com/x", "WEBHOOK_SECRET": "c"}))
	require.NoError(t, err)
	require.True(t, c.Cluster.Enabled)
	require.Equal(t, 30*time.Second, c.Cluster.LeaseTTL.D())
}

func TestClusterConfig(t *testing.T) {
	base := "data_dir: /tmp/x\nproviders:\n  - {name: hw, type: huawei-gsl, endpoint: http://h, auth: {token: t}, interval: %s}\nnotifiers: [{name: c, type: console}]\n"
	tests := []struct {
		name, extra, interval string
		want                  string        // an error's text; "" loads
		ttl                   time.Duration // the lease TTL loaded
	}{
		{name: "off by default", interval: "1m"},
		{name: "default TTL: three intervals", extra: "nats: {url: nats://n:4222}\ncluster: {enabled: true}\n", interval: "1m", ttl: 3 * time.Minute},
		{name: "default TTL at least 10s", extra: "nats: {url: nats://n:4222}\ncluster: {enabled: true}\n", interval: "1s", ttl: 10 * time.Second},
		{name: "default TTL at most 5m", extra: "nats: {url: nats://n:4222}\ncluster: {enabled: true}\n", interval: "1h", ttl: 5 * time.Minute},
		{name: "needs nats.url", extra: "cluster: {enabled: true}\n", interval: "1m", want: "cluster.enabled: a cluster needs nats.url"},
		{name: "bad name", extra: "nats: {url: nats://n:4222}\ncluster: {enabled: true, name: 'a.b'}\n", interval: "1m", want: "cluster.name"},
		{name: "TTL too short", extra: "nats: {url: nats://n:4222}\ncluster: {enabled: true, lease_ttl: 1s}\n", interval: "1m", want: "cluster.lease_ttl: 1s is too short"},
		{name: "replicas out of range", extra: "nats: {url: nats://n:4222}\ncluster: {enabled: true, replicas: 7}\n", interval: "1m", want: "cluster.replicas"},
		{name: "unknown key", extra: "nats: {url: nats://n:4222}\ncluster: {enabled: true, leases: 3}\n", interval: "1m", want: "leases"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := []byte(fmt.Sprintf(base, tt.interval) + tt.extra)
			c, err := Parse("w.yaml", raw, env(nil))
			if tt.want != "" {
				require.ErrorContains(t, err, tt.want)
				require.ErrorContains(t, err, "w.yaml:")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.ttl, c.Cluster.LeaseTTL.D())
		})
	}
}
