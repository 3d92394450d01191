// Package gsl is the client for Huawei Cloud Global SIM Link: complete, rate
// limited, retried listings of an account's SIM cards and pools, normalised to
// the fleet model. It authenticates with AK/SK signing or an IAM token.
package gsl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/provider"
)

// Defaults for a zero Options field.
const (
	DefaultPageSize = 500
	// DefaultRate is no ceiling: the request rate adapts (provider.Adaptive).
	DefaultRate = 0
	// DefaultConcurrency is the ceiling on requests in flight.
	DefaultConcurrency = provider.DefaultConcurrency
	DefaultTimeout     = 30 * time.Second
	DefaultRetries     = 4
	DefaultBackoff     = 500 * time.Millisecond
	DefaultMaxBackoff  = 30 * time.Second
	maxBody            = 64 << 20
)

// Options configures a Client. The zero value of every field but Endpoint and
// one auth mode is a sensible default.
type Options struct {
	Name     string // provider instance name, stamped on every card and pool
	Endpoint string // e.g. https://gsl.cn-north-4.myhuaweicloud.com

	// Exactly one auth mode: AK+SK, Token, or IAM.
	AK, SK string
	Token  string
	IAM    *IAMAuth

	PageSize    int           // 10..500
	Rate        float64       // ceiling on requests per second; 0 means none, the rate adapts
	Concurrency int           // ceiling on requests in flight; 0 means DefaultConcurrency
	Timeout     time.Duration // per request
	Retries     int           // attempts beyond the first; negative means none
	Backoff     time.Duration // first retry delay, doubled each time
	MaxBackoff  time.Duration
	// ListAttempts is how often an inconsistent listing (drift between
	// pages, a count that disagrees) is fetched again from scratch before
	// the fetch fails; 0 means provider.DefaultListAttempts (3), negative 1.
	ListAttempts int

	HTTPClient *http.Client // copied; the copy never follows redirects
	Now        func() time.Time
	Logger     *slog.Logger
}

// Client lists one GSL account. It is safe for concurrent use.
type Client struct {
	decodeNS atomic.Int64 // time spent decoding pages, summed over pages
	pages    atomic.Int64 // listing pages accepted
	pacer    *provider.Adaptive
	o        Options
	retrier  *provider.Retrier
	once     *provider.Retrier // for operations that must not repeat on their own
	tokens   *tokenCache
}

