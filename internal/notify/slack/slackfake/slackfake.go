// Package slackfake is an HTTP server that answers chat.postMessage as Slack
// does, for tests: it records posts, and can be told to rate-limit (HTTP 429
// with Retry-After) or to fail with a Slack error code.
package slackfake

import (
	"fmt"
	"net/http"
	"sync"
)

// Post is one chat.postMessage call.
type Post struct {
	Channel, Text, ThreadTS, Blocks, Auth string
}

// Server is the fake Slack API. Mount it with httptest.NewServer and point
// the notifier's api_url at it.
type Server struct {
	mu         sync.Mutex
	posts      []Post
	limited    int
	retryAfter string
	fail       string
	seq        int
}

// RateLimit makes the next n posts answer HTTP 429 with Retry-After seconds.
func (s *Server) RateLimit(n int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limited, s.retryAfter = n, retryAfter
}

// Fail makes every post answer {"ok":false,"error":code}; "" stops it.
func (s *Server) Fail(code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = code
}

// Posts returns the accepted posts so far.
func (s *Server) Posts() []Post {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Post(nil), s.posts...)
}

// ServeHTTP answers /chat.postMessage.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.URL.Path != "/chat.postMessage" {
		http.NotFound(w, r)
		return
	}
	if s.limited > 0 {
		s.limited--
		w.Header().Set("Retry-After", s.retryAfter)
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if s.fail != "" {
		fmt.Fprintf(w, `{"ok":false,"error":%q}`, s.fail)
		return
	}
	_ = r.ParseForm()
	s.posts = append(s.posts, Post{Channel: r.FormValue("channel"), Text: r.FormValue("text"), ThreadTS: r.FormValue("thread_ts"),
		Blocks: r.FormValue("blocks"), Auth: r.Header.Get("Authorization") + r.FormValue("token")})
	s.seq++
	fmt.Fprintf(w, `{"ok":true,"channel":"C0123","ts":"1795435200.%06d","message":{}}`, s.seq)
}
