package redact_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/simwatch/simwatch/internal/redact"
)

const sk = `s3cr"et\key+/=&`

func TestStringMasksEveryForm(t *testing.T) {
	r := redact.New(sk, "AKIDEXAMPLE", "", "ab")
	j, _ := json.Marshal(sk)
	for name, in := range map[string]string{
		"as written":    "sk=" + sk + " end",
		"json":          `{"sk":` + string(j) + `}`,
		"go quoted":     fmt.Sprintf("sk=%q", sk),
		"query escaped": "https://x/?sk=" + url.QueryEscape(sk),
		"path escaped":  "https://x/" + url.PathEscape(sk),
		"basic auth":    "Basic " + base64.StdEncoding.EncodeToString([]byte(sk)),
		"second secret": "ak AKIDEXAMPLE used",
	} {
		t.Run(name, func(t *testing.T) {
			out := r.String(in)
			if strings.Contains(out, "s3cr") || strings.Contains(out, "AKIDEXAMPLE") {
				t.Fatalf("secret left in %q", out)
			}
			if !strings.Contains(out, redact.Mask) {
				t.Fatalf("no mask in %q", out)
			}
		})
	}
	if got := r.String("ab cd"); got != "ab cd" {
		t.Errorf("a two-letter value was treated as a secret: %q", got)
	}
}

func TestNilAndEmptyRedactNothing(t *testing.T) {
	var r *redact.Redactor
	if r.String("x") != "x" || redact.New().String("x") != "x" {
		t.Fatal("an empty redactor changed text")
	}
	err := fs.ErrNotExist
	if r.Error(err) != err {
		t.Fatal("nil redactor changed an error")
	}
}

func TestErrorKeepsTheChain(t *testing.T) {
	r := redact.New("hunter2hunter2")
	err := r.Error(fmt.Errorf("login with hunter2hunter2: %w", fs.ErrPermission))
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("secret in %q", err)
	}
	if !errors.Is(err, fs.ErrPermission) {
		t.Fatal("errors.Is lost the cause")
	}
}

func TestLogsMaskedThroughWriterAndHandler(t *testing.T) {
	r := redact.New(sk)
	for name, log := range map[string]func(*bytes.Buffer) *slog.Logger{
		"writer, json": func(b *bytes.Buffer) *slog.Logger { return slog.New(slog.NewJSONHandler(r.Writer(b), nil)) },
		"writer, text": func(b *bytes.Buffer) *slog.Logger { return slog.New(slog.NewTextHandler(r.Writer(b), nil)) },
		"handler":      func(b *bytes.Buffer) *slog.Logger { return slog.New(r.Handler(slog.NewJSONHandler(b, nil))) },
	} {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			l := log(&b).With("auth", sk)
			l.Error("request to https://x/?sk="+url.QueryEscape(sk)+" failed", "err", errors.New("bad sk "+sk),
				slog.Group("req", "header", "Bearer "+sk), "raw", []byte(sk))
			if out := b.String(); strings.Contains(out, "s3cr") || !strings.Contains(out, redact.Mask) {
				t.Fatalf("log line: %s", out)
			}
		})
	}
}

func TestMiddlewareMasksAnswers(t *testing.T) {
	r := redact.New(sk)
	h := r.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTeapot)
		// The secret split across two writes is still found.
		_, _ = w.Write([]byte(`{"reason":"receiver said s3cr`))
		_, _ = w.Write([]byte(`\"et\\key+/=&"}`))
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusTeapot || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, headers %v", rec.Code, rec.Header())
	}
	if body := rec.Body.String(); strings.Contains(body, "s3cr") || !json.Valid(rec.Body.Bytes()) {
		t.Fatalf("body %s", body)
	}
}
