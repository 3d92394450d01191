// Package slackfake is an HTTP server that answers chat.postMessage and
// chat.update as Slack does, for tests: it records posts and updates, and
// can be told to rate-limit (HTTP 429 with Retry-After) or to fail with a
// Slack error code.
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

// Update is one chat.update call.
type Update struct {
	Channel, TS, Text, Blocks string
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
	updates    []Update
	failUpd    int
	failUpdErr string
	failPosts  int
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

// FailUpdates makes the next n chat.update calls answer
// {"ok":false,"error":code}.
func (s *Server) FailUpdates(n int, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failUpd, s.failUpdErr = n, code
}

// FailPosts makes the next n chat.postMessage calls answer
// {"ok":false,"error":"internal_error"}.
func (s *Server) FailPosts(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failPosts = n
}

// Updates returns the accepted chat.update calls so far.
func (s *Server) Updates() []Update {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Update(nil), s.updates...)
}

// Posts returns the accepted posts so far.
func (s *Server) Posts() []Post {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Post(nil), s.posts...)
}

// ServeHTTP answers /chat.postMessage and /chat.update.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.URL.Path != "/chat.postMessage" && r.URL.Path != "/chat.update" {
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
	if r.URL.Path == "/chat.update" {
		if s.failUpd > 0 {
			s.failUpd--
			fmt.Fprintf(w, `{"ok":false,"error":%q}`, s.failUpdErr)
			return
		}
		u := Update{Channel: r.FormValue("channel"), TS: r.FormValue("ts"), Text: r.FormValue("text"), Blocks: r.FormValue("blocks")}
		s.updates = append(s.updates, u)
		fmt.Fprintf(w, `{"ok":true,"channel":%q,"ts":%q,"text":""}`, u.Channel, u.TS)
		return
	}
	if s.failPosts > 0 {
		s.failPosts--
		fmt.Fprint(w, `{"ok":false,"error":"internal_error"}`)
		return
	}
	s.posts = append(s.posts, Post{Channel: r.FormValue("channel"), Text: r.FormValue("text"), ThreadTS: r.FormValue("thread_ts"),
		Blocks: r.FormValue("blocks"), Auth: r.Header.Get("Authorization") + r.FormValue("token")})
	s.seq++
	fmt.Fprintf(w, `{"ok":true,"channel":"C0123","ts":"1795435200.%06d","message":{}}`, s.seq)
}
