package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"mime"
	"net"
	"net/http"
	"strings"
)

// Roles a token can have (the config's http.tokens roles).
const (
	RoleRead  = "read"
	RoleAdmin = "admin"
)

// Token is one bearer token the API accepts.
type Token struct {
	Name   string // shown in errors instead of the secret
	Secret string
	Role   string // RoleRead or RoleAdmin
}

// openPaths answer without a token: orchestrators probe liveness and
// readiness without credentials, and neither reveals fleet data.
var openPaths = map[string]bool{"/healthz": true, "/readyz": true}

// guard wraps the routes with the access rules (DESIGN §5):
//   - no state change from a browser on another site, whatever the
//     credentials: a cross-site Origin or Sec-Fetch-Site is refused, and a
//     body must be application/json (a form post cannot send that without a
//     CORS preflight, which this API never grants);
//   - with tokens configured, every route but /healthz and /readyz needs a
//     bearer token, and a state change needs an admin one;
//   - with none (loopback only), the Host must be a loopback name, so that a
//     site rebinding its DNS name to 127.0.0.1 is not "same origin".
func (s *Server) guard(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusForbidden, "cross-site requests cannot change anything")
	}))
	checked := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		change := !safeMethod(r.Method)
		if change && hasBody(r) && !isJSON(r.Header.Get("Content-Type")) {
			writeError(w, http.StatusUnsupportedMediaType, "a request that changes something must send Content-Type: application/json")
			return
		}
		if len(s.o.Tokens) == 0 || openPaths[r.URL.Path] {
			next.ServeHTTP(w, r)
			return
		}
		tok, ok := s.authenticate(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="simwatch"`)
			writeError(w, http.StatusUnauthorized, "missing or unknown bearer token (Authorization: Bearer, one of http.tokens, or the console's session)")
			return
		}
		if change && tok.Role != RoleAdmin {
			writeError(w, http.StatusForbidden, "token "+tok.Name+" has role "+tok.Role+"; changes need an admin token")
			return
		}
		next.ServeHTTP(w, r)
	})
	protected := cop.Handler(checked)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(s.o.Tokens) == 0 && !openPaths[r.URL.Path] && !loopbackHost(r.Host) {
			writeError(w, http.StatusMisdirectedRequest, "without http.tokens the API answers only to localhost")
			return
		}
		protected.ServeHTTP(w, r)
	})
}

// SessionCookie is the cookie the web console keeps a signed-in token in
// (HttpOnly, SameSite=Strict): the API takes it as it takes a bearer
// token, so that the console's pages change things through the API.
const SessionCookie = "simwatch_session"

// authenticate finds the request's bearer token, or the console's session
// cookie.
func (s *Server) authenticate(r *http.Request) (Token, bool) {
	scheme, given, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if ok && strings.EqualFold(scheme, "Bearer") {
		return s.Check(given)
	}
	if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
		return s.Check(c.Value)
	}
	return Token{}, false
}

// Who is the token a request carries (bearer or session cookie), and
// whether the API takes it. With no tokens configured everyone is an
// unnamed admin: the API then answers only to localhost.
func (s *Server) Who(r *http.Request) (Token, bool) {
	if len(s.o.Tokens) == 0 {
		return Token{Role: RoleAdmin}, true
	}
	return s.authenticate(r)
}

// Open reports whether the API runs without tokens (loopback only).
func (s *Server) Open() bool { return len(s.o.Tokens) == 0 }

// Check finds the configured token whose secret is given. Every token is
// compared, in constant time over fixed-length digests, so that neither the
// match nor its length shows in the timing.
func (s *Server) Check(given string) (Token, bool) {
	sum := sha256.Sum256([]byte(strings.TrimSpace(given)))
	var found Token
	matched := 0
	for _, t := range s.o.Tokens {
		want := sha256.Sum256([]byte(t.Secret))
		if subtle.ConstantTimeCompare(sum[:], want[:]) == 1 {
			found, matched = t, 1
		}
	}
	return found, matched == 1
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// hasBody reports whether the request carries (or may carry) a body. POST,
// PUT and PATCH always count, so that an empty form post is refused too.
func hasBody(r *http.Request) bool {
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		return true
	}
	return r.ContentLength != 0
}

func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}

// LoopbackHost reports whether a Host header names this machine's loopback.
func LoopbackHost(host string) bool { return loopbackHost(host) }

func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// LoopbackAddr reports whether a listen address binds loopback only; an
// empty host (all interfaces) does not.
func LoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	return loopbackHost(host)
}
