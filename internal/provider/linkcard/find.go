package linkcard

import (
	"context"
	"strings"

	"github.com/simwatch/simwatch/internal/provider"
)

// FindCards looks each card up by ICCID (ListCardInfo with Iccid, seed 002)
// and reports, by card id, which the account still lists. The poller asks
// before it removes a card two listings lacked: offset paging can hide a
// card that moves across a page boundary while the fleet changes.
func (c *Client) FindCards(ctx context.Context, cards map[string]string) (map[string]bool, error) {
	found := make(map[string]bool, len(cards))
	for id, iccid := range cards {
		op := "ListCardInfo Iccid " + iccid
		err := c.retrier.Do(ctx, op, func(ctx context.Context) error {
			resp, body, err := c.call(ctx, op, map[string]string{"Action": "ListCardInfo", "Iccid": iccid, "PageNo": "1", "PageSize": "10"})
			if err != nil {
				return err
			}
			pg, err := decodeData(c.o.Name, resp, body)
			if err != nil {
				return &provider.PageError{Provider: "linkcard", Op: op, RequestID: resp.RequestID, Err: err}
			}
			for i := range pg.Items {
				if pg.Items[i].ID == strings.ToUpper(strings.TrimSpace(id)) {
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
