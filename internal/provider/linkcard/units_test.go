package linkcard

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseFlow(t *testing.T) {
	tests := []struct {
		in   string
		want float64
	}{
		{"130.00MB", 130},
		{"0KB", 0},
		{"0MB", 0},
		{"9.99KB", 9.99 / 1024},
		{"512KB", 0.5},
		{"1.5GB", 1536},
		{"1GB", 1024},
		{"1,024.00MB", 1024},
		{"1,234,567.5MB", 1234567.5},
		{"2TB", 2 * 1024 * 1024},
		{"1048576B", 1},
		{"30MB", 30},
		{" 30 MB ", 30},
		{"-42.59MB", -42.59},
		{"1.5gb", 1536},
		{"9536743164TB", 9536743164 * 1024 * 1024},
		{"-9536743164TB", -9536743164 * 1024 * 1024},
	}
	for _, tt := range tests {
		got, err := ParseFlow(tt.in)
		require.NoError(t, err, tt.in)
		require.InDelta(t, tt.want, got, 1e-12, tt.in)
	}
}

func TestParseFlowRejectsGarbage(t *testing.T) {
	for _, in := range []string{"", "MB", "12", "12XB", "1,24MB", "1.2.3MB", "abcMB", "NaNMB", "InfMB", "1e3MB", "--1MB", "1,0000MB", ".5MB", "5.MB",
		"1000000000000000000000TB", "9536743165TB", "-9536743165TB", "1" + strings.Repeat("0", 400) + "B"} {
		_, err := ParseFlow(in)
		require.Error(t, err, "%q", in)
	}
}
