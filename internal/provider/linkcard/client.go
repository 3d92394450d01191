// Package linkcard is the client for Alibaba Cloud IoT SIM "LinkCard":
// complete, signed (RPC signature v1), rate-limited and retried listings of an
// account's cards via ListCardInfo, normalised to the fleet model, with pools
// derived from the cards that share them.
package linkcard

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/simwatch/simwatch/internal/fleet"
	"github.com/simwatch/simwatch/internal/provider"
)

// PageSizes are the page sizes ListCardInfo accepts.
var PageSizes = []int{10, 15, 25, 40}

// Defaults for a zero Options field.
const (
	DefaultPageSize = 40
	// DefaultRate is no ceiling: the request rate adapts (provider.Adaptive).
	DefaultRate = 0
	// DefaultConcurrency is the ceiling on requests in flight.
	DefaultConcurrency = provider.DefaultConcurrency
	DefaultTimeout     = 30 * time.Second
	maxBody            = 64 << 20
)

// Options configures a Client.
type Options struct {
	Name            string // provider instance name
	Endpoint        string // e.g. https://linkcard.aliyuncs.com
	AccessKeyID     string
	AccessKeySecret string

	PageSize    int     // 10, 15, 25 or 40
	Rate        float64 // ceiling on requests per second; 0 means none, the rate adapts
	Concurrency int     // ceiling on requests in flight; 0 means DefaultConcurrency
	Timeout     time.Duration
	Retries     int
	Backoff     time.Duration
	MaxBackoff  time.Duration
	// ListAttempts is how often an inconsistent listing (drift between
	// pages, Total and PageCount that disagree) is fetched again from
	// scratch before the fetch fails; 0 means provider.DefaultListAttempts
	// (3), negative 1.
	ListAttempts int

	HTTPClient *http.Client // copied; the copy never follows redirects
	Now        func() time.Time
	Nonce      func() string // a unique SignatureNonce; default random
	Logger     *slog.Logger
}

// Client lists one LinkCard account. It is safe for concurrent use.
type Client struct {
	o       Options
	retrier *provider.Retrier
	pacer   *provider.Adaptive
	pages   atomic.Int64 // listing pages accepted
}

