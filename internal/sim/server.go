package sim

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/simwatch/simwatch/internal/provider/gsl"
)

// Options configures a Server. With no credentials at all it accepts every
// request, which is what `watcher sim` does when run bare.
type Options struct {
	Fleet *Fleet

	// Access keys and their secrets: GSL AK/SK pairs for SDK-HMAC-SHA256, and
	// LinkCard AccessKeyId/AccessKeySecret pairs for RPC signatures.
	Keys map[string]string
	// Static X-Auth-Token values accepted.
	Tokens []string
	// IAM password identity that POST /v3/auth/tokens accepts.
	IAMDomain, IAMUser, IAMPassword string
	TokenTTL                        time.Duration // zero means 24h

	MaxSkew time.Duration // allowed X-Sdk-Date skew; zero means 15m
	Now     func() time.Time
	// WorkOrderDelay is how long a stop or resume takes to change the card;
	// zero means 2s.
	WorkOrderDelay time.Duration

	// MaxRate is the throttling threshold: API requests per second, over
	// both providers' APIs, beyond which they are answered as the real
	// gateways do (GSL 429 APIGW.0308, LinkCard 400 Throttling.User); zero
	// means none. Control endpoints (/_sim/) are never throttled.
	MaxRate float64
	// ThrottleRetryAfter, when set, is sent as Retry-After (whole seconds,
	// rounded up) on throttled answers; real gateways often send none.
	ThrottleRetryAfter time.Duration
}

// Server serves the simulated provider APIs.
type Server struct {
	o      Options
	mu     sync.Mutex
	faults []*Fault
	issued map[string]time.Time
	nonces map[string]bool // LinkCard SignatureNonces seen
	stats  Stats
	limit  *throttle // nil: no MaxRate

	orders     []*workOrder
	nextOrder  int64
	lastAction map[int64]time.Time // card id → last stop/resume accepted
}

// Stats counts what the server answered, for tests and the demo.
type Stats struct {
	Requests int            `json:"requests"`
	ByPath   map[string]int `json:"by_path"`
	Rejected int            `json:"rejected"` // failed auth
	Faults   int            `json:"faults"`   // answered with an injected fault
	Actions  int            `json:"actions"`  // stop/resume work orders accepted
	// Throttled counts answers refused for going over MaxRate.
	Throttled int `json:"throttled"`
}

// NewServer returns a simulator for o.Fleet.
func NewServer(o Options) *Server {
	if o.Fleet == nil {
		o.Fleet = NewFleet(FleetOptions{Cards: 100, Pools: 3, Seed: 1})
	}
	if o.TokenTTL == 0 {
		o.TokenTTL = 24 * time.Hour
	}
	if o.MaxSkew == 0 {
		o.MaxSkew = 15 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Server{o: o, issued: map[string]time.Time{}, stats: Stats{ByPath: map[string]int{}}, lastAction: map[int64]time.Time{},
		limit: newThrottle(o.MaxRate)}
}

// Fleet returns the simulated fleet.
func (s *Server) Fleet() *Fleet { return s.o.Fleet }

// Handler routes the provider APIs and the /_sim/ control API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/sim-cards", s.throttled("sim-cards", s.guard("sim-cards", s.listCards)))
	mux.HandleFunc("GET /v1/sim-pools", s.throttled("sim-pools", s.guard("sim-pools", s.listPools)))
	mux.HandleFunc("POST /v1/sim-cards/batch-daily-flow", s.throttled("batch-daily-flow", s.guard("batch-daily-flow", s.batchDailyFlow)))
	mux.HandleFunc("POST /v1/sim-cards/{id}/stop", s.throttled("stop", s.guard("stop", s.cardAction(true))))
	mux.HandleFunc("POST /v1/sim-cards/{id}/reset", s.throttled("reset", s.guard("reset", s.cardAction(false))))
	mux.HandleFunc("POST /v3/auth/tokens", s.issueToken) // IAM is another service, with its own limits
	mux.HandleFunc("GET /{$}", s.throttled("linkcard", s.linkcard))
	s.control(mux)
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// gslError writes GSL's documented error body.
func gslError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"error_code": code, "error_msg": msg})
}

// pageReq is what guard hands on: the page asked for (GSL offset, from 1),
// its size, and the fault that matched the request, if any, for the listing
// to apply (a listing mutation, or a slow fault already served).
type pageReq struct {
	Page, Limit int
	Fault       *Fault
}

