package config

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// rate and concurrency are optional ceilings: absent means the client
// adapts (0 reaches it), a positive value is kept as the ceiling, and what
// cannot be a ceiling is refused at its line and column.
func TestRateAndConcurrencyAreCeilings(t *testing.T) {
	vars := env(map[string]string{"HW_AK": "a", "HW_SK": "b", "HOOK_SECRET": "c"})
	tests := []struct {
		name, rate, want string
		wantRate         float64
		wantConc         int
		concurrency      string
	}{
		{name: "absent adapts", rate: "", wantRate: 0, wantConc: 0},
		{name: "zero adapts", rate: "rate: 0", concurrency: "concurrency: 0", wantRate: 0, wantConc: 0},
		{name: "ceilings kept", rate: "rate: 2.5", concurrency: "concurrency: 8", wantRate: 2.5, wantConc: 8},
		{name: "negative rate", rate: "rate: -1", want: "w.yaml:7:83: providers[0].rate: -1 is not a ceiling in requests per second"},
		{name: "nan rate", rate: "rate: .nan", want: "w.yaml:7:83: providers[0].rate: want a number"},
		{name: "infinite rate", rate: "rate: .inf", want: "w.yaml:7:83: providers[0].rate: want a number"},
		{name: "negative concurrency", rate: "rate: 5", concurrency: "concurrency: -2", want: "providers[0].concurrency: -2 requests in flight: give 1 to 1000"},
		{name: "absurd concurrency", rate: "rate: 5", concurrency: "concurrency: 100000", want: "providers[0].concurrency: 100000 requests in flight"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fields := tt.rate
			if tt.concurrency != "" {
				fields += ", " + tt.concurrency
			}
			src := strings.Replace(good, "page_size: 200, rate: 5}", "page_size: 200"+prefixed(fields)+"}", 1)
			require.NotEqual(t, good, src)
			c, err := Parse("w.yaml", []byte(src), vars)
			if tt.want != "" {
				require.Error(t, err)
				require.Contains(t, err.Error(), tt.want)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.wantRate, c.Providers[0].Rate)
			require.Equal(t, tt.wantConc, c.Providers[0].Concurrency)
		})
	}
}

func prefixed(s string) string {
	if s == "" {
		return ""
	}
	return ", " + s
}
