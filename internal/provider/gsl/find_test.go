package gsl_test

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/simwatch/simwatch/internal/provider/gsl"
	"github.com/simwatch/simwatch/internal/sim"
)

func TestFindCardsByICCID(t *testing.T) {
	s := sim.NewServer(sim.Options{Fleet: sim.NewFleet(sim.FleetOptions{Cards: 30, Seed: 3, Calm: true})})
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	c, err := gsl.New(gsl.Options{Name: "hw", Endpoint: ts.URL, Token: "t", Rate: 1000, Retries: -1})
	require.NoError(t, err)
	iccids := s.Fleet().CardICCIDs()
	require.NoError(t, s.Fleet().RemoveCard(iccids[4]))
	found, err := c.FindCards(context.Background(), map[string]string{"4900000000002": iccids[1], "4900000000005": iccids[4]})
	require.NoError(t, err)
	require.Equal(t, map[string]bool{"4900000000002": true}, found)
}