// guard counts the request, checks auth and applies injected faults before
// handing on to the handler.
func (s *Server) guard(path string, next func(w http.ResponseWriter, r *http.Request, q pageReq)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", newRequestID())
		s.mu.Lock()
		s.stats.Requests++
		s.stats.ByPath[path]++
		s.mu.Unlock()
		if code, msg := s.authenticate(r); code != "" {
			s.mu.Lock()
			s.stats.Rejected++
			s.mu.Unlock()
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error_code": code, "error_msg": msg, "request_id": w.Header().Get("X-Request-Id")})
			return
		}
		q := r.URL.Query()
		page, limit := 1, 10
		var err error
		if v := q.Get("offset"); v != "" {
			if page, err = strconv.Atoi(v); err != nil || page < 1 || page > 1000000 {
				gslError(w, http.StatusBadRequest, gsl.CodeParamInvalid, "参数异常")
				return
			}
		}
		if v := q.Get("limit"); v != "" {
			if limit, err = strconv.Atoi(v); err != nil || limit < 10 || limit > 500 {
				gslError(w, http.StatusBadRequest, gsl.CodeParamInvalid, "参数异常")
				return
			}
		}
		s.mu.Lock()
		s.completeWorkOrders()
		s.mu.Unlock()
		f := s.takeFault(path, page)
		if f != nil {
			s.mu.Lock()
			s.stats.Faults++
			s.mu.Unlock()
			if f.apply(w, r) {
				return
			}
		}
		next(w, r, pageReq{Page: page, Limit: limit, Fault: f})
	}
}

func (s *Server) authenticate(r *http.Request) (code, msg string) {
	if len(s.o.Keys) == 0 && len(s.o.Tokens) == 0 && s.o.IAMUser == "" {
		return "", ""
	}
	if tok := r.Header.Get("X-Auth-Token"); tok != "" {
		for _, t := range s.o.Tokens {
			if hmac.Equal([]byte(t), []byte(tok)) {
				return "", ""
			}
		}
		s.mu.Lock()
		exp, ok := s.issued[tok]
		s.mu.Unlock()
		if ok && s.o.Now().Before(exp) {
			return "", ""
		}
		return "APIGW.0307", "The token must be updated."
	}
	ak, signed, sig, ok := gsl.ParseAuthorization(r.Header.Get("Authorization"))
	if !ok {
		return "APIGW.0301", "Incorrect IAM authentication information: Authorization header missing or malformed"
	}
	sk, known := s.o.Keys[ak]
	if !known {
		return "APIGW.0301", "Incorrect IAM authentication information: unknown access key"
	}
	date, err := time.Parse(gsl.SdkDateFormat, r.Header.Get(gsl.HeaderSdkDate))
	if err != nil {
		return "APIGW.0301", "Incorrect IAM authentication information: X-Sdk-Date missing or malformed"
	}
	if d := s.o.Now().Sub(date); d > s.o.MaxSkew || d < -s.o.MaxSkew {
		return "APIGW.0301", "Incorrect IAM authentication information: X-Sdk-Date is too far from the server's time"
	}
	// The gateway wants the date signed, so that a signature cannot be
	// replayed later; host it leaves to the client, as Huawei's own SDK
	// signs user-agent;x-project-id;x-sdk-date and never host.
	if !slices.Contains(signed, "x-sdk-date") {
		return "APIGW.0301", "Incorrect IAM authentication information: x-sdk-date must be signed"
	}
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(io.LimitReader(r.Body, 1<<20))
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	want := gsl.Signature(sk, gsl.StringToSign(gsl.CanonicalRequest(r, signed, body), r.Header.Get(gsl.HeaderSdkDate)))
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return "APIGW.0301", "Incorrect IAM authentication information: verify aksk signature fail"
	}
	return "", ""
}

func (s *Server) issueToken(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Auth struct {
			Identity struct {
				Methods  []string `json:"methods"`
				Password struct {
					User struct {
						Name     string `json:"name"`
						Password string `json:"password"`
						Domain   struct {
							Name string `json:"name"`
						} `json:"domain"`
					} `json:"user"`
				} `json:"password"`
			} `json:"identity"`
		} `json:"auth"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]any{"code": 400, "message": "The request body is malformed."}})
		return
	}
	u := body.Auth.Identity.Password.User
	if s.o.IAMUser == "" || u.Name != s.o.IAMUser || u.Domain.Name != s.o.IAMDomain ||
		!hmac.Equal([]byte(u.Password), []byte(s.o.IAMPassword)) {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": map[string]any{"code": 401, "message": "The username or password is wrong.", "title": "Unauthorized"}})
		return
	}
	tok := "MIIsim" + newRequestID()
	exp := s.o.Now().Add(s.o.TokenTTL)
	s.mu.Lock()
	s.issued[tok] = exp
	s.mu.Unlock()
	w.Header().Set("X-Subject-Token", tok)
	writeJSON(w, http.StatusCreated, map[string]any{"token": map[string]any{
		"expires_at": exp.UTC().Format("2006-01-02T15:04:05.000000Z"),
		"issued_at":  s.o.Now().UTC().Format("2006-01-02T15:04:05.000000Z"),
		"methods":    []string{"password"},
		"user":       map[string]any{"name": u.Name, "domain": map[string]string{"name": u.Domain.Name}},
	}})
}

// IssuedTokens reports how many IAM tokens the server has handed out.
func (s *Server) IssuedTokens() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.issued)
}

// Stats returns a copy of the request counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.ByPath = make(map[string]int, len(s.stats.ByPath))
	for k, v := range s.stats.ByPath {
		st.ByPath[k] = v
	}
	return st
}
