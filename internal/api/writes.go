package api

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/simwatch/simwatch/internal/event"
	"github.com/simwatch/simwatch/internal/rules"
	"github.com/simwatch/simwatch/internal/store"
)

// Writes makes the changes the API is asked for. A single watcher writes
// them to its store; a cluster replicates them to every watcher's.
type Writes interface {
	Ack(ctx context.Context, a store.Ack, announce func(*rules.Alert, store.Ack) *event.Event) (store.Ack, bool, error)
	PutSilence(ctx context.Context, sl store.Silence) error
	ExpireSilence(ctx context.Context, id string, at time.Time) error
}

// storeWrites writes to the local store.
type storeWrites struct{ s *store.Store }

func (w storeWrites) Ack(_ context.Context, a store.Ack, announce func(*rules.Alert, store.Ack) *event.Event) (store.Ack, bool, error) {
	return w.s.Ack(a, announce)
}

func (w storeWrites) PutSilence(_ context.Context, sl store.Silence) error { return w.s.PutSilence(sl) }

func (w storeWrites) ExpireSilence(_ context.Context, id string, at time.Time) error {
	return w.s.ExpireSilence(id, at)
}

// writes is Options.Writes, or the store.
func (s *Server) writes() Writes {
	if s.o.Writes != nil {
		return s.o.Writes
	}
	return storeWrites{s.o.Store}
}

// cluster serves GET /api/v1/cluster: the watchers of the cluster, who
// holds which account, and how far this watcher's replica of the state
// lags. A watcher outside a cluster answers 404.
func (s *Server) cluster(w http.ResponseWriter, r *http.Request) {
	if s.o.Cluster == nil {
		writeError(w, http.StatusNotFound, "this watcher is not in a cluster (cluster.enabled is false)")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	st, err := s.o.Cluster(ctx)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "cluster status: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(st)
}

// ClusterStatus is what /api/v1/cluster answers and the console's cluster
// page shows.
type ClusterStatus struct {
	Name     string          `json:"name"`
	Member   string          `json:"member"` // the watcher answering
	Replicas int             `json:"replicas"`
	LeaseTTL string          `json:"lease_ttl"`
	Members  []ClusterMember `json:"members"`
	Leases   []ClusterLease  `json:"leases"`
	// Replication is how far this watcher's copy of the state is behind
	// the state stream.
	Replication ClusterReplication `json:"replication"`
}

// ClusterMember is one watcher or notify-only worker.
type ClusterMember struct {
	ID       string    `json:"id"`
	Host     string    `json:"host"`
	PID      int       `json:"pid"`
	Role     string    `json:"role"` // watcher or notify
	HTTP     string    `json:"http,omitempty"`
	Started  time.Time `json:"started"`
	LastSeen time.Time `json:"last_seen"`
	Leases   []string  `json:"leases"`
	Self     bool      `json:"self,omitempty"`
}

// ClusterLease is one provider account's lease.
type ClusterLease struct {
	Account   string    `json:"account"`
	Holder    string    `json:"holder,omitempty"` // empty: nobody polls it
	Since     time.Time `json:"since,omitzero"`
	Renewed   time.Time `json:"renewed,omitzero"`
	ExpiresIn string    `json:"expires_in,omitempty"`
	// Takeover is how long the account went unpolled the last time this
	// watcher took it over from a dead holder.
	Takeover string `json:"last_takeover,omitempty"`
}

// ClusterReplication is this watcher's replica of the state stream.
type ClusterReplication struct {
	Applied     uint64            `json:"applied"`     // last stream sequence applied
	StreamLast  uint64            `json:"stream_last"` // the stream's last sequence
	LagMessages uint64            `json:"lag_messages"`
	StreamBytes uint64            `json:"stream_bytes"`
	Subjects    map[string]uint64 `json:"subjects,omitempty"` // subject → last applied sequence
}
