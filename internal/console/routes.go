package console

import "net/http"

// route is one page: its pattern and what renders it. Each page's handler
// lives in its own file (overview.go, alerts.go, card.go, ...).
type route struct {
	pattern string
	handle  func(w http.ResponseWriter, r *http.Request, v *view) error
}

// routes are the console's pages.
func (s *Server) routes() []route {
	return []route{
		{"GET /{$}", s.overview},
		{"GET /alerts", s.alerts},
		{"GET /cards/{provider}/{id}", s.card},
		{"GET /pools/{provider}/{id}", s.pool},
		{"GET /events", s.events},
		{"GET /silences", s.silences},
		{"GET /deadletters", s.deadLetters},
		{"GET /actions", s.actions},
		{"GET /cluster", s.cluster},
	}
}
