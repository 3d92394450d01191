package console

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/simwatch/simwatch/internal/api"
)

// guard applies the API's access rules to the pages:
//   - nothing is changed from another site: cross-origin POSTs (a forged
//     login form) are refused;
//   - with tokens configured, a page needs a session (or a bearer token);
//     without one it sends the browser to /login;
//   - without tokens (loopback only), the Host must be a loopback name, so
//     that a site rebinding its DNS name to 127.0.0.1 gets nothing.
//
// Pages are never framed (clickjacking) and never cached by the browser.
func (s *Server) guard(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "cross-site requests cannot change anything", http.StatusForbidden)
	}))
	protected := cop.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			h.Set("Cache-Control", "no-store")
		}
		if s.o.Access.Open() || r.URL.Path == "/login" || strings.HasPrefix(r.URL.Path, "/static/") {
			next.ServeHTTP(w, r)
			return
		}
		if _, ok := s.o.Access.Who(r); !ok {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		next.ServeHTTP(w, r)
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.o.Access.Open() && !api.LoopbackHost(r.Host) {
			http.Error(w, "without http.tokens the console answers only to localhost", http.StatusMisdirectedRequest)
			return
		}
		protected.ServeHTTP(w, r)
	})
}

// sessionLife is how long a console session lasts.
const sessionLife = 12 * time.Hour

type loginData struct {
	Next  string
	Error string
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	v := &view{Title: "Sign in", Page: "login", Now: s.o.Now(), SignedIn: !s.o.Access.Open(),
		Data: loginData{Next: safeNext(r.URL.Query().Get("next"))}}
	s.render(w, r, http.StatusOK, v)
}

// login takes a token from the sign-in form and keeps it in a session
// cookie the API also takes: HttpOnly (no script reads it), SameSite=Strict
// (no other site's request carries it), Secure behind TLS.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	next := safeNext(r.FormValue("next"))
	tok, ok := s.o.Access.Check(r.FormValue("token"))
	if !ok {
		v := &view{Title: "Sign in", Page: "login", Now: s.o.Now(), SignedIn: true,
			Data: loginData{Next: next, Error: "That token is not one of this watcher's http.tokens."}}
		s.render(w, r, http.StatusUnauthorized, v)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: api.SessionCookie, Value: tok.Secret, Path: "/", MaxAge: int(sessionLife.Seconds()),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: api.SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// safeNext keeps a post-login destination on this site: a path and query
// of this site, never a URL to elsewhere (an open redirect). Browsers drop
// tabs and newlines inside a URL and read \ as /, so any control
// character, space or backslash refuses it, and what is kept is
// re-escaped.
func safeNext(next string) string {
	for i := 0; i < len(next); i++ {
		if c := next[i]; c <= ' ' || c == 0x7f || c == '\\' {
			return "/"
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.Opaque != "" || u.User != nil ||
		!strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") {
		return "/"
	}
	out := u.EscapedPath()
	if strings.HasPrefix(out, "//") {
		return "/"
	}
	if u.RawQuery != "" {
		out += "?" + u.RawQuery
	}
	return out
}
