package gsl

import (
	"context"
	"net/http"
	"net/url"

	"github.com/simwatch/simwatch/internal/provider"
)

// FindCards looks each card up by ICCID (GET /v1/sim-cards with
// main_search_type=1, seed 000) and reports, by card id, which the account
// still lists. The poller asks before it removes a card two listings
// lacked: offset paging can hide a card that moves across a page boundary
// while the fleet changes, even twice in a row.
func (c *Client) FindCards(ctx context.Context, cards map[string]string) (map[string]bool, error) {
	found := make(map[string]bool, len(cards))
	for id, iccid := range cards {
		q := url.Values{"main_search_type": {"1"}, "main_search_key": {iccid}, "offset": {"1"}, "limit": {"10"}}
		op := "GET /v1/sim-cards main_search_key " + iccid
		err := c.do(ctx, op, http.MethodGet, "/v1/sim-cards", q, nil, func(body []byte, requestID string) error {
			p, err := decodeCards(c.o.Name, body)
			if err != nil {
				return &provider.PageError{Provider: "gsl", Op: op, RequestID: requestID, Err: err}
			}
			for i := range p.Items {
				if p.Items[i].ID == id {
					found[id] = true
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return found, nil
}
