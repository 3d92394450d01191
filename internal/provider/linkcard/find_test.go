package linkcard_test

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/provider/linkcard"
	"github.com/simwatch/simwatch/internal/sim"
)

func TestFindCardsByICCID(t *testing.T) {
	s := sim.NewServer(sim.Options{Fleet: sim.NewFleet(sim.FleetOptions{Cards: 30, Seed: 3, Calm: true})})
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	c, err := linkcard.New(linkcard.Options{Name: "ali", Endpoint: ts.URL, AccessKeyID: "k", AccessKeySecret: "s", Rate: 1000, Retries: -1})
	require.NoError(t, err)
	iccids := s.Fleet().CardICCIDs()
	require.NoError(t, s.Fleet().RemoveCard(iccids[4]))
	found, err := c.FindCards(context.Background(), map[string]string{iccids[1]: iccids[1], iccids[4]: iccids[4]})
	require.NoError(t, err)
	require.Equal(t, map[string]bool{iccids[1]: true}, found)
}
