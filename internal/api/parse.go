package api

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MaxEventLimit bounds ?limit= (and events --limit): the answer is built in
// memory, and the history holds at most 30 days.
const MaxEventLimit = 10000

// ParseLimit reads an event limit: a whole number from 1 to MaxEventLimit.
func ParseLimit(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%q is not a whole number", v)
	}
	if n < 1 || n > MaxEventLimit {
		return 0, fmt.Errorf("%d is out of range 1..%d", n, MaxEventLimit)
	}
	return n, nil
}

// ParseDuration is time.ParseDuration that also takes days: 7d, 1d12h.
// A day is 24 hours.
func ParseDuration(v string) (time.Duration, error) {
	s := strings.TrimSpace(v)
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.ParseUint(s[:i], 10, 16)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration (e.g. 30m, 2h, 7d)", v)
		}
		days, s = time.Duration(n)*24*time.Hour, s[i+1:]
		if s == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (e.g. 30m, 2h, 7d)", v)
	}
	if days > 0 && d < 0 {
		return 0, fmt.Errorf("%q is not a duration (e.g. 30m, 2h, 7d)", v)
	}
	return days + d, nil
}

// ParseSince reads a "since" bound: an RFC 3339 time, or a positive
// duration back from now (30m, 2h, 7d).
func ParseSince(v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	d, err := ParseDuration(v)
	if err != nil {
		return time.Time{}, errors.New("want an RFC 3339 time (2026-01-02T15:04:05Z) or a duration back from now (30m, 2h, 7d)")
	}
	if d <= 0 {
		return time.Time{}, fmt.Errorf("%q: want a positive duration back from now", v)
	}
	return now.Add(-d), nil
}
