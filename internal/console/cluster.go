package console

import (
	"context"
	"net/http"
	"time"
)

// cluster is the cluster page: the watchers, who polls which account, and
// how far this watcher's copy of the state lags the state stream.
func (s *Server) cluster(w http.ResponseWriter, r *http.Request, v *view) error {
	if s.o.Cluster == nil {
		return notFound{"cluster (this watcher is not in one)"}
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	st, err := s.o.Cluster(ctx)
	if err != nil {
		return err
	}
	v.Title, v.Nav, v.Page, v.Data = "Cluster", "cluster", "cluster.html", st
	return nil
}
