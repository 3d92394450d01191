package linkcard

import (
	"context"

	"github.com/simwatch/simwatch/internal/fleet"
)

// FetchPage fetches one page of the listing.
func FetchPage(ctx context.Context, c *Client, n int) ([]fleet.Card, error) {
	p, err := c.page(ctx, n)
	return p.Items, err
}
