package console

import "net/http"

// overview is the page fleet owners open first.
func (s *Server) overview(w http.ResponseWriter, r *http.Request, v *view) error {
	v.Title, v.Nav, v.Page = "Overview", "overview", "overview"
	return nil
}