// New returns a client for o.
func New(o Options) (*Client, error) {
	if u, err := url.Parse(o.Endpoint); err != nil || u.Host == "" {
		return nil, fmt.Errorf("linkcard: bad endpoint %q", o.Endpoint)
	}
	if o.AccessKeyID == "" || o.AccessKeySecret == "" {
		return nil, errors.New("linkcard: access key id and secret are required")
	}
	if o.PageSize == 0 {
		o.PageSize = DefaultPageSize
	}
	if !slices.Contains(PageSizes, o.PageSize) {
		return nil, fmt.Errorf("linkcard: page size %d: ListCardInfo accepts 10, 15, 25 or 40", o.PageSize)
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
	// API requests never follow redirects (DESIGN §6): a copy of the
	// configured client answers 3xx as they are.
	o.HTTPClient = provider.NoRedirects(o.HTTPClient)
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Nonce == nil {
		o.Nonce = func() string {
			var b [16]byte
			_, _ = rand.Read(b[:])
			return hex.EncodeToString(b[:])
		}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	// One controller paces every request of the account, listings and
	// finds alike.
	pacer := provider.NewAdaptive(provider.AdaptiveOptions{Name: o.Name, MaxRate: o.Rate, MaxConcurrency: o.Concurrency, Logger: o.Logger})
	return &Client{o: o, pacer: pacer, retrier: &provider.Retrier{Name: o.Name, Retries: o.Retries, Backoff: o.Backoff, MaxBackoff: o.MaxBackoff,
		Adaptive: pacer, Logger: o.Logger}}, nil
}

// RequestStats counts the requests sent, pages accepted and throttling
// answers since the client was made, with the rate and concurrency the
// adaptive controller allows now.
func (c *Client) RequestStats() provider.RequestStats {
	st := c.pacer.Stats()
	st.Pages = c.pages.Load()
	return st
}

// Fetch lists every card, complete and consistent or not at all (DESIGN
// §6), and derives the pools.
func (c *Client) Fetch(ctx context.Context) (fleet.Snapshot, error) {
	l := &provider.Listing[fleet.Card]{
		Provider: "linkcard", Instance: c.o.Name, Name: "ListCardInfo", Noun: "card", CountName: "Total",
		PageSize: c.o.PageSize, Concurrency: c.o.Concurrency, Attempts: c.o.ListAttempts,
		Backoff: c.o.Backoff, MaxBackoff: c.o.MaxBackoff, Logger: c.o.Logger,
		Fetch: c.page,
		ID:    func(c *fleet.Card) string { return c.ID },
	}
	cards, err := l.All(ctx)
	if err != nil {
		return fleet.Snapshot{}, err
	}
	pools := derivePools(c.o.Name, cards, c.o.Now())
	for i := range pools {
		if err := pools[i].Validate(); err != nil {
			return fleet.Snapshot{}, fmt.Errorf("linkcard: ListCardInfo: pool %s derived from its cards: %w", pools[i].ID, err)
		}
	}
	return fleet.Snapshot{Cards: cards, Pools: pools}, nil
}

// page fetches and decodes page n, with retries.
func (c *Client) page(ctx context.Context, n int) (provider.Page[fleet.Card], error) {
	op := fmt.Sprintf("ListCardInfo page %d", n)
	var pg provider.Page[fleet.Card]
	err := c.retrier.Do(ctx, op, func(ctx context.Context) error {
		resp, body, err := c.call(ctx, op, map[string]string{"Action": "ListCardInfo", "PageNo": strconv.Itoa(n), "PageSize": strconv.Itoa(c.o.PageSize)})
		if err != nil {
			return err
		}
		if pg, err = decodeData(c.o.Name, resp, body); err != nil {
			return &provider.PageError{Provider: "linkcard", Op: op, RequestID: resp.RequestID, Err: err}
		}
		c.pages.Add(1)
		return nil
	})
	return pg, err
}

// call signs and sends one RPC request and checks the envelope.
func (c *Client) call(ctx context.Context, op string, params map[string]string) (*response, []byte, error) {
	params["Format"] = "JSON"
	params["Version"] = APIVersion
	params["AccessKeyId"] = c.o.AccessKeyID
	params["SignatureMethod"] = SignatureMethod
	params["SignatureVersion"] = SignatureVersion
	params["SignatureNonce"] = c.o.Nonce()
	params["Timestamp"] = c.o.Now().UTC().Format(TimestampFormat)
	sig := Sign(c.o.AccessKeySecret, StringToSign(http.MethodGet, params))
	u := strings.TrimRight(c.o.Endpoint, "/") + "/?" + CanonicalQuery(params) + "&Signature=" + PercentEncode(sig)

	rctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("linkcard: %s: %w", op, err)
	}
	req.Header.Set("Accept", "application/json")
	httpResp, err := c.o.HTTPClient.Do(req)
	if err != nil {
		return nil, nil, &provider.TransportError{Op: "linkcard: " + op, Err: redact(err), Timeout: rctx.Err() != nil && ctx.Err() == nil}
	}
	defer httpResp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(httpResp.Body, maxBody))
	if err != nil {
		return nil, nil, &provider.TransportError{Op: "linkcard: " + op, Err: err, Timeout: rctx.Err() != nil && ctx.Err() == nil}
	}
	if err := provider.CheckRedirect("linkcard", op, httpResp); err != nil {
		return nil, nil, err
	}
	var resp response
	decodeErr := json.Unmarshal(body, &resp)
	if httpResp.StatusCode/100 != 2 {
		e := &APIError{Op: op, Status: httpResp.StatusCode, Code: resp.Code, Message: resp.Message, RequestID: resp.RequestID}
		if e.Message == "" {
			e.Message = resp.ErrorMessage
		}
		e.retryAfter = provider.ParseRetryAfter(httpResp.Header.Get("Retry-After"), c.o.Now())
		return nil, nil, e
	}
	if decodeErr != nil {
		return nil, nil, &provider.PageError{Provider: "linkcard", Op: op, Err: decodeErr}
	}
	if (resp.Success != nil && !*resp.Success) || (resp.Code != "" && resp.Code != "200") {
		return nil, nil, &APIError{Op: op, Status: httpResp.StatusCode, Code: resp.Code, Message: resp.ErrorMessage, RequestID: resp.RequestID}
	}
	return &resp, body, nil
}

// redact drops the request URL, which carries the signature and access key
// id, from a transport error.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
