package linkcard

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/simwatch/simwatch/internal/fleet"
)

// flowRE is a LinkCard flow amount: a number, optionally with thousands
// separators and a fraction, and a unit.
var flowRE = regexp.MustCompile(`^(-?)(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?\s*([KMGT]?B)$`)

var unitMB = map[string]float64{
	"B":  1.0 / (1024 * 1024),
	"KB": 1.0 / 1024,
	"MB": 1,
	"GB": 1024,
	"TB": 1024 * 1024,
}

// ParseFlow converts "130.00MB", "0KB", "9.99KB", "1.5GB" or "1,024.00MB" to
// MB (binary units: 1 GB = 1024 MB). Anything else is an error, never zero;
// so is an amount beyond fleet.MaxPoolMB, which no card or pool can hold: the
// result is always finite.
func ParseFlow(s string) (float64, error) {
	m := flowRE.FindStringSubmatch(strings.ToUpper(strings.TrimSpace(s)))
	if m == nil {
		return 0, fmt.Errorf("%q is not a flow amount (want e.g. 130.00MB, 9.99KB, 1.5GB)", s)
	}
	num := strings.ReplaceAll(m[2], ",", "")
	if m[3] != "" {
		num += "." + m[3]
	}
	v, err := strconv.ParseFloat(num, 64)
	if err == nil {
		v *= unitMB[m[4]]
	}
	if err != nil || math.IsInf(v, 0) || v > fleet.MaxPoolMB {
		return 0, fmt.Errorf("%s is beyond any real figure (limit %g MB)", quoteShort(s), float64(fleet.MaxPoolMB))
	}
	if m[1] == "-" {
		v = -v
	}
	return v, nil
}

// quoteShort quotes s, eliding the middle of a long one.
func quoteShort(s string) string {
	if len(s) <= 40 {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:20]) + "…" + strconv.Quote(s[len(s)-12:])
}
