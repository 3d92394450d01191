// Package redact keeps configured secrets out of everything simwatch writes:
// logs, errors, events, dead letters and API answers. One Redactor, seeded
// with every secret the config holds, stands at each of those exits.
package redact

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Mask replaces a secret wherever it appears.
const Mask = "<redacted>"

// minLen is the shortest value treated as a secret: masking every "a" or
// "12" would garble everything else and protect nothing.
const minLen = 4

// Redactor replaces known secrets, in the forms they take on the way out
// (as written, quoted for JSON or Go, URL-escaped, base64 as in Basic
// auth), with Mask. The zero value and nil redact nothing.
type Redactor struct {
	r *strings.Replacer
}

// New returns a redactor for secrets. Empty and very short values are
// ignored: by design, a secret shorter than 4 bytes (minLen), and any form
// of a secret that comes out shorter, is never masked.
func New(secrets ...string) *Redactor {
	var forms []string
	for _, s := range secrets {
		if len(s) < minLen {
			continue
		}
		forms = append(forms, variants(s)...)
	}
	if len(forms) == 0 {
		return &Redactor{}
	}
	slices.SortFunc(forms, func(a, b string) int { return len(b) - len(a) }) // longest first: a secret containing another is masked whole
	forms = slices.Compact(forms)
	pairs := make([]string, 0, 2*len(forms))
	for _, f := range forms {
		pairs = append(pairs, f, Mask)
	}
	return &Redactor{r: strings.NewReplacer(pairs...)}
}

// variants are the forms a secret takes in text simwatch writes.
func variants(s string) []string {
	out := []string{s, url.QueryEscape(s), url.PathEscape(s), base64.StdEncoding.EncodeToString([]byte(s))}
	q := strconv.Quote(s)
	out = append(out, q[1:len(q)-1])
	if j, err := json.Marshal(s); err == nil {
		out = append(out, string(j[1:len(j)-1]))
	}
	var keep []string
	for _, v := range out {
		if len(v) >= minLen {
			keep = append(keep, v)
		}
	}
	return keep
}

// String returns s with every secret masked.
func (r *Redactor) String(s string) string {
	if r == nil || r.r == nil {
		return s
	}
	return r.r.Replace(s)
}

// Bytes returns b with every secret masked; b itself when it holds none.
func (r *Redactor) Bytes(b []byte) []byte {
	if r == nil || r.r == nil {
		return b
	}
	s := string(b)
	if out := r.r.Replace(s); out != s {
		return []byte(out)
	}
	return b
}

// Error returns err with its message masked. errors.Is and errors.As still
// see the original chain.
func (r *Redactor) Error(err error) error {
	if err == nil || r == nil || r.r == nil {
		return err
	}
	msg := err.Error()
	if out := r.r.Replace(msg); out != msg {
		return &redacted{msg: out, err: err}
	}
	return err
}

type redacted struct {
	msg string
	err error
}

func (e *redacted) Error() string { return e.msg }
func (e *redacted) Unwrap() error { return e.err }

// Writer returns a writer that masks secrets in what is written to w. Each
// Write is masked on its own, so it suits writers fed whole records at a
// time (slog handlers write each record with one call).
func (r *Redactor) Writer(w io.Writer) io.Writer {
	if r == nil || r.r == nil {
		return w
	}
	return &writer{r: r, w: w}
}

type writer struct {
	r  *Redactor
	mu sync.Mutex
	w  io.Writer
}

func (w *writer) Write(p []byte) (int, error) {
	out := w.r.Bytes(p)
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := w.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Handler returns a slog handler that writes through h with every secret
// masked, for handlers whose output writer cannot be wrapped.
func (r *Redactor) Handler(h slog.Handler) slog.Handler {
	if r == nil || r.r == nil {
		return h
	}
	return &handler{r: r, h: h}
}

type handler struct {
	r *Redactor
	h slog.Handler
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.h.Enabled(ctx, l) }

func (h *handler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, h.r.String(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.h.Handle(ctx, out)
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	masked := make([]slog.Attr, len(as))
	for i, a := range as {
		masked[i] = h.attr(a)
	}
	return &handler{r: h.r, h: h.h.WithAttrs(masked)}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{r: h.r, h: h.h.WithGroup(name)}
}

func (h *handler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.r.String(v.String()))
	case slog.KindGroup:
		g := v.Group()
		masked := make([]any, len(g))
		for i, x := range g {
			masked[i] = h.attr(x)
		}
		return slog.Group(a.Key, masked...)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.String(a.Key, h.r.String(x.Error()))
		case []byte:
			return slog.String(a.Key, h.r.String(string(x)))
		default:
			s := v.String()
			if m := h.r.String(s); m != s {
				return slog.String(a.Key, m)
			}
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

// Middleware masks secrets in every answer of next. The answer is held
// until the handler returns, so a secret split across two writes is still
// found; answers are bounded JSON documents, so holding them is cheap.
func (r *Redactor) Middleware(next http.Handler) http.Handler {
	if r == nil || r.r == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		rec := &recorder{header: w.Header(), code: http.StatusOK}
		next.ServeHTTP(rec, req)
		body := r.Bytes(rec.body.Bytes())
		if len(body) != rec.body.Len() {
			w.Header().Del("Content-Length")
		}
		w.WriteHeader(rec.code)
		_, _ = w.Write(body)
	})
}

type recorder struct {
	header http.Header
	code   int
	wrote  bool
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.code, r.wrote = code, true
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	r.wrote = true
	return r.body.Write(p)
}
