package console

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/simwatch/simwatch/internal/api"
	"github.com/simwatch/simwatch/internal/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// staticFiles serves the vendored chart library, the stylesheet and the
// little JavaScript the pages use, cached for a day.
func staticFiles() http.Handler {
	sub, _ := fs.Sub(staticFS, "static")
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=86400")
		files.ServeHTTP(w, r)
	})
}

// pages are the parsed templates: each page template with the layout and
// the blocks pages share (parts.html).
type pages struct {
	byName map[string]*template.Template
}

// funcs are what templates may call.
var funcs = template.FuncMap{
	"mb":      formatMB,
	"ago":     func(t time.Time, now time.Time) string { return ago(now.Sub(t)) },
	"when":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
	"pct":     func(a, b float64) float64 { return pctOf(a, b) },
	"query":   func(v url.Values) template.URL { return template.URL(v.Encode()) },
	"pathEsc": url.PathEscape,
	"lower":   strings.ToLower,
}

// loadPages parses every page template with the layout. A template that
// does not parse is a bug in the build, caught by any test.
func loadPages() *pages {
	ps := &pages{byName: map[string]*template.Template{}}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	for _, name := range names {
		base := path.Base(name)
		if base == "layout.html" || base == "parts.html" {
			continue
		}
		t := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/parts.html", name))
		ps.byName[strings.TrimSuffix(base, ".html")] = t
	}
	return ps
}

// view is what every page renders: the layout's part and the page's data.
type view struct {
	Title string
	Nav   string // the navigation entry to mark
	// Who is the signed-in token's name ("" without tokens); Admin says
	// whether it may change things (the forms show only then).
	Who   string
	Admin bool
	// SignedIn says the console has a session (tokens are configured).
	SignedIn bool
	// Clustered shows the cluster page in the navigation.
	Clustered bool
	Now       time.Time
	Page      string // the page template
	Data      any
}

// page wraps a page handler: who is asking, then the page, rendered into a
// buffer so that a failure halfway is an error page, not half a page.
func (s *Server) page(handle func(w http.ResponseWriter, r *http.Request, v *view) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, _ := s.o.Access.Who(r)
		v := &view{Who: tok.Name, Admin: tok.Role == api.RoleAdmin, SignedIn: !s.o.Access.Open(), Clustered: s.o.Cluster != nil, Now: s.o.Now()}
		if err := handle(w, r, v); err != nil {
			s.fail(w, r, err)
			return
		}
		if v.Page == "" {
			return // the handler answered itself (a redirect)
		}
		s.render(w, r, http.StatusOK, v)
	}
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, code int, v *view) {
	t, ok := s.pages.byName[v.Page]
	if !ok {
		s.fail(w, r, fmt.Errorf("console: no template %q", v.Page))
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", v); err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = buf.WriteTo(w)
}

// notFound is an error a page returns for what does not exist.
type notFound struct{ what string }

func (e notFound) Error() string { return e.what + " not found" }

// badRequest is an error a page returns for a query it cannot take.
type badRequest struct{ msg string }

func (e badRequest) Error() string { return e.msg }

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusInternalServerError
	switch err.(type) {
	case notFound:
		code = http.StatusNotFound
	case badRequest:
		code = http.StatusBadRequest
	default:
		s.o.Logger.Warn("console page failed", "path", r.URL.Path, "err", err)
	}
	v := &view{Title: http.StatusText(code), Page: "error", Now: s.o.Now(), Data: err.Error()}
	if code == http.StatusInternalServerError {
		v.Data = "the page could not be rendered; the watcher's log says why"
	}
	t := s.pages.byName["error"]
	var buf bytes.Buffer
	if t == nil || t.ExecuteTemplate(&buf, "layout.html", v) != nil {
		http.Error(w, http.StatusText(code), code)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = buf.WriteTo(w)
}

func formatMB(mb float64) string {
	switch {
	case mb >= 1024*1024 || mb <= -1024*1024:
		return fmt.Sprintf("%.1f TB", mb/1024/1024)
	case mb >= 1024 || mb <= -1024:
		return fmt.Sprintf("%.1f GB", mb/1024)
	}
	return fmt.Sprintf("%.1f MB", mb)
}

func pctOf(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return a / b * 100
}

func ago(d time.Duration) string {
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

// knownProvider is the stored part of a provider the store has state for,
// or notFound: a page never creates one by asking.
func knownProvider(tx *store.Tx, name string) (*store.ProviderTx, error) {
	if !slices.Contains(tx.Providers(), name) {
		return nil, notFound{"provider " + name}
	}
	return tx.Provider(name)
}
