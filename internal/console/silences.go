package console

import (
	"net/http"

	"github.com/simwatch/simwatch/internal/store"
)

// expiredShown bounds the expired silences listed: they are history, and
// the store keeps them all.
const expiredShown = 100

type silencesData struct {
	Active, Expired []store.Silence
	// MoreExpired is how many expired silences are not listed.
	MoreExpired int
	// Match and Comment prefill the form (a link from an alert).
	Match, Comment string
}

// silences lists the active and expired silences; an admin creates and
// expires them here through the API.
func (s *Server) silences(w http.ResponseWriter, r *http.Request, v *view) error {
	all, err := s.o.Store.Silences() // newest first
	if err != nil {
		return err
	}
	d := silencesData{Match: r.URL.Query().Get("match"), Comment: r.URL.Query().Get("comment")}
	for _, sl := range all {
		switch {
		case sl.Active(v.Now) || v.Now.Before(sl.CreatedAt):
			d.Active = append(d.Active, sl)
		case len(d.Expired) < expiredShown:
			d.Expired = append(d.Expired, sl)
		default:
			d.MoreExpired++
		}
	}
	v.Title, v.Nav, v.Page, v.Data = "Silences", "silences", "silences", d
	return nil
}