// New returns a client for o.
func New(o Options) (*Client, error) {
	if _, err := url.Parse(o.Endpoint); err != nil || o.Endpoint == "" {
		return nil, fmt.Errorf("gsl: bad endpoint %q", o.Endpoint)
	}
	o.Endpoint = strings.TrimRight(o.Endpoint, "/")
	if o.PageSize == 0 {
		o.PageSize = DefaultPageSize
	}
	if o.PageSize < 10 || o.PageSize > 500 {
		return nil, fmt.Errorf("gsl: page size %d out of range 10..500", o.PageSize)
	}
	if o.Rate < 0 {
		o.Rate = DefaultRate
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Retries == 0 {
		o.Retries = DefaultRetries
	}
	if o.Backoff <= 0 {
		o.Backoff = DefaultBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	// API requests never follow redirects (DESIGN §6): a copy of the
	// configured client answers 3xx as they are.
	o.HTTPClient = provider.NoRedirects(o.HTTPClient)
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	modes := 0
	for _, set := range []bool{o.AK != "" || o.SK != "", o.Token != "", o.IAM != nil} {
		if set {
			modes++
		}
	}
	if modes != 1 {
		return nil, errors.New("gsl: configure exactly one of AK/SK, token or IAM password auth")
	}
	if (o.AK == "") != (o.SK == "") {
		return nil, errors.New("gsl: AK/SK signing needs both keys")
	}
	// One controller paces every request of the account: listings, daily
	// usage, finds and actions share the provider's limit.
	pacer := provider.NewAdaptive(provider.AdaptiveOptions{Name: o.Name, MaxRate: o.Rate, MaxConcurrency: o.Concurrency, Logger: o.Logger})
	c := &Client{o: o, pacer: pacer,
		retrier: &provider.Retrier{Name: o.Name, Retries: o.Retries, Backoff: o.Backoff, MaxBackoff: o.MaxBackoff, Adaptive: pacer, Logger: o.Logger},
		once:    &provider.Retrier{Name: o.Name, Retries: -1, Adaptive: pacer, Logger: o.Logger},
	}
	if o.IAM != nil {
		c.tokens = &tokenCache{auth: *o.IAM, http: o.HTTPClient, now: o.Now}
	}
	return c, nil
}

// RequestStats counts the requests sent, pages accepted and throttling
// answers since the client was made, with the rate and concurrency the
// adaptive controller allows now.
func (c *Client) RequestStats() provider.RequestStats {
	st := c.pacer.Stats()
	st.Pages = c.pages.Load()
	return st
}

// pageDone counts a listing page accepted.
func (c *Client) pageDone() { c.pages.Add(1) }

// DecodeTime is the time spent decoding and normalising pages since the
// client was made, summed over pages (pages decode concurrently, so it can
// exceed the wall time of a fetch).
func (c *Client) DecodeTime() time.Duration { return time.Duration(c.decodeNS.Load()) }

// Fetch lists every card and pool. It returns a snapshot only when every page
// of both listings arrived and each listing is consistent (DESIGN §6); any
// failure after retries and refetches fails the whole fetch.
func (c *Client) Fetch(ctx context.Context) (fleet.Snapshot, error) {
	var snap fleet.Snapshot
	var err error
	if snap.Cards, err = listing(c, "/v1/sim-cards", "card", decodeCards, cardID).All(ctx); err != nil {
		return fleet.Snapshot{}, err
	}
	if snap.Pools, err = listing(c, "/v1/sim-pools", "pool", decodePools, poolID).All(ctx); err != nil {
		return fleet.Snapshot{}, err
	}
	return snap, nil
}

func cardID(c *fleet.Card) string { return c.ID }
func poolID(p *fleet.Pool) string { return p.ID }

type pageDecoder[T any] func(provider string, body []byte) (provider.Page[T], error)

// listing is the shared complete-or-fail listing of path: page 1 to learn
// the count, the rest concurrently under the rate limit, then the checks.
func listing[T any](c *Client, path, noun string, decode pageDecoder[T], id func(*T) string) *provider.Listing[T] {
	return &provider.Listing[T]{
		Provider: "gsl", Instance: c.o.Name, Name: "GET " + path, Noun: noun,
		PageSize: c.o.PageSize, Concurrency: c.o.Concurrency, Attempts: c.o.ListAttempts,
		Backoff: c.o.Backoff, MaxBackoff: c.o.MaxBackoff, Logger: c.o.Logger,
		Fetch: func(ctx context.Context, page int) (provider.Page[T], error) {
			return fetchPage(ctx, c, path, page, decode)
		},
		ID: id,
	}
}

func fetchPage[T any](ctx context.Context, c *Client, path string, page int, decode pageDecoder[T]) (provider.Page[T], error) {
	q := url.Values{"offset": {strconv.Itoa(page)}, "limit": {strconv.Itoa(c.o.PageSize)}}
	op := fmt.Sprintf("GET %s page %d", path, page)
	var p provider.Page[T]
	err := c.do(ctx, op, http.MethodGet, path, q, nil, func(body []byte, requestID string) error {
		var err error
		t := time.Now()
		p, err = decode(c.o.Name, body)
		c.decodeNS.Add(int64(time.Since(t)))
		if err != nil {
			return &provider.PageError{Provider: "gsl", Op: op, RequestID: requestID, Err: err}
		}
		c.pageDone()
		return nil
	})
	return p, err
}

// do sends one request with retries: retryable API errors, bad pages and
// transport failures are retried with capped exponential backoff and jitter.
func (c *Client) do(ctx context.Context, op, method, path string, q url.Values, body []byte, handle func(body []byte, requestID string) error) error {
	return c.retrier.Do(ctx, op, func(ctx context.Context) error {
		return c.attempt(ctx, op, method, path, q, body, handle)
	})
}

func (c *Client) attempt(ctx context.Context, op, method, path string, q url.Values, body []byte, handle func([]byte, string) error) error {
	rctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	u := c.o.Endpoint + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(rctx, method, u, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("gsl: %s: %w", op, err)
	}
	if len(body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	if err := c.authenticate(ctx, req, body); err != nil {
		return err
	}
	resp, err := c.o.HTTPClient.Do(req)
	if err != nil {
		return &provider.TransportError{Op: "gsl: " + op, Err: err, Timeout: rctx.Err() != nil && ctx.Err() == nil}
	}
	defer resp.Body.Close()
	return provider.ReadBody(resp, maxBody, func(data []byte, err error) error {
		requestID := resp.Header.Get("X-Request-Id")
		if err != nil {
			return &provider.TransportError{Op: "gsl: " + op, Err: err, Timeout: rctx.Err() != nil && ctx.Err() == nil}
		}
		if err := provider.CheckRedirect("gsl", op, resp); err != nil {
			return err
		}
		if resp.StatusCode == http.StatusUnauthorized && c.tokens != nil {
			c.tokens.invalidate()
		}
		if resp.StatusCode/100 != 2 {
			e := &APIError{Op: op, Status: resp.StatusCode, RequestID: requestID}
			var eb struct {
				Code string `json:"error_code"`
				Msg  string `json:"error_msg"`
			}
			if json.Unmarshal(data, &eb) == nil {
				e.Code, e.Message = eb.Code, eb.Msg
			}
			e.retryAfter = provider.ParseRetryAfter(resp.Header.Get("Retry-After"), c.o.Now())
			return e
		}
		return handle(data, requestID) // handle keeps no part of data
	})
}

func (c *Client) authenticate(ctx context.Context, req *http.Request, body []byte) error {
	switch {
	case c.o.AK != "":
		Sign(req, body, c.o.AK, c.o.SK, c.o.Now())
	case c.o.Token != "":
		req.Header.Set("X-Auth-Token", c.o.Token)
	default:
		tok, err := c.tokens.get(ctx)
		if err != nil {
			return err
		}
		req.Header.Set("X-Auth-Token", tok)
	}
	return nil
}
